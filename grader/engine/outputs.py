"""Reading what came out of the sandbox: untrusted data with a fixed shape, checked before any use.

Per DESIGN.md's trust boundary: regular files only (no links followed), size caps, JSON without NaN
literals and with a depth cap, `.npz` read with allow_pickle=False, stored (uncompressed) members only,
numeric dtypes only, known output names only. Anything else makes that probe "invalid_output".
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sandbox.runner.protocol import (
    MAX_HEADER_BYTES,
    MAX_RESULT_BYTES,
    READY_INDEX,
    STATUSES,
    UNPRINTABLE,
    scan_frames,
)

MAX_JSON_BYTES = MAX_HEADER_BYTES
MAX_NPZ_BYTES = MAX_RESULT_BYTES  # the runner's own cap on one probe's arrays
MAX_ARRAYS = 200
MAX_JSON_DEPTH = 4
OUTPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,64}$")


@dataclass(frozen=True)
class ProbeOutcome:
    """The validated result of one probe. `arrays` are plain numeric ndarrays made on this side."""

    status: str
    message: str = ""
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    invalid: Mapping[str, str] = field(default_factory=dict)
    stdout: str = ""
    seconds: float = 0.0

    @property
    def ran(self) -> bool:
        return self.status == "ok"


class InvalidOutputError(Exception):
    """What the sandbox wrote does not have the fixed shape we accept."""


def invalid_outcome(reason: str) -> ProbeOutcome:
    return ProbeOutcome(status="invalid_output", message=f"invalid output: {reason}")


def read_capped(path: Path, cap: int) -> bytes:
    """The bytes of a regular file at `path`, refusing links, special files and anything over `cap`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise InvalidOutputError(f"{path.name} cannot be opened as a regular file ({exc.strerror})") from exc
    try:
        # fstat before fdopen: fdopen itself raises on a directory (and would leak the descriptor).
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidOutputError(f"{path.name} is not a regular file")
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise InvalidOutputError(f"{path.name} is larger than {cap} bytes")
    return data


def _reject_constant(name: str) -> None:
    raise InvalidOutputError(f"JSON literal {name} is not allowed")


def _depth(value: Any, level: int = 0) -> int:
    """How deeply containers nest in `value`; stops counting past MAX_JSON_DEPTH (no deep recursion)."""
    if level > MAX_JSON_DEPTH or not isinstance(value, (dict, list)):
        return level
    children = value.values() if isinstance(value, dict) else value
    return max((_depth(child, level + 1) for child in children), default=level + 1)


def printable(text: str) -> str:
    """The runner cleans messages already; we do again, so that a report never depends on the sandbox."""
    return UNPRINTABLE.sub("", text)


def parse_header(data: bytes) -> dict[str, Any]:
    try:
        header = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidOutputError(f"metadata is not valid JSON ({type(exc).__name__})") from exc
    if not isinstance(header, dict) or _depth(header) > MAX_JSON_DEPTH:
        raise InvalidOutputError("metadata is not a flat JSON object")
    status = header.get("status")
    if not isinstance(status, str) or status not in STATUSES:
        raise InvalidOutputError("metadata has an unknown status")
    invalid = header.get("invalid", {})
    if not isinstance(invalid, dict) or not all(isinstance(v, str) for v in invalid.values()):
        raise InvalidOutputError("metadata lists invalid outputs in an unknown form")
    for key in ("message", "stdout"):
        if not isinstance(header.get(key, ""), str):
            raise InvalidOutputError(f"metadata field {key} is not text")
    seconds = header.get("seconds", 0.0)
    # A bool is an int and 1e999 parses as inf; a 400-digit int overflows float(): none is a duration.
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < 1e9:
        raise InvalidOutputError("metadata field seconds is not a duration")
    return header


NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def parse_npy(raw: bytes, name: str) -> np.ndarray:
    """One `.npy` member. The header is checked before anything is allocated: a header may claim any
    shape (np.load would try to allocate petabytes for it), so the data must hold exactly that many values.
    """
    stream = io.BytesIO(raw)
    try:
        reader = NPY_HEADER_READERS[np.lib.format.read_magic(stream)]
        shape, fortran_order, dtype = reader(stream)
    except Exception as exc:  # numpy's parser on hostile bytes (it can raise TokenError, TypeError...)
        raise InvalidOutputError(f"output {name} has no valid array header") from exc
    if dtype.kind not in "biuf":
        raise InvalidOutputError(f"output {name} has dtype {dtype}")
    body = raw[stream.tell() :]
    if any(size < 0 for size in shape) or math.prod(shape) * dtype.itemsize != len(body):
        raise InvalidOutputError(f"output {name} does not hold the values its shape {shape!r:.60} needs")
    order: Literal["C", "F"] = "F" if fortran_order else "C"
    array: np.ndarray = np.frombuffer(body, dtype=dtype).reshape(tuple(shape), order=order)
    return array.copy()  # its own, writable memory


def parse_arrays(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of an uncompressed `.npz`, read member by member (never through np.load, which would
    guess the format from the first bytes and take a `.npy` or pickle prefix for the whole file)."""
    if not data:
        return {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > MAX_ARRAYS:
                raise InvalidOutputError("too many arrays")
            if any(m.compress_type != zipfile.ZIP_STORED for m in members):
                raise InvalidOutputError("compressed arrays are not accepted")
            if sum(m.file_size for m in members) > MAX_NPZ_BYTES:
                raise InvalidOutputError("arrays are too large")
            arrays: dict[str, np.ndarray] = {}
            for member in members:
                name = member.filename.removesuffix(".npy")
                if name == member.filename or not OUTPUT_NAME.match(name) or name in arrays:
                    raise InvalidOutputError(f"unexpected output name {member.filename[:40]!r}")
                arrays[name] = parse_npy(archive.read(member), name)
        return arrays
    except (
        zipfile.BadZipFile,
        ValueError,
        OSError,
        EOFError,
        KeyError,
        OverflowError,
        RuntimeError,  # an "encrypted" member
        NotImplementedError,  # a member flagged as compressed patched data
    ) as exc:
        raise InvalidOutputError(f"arrays cannot be read ({type(exc).__name__})") from exc


def read_probe_outcome(out_dir: Path, index: int) -> ProbeOutcome | None:
    """The outcome of probe `index`, None if the sandbox never finished it, invalid if malformed."""
    header_path = out_dir / f"p{index}.json"
    if not os.path.lexists(header_path):
        return None
    try:
        header = read_capped(header_path, MAX_JSON_BYTES)
        payload = read_capped(out_dir / f"p{index}.npz", MAX_NPZ_BYTES)
    except InvalidOutputError as exc:
        return invalid_outcome(str(exc))
    return parse_probe_outcome(header, payload)


def parse_probe_outcome(header_bytes: bytes, payload: bytes) -> ProbeOutcome:
    """A probe's outcome from its metadata (JSON) and its arrays (npz), or invalid_output."""
    try:
        header = parse_header(header_bytes)
        arrays = parse_arrays(payload)
    except InvalidOutputError as exc:
        return invalid_outcome(str(exc))
    return ProbeOutcome(
        status=header["status"],
        message=printable(header.get("message", ""))[:4000],
        arrays=arrays,
        invalid={
            printable(str(k))[:64]: printable(v)[:300]
            for k, v in list(header.get("invalid", {}).items())[:MAX_ARRAYS]
        },
        stdout=printable(header.get("stdout", ""))[-2000:],
        seconds=float(header.get("seconds", 0.0)),
    )


def parse_frames(stream: bytes | bytearray, known: set[int]) -> tuple[dict[int, ProbeOutcome], bool]:
    """Outcomes from the frames a streaming sandbox wrote, and whether it reported itself ready (job
    received, package built: anything that fails after that is the submission's doing). Parsing stops at
    the first malformed frame."""
    outcomes: dict[int, ProbeOutcome] = {}
    ready = False
    for index, header_start, payload_start, end in scan_frames(stream):
        if index == READY_INDEX:
            ready = True
            continue
        if index not in known or index in outcomes:
            break
        if payload_start - header_start > MAX_JSON_BYTES or end - payload_start > MAX_NPZ_BYTES:
            outcomes[index] = invalid_outcome("result larger than allowed")
        else:
            header, payload = bytes(stream[header_start:payload_start]), bytes(stream[payload_start:end])
            outcomes[index] = parse_probe_outcome(header, payload)
    return outcomes, ready
