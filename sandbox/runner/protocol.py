"""Imported on both sides of the trust boundary: the rules the runner and the trusted grader must share.

Runs in the runner and in the grader; it holds definitions only (no I/O), so each side trusts it alike.
Each rule is written here once: probe statuses, the result frame and its caps, the course package's
modules and the files uploaded into it, and when a failure makes later probes skip (an import that
fails, a function that hangs). Standard library only.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator, MutableMapping, MutableSet
from typing import Any, Literal, NotRequired, TypedDict, get_args

# ---------------------------------------------------------------------------------------------- statuses

ProbeStatus = Literal["ok", "error", "timeout", "crashed", "memory_limit", "output_limit", "invalid_output"]
STATUSES: frozenset[str] = frozenset(get_args(ProbeStatus))
# What a probe's own process may report; the others are the runner's to decide (timeout, crash, ...).
CHILD_STATUSES: frozenset[str] = frozenset({"ok", "error", "invalid_output", "memory_limit"})

# ------------------------------------------------------------------------------------------- the package

# Every module a probe can name, and its file in the course's package.
MODULE_FILES: dict[str, str] = {
    "layers": "layers.py",
    "layer_utils": "layer_utils.py",
    "optim": "optim.py",
    "fc_net": "classifiers/fc_net.py",
    "solver": "solver.py",
    "gradient_check": "gradient_check.py",
}
# The files a student hands in (graded), and where each goes in the package; the scaffold provides every
# other module. layer_utils.py is optional: the scaffold has the course's own.
STUDENT_FILES: dict[str, str] = {
    "layers.py": "layers.py",
    "fc_net.py": "classifiers/fc_net.py",
    "optim.py": "optim.py",
    "layer_utils.py": "layer_utils.py",
}
OPTIONAL_STUDENT_FILES: tuple[str, ...] = ("layer_utils.py",)


def dotted(module: str) -> str:
    """The module's name inside the package: fc_net -> classifiers.fc_net."""
    return MODULE_FILES[module][: -len(".py")].replace("/", ".")


def file_name(module: str) -> str:
    """The file a student knows the module by: fc_net -> fc_net.py."""
    return MODULE_FILES[module].rsplit("/", 1)[-1]


# ------------------------------------------------------------------------------------- plan and results


class ProbeEntry(TypedDict):
    """One probe of the plan: which recipe on which modules, with which inputs (keys of inputs.npz)."""

    index: int
    id: str
    recipe: str
    modules: list[str]  # an import probe names its module last, after the modules it depends on
    calls: list[str]  # the student functions it calls
    options: dict[str, Any]
    time_limit: float
    inputs: dict[str, str]
    forbid: NotRequired[list[str]]  # modules its process may not import
    position: NotRequired[int]  # set by the runner: where it is in the plan


class ImportFailure(TypedDict):
    status: str
    message: str


class PlanDocument(TypedDict):
    """plan.json: everything the sandbox needs and nothing it must not see (no reference, no points)."""

    package: str
    package_aliases: list[str]
    limits: dict[str, int]  # memory_bytes, file_bytes of one probe's process
    probes: list[ProbeEntry]
    import_failures: NotRequired[dict[str, ImportFailure]]  # learnt by an earlier sandbox of the run
    hanging: NotRequired[list[str]]


class ResultHeader(TypedDict):
    """The JSON header of one probe's result."""

    status: str
    message: str
    invalid: dict[str, str]  # output name -> why it could not be recorded
    stdout: NotRequired[str]  # the tail of what the probe printed
    seconds: NotRequired[float]
    exception: NotRequired[str]
    skipped: NotRequired[bool]  # not run, because of an earlier failure
    reuse: NotRequired[bool]  # a probe server's own: whether it serves again (never emitted)


# ------------------------------------------------------------------------------- failures that skip probes

WHOLE_RUN_TIMEOUT = "the whole run exceeded its time limit"  # the sandbox's, not the probe's own limit


def import_failure_message(file: str, message: str) -> str:
    """One line that says what failed and why, then the student's own frames (indented lines)."""
    lines = message.splitlines()
    frames = [line for line in lines if line.startswith(" ")]
    causes = [line for line in lines if line.strip() and not line.startswith(" ")]
    headline = f"{file} could not be imported" + (f": {causes[-1]}" if causes else "")
    return "\n".join([headline, *frames])


def learn_failure(
    probe: ProbeEntry,
    status: str,
    message: str,
    import_failures: MutableMapping[str, ImportFailure],
    hanging: MutableSet[str],
    *,
    own_timeout: bool,
) -> None:
    """What a failed probe teaches the rest of the run: its module cannot be imported (an import probe),
    or the one function it calls hangs (`own_timeout`: it ran into its own time limit)."""
    if status == "ok":
        return
    if probe["recipe"] == "import":
        import_failures[probe["modules"][-1]] = {"status": status, "message": message}
    elif status == "timeout" and own_timeout and len(probe.get("calls", [])) == 1:
        hanging.add(probe["calls"][0])


def skip_reason(
    probe: ProbeEntry, import_failures: MutableMapping[str, ImportFailure], hanging: MutableSet[str]
) -> ResultHeader | None:
    """The result of a probe that is not run: a module it needs cannot be imported, or a function it calls
    hangs; None: run it."""
    # An import probe names its module last: its own import is what it is there to try.
    needed = probe["modules"][:-1] if probe["recipe"] == "import" else probe["modules"]
    for module in needed:
        failure = import_failures.get(module)
        if failure:
            message = import_failure_message(file_name(module), failure["message"])
            return {"status": failure["status"], "message": message, "invalid": {}, "skipped": True}
    for function in probe.get("calls", []):
        if function in hanging:
            message = f"not run: {function} did not finish within the time limit in an earlier probe"
            return {"status": "timeout", "message": message, "invalid": {}, "skipped": True}
    return None


# ---------------------------------------------------------------------------------------------- the wire

# Results leave the sandbox as frames: magic, probe index, header length, payload length, then the
# JSON header and the npz payload. An empty frame with READY_INDEX says the runner has its job.
FRAME = struct.Struct(">8sIII")
FRAME_MAGIC = b"\x00GRADER1"
READY_INDEX = 0xFFFFFFFF
MAX_RESULT_BYTES = 4 * 1024 * 1024  # one probe's arrays; the largest real result is ~2 MB
MAX_HEADER_BYTES = 256 * 1024  # one probe's JSON header
LOG_TAIL_BYTES = 4096  # of what a probe printed, the last bytes are kept
# Terminal escapes, C0/C1 controls and lone surrogates: never shown to a person, whichever side cleans.
UNPRINTABLE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def sanitize(text: str, limit: int) -> str:
    """Printable text only (no ANSI escapes or NULs), at most `limit` characters from the end."""
    cleaned = UNPRINTABLE.sub("", text)
    return cleaned if len(cleaned) <= limit else "..." + cleaned[-limit:]


def pack_frame(index: int, header: bytes, payload: bytes) -> bytes:
    return FRAME.pack(FRAME_MAGIC, index, len(header), len(payload)) + header + payload


def scan_frames(stream: bytes | bytearray, offset: int = 0) -> Iterator[tuple[int, int, int, int]]:
    """(index, header start, payload start, end) of each whole frame from `offset` on; it stops at the
    first frame that is incomplete or does not start with the magic (nothing after it is trusted)."""
    while offset + FRAME.size <= len(stream):
        magic, index, header_length, payload_length = FRAME.unpack_from(stream, offset)
        header_start = offset + FRAME.size
        end = header_start + header_length + payload_length
        if magic != FRAME_MAGIC or end > len(stream):
            return
        yield index, header_start, header_start + header_length, end
        offset = end


# Inside the sandbox, a probe's process sends its result up a pipe to the runner: a 4-byte length, the
# JSON header, then the npz payload up to the end of the pipe.
CHILD_LENGTH = struct.Struct(">I")
MAX_CHILD_HEADER_BYTES = 1 << 20
