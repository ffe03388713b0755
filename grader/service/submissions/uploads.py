"""An upload from the API (loose .py files, or one .zip) read by the intake, from a private temporary
folder that is removed whatever happens: nothing of a refused upload stays behind."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path, PureWindowsPath
from typing import BinaryIO, Protocol

from grader.intake.uploads import (
    IntakeLimits,
    Submission,
    TooLargeUpload,
    UnusableSubmission,
    load_submission,
)
from grader.service.errors import InvalidInput, TooLarge

_CHUNK = 1024 * 1024
# The refusals the assignment page's script makes before sending anything, in the same words: it fills
# in {name} and {limit} itself (web/static/assignment.js).
UPLOAD_MESSAGES = {
    "none": "no files: upload your .py files (layers.py, fc_net.py, optim.py) or one .zip",
    "mixed": "upload one .zip, or loose .py files, not both and not several zips",
    "odd": "only .py files or one .zip can be uploaded, not {name}",
    "twice": "two uploaded files have the same name; upload each file once",
    "too_large": "the upload is larger than the {limit} limit",
}


class UploadedFile(Protocol):
    """What a multipart file part gives (FastAPI's UploadFile)."""

    filename: str | None
    file: BinaryIO


def read_upload(parts: Sequence[UploadedFile], limits: IntakeLimits, scratch: Path) -> Submission:
    """The graded files of the upload; InvalidInput (422) or TooLarge (413) with what to fix."""
    if not parts:
        raise InvalidInput(UPLOAD_MESSAGES["none"])
    names = [_base_name(part.filename) for part in parts]
    zips = [name for name in names if name.lower().endswith(".zip")]
    if zips and len(parts) > 1:
        raise InvalidInput(UPLOAD_MESSAGES["mixed"])
    if not zips and (odd := [name for name in names if not name.endswith(".py")]):
        raise InvalidInput(UPLOAD_MESSAGES["odd"].format(name=repr(odd[0])))
    if len(set(names)) != len(names):
        raise InvalidInput(UPLOAD_MESSAGES["twice"])
    scratch.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="upload-", dir=scratch))
    try:
        total = 0
        for part, name in zip(parts, names, strict=True):
            try:
                total += _save(part, folder / name, limits.max_upload_bytes - total)
            except OSError as exc:  # a name this file system refuses
                raise InvalidInput(f"the uploaded file name {name!r} is not usable ({exc.strerror})") from exc
            if total > limits.max_upload_bytes:
                raise TooLarge(UPLOAD_MESSAGES["too_large"].format(limit=mib(limits.max_upload_bytes)))
        try:
            return load_submission(folder / zips[0] if zips else folder, limits)
        except TooLargeUpload as exc:
            raise TooLarge(str(exc)) from exc
        except UnusableSubmission as exc:
            raise InvalidInput(str(exc)) from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _base_name(filename: str | None) -> str:
    """The file's own name, whatever path a browser or a Windows client sent with it."""
    name = PureWindowsPath(filename or "").name  # splits at both / and \\
    too_long = len(name.encode("utf-8", "surrogateescape")) > 255  # the file system counts bytes
    if not name or name in {".", ".."} or "\x00" in name or too_long:
        raise InvalidInput(f"the uploaded file name {filename!r} is not usable; give each file its own name")
    return name


def _save(part: UploadedFile, target: Path, room: int) -> int:
    """Copy the part to `target`, stopping once it passes `room` bytes; the bytes read."""
    read = 0
    with target.open("xb") as out:
        while read <= room and (chunk := part.file.read(_CHUNK)):
            read += len(chunk)
            out.write(chunk)
    return read


def mib(size: int) -> str:
    return f"{size / 1024**2:g} MiB"
