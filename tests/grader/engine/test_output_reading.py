"""The trusted side's reading of sandbox outputs, against hostile output folders written by hand."""

import io
import json
import os
import pickle
import signal
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.engine.outputs import (
    MAX_JSON_BYTES,
    MAX_NPZ_BYTES,
    ProbeOutcome,
    parse_frames,
    read_probe_outcome,
)
from sandbox.runner.protocol import FRAME, FRAME_MAGIC, READY_INDEX, STATUSES

HEADER = {
    "status": "ok",
    "message": "",
    "invalid": {"dx": "returned None (is the function still a stub?)"},
    "stdout": "hello\n",
    "seconds": 0.125,
}


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def write_outputs(folder: Path, index: int = 0, header: object = HEADER, npz: bytes | None = None) -> Path:
    """p<index>.json and p<index>.npz as the runner writes them (or as a hostile sandbox might)."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    (folder / f"p{index}.json").write_bytes(raw)
    (folder / f"p{index}.npz").write_bytes(npz_bytes(out=np.arange(3.0)) if npz is None else npz)
    return folder


def stored_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def npy_bytes(header: str, body: bytes = b"") -> bytes:
    """A version 1.0 `.npy` with a hand-written header (it may claim anything)."""
    text = header.encode("latin1")
    padded = text + b" " * ((64 - (10 + len(text) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(padded)) + padded + body


def assert_invalid(outcome: ProbeOutcome | None) -> None:
    assert outcome is not None
    assert outcome.status == "invalid_output"
    assert outcome.message.startswith("invalid output: ")
    assert dict(outcome.arrays) == {}


# ------------------------------------------------------------------------------------------ valid


def test_a_valid_result_is_read_back_exactly(tmp_path: Path) -> None:
    out = np.array([[1.5, -2.0], [0.0, 3.25]])
    dx = np.arange(6, dtype=np.float32).reshape(2, 3)
    mask = np.array([True, False])
    count = np.array(7, dtype=np.int64)
    write_outputs(tmp_path, 3, npz=npz_bytes(out=out, dx=dx, mask=mask, count=count))

    outcome = read_probe_outcome(tmp_path, 3)

    assert outcome is not None and outcome.ran
    assert (outcome.status, outcome.message, outcome.stdout, outcome.seconds) == ("ok", "", "hello\n", 0.125)
    assert outcome.invalid == {"dx": "returned None (is the function still a stub?)"}
    assert sorted(outcome.arrays) == ["count", "dx", "mask", "out"]
    for name, expected in {"out": out, "dx": dx, "mask": mask, "count": count}.items():
        got = outcome.arrays[name]
        assert type(got) is np.ndarray
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
        assert got.flags.writeable and got.flags.owndata


def test_fortran_order_and_big_endian_arrays_keep_their_values(tmp_path: Path) -> None:
    out = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    big = np.arange(5, dtype=">i4")
    write_outputs(tmp_path, npz=npz_bytes(out=out, big=big))

    outcome = read_probe_outcome(tmp_path, 0)

    assert outcome is not None and outcome.status == "ok"
    np.testing.assert_array_equal(outcome.arrays["out"], np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(outcome.arrays["big"], np.arange(5))


@pytest.mark.parametrize("status", sorted(STATUSES))
def test_every_known_status_is_accepted(tmp_path: Path, status: str) -> None:
    write_outputs(tmp_path, header={"status": status, "message": "m"}, npz=b"")

    outcome = read_probe_outcome(tmp_path, 0)

    assert outcome == ProbeOutcome(status=status, message="m")


def test_an_empty_npz_file_means_no_arrays(tmp_path: Path) -> None:
    write_outputs(tmp_path, header={"status": "error", "message": "ZeroDivisionError"}, npz=b"")

    assert read_probe_outcome(tmp_path, 0) == ProbeOutcome(status="error", message="ZeroDivisionError")


# ------------------------------------------------------------------------------------- files and links


def test_a_missing_header_means_the_probe_never_finished(tmp_path: Path) -> None:
    (tmp_path / "p0.npz").write_bytes(npz_bytes(out=np.zeros(2)))

    assert read_probe_outcome(tmp_path, 0) is None
    assert read_probe_outcome(tmp_path, 1) is None


def test_a_header_without_its_npz_is_invalid(tmp_path: Path) -> None:
    write_outputs(tmp_path)
    (tmp_path / "p0.npz").unlink()

    assert_invalid(read_probe_outcome(tmp_path, 0))


def test_a_header_that_is_a_symlink_to_a_valid_file_is_invalid(tmp_path: Path) -> None:
    elsewhere = write_outputs(tmp_path / "elsewhere")
    out = tmp_path / "out"
    out.mkdir()
    (out / "p0.json").symlink_to(elsewhere / "p0.json")
    (out / "p0.npz").write_bytes((elsewhere / "p0.npz").read_bytes())

    assert_invalid(read_probe_outcome(out, 0))


def test_a_dangling_header_symlink_is_invalid_not_missing(tmp_path: Path) -> None:
    (tmp_path / "p0.json").symlink_to(tmp_path / "nowhere.json")
    (tmp_path / "p0.npz").write_bytes(b"")

    assert_invalid(read_probe_outcome(tmp_path, 0))


def test_an_npz_that_is_a_symlink_is_invalid(tmp_path: Path) -> None:
    elsewhere = write_outputs(tmp_path / "elsewhere")
    out = tmp_path / "out"
    out.mkdir()
    (out / "p0.json").write_bytes((elsewhere / "p0.json").read_bytes())
    (out / "p0.npz").symlink_to(elsewhere / "p0.npz")

    assert_invalid(read_probe_outcome(out, 0))


def test_an_npz_symlink_to_a_device_is_invalid(tmp_path: Path) -> None:
    write_outputs(tmp_path)
    (tmp_path / "p0.npz").unlink()
    (tmp_path / "p0.npz").symlink_to("/dev/zero")

    assert_invalid(read_probe_outcome(tmp_path, 0))


@pytest.fixture
def no_hang() -> Iterator[None]:
    """Fail (instead of hanging the suite) if the test blocks for more than 5 seconds."""

    def give_up(signum: int, frame: object) -> None:
        raise TimeoutError("blocked reading the outputs")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(5)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.usefixtures("no_hang")
def test_a_fifo_header_is_invalid_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "p0.json")
    (tmp_path / "p0.npz").write_bytes(b"")

    assert_invalid(read_probe_outcome(tmp_path, 0))


@pytest.mark.usefixtures("no_hang")
def test_a_fifo_npz_is_invalid_without_hanging(tmp_path: Path) -> None:
    write_outputs(tmp_path)
    (tmp_path / "p0.npz").unlink()
    os.mkfifo(tmp_path / "p0.npz")

    assert_invalid(read_probe_outcome(tmp_path, 0))


def test_a_directory_named_like_the_header_is_invalid(tmp_path: Path) -> None:
    (tmp_path / "p0.json").mkdir()
    (tmp_path / "p0.npz").write_bytes(b"")

    assert_invalid(read_probe_outcome(tmp_path, 0))


def test_an_oversized_header_is_invalid(tmp_path: Path) -> None:
    header = {**HEADER, "stdout": "x" * MAX_JSON_BYTES}
    write_outputs(tmp_path, header=header)

    assert_invalid(read_probe_outcome(tmp_path, 0))


def test_an_oversized_npz_is_invalid(tmp_path: Path) -> None:
    write_outputs(tmp_path)
    with open(tmp_path / "p0.npz", "ab") as handle:
        handle.truncate(MAX_NPZ_BYTES + 1)  # sparse: no need to write the whole cap

    assert_invalid(read_probe_outcome(tmp_path, 0))


# ------------------------------------------------------------------------------------------ headers


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"status": "ok", "seconds": NaN}', id="nan"),
        pytest.param(b'{"status": "ok", "seconds": Infinity}', id="infinity"),
        pytest.param(b'{"status": "ok", "seconds": -Infinity}', id="minus-infinity"),
        pytest.param(b'{"status": "ok", "seconds": 1e999}', id="overflowing-float"),
        pytest.param(b'{"status": "ok", "seconds": 1' + b"0" * 400 + b"}", id="huge-int"),
        pytest.param(b'{"status": "ok", "seconds": -1.0}', id="negative-seconds"),
        pytest.param(b'{"status": "ok", "seconds": "1.0"}', id="text-seconds"),
        pytest.param(b'{"status": "ok", "seconds": true}', id="bool-seconds"),
        pytest.param(b'{"status": "ok", "invalid": {"a": {"b": {"c": {"d": {}}}}}}', id="nested-5"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-100000"),
        pytest.param(b'{"a": ' + b"[" * 900 + b"]" * 900 + b', "status": "ok"}', id="nested-900"),
        pytest.param(b'[{"status": "ok"}]', id="list"),
        pytest.param(b'"ok"', id="string"),
        pytest.param(b"null", id="null"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"status": "ok"', id="truncated"),
        pytest.param(b'{"status": "ok"} {}', id="trailing-data"),
        pytest.param(b'\xff\xfe{"status": "ok"}', id="not-utf8"),
        pytest.param(b'{"status": "passed"}', id="unknown-status"),
        pytest.param(b'{"status": "OK"}', id="status-case"),
        pytest.param(b'{"message": "no status"}', id="no-status"),
        pytest.param(b'{"status": ["ok"]}', id="status-list"),
        pytest.param(b'{"status": {"ok": 1}}', id="status-object"),
        pytest.param(b'{"status": 1}', id="status-number"),
        pytest.param(b'{"status": "ok", "message": 42}', id="message-number"),
        pytest.param(b'{"status": "ok", "message": ["a"]}', id="message-list"),
        pytest.param(b'{"status": "ok", "message": null}', id="message-null"),
        pytest.param(b'{"status": "ok", "stdout": {"x": 1}}', id="stdout-object"),
        pytest.param(b'{"status": "ok", "invalid": ["dx"]}', id="invalid-list"),
        pytest.param(b'{"status": "ok", "invalid": {"dx": 3}}', id="invalid-value-number"),
    ],
)
def test_a_malformed_header_is_invalid(tmp_path: Path, raw: bytes) -> None:
    write_outputs(tmp_path, header=raw)

    assert_invalid(read_probe_outcome(tmp_path, 0))


def test_a_header_at_the_depth_cap_is_accepted(tmp_path: Path) -> None:
    write_outputs(tmp_path, header={"status": "ok", "extra": [[["deep"]]]})

    outcome = read_probe_outcome(tmp_path, 0)

    assert outcome is not None and outcome.status == "ok"


def test_long_header_fields_are_cut_to_size(tmp_path: Path) -> None:
    header = {
        "status": "error",
        "message": "m" * 10_000,
        "stdout": "s" * 10_000,
        "invalid": {f"k{i}": "v" * 400 for i in range(300)},
    }
    write_outputs(tmp_path, header=header, npz=b"")

    outcome = read_probe_outcome(tmp_path, 0)

    assert outcome is not None and outcome.status == "error"
    assert len(outcome.message) == 4000 and len(outcome.stdout) == 2000
    assert len(outcome.invalid) == 200
    assert all(len(reason) == 300 for reason in outcome.invalid.values())


# ------------------------------------------------------------------------------------------- arrays


class PlantsMarker:
    """Unpickling this creates a file: the test proves the payload is never executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_a_pickled_object_array_is_invalid_and_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled.marker"
    payload = np.empty(1, dtype=object)
    payload[0] = PlantsMarker(marker)
    buffer = io.BytesIO()
    np.savez(buffer, out=payload, allow_pickle=True)
    write_outputs(tmp_path / "out", npz=buffer.getvalue())
    # The payload really is live: loading it with pickles allowed would create the marker.
    assert b"unpickled.marker" in buffer.getvalue()

    assert_invalid(read_probe_outcome(tmp_path / "out", 0))
    assert not marker.exists()


def test_a_pickle_as_the_whole_npz_is_invalid_and_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled.marker"
    write_outputs(tmp_path / "out", npz=pickle.dumps(PlantsMarker(marker)))

    assert_invalid(read_probe_outcome(tmp_path / "out", 0))
    assert not marker.exists()


def test_a_compressed_npz_is_invalid(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, out=np.zeros(1000))
    write_outputs(tmp_path, npz=buffer.getvalue())

    assert_invalid(read_probe_outcome(tmp_path, 0))


@pytest.mark.parametrize(
    "member",
    ["../x.npy", "out put.npy", "/abs.npy", "dir/out.npy", "1out.npy", "out\x00.npy", "é.npy", "out"],
)
def test_an_npz_member_with_an_unsafe_name_is_invalid(tmp_path: Path, member: str) -> None:
    content = io.BytesIO()
    np.save(content, np.zeros(2))
    write_outputs(tmp_path, npz=stored_zip({member: content.getvalue()}))

    assert_invalid(read_probe_outcome(tmp_path, 0))


def test_an_npz_with_a_duplicated_member_is_invalid(tmp_path: Path) -> None:
    first, second = io.BytesIO(), io.BytesIO()
    np.save(first, np.zeros(2))
    np.save(second, np.ones(2))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, pytest.warns(UserWarning, match="Duplicate"):
        archive.writestr("out.npy", first.getvalue())
        archive.writestr("out.npy", second.getvalue())
    write_outputs(tmp_path, npz=buffer.getvalue())

    assert_invalid(read_probe_outcome(tmp_path, 0))


@pytest.mark.parametrize(
    "array",
    [
        pytest.param(np.array([1 + 2j, 3j]), id="complex"),
        pytest.param(np.array(["a", "bc"]), id="unicode"),
        pytest.param(np.array([b"a", b"bc"]), id="bytes"),
        pytest.param(np.zeros(2, dtype=[("a", "<f8"), ("b", "<i4")]), id="structured"),
        pytest.param(np.array(["2024-01-01"], dtype="datetime64[D]"), id="datetime"),
        pytest.param(np.array([1], dtype="timedelta64[s]"), id="timedelta"),
        pytest.param(np.zeros(2, dtype="V8"), id="void"),
    ],
)
def test_an_npz_array_of_a_non_numeric_dtype_is_invalid(tmp_path: Path, array: np.ndarray) -> None:
    write_outputs(tmp_path, npz=npz_bytes(out=np.zeros(2), bad=array))

    assert_invalid(read_probe_outcome(tmp_path, 0))


def test_a_zip_that_is_not_an_npz_is_invalid(tmp_path: Path) -> None:
    write_outputs(tmp_path, npz=stored_zip({"out.npy": b"this is not an array", "notes.txt": b"hi"}))

    assert_invalid(read_probe_outcome(tmp_path, 0))


@pytest.mark.parametrize(
    "header, body",
    [
        # Claims far more values than it holds: must be refused before any allocation.
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (1125899906842624,), }", b"\0" * 8),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (8589934592,), }", b"\0" * 8),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (2**70,), }", b"\0" * 8),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (1180591620717411303424,), }", b"\0" * 8),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (1180591620717411303424, 0), }", b""),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }", b"\0" * 8),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (-1, -1), }", b"\0" * 8),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", b"\0" * 8),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", b"\0" * 16),
        ("{'descr': ('<f8', (100000000000,)), 'fortran_order': False, 'shape': (1,), }", b"\0" * 8),
        ("{'descr': '(100000000000,)f8', 'fortran_order': False, 'shape': (1,), }", b"\0" * 8),
        ("{'descr': 5, 'fortran_order': False, 'shape': (1,), }", b"\0" * 8),
        ("{'descr': [('a',)], 'fortran_order': False, 'shape': (1,), }", b"\0" * 8),
        ("{'descr': '<f8', 'fortran_order': 'no', 'shape': (1,), }", b"\0" * 8),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': [1], }", b"\0" * 8),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), '''", b"\0" * 8),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}", b"\0" * 8),
        ("[1, 2, 3]", b"\0" * 8),
        ("__import__('os').system('touch /tmp/pwned')", b""),
        ("(" * 300 + ")" * 300, b""),
    ],
)
def test_an_npy_member_with_a_lying_or_hostile_header_is_invalid(
    tmp_path: Path, header: str, body: bytes
) -> None:
    write_outputs(tmp_path, npz=stored_zip({"out.npy": npy_bytes(header, body)}))

    assert_invalid(read_probe_outcome(tmp_path, 0))


def test_an_npy_file_in_place_of_the_npz_is_invalid(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.arange(3.0))
    write_outputs(tmp_path, npz=buffer.getvalue())

    assert_invalid(read_probe_outcome(tmp_path, 0))


def test_an_npy_prefix_in_front_of_a_zip_yields_no_array_from_the_prefix(tmp_path: Path) -> None:
    """np.load would take the whole file for the `.npy` in front; we read the zip's members only."""
    prefix = io.BytesIO()
    np.save(prefix, np.arange(3.0))
    write_outputs(tmp_path, npz=prefix.getvalue() + stored_zip({}))

    outcome = read_probe_outcome(tmp_path, 0)

    assert outcome is not None
    assert outcome.status in {"ok", "invalid_output"}
    assert dict(outcome.arrays) == {}


def test_an_encrypted_npz_member_is_invalid(tmp_path: Path) -> None:
    data = bytearray(npz_bytes(out=np.arange(3.0)))
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 0x01  # "encrypted" flag in the central directory
    data[6] |= 0x01  # and in the local header
    write_outputs(tmp_path, npz=bytes(data))

    assert_invalid(read_probe_outcome(tmp_path, 0))


def test_an_npz_with_a_corrupted_member_is_invalid(tmp_path: Path) -> None:
    data = bytearray(npz_bytes(out=np.arange(64.0)))
    data[200] ^= 0xFF  # inside the array's values: the CRC no longer matches
    write_outputs(tmp_path, npz=bytes(data))

    assert_invalid(read_probe_outcome(tmp_path, 0))


def test_an_npz_with_too_many_arrays_is_invalid(tmp_path: Path) -> None:
    write_outputs(tmp_path, npz=npz_bytes(**{f"a{i}": np.zeros(1) for i in range(201)}))

    assert_invalid(read_probe_outcome(tmp_path, 0))


# ------------------------------------------------------------------------------------- random bytes


def assert_valid_or_invalid(outcome: ProbeOutcome | None) -> None:
    assert outcome is not None
    assert outcome.status in STATUSES
    for array in outcome.arrays.values():
        assert type(array) is np.ndarray and array.dtype.kind in "biuf"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=4096))
def test_random_bytes_as_the_npz_never_raise(tmp_path: Path, data: bytes) -> None:
    write_outputs(tmp_path, npz=data)

    outcome = read_probe_outcome(tmp_path, 0)

    assert_valid_or_invalid(outcome)
    assert outcome is not None
    if data:
        assert outcome.status == "invalid_output"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=4096))
def test_random_bytes_as_the_header_never_raise(tmp_path: Path, data: bytes) -> None:
    write_outputs(tmp_path, header=data)

    assert_valid_or_invalid(read_probe_outcome(tmp_path, 0))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2048), st.integers(min_value=0, max_value=10_000))
def test_random_bytes_spliced_into_a_valid_npz_never_raise(tmp_path: Path, data: bytes, at: int) -> None:
    valid = npz_bytes(out=np.arange(12.0).reshape(3, 4), dx=np.ones(2, dtype=np.float32))
    at %= len(valid)
    write_outputs(tmp_path, npz=valid[:at] + data + valid[at + len(data) :])

    assert_valid_or_invalid(read_probe_outcome(tmp_path, 0))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "status": st.sampled_from(sorted(STATUSES)) | json_values,
            "message": json_values,
            "stdout": json_values,
            "invalid": json_values,
            "seconds": json_values,
        },
    )
)
def test_random_json_headers_never_raise(tmp_path: Path, header: dict[str, object]) -> None:
    write_outputs(tmp_path, header=header)

    assert_valid_or_invalid(read_probe_outcome(tmp_path, 0))


# ------------------------------------------------------------------------------------- streamed frames


def frame(index: int, header: bytes = b"", payload: bytes = b"") -> bytes:
    return FRAME.pack(FRAME_MAGIC, index, len(header), len(payload)) + header + payload


def test_streamed_frames_give_outcomes_and_the_ready_mark() -> None:
    header = json.dumps(HEADER).encode()
    stream = frame(READY_INDEX) + frame(0, header, npz_bytes(out=np.ones(2))) + frame(1, header, b"")
    outcomes, ready = parse_frames(stream, {0, 1})
    assert ready
    assert outcomes[0].status == HEADER["status"]
    np.testing.assert_array_equal(outcomes[0].arrays["out"], np.ones(2))
    assert set(outcomes) == {0, 1}


@pytest.mark.parametrize(
    "tail",
    [
        frame(7, b"{}"),  # a probe the plan does not have
        frame(0, json.dumps(HEADER).encode()),  # the same probe twice
        b"\x00GRADER2" + b"\x00" * 12,  # another magic
    ],
)
def test_parsing_stops_at_the_first_malformed_frame(tail: bytes) -> None:
    header = json.dumps(HEADER).encode()
    outcomes, ready = parse_frames(frame(0, header) + tail + frame(READY_INDEX) + frame(1, header), {0, 1})
    assert set(outcomes) == {0} and not ready


def test_a_stream_cut_short_keeps_the_frames_before_the_cut() -> None:
    header = json.dumps(HEADER).encode()
    outcomes, _ = parse_frames(frame(0, header) + frame(1, header)[:-3], {0, 1})
    assert set(outcomes) == {0}


def test_without_the_ready_mark_nothing_says_the_sandbox_started() -> None:
    assert parse_frames(b"", {0}) == ({}, False)
