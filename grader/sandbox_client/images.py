"""Build (or find) the sandbox's Docker images: a Debian base made with debootstrap, then the sandbox image.

The machines that run the tests cannot pull images, so the base is built from Debian packages and
imported with `docker import`; real deployments may pass any base with Python 3 (and pip or numpy).
Both tags are content hashes, so a second run finds them and builds nothing.

usage: python -m grader.sandbox_client.images [--base-image IMAGE]   (prints the sandbox image tag last)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors
import docker.utils.build

SANDBOX_DIR = Path(__file__).resolve().parents[2] / "sandbox"

BASE_PACKAGES = ("python3", "python3-numpy")
BASE_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
BASE_REPOSITORY = "grader-base"
SANDBOX_REPOSITORY = "grader-sandbox"
HASH_LABEL = "org.opencourse.grader.sandbox-hash"
# An imported tarball carries no config: give it what a normal Debian image would have.
BASE_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
]
# Uploading ~150 MB and committing the layer can outlast the SDK's default 60 s read timeout.
IMPORT_TIMEOUT_SECONDS = 1800
# debootstrap's phase lines; the hundreds of per-package lines stay in the log shown on failure.
DEBOOTSTRAP_PHASE = re.compile(
    r"^(E:|W:|I: (Retrieving (InRelease|Release|Packages)|Resolving|Checking component|Found"
    r"|Installing|Unpacking (required|the base)|Configuring (required|the base)|Base system))"
)

Log = Callable[[str], None]


class SandboxImageError(Exception):
    """An image could not be built; the message says what to do about it."""


def _short_hash(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        # Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()[:16]


def sandbox_files(root: Path | None = None) -> list[Path]:
    """The files of the image's build context, relative to `root` (default: the repository's sandbox/):
    what its .dockerignore lets through, as docker-py's matcher reads it when it sends the context (the
    Dockerfile and .dockerignore always go, though they do not enter the image)."""
    root = root or SANDBOX_DIR
    lines = (root / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return sorted(Path(name) for name in docker.utils.build.exclude_paths(str(root), patterns))


def sandbox_context_hash(root: Path | None = None) -> str:
    """A hash of the relative paths and bytes of every file that enters the image."""
    root = root or SANDBOX_DIR
    parts: list[bytes] = []
    for relative in sandbox_files(root):
        parts += [relative.as_posix().encode(), (root / relative).read_bytes()]
    return _short_hash(*parts)


def apt_mirror(sources: tuple[Path, ...] = APT_SOURCES) -> str:
    """The Debian mirror this machine's apt uses for BASE_SUITE (reachable here, unlike most of the net)."""
    for path in sources:
        if path.is_file():
            mirror = _mirror_in(path.read_text(errors="replace"))
            if mirror:
                return mirror
    return DEFAULT_MIRROR


def _mirror_in(text: str) -> str | None:
    """The first URI serving BASE_SUITE in a deb822 (.sources) or one-line (sources.list) file."""
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = dict(re.findall(r"^(\w[\w-]*):[ \t]*(.*)$", stanza, re.MULTILINE))
        if BASE_SUITE in fields.get("Suites", "").split() and fields.get("URIs"):
            return fields["URIs"].split()[0]
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", "", line).split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == BASE_SUITE:
            return words[1]
    return None


def base_image_tag() -> str:
    """grader-base:<hash of the suite, packages, mirror and the recipe's own source>."""
    recipe = [inspect.getsource(step) for step in (_debootstrap, _trim_tree, _import_tree)]
    parts = [BASE_SUITE, ",".join(BASE_PACKAGES), apt_mirror(), *BASE_CHANGES, *recipe]
    return f"{BASE_REPOSITORY}:{_short_hash(*(part.encode() for part in parts))}"


def sandbox_image_tag(base_image: str) -> str:
    """grader-sandbox:<context hash>-<hash of the base image's name>."""
    return f"{SANDBOX_REPOSITORY}:{sandbox_context_hash()}-{_short_hash(base_image.encode())[:8]}"


def image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def build_base_image(client: docker.DockerClient, *, log: Log) -> str:
    """The Debian base (python3 + numpy) as an imported image; built only if its tag is missing."""
    tag = base_image_tag()
    if image_exists(client, tag):
        return tag
    started = time.monotonic()
    _ensure_debootstrap(log)
    tree = Path(tempfile.mkdtemp(prefix="grader-base-"))
    try:
        _debootstrap(tree, apt_mirror(), log)
        _trim_tree(tree)
        _import_tree(client, tree, tag, log)
    finally:
        _remove_tree(tree, log)
    log(f"built {tag} in {time.monotonic() - started:.0f} s")
    return tag


def _ensure_debootstrap(log: Log) -> None:
    if shutil.which("debootstrap"):
        return
    command = "apt-get update && apt-get install -y --no-install-recommends debootstrap"
    if os.geteuid() != 0:
        raise SandboxImageError(
            f"debootstrap is needed to build the sandbox's base image; run: sudo {command}"
        )
    log("installing debootstrap")
    _run(["apt-get", "update", "-q"], "apt-get update")
    _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "debootstrap"], "apt-get install")


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-2000:]
        raise SandboxImageError(f"{what} failed (exit {result.returncode}):\n{tail}")


def _debootstrap(tree: Path, mirror: str, log: Log) -> None:
    if os.geteuid() != 0:
        raise SandboxImageError("building the sandbox's base image with debootstrap needs root")
    argv = ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}"]
    argv += [BASE_SUITE, str(tree), mirror]
    log(f"debootstrap {BASE_SUITE} from {mirror} (a few minutes the first time)")
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line.rstrip())
        if DEBOOTSTRAP_PHASE.match(line):
            log("  " + line.rstrip())
    if process.wait() != 0:
        tail = "\n".join(lines[-30:])
        raise SandboxImageError(f"debootstrap failed (exit {process.returncode}):\n{tail}")


def _trim_tree(tree: Path) -> None:
    """Drop what a sandbox never reads: apt lists and caches, logs, docs, man pages, translations."""
    # Files only: apt and dpkg expect these folders (lists/partial, archives/partial, log/apt) to exist.
    for folder in ("var/lib/apt/lists", "var/cache/apt", "var/log"):
        _empty_folder(tree / folder, keep_folders=True)
    for folder in ("usr/share/doc", "usr/share/man", "usr/share/info"):
        _empty_folder(tree / folder)
    # glibc still reads locale.alias; the message catalogs only translate errors nobody reads here.
    _empty_folder(tree / "usr/share/locale", keep=frozenset({"locale.alias"}))


def _empty_folder(folder: Path, *, keep_folders: bool = False, keep: frozenset[str] = frozenset()) -> None:
    """Delete what is inside `folder` except the names in `keep` (and sub-folders, if `keep_folders`)."""
    if not folder.is_dir() or folder.is_symlink():
        return
    for entry in folder.iterdir():
        if entry.name in keep:
            continue
        if not entry.is_dir() or entry.is_symlink():
            entry.unlink()
        elif keep_folders:
            _empty_folder(entry, keep_folders=True)
        else:
            shutil.rmtree(entry)


def _import_tree(client: docker.DockerClient, tree: Path, tag: str, log: Log) -> None:
    """Stream `tar -C tree -c .` into the daemon (no tarball on disk), then tag it once tar succeeded."""
    log(f"importing the tree as {tag}")
    argv = ["tar", "-C", str(tree), "--numeric-owner", "-c", "."]
    with tempfile.TemporaryFile() as tar_stderr:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=tar_stderr)
        assert process.stdout is not None
        try:
            with _read_timeout(client, IMPORT_TIMEOUT_SECONDS):
                reply = client.api.import_image_from_stream(_chunks(process.stdout), changes=BASE_CHANGES)
        finally:
            process.stdout.close()
            process.wait()
        image_id = _imported_id(reply)
        if process.returncode != 0:
            tar_stderr.seek(0)
            client.images.remove(image_id, force=True)
            raise SandboxImageError(
                f"tar of the base tree failed: {tar_stderr.read().decode(errors='replace')}"
            )
    repository, _, version = tag.partition(":")
    client.images.get(image_id).tag(repository, version)


def _chunks(stream: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    # A generator makes requests send the body chunked, as it is produced.
    while chunk := stream.read(size):
        yield chunk


@contextlib.contextmanager
def _read_timeout(client: docker.DockerClient, seconds: int) -> Iterator[None]:
    previous = client.api.timeout
    client.api.timeout = seconds
    try:
        yield
    finally:
        client.api.timeout = previous


def _imported_id(reply: str) -> str:
    """The image id from the daemon's JSON lines, or its error."""
    for line in reply.splitlines():
        message: dict[str, Any] = json.loads(line) if line.strip() else {}
        if "error" in message:
            raise SandboxImageError(f"docker import failed: {message['error']}")
        status = str(message.get("status", ""))
        if status.startswith("sha256:"):
            return status
    raise SandboxImageError(f"docker import returned no image id: {reply[:500]}")


def _remove_tree(tree: Path, log: Log) -> None:
    """Delete the debootstrap tree, but never through a mount a failed debootstrap left behind."""
    for mount in _mounts_below(tree):
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
    if _mounts_below(tree):
        log(f"left {tree} in place: something is still mounted below it")
        return
    shutil.rmtree(tree, ignore_errors=True)


def _mounts_below(tree: Path) -> list[str]:
    """Mount points inside `tree`, deepest first."""
    prefix = str(tree.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1].replace("\\040", " ") for line in mounts]
    return sorted((point for point in points if point.startswith(prefix)), key=len, reverse=True)


def build_sandbox_image(client: docker.DockerClient, *, base_image: str | None = None, log: Log) -> str:
    """The sandbox image on `base_image` (default: the Debian base); built only if its tag is missing."""
    base = base_image or build_base_image(client, log=log)
    tag = sandbox_image_tag(base)
    if image_exists(client, tag):
        return tag
    log(f"building {tag} on {base}")
    started = time.monotonic()
    try:
        client.images.build(
            path=str(SANDBOX_DIR),
            buildargs={"BASE_IMAGE": base},
            tag=tag,
            labels={HASH_LABEL: sandbox_context_hash()},
            rm=True,
            forcerm=True,
            # The Debian base already has numpy; a base without it needs the network for pip.
            network_mode="none" if base_image is None else None,
            pull=False,
        )
    except docker.errors.BuildError as error:
        steps = "".join(str(entry.get("stream", entry.get("error", ""))) for entry in error.build_log)
        raise SandboxImageError(f"building {tag} failed: {error.msg}\n{steps[-3000:]}") from error
    log(f"built {tag} in {time.monotonic() - started:.0f} s")
    remove_superseded_images(client, keep=tag, log=log)
    return tag


def remove_superseded_images(client: docker.DockerClient, *, keep: str, log: Log) -> None:
    """Remove older sandbox images: every change under sandbox/ makes a new one, and the engine keeps them.

    An image a container still uses (a grading in progress elsewhere) is left for a later run.
    """
    for image in client.images.list(name=SANDBOX_REPOSITORY):
        stale = [tag for tag in image.tags if tag.startswith(f"{SANDBOX_REPOSITORY}:") and tag != keep]
        if not stale or keep in image.tags:
            continue
        for tag in stale:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(tag, noprune=False)
                log(f"removed the superseded image {tag}")


def find_sandbox_image(client: docker.DockerClient, *, base_image: str | None = None) -> str:
    """The tag `build_sandbox_image` would return, found and never built: SandboxImageError if missing."""
    tag = sandbox_image_tag(base_image or base_image_tag())
    if not image_exists(client, tag):
        build = (
            f"python -m grader.sandbox_client.images --base-image {base_image}"
            if base_image
            else "make sandbox-image"
        )
        raise SandboxImageError(f"the sandbox image {tag} does not exist: build it with `{build}`")
    return tag


def _log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build (or find) the sandbox image and print its tag.")
    parser.add_argument(
        "--base-image", help="base to build on (default: a Debian base made with debootstrap)"
    )
    args = parser.parse_args(argv)
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as error:
        _log_to_stderr(f"error: cannot reach Docker ({error}); start the Docker daemon, or check DOCKER_HOST")
        return 3
    try:
        tag = build_sandbox_image(client, base_image=args.base_image, log=_log_to_stderr)
    except SandboxImageError as error:
        _log_to_stderr(f"error: {error}")
        return 1
    print(tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
