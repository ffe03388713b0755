"""Reading what came out of the sandbox: untrusted data with a fixed shape, checked before any use.

Per DESIGN.md's trust boundary: regular files only (no links followed), size caps, JSON without NaN
literals and with a depth cap, `.npz` read with allow_pickle=False, stored (uncompressed) members only,
numeric dtypes only, known output names only. Anything else makes that probe "invalid_output".
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PROBE_STATUSES = frozenset(
    {"ok", "error", "timeout", "crashed", "memory_limit", "output_limit", "invalid_output"}
)
MAX_JSON_BYTES = 256 * 1024
MAX_NPZ_BYTES = 64 * 1024 * 1024
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
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InvalidOutputError(f"{path.name} is not a regular file")
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise InvalidOutputError(f"{path.name} is larger than {cap} bytes")
    return data


def _reject_constant(name: str) -> None:
    raise InvalidOutputError(f"JSON literal {name} is not allowed")


def _depth(value: Any, level: int = 0) -> int:
    if isinstance(value, dict):
        return max([_depth(v, level + 1) for v in value.values()], default=level + 1)
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value], default=level + 1)
    return level


def parse_header(data: bytes) -> dict[str, Any]:
    try:
        header = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidOutputError(f"metadata is not valid JSON ({exc})") from exc
    if not isinstance(header, dict) or _depth(header) > MAX_JSON_DEPTH:
        raise InvalidOutputError("metadata is not a flat JSON object")
    if header.get("status") not in PROBE_STATUSES:
        raise InvalidOutputError("metadata has an unknown status")
    invalid = header.get("invalid", {})
    if not isinstance(invalid, dict) or not all(isinstance(v, str) for v in invalid.values()):
        raise InvalidOutputError("metadata lists invalid outputs in an unknown form")
    for key in ("message", "stdout"):
        if not isinstance(header.get(key, ""), str):
            raise InvalidOutputError(f"metadata field {key} is not text")
    return header


def parse_arrays(data: bytes) -> dict[str, np.ndarray]:
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
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            for name in npz.files:
                if not OUTPUT_NAME.match(name):
                    raise InvalidOutputError(f"unexpected output name {name[:40]!r}")
                array = np.array(npz[name], subok=False)
                if array.dtype.kind not in "biuf":
                    raise InvalidOutputError(f"output {name} has dtype {array.dtype}")
                arrays[name] = array
        return arrays
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise InvalidOutputError(f"arrays cannot be read ({type(exc).__name__})") from exc


def read_probe_outcome(out_dir: Path, index: int) -> ProbeOutcome | None:
    """The outcome of probe `index`, None if the sandbox never finished it, invalid if malformed."""
    header_path = out_dir / f"p{index}.json"
    if not os.path.lexists(header_path):
        return None
    try:
        header = parse_header(read_capped(header_path, MAX_JSON_BYTES))
        arrays = parse_arrays(read_capped(out_dir / f"p{index}.npz", MAX_NPZ_BYTES))
    except InvalidOutputError as exc:
        return invalid_outcome(str(exc))
    seconds = header.get("seconds", 0.0)
    return ProbeOutcome(
        status=header["status"],
        message=header.get("message", "")[:4000],
        arrays=arrays,
        invalid={str(k)[:64]: v[:300] for k, v in list(header.get("invalid", {}).items())[:MAX_ARRAYS]},
        stdout=header.get("stdout", "")[:2000],
        seconds=float(seconds) if isinstance(seconds, (int, float)) else 0.0,
    )
