"""sandbox/runner/protocol.py: the rules both sides of the trust boundary share, each defined once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grader.engine.grading import NOT_RUN_STATUSES
from grader.engine.probes import MODULE_ORDER, import_probe
from sandbox.runner import protocol
from sandbox.runner.protocol import (
    FRAME,
    FRAME_MAGIC,
    STATUSES,
    WHOLE_RUN_TIMEOUT,
    ImportFailure,
    ProbeEntry,
    learn_failure,
    pack_frame,
    scan_frames,
    skip_reason,
)

REPO = Path(__file__).resolve().parents[2]
# Names protocol.py defines that no other module of the grader or the sandbox may define again.
SHARED_NAMES = {
    "STATUSES",
    "PROBE_STATUSES",
    "CHILD_STATUSES",
    "FRAME",
    "FRAME_MAGIC",
    "READY_INDEX",
    "MAX_RESULT_BYTES",
    "UNPRINTABLE",
    "MODULE_FILES",
    "STUDENT_FILES",
    "WHOLE_RUN_TIMEOUT",
    "LOG_TAIL_BYTES",
}


def module_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names |= {target.id for target in targets if isinstance(target, ast.Name)}
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
    return names


def test_no_other_module_defines_a_shared_rule_again() -> None:
    sources = [*(REPO / "grader").rglob("*.py"), *(REPO / "sandbox").rglob("*.py")]
    protocol_names = module_level_names(Path(protocol.__file__))
    redefined = {
        f"{path.relative_to(REPO)}: {name}"
        for path in sources
        if path.resolve() != Path(protocol.__file__).resolve() and "examples" not in path.parts
        for name in module_level_names(path) & (SHARED_NAMES | {"skip_reason", "import_failure_message"})
    }
    assert redefined == set()
    assert SHARED_NAMES - {"PROBE_STATUSES"} <= protocol_names


def test_every_status_but_ok_has_its_label_in_reports() -> None:
    assert set(NOT_RUN_STATUSES) == STATUSES - {"ok"}
    assert protocol.CHILD_STATUSES < STATUSES


def test_the_upload_table_places_every_graded_file_where_its_module_lives() -> None:
    from grader.intake.uploads import GRADED_FILES, REQUIRED_FILES

    assert set(GRADED_FILES) == set(protocol.STUDENT_FILES)
    assert set(REQUIRED_FILES) == set(GRADED_FILES) - set(protocol.OPTIONAL_STUDENT_FILES)
    assert set(protocol.STUDENT_FILES.values()) <= set(protocol.MODULE_FILES.values())
    assert protocol.dotted("fc_net") == "classifiers.fc_net" and protocol.file_name("fc_net") == "fc_net.py"
    assert tuple(protocol.MODULE_FILES) == MODULE_ORDER


def entry(recipe: str, modules: list[str], calls: list[str]) -> ProbeEntry:
    return {
        "index": 0,
        "id": "p",
        "recipe": recipe,
        "modules": modules,
        "calls": calls,
        "options": {},
        "time_limit": 1.0,
        "inputs": {},
    }


def test_a_failed_import_skips_every_probe_that_needs_the_module_with_one_line_of_cause() -> None:
    failures: dict[str, ImportFailure] = {}
    hanging: set[str] = set()
    probe = entry("import", list(import_probe("layers").modules), [])
    learn_failure(
        probe, "error", '  File "layers.py", line 3\nSyntaxError: bad', failures, hanging, own_timeout=True
    )

    skipped = skip_reason(entry("layer", ["layers"], ["relu_forward"]), failures, hanging)
    fc_net_import = skip_reason(entry("import", ["layers", "fc_net"], []), failures, hanging)
    own_import = skip_reason(entry("import", ["layers"], []), failures, hanging)

    assert skipped == {
        "status": "error",
        "message": 'layers.py could not be imported: SyntaxError: bad\n  File "layers.py", line 3',
        "invalid": {},
        "skipped": True,
    }
    assert fc_net_import is not None and fc_net_import["skipped"]
    assert own_import is None  # its own import is what an import probe is there to try
    assert skip_reason(entry("optimizer", ["optim"], ["adam"]), failures, hanging) is None


@pytest.mark.parametrize(
    "status, message, own_timeout, calls, hangs",
    [
        ("timeout", "the code did not finish", True, ["relu_forward"], True),
        ("timeout", WHOLE_RUN_TIMEOUT, False, ["relu_forward"], False),  # the sandbox's deadline, not its own
        ("timeout", "the code did not finish", True, ["affine_forward", "relu_forward"], False),  # which one?
        ("error", "ValueError", True, ["relu_forward"], False),
        ("ok", "", True, ["relu_forward"], False),
    ],
)
def test_only_a_probe_of_one_function_that_ran_into_its_own_limit_marks_it_hanging(
    status: str, message: str, own_timeout: bool, calls: list[str], hangs: bool
) -> None:
    failures: dict[str, ImportFailure] = {}
    hanging: set[str] = set()
    learn_failure(
        entry("layer", ["layers"], calls), status, message, failures, hanging, own_timeout=own_timeout
    )

    assert (hanging == {"relu_forward"}) == hangs and failures == {}
    later = skip_reason(entry("layer", ["layers"], ["relu_forward"]), failures, hanging)
    assert (later is not None and later["status"] == "timeout") == hangs


frames = st.lists(
    st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=40), st.binary(max_size=40)), max_size=5
)


@given(frames, st.binary(max_size=30))
def test_scanning_finds_every_whole_frame_and_stops_at_the_first_broken_one(
    sent: list[tuple[int, bytes, bytes]], garbage: bytes
) -> None:
    stream = b"".join(pack_frame(*frame) for frame in sent) + garbage
    found = [
        (index, stream[header:payload], stream[payload:end])
        for index, header, payload, end in scan_frames(stream)
    ]
    assert found[: len(sent)] == sent
    if not garbage.startswith(FRAME_MAGIC):
        assert len(found) == len(sent)
    truncated = stream[: len(stream) - len(garbage) - 1] if sent else b""
    assert len(list(scan_frames(truncated))) == max(0, len(sent) - 1)


def test_a_frame_is_its_header_then_the_two_parts() -> None:
    frame = pack_frame(3, b"{}", b"npz")
    assert FRAME.unpack_from(frame) == (FRAME_MAGIC, 3, 2, 3) and frame.endswith(b"{}npz")
