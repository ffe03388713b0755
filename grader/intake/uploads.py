"""Turn an uploaded folder, .zip or loose file into the graded files, never extracting or running anything."""

from __future__ import annotations

import lzma
import os
import re
import stat
import struct
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, Generic, TypeVar

from sandbox.runner.protocol import OPTIONAL_STUDENT_FILES, STUDENT_FILES

GRADED_FILES: tuple[str, ...] = tuple(STUDENT_FILES)  # the sandbox puts each where the course has it
REQUIRED_FILES: tuple[str, ...] = tuple(name for name in GRADED_FILES if name not in OPTIONAL_STUDENT_FILES)
MAX_IGNORED_LISTED = 50

# The course ships its package as `cs231n`; some forks of the assignment rename it `daseCV`.
COURSE_PACKAGES = frozenset({"cs231n", "daseCV"})
# Folders written by tools, not by the student: never graded, never listed.
TOOL_FOLDERS = frozenset({"__MACOSX", ".ipynb_checkpoints", ".git", "__pycache__"})
APPLE_DOUBLE_PREFIX = "._"

_READ_CHUNK_BYTES = 64 * 1024
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
_ZIP_SEPARATORS = re.compile(r"[/\\]")
_ENCRYPTED_FLAG = 0x1
_LONGEST_NAME_SHOWN = 120

# Everything zipfile and its decompressors raise on damaged or hostile archives.
_BROKEN_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    OSError,
    ValueError,
    RuntimeError,
    zlib.error,
    lzma.LZMAError,
    struct.error,
)

Handle = TypeVar("Handle")


@dataclass(frozen=True)
class IntakeLimits:
    """Caps that keep a hostile upload from costing more than a normal one (Settings.intake_limits())."""

    max_upload_bytes: int
    max_file_bytes: int
    max_entries: int
    max_total_uncompressed: int
    max_depth: int


# The name is part of the public interface that other modules import, so it keeps no "Error" suffix.
class UnusableSubmission(Exception):
    """The upload cannot be graded; `str(exc)` is a message a student can act on."""


class TooLargeUpload(UnusableSubmission):
    """The upload, or a file in it, is over a size limit (the API answers 413)."""


@dataclass(frozen=True)
class Submission:
    """The graded files of one upload, with where each was found."""

    files: Mapping[str, bytes]
    origins: Mapping[str, str]
    ignored: tuple[str, ...]

    @property
    def missing(self) -> tuple[str, ...]:
        """Required graded files that the upload does not contain."""
        return tuple(name for name in REQUIRED_FILES if name not in self.files)


@dataclass(frozen=True)
class _Found(Generic[Handle]):
    """One copy of a graded file: its path inside the upload and how to read it."""

    origin: str
    handle: Handle


def load_submission(path: Path, limits: IntakeLimits | None = None) -> Submission:
    """Read the graded files out of an uploaded folder, .zip, or single graded .py file (`limits`: the
    settings', get_settings(), when omitted)."""
    if limits is None:
        from grader.settings import get_settings  # here: the Gradescope bundle reads uploads without pydantic

        limits = get_settings().intake_limits()
    if path.is_dir():
        return _load_folder(path, limits)
    if not path.is_file():
        raise UnusableSubmission(f"nothing to grade: '{path.name}' does not exist or is not a file")
    if path.suffix.lower() == ".zip":
        return _load_zip(path, limits)
    if path.name in GRADED_FILES:
        return _load_loose_file(path, limits)
    raise UnusableSubmission(
        f"cannot grade '{path.name}': upload a .zip of your assignment folder, or one of {_expected_files()}"
    )


# ---- shared: choosing among copies, decoding, assembling ------------------------------------------------


def _expected_files() -> str:
    return ", ".join(REQUIRED_FILES) + " (and optionally layer_utils.py)"


def _describe_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):g} MB"
    if size >= 1024:
        return f"{size / 1024:g} KB"
    return f"{size} bytes"


def _show(name: str) -> str:
    """Quote an upload path for a message; repr makes NULs and control characters visible."""
    if len(name) > _LONGEST_NAME_SHOWN:
        name = name[:_LONGEST_NAME_SHOWN] + "..."
    return repr(name)


def _is_tool_debris(parts: Sequence[str]) -> bool:
    return parts[-1].startswith(APPLE_DOUBLE_PREFIX) or any(part in TOOL_FOLDERS for part in parts[:-1])


def _layout_score(name: str, origin: str) -> int:
    """How well a copy's place matches the course layout; 2 is cs231n/layers.py or classifiers/fc_net.py."""
    folders = origin.split("/")[:-1]
    home_folders = {"classifiers"} if name == "fc_net.py" else COURSE_PACKAGES
    in_course_package = any(folder in COURSE_PACKAGES for folder in folders)
    at_home = bool(folders) and folders[-1] in home_folders
    return int(in_course_package) + int(at_home)


def _choose_copy(name: str, copies: Sequence[_Found[Handle]]) -> _Found[Handle]:
    best_score = max(_layout_score(name, copy.origin) for copy in copies)
    best = sorted(
        (copy for copy in copies if _layout_score(name, copy.origin) == best_score), key=lambda c: c.origin
    )
    if len(best) > 1:
        places = " and ".join(_show(copy.origin) for copy in best)
        raise UnusableSubmission(
            f"found {name} in more than one place ({places}); "
            "keep only the copy inside cs231n/ and upload again"
        )
    return best[0]


def _require_utf8(name: str, origin: str, content: bytes) -> bytes:
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UnusableSubmission(
            f"{name} is not UTF-8 text ({_show(origin)}, byte {error.start}); "
            "save it as UTF-8 and upload again"
        ) from error
    return content


def _read_capped(stream: IO[bytes], cap: int, origin: str) -> bytes:
    """Read at most `cap` bytes; sizes declared by the upload are never trusted."""
    chunks: list[bytes] = []
    total = 0
    while chunk := stream.read(min(_READ_CHUNK_BYTES, cap + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > cap:
            raise _too_large(origin, cap)
    return b"".join(chunks)


def _too_large(origin: str, cap: int) -> UnusableSubmission:
    return TooLargeUpload(f"{_show(origin)} is larger than the {_describe_size(cap)} limit for one file")


def _assemble(
    copies_by_name: Mapping[str, Sequence[_Found[Handle]]],
    read: Callable[[_Found[Handle]], bytes],
    ignored: Sequence[str],
) -> Submission:
    if not copies_by_name:
        raise UnusableSubmission(f"no graded file found in the upload; expected {_expected_files()}")
    files: dict[str, bytes] = {}
    origins: dict[str, str] = {}
    for name in GRADED_FILES:
        if name in copies_by_name:
            chosen = _choose_copy(name, copies_by_name[name])
            files[name] = _require_utf8(name, chosen.origin, read(chosen))
            origins[name] = chosen.origin
    return Submission(
        files=MappingProxyType(files),
        origins=MappingProxyType(origins),
        ignored=tuple(sorted(ignored)[:MAX_IGNORED_LISTED]),
    )


def _check_depth(folder_count: int, origin: str, limits: IntakeLimits) -> None:
    if folder_count > limits.max_depth:
        raise UnusableSubmission(f"{_show(origin)} is nested more than {limits.max_depth} folders deep")


# ---- loose file -----------------------------------------------------------------------------------------


def _load_loose_file(path: Path, limits: IntakeLimits) -> Submission:
    copies = {path.name: [_Found(origin=path.name, handle=path)]}
    return _assemble(copies, lambda found: _read_regular_file(found, limits.max_file_bytes), ignored=())


def _read_regular_file(found: _Found[Path], cap: int) -> bytes:
    """Read a file that must still be a regular file when opened (no symlink or FIFO swapped in)."""
    try:
        status = found.handle.lstat()
        if not stat.S_ISREG(status.st_mode):
            raise UnusableSubmission(f"{_show(found.origin)} is not a regular file")
        if status.st_size > cap:
            raise _too_large(found.origin, cap)
        descriptor = os.open(found.handle, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(descriptor, "rb") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                raise UnusableSubmission(f"{_show(found.origin)} is not a regular file")
            return _read_capped(stream, cap, found.origin)
    except OSError as error:
        raise UnusableSubmission(f"{_show(found.origin)} could not be read ({error.strerror})") from error


# ---- folder ---------------------------------------------------------------------------------------------


def _load_folder(root: Path, limits: IntakeLimits) -> Submission:
    copies, ignored = _walk_folder(root, limits)
    submission = _assemble(copies, lambda found: _read_regular_file(found, limits.max_file_bytes), ignored)
    if sum(len(content) for content in submission.files.values()) > limits.max_upload_bytes:
        raise TooLargeUpload(
            f"the graded files together are larger than the {_describe_size(limits.max_upload_bytes)} limit"
        )
    return submission


def _walk_folder(root: Path, limits: IntakeLimits) -> tuple[dict[str, list[_Found[Path]]], list[str]]:
    """Visit the tree without following symlinks; collect graded copies and what is not graded."""
    copies: dict[str, list[_Found[Path]]] = defaultdict(list)
    ignored: list[str] = []
    visited = 0
    pending: list[tuple[Path, tuple[str, ...]]] = [(root, ())]
    while pending:
        folder, folder_parts = pending.pop()
        entries = _list_folder(folder, "/".join(folder_parts), most=limits.max_entries - visited + 1)
        visited += len(entries)
        if visited > limits.max_entries:
            raise UnusableSubmission(
                f"the upload has more than {limits.max_entries} files and folders; "
                "keep only your assignment folder, without datasets"
            )
        for entry in entries:
            parts = (*folder_parts, entry.name)
            origin = "/".join(parts)
            if entry.is_dir(follow_symlinks=False) and entry.name not in TOOL_FOLDERS:
                _check_depth(len(parts), origin, limits)
                pending.append((Path(entry.path), parts))
            elif _is_graded_file_entry(entry, origin):
                copies[entry.name].append(_Found(origin=origin, handle=Path(entry.path)))
            elif not entry.is_dir(follow_symlinks=False) and not _is_tool_debris(parts):
                ignored.append(origin)
    return copies, ignored


def _list_folder(folder: Path, origin: str, most: int) -> list[os.DirEntry[str]]:
    """List one folder in name order, holding no more than `most` entries of a huge folder."""
    entries: list[os.DirEntry[str]] = []
    try:
        with os.scandir(folder) as scan:
            for entry in scan:
                entries.append(entry)
                if len(entries) >= most:
                    break
    except OSError as error:
        raise UnusableSubmission(
            f"the folder {_show(origin or '.')} could not be read ({error.strerror})"
        ) from error
    return sorted(entries, key=lambda entry: entry.name)


def _is_graded_file_entry(entry: os.DirEntry[str], origin: str) -> bool:
    """True for a regular file with a graded name; a graded name on anything else rejects the upload."""
    if entry.name not in GRADED_FILES:
        return False
    if entry.is_symlink():
        raise UnusableSubmission(f"{_show(origin)} is a symbolic link; upload the file itself")
    if not entry.is_file(follow_symlinks=False):
        raise UnusableSubmission(f"{_show(origin)} is not a regular file")
    return True


# ---- zip ------------------------------------------------------------------------------------------------


def _load_zip(path: Path, limits: IntakeLimits) -> Submission:
    if path.stat().st_size > limits.max_upload_bytes:
        raise TooLargeUpload(
            f"{_show(path.name)} is larger than the {_describe_size(limits.max_upload_bytes)} upload limit"
        )
    try:
        archive = zipfile.ZipFile(path)
    except _BROKEN_ZIP_ERRORS as error:
        raise UnusableSubmission(
            f"{_show(path.name)} is not a valid zip file; create it again with a zip tool"
        ) from error
    with archive:
        return _load_archive(archive, limits)


def _load_archive(archive: zipfile.ZipFile, limits: IntakeLimits) -> Submission:
    entries = archive.infolist()
    _check_archive_totals(entries, limits)
    copies: dict[str, list[_Found[zipfile.ZipInfo]]] = defaultdict(list)
    ignored: list[str] = []
    for entry in entries:
        parts = _safe_entry_parts(entry, limits)
        if not parts or entry.orig_filename.endswith(("/", "\\")) or _is_tool_debris(parts):
            continue
        origin = "/".join(parts)
        if parts[-1] in GRADED_FILES:
            copies[parts[-1]].append(_Found(origin=origin, handle=entry))
        else:
            ignored.append(origin)
    return _assemble(copies, lambda found: _read_entry(archive, found, limits.max_file_bytes), ignored)


def _check_archive_totals(entries: Sequence[zipfile.ZipInfo], limits: IntakeLimits) -> None:
    if not entries:
        raise UnusableSubmission(f"the zip file is empty; expected {_expected_files()}")
    if len(entries) > limits.max_entries:
        raise UnusableSubmission(
            f"the zip has {len(entries)} entries, more than the limit of {limits.max_entries}; "
            "zip only your assignment folder, without datasets"
        )
    declared = sum(entry.file_size for entry in entries)
    if declared > limits.max_total_uncompressed:
        raise TooLargeUpload(
            f"the zip unpacks to {_describe_size(declared)}, more than the "
            f"{_describe_size(limits.max_total_uncompressed)} limit; zip only your assignment folder"
        )


def _safe_entry_parts(entry: zipfile.ZipInfo, limits: IntakeLimits) -> tuple[str, ...]:
    """Split an entry's name into path components, rejecting any entry that could point outside the upload."""
    # orig_filename keeps what zipfile's `filename` silently cuts at a NUL byte.
    raw_name = entry.orig_filename
    if "\x00" in raw_name:
        raise UnusableSubmission(f"the zip entry {_show(raw_name)} has a NUL byte in its name")
    if raw_name.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(raw_name):
        raise UnusableSubmission(f"the zip entry {_show(raw_name)} has an absolute path")
    # Backslashes count as separators because Windows tools write them and Windows extractors obey them.
    parts = tuple(part for part in _ZIP_SEPARATORS.split(raw_name) if part not in ("", "."))
    if ".." in parts:
        raise UnusableSubmission(f"the zip entry {_show(raw_name)} contains '..'")
    if stat.S_ISLNK(entry.external_attr >> 16):
        raise UnusableSubmission(f"the zip entry {_show(raw_name)} is a symbolic link")
    if entry.flag_bits & _ENCRYPTED_FLAG:
        raise UnusableSubmission(f"the zip entry {_show(raw_name)} is encrypted; zip it without a password")
    _check_depth(len(parts) - 1, raw_name, limits)
    return parts


def _read_entry(archive: zipfile.ZipFile, found: _Found[zipfile.ZipInfo], cap: int) -> bytes:
    try:
        with archive.open(found.handle) as stream:
            return _read_capped(stream, cap, found.origin)
    except _BROKEN_ZIP_ERRORS as error:
        raise UnusableSubmission(
            f"{_show(found.origin)} is damaged inside the zip and cannot be read; create the zip again"
        ) from error
