"""Tests for turning uploads (folders, zips, loose files) into graded files, including hostile uploads."""

import dataclasses
import os
import re
import warnings
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.intake.uploads import (
    GRADED_FILES,
    IntakeLimits,
    Submission,
    UnusableSubmission,
    load_submission,
)
from grader.settings import Settings

LAYERS = b"def affine_forward(x, w, b):\n    return x.reshape(x.shape[0], -1) @ w + b, (x, w, b)\n"
FC_NET = b"class FullyConnectedNet:\n    pass\n"
OPTIM = b"def sgd(w, dw, config=None):\n    return w - 1e-2 * dw, config\n"
LAYER_UTILS = b"from .layers import *\n"

COURSE_LAYOUT = {
    "assignment2/cs231n/layers.py": LAYERS,
    "assignment2/cs231n/classifiers/fc_net.py": FC_NET,
    "assignment2/cs231n/optim.py": OPTIM,
    "assignment2/cs231n/layer_utils.py": LAYER_UTILS,
}

Entry = tuple[str | zipfile.ZipInfo, bytes]


def make_zip(path: Path, entries: dict[str, bytes] | Iterable[Entry]) -> Path:
    """Write a zip with exactly these entries, hostile names included, deflated."""
    items = entries.items() if isinstance(entries, dict) else entries
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names some tests need
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, content in items:
                archive.writestr(name, content)
    return path


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for relative, content in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return root


def caps(**smaller: int) -> IntakeLimits:
    """The settings' caps, some of them smaller."""
    return dataclasses.replace(Settings().intake_limits(), **smaller)


def rejection(path: Path, limits: IntakeLimits | None = None) -> str:
    with pytest.raises(UnusableSubmission) as caught:
        load_submission(path, limits) if limits else load_submission(path)
    return str(caught.value)


# ---- well-formed uploads ---------------------------------------------------------------------------------


def test_course_layout_zip_gives_all_graded_files_with_origins(tmp_path: Path) -> None:
    submission = load_submission(make_zip(tmp_path / "a2.zip", COURSE_LAYOUT))
    assert dict(submission.files) == {
        "layers.py": LAYERS,
        "fc_net.py": FC_NET,
        "optim.py": OPTIM,
        "layer_utils.py": LAYER_UTILS,
    }
    assert submission.origins["fc_net.py"] == "assignment2/cs231n/classifiers/fc_net.py"
    assert submission.origins["layers.py"] == "assignment2/cs231n/layers.py"
    assert submission.missing == ()
    assert submission.ignored == ()


def test_course_layout_folder_matches_the_zip(tmp_path: Path) -> None:
    folder = load_submission(make_tree(tmp_path / "upload", COURSE_LAYOUT))
    archived = load_submission(make_zip(tmp_path / "a2.zip", COURSE_LAYOUT))
    assert folder == archived


def test_upper_case_zip_suffix_is_accepted(tmp_path: Path) -> None:
    submission = load_submission(make_zip(tmp_path / "A2.ZIP", {"layers.py": LAYERS}))
    assert dict(submission.files) == {"layers.py": LAYERS}


def test_partial_upload_reports_missing_required_files(tmp_path: Path) -> None:
    submission = load_submission(make_zip(tmp_path / "a2.zip", {"cs231n/layers.py": LAYERS}))
    assert submission.missing == ("fc_net.py", "optim.py")


def test_layer_utils_is_optional(tmp_path: Path) -> None:
    entries = {name: content for name, content in COURSE_LAYOUT.items() if "layer_utils" not in name}
    submission = load_submission(make_zip(tmp_path / "a2.zip", entries))
    assert submission.missing == ()
    assert "layer_utils.py" not in submission.files


def test_other_files_are_ignored_and_listed(tmp_path: Path) -> None:
    entries = {
        **COURSE_LAYOUT,
        "assignment2/FullyConnectedNets.ipynb": b"{}",
        "assignment2/sitecustomize.py": b"raise SystemExit",
        "assignment2/conftest.py": b"raise SystemExit",
        "assignment2/numpy.py": b"raise SystemExit",
        "assignment2/cs231n/__init__.py": b"",
        "assignment2/cs231n/classifiers/": b"",
    }
    submission = load_submission(make_zip(tmp_path / "a2.zip", entries))
    assert set(submission.files) == set(GRADED_FILES)
    assert submission.ignored == (
        "assignment2/FullyConnectedNets.ipynb",
        "assignment2/conftest.py",
        "assignment2/cs231n/__init__.py",
        "assignment2/numpy.py",
        "assignment2/sitecustomize.py",
    )


def test_ignored_list_is_capped_at_fifty(tmp_path: Path) -> None:
    entries = {"layers.py": LAYERS, **{f"notes/{index:03}.txt": b"" for index in range(80)}}
    submission = load_submission(make_zip(tmp_path / "a2.zip", entries))
    assert submission.ignored == tuple(f"notes/{index:03}.txt" for index in range(50))


def test_macos_and_jupyter_debris_is_skipped(tmp_path: Path) -> None:
    entries = {
        "cs231n/layers.py": LAYERS,
        "__MACOSX/cs231n/._layers.py": b"\x00\x05\x16\x07",
        "__MACOSX/cs231n/optim.py": b"\xff\xfe",
        "cs231n/._optim.py": b"\xff\xfe",
        "cs231n/.ipynb_checkpoints/fc_net.py": b"stale",
    }
    submission = load_submission(make_zip(tmp_path / "a2.zip", entries))
    assert dict(submission.files) == {"layers.py": LAYERS}
    assert submission.ignored == ()


def test_windows_backslash_paths_are_read_as_folders(tmp_path: Path) -> None:
    submission = load_submission(make_zip(tmp_path / "a2.zip", {"assignment2\\cs231n\\layers.py": LAYERS}))
    assert submission.origins == {"layers.py": "assignment2/cs231n/layers.py"}


def test_same_zip_always_gives_the_same_submission(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a2.zip", {**COURSE_LAYOUT, "b.txt": b"", "a.txt": b""})
    assert load_submission(path) == load_submission(path)
    assert load_submission(path).ignored == ("a.txt", "b.txt")


def test_submission_mappings_are_read_only(tmp_path: Path) -> None:
    submission = load_submission(make_zip(tmp_path / "a2.zip", {"layers.py": LAYERS}))
    with pytest.raises(TypeError):
        submission.files["layers.py"] = b"changed"  # type: ignore[index]


# ---- duplicates --------------------------------------------------------------------------------------------


def test_duplicate_prefers_the_copy_inside_cs231n(tmp_path: Path) -> None:
    entries = {"backup/layers.py": b"old = 1\n", "assignment2/cs231n/layers.py": LAYERS}
    submission = load_submission(make_zip(tmp_path / "a2.zip", entries))
    assert submission.files["layers.py"] == LAYERS
    assert submission.origins["layers.py"] == "assignment2/cs231n/layers.py"


def test_duplicate_prefers_the_copy_inside_dasecv(tmp_path: Path) -> None:
    entries = {"layers.py": b"old = 1\n", "daseCV/layers.py": LAYERS}
    submission = load_submission(make_zip(tmp_path / "a2.zip", entries))
    assert submission.origins["layers.py"] == "daseCV/layers.py"


def test_duplicate_fc_net_prefers_classifiers_folder(tmp_path: Path) -> None:
    entries = {"cs231n/fc_net.py": b"old = 1\n", "cs231n/classifiers/fc_net.py": FC_NET}
    submission = load_submission(make_zip(tmp_path / "a2.zip", entries))
    assert submission.origins["fc_net.py"] == "cs231n/classifiers/fc_net.py"
    assert submission.files["fc_net.py"] == FC_NET


def test_duplicate_without_a_preferred_place_is_rejected_naming_both(tmp_path: Path) -> None:
    entries = {"mine/layers.py": LAYERS, "theirs/layers.py": LAYERS}
    message = rejection(make_zip(tmp_path / "a2.zip", entries))
    assert "found layers.py in more than one place" in message
    assert "'mine/layers.py'" in message
    assert "'theirs/layers.py'" in message


def test_duplicate_in_two_course_folders_is_rejected(tmp_path: Path) -> None:
    entries = {"a/cs231n/layers.py": LAYERS, "b/cs231n/layers.py": LAYERS}
    message = rejection(make_zip(tmp_path / "a2.zip", entries))
    assert "'a/cs231n/layers.py' and 'b/cs231n/layers.py'" in message


def test_same_entry_name_twice_in_a_zip_is_rejected(tmp_path: Path) -> None:
    message = rejection(make_zip(tmp_path / "a2.zip", [("layers.py", LAYERS), ("layers.py", b"x = 2\n")]))
    assert "found layers.py in more than one place" in message


# ---- unusable uploads ------------------------------------------------------------------------------------


def test_missing_path_is_rejected(tmp_path: Path) -> None:
    assert "'nothing.zip' does not exist" in rejection(tmp_path / "nothing.zip")


def test_other_file_types_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "homework.rar").write_bytes(b"Rar!")
    assert "cannot grade 'homework.rar'" in rejection(tmp_path / "homework.rar")


def test_loose_python_file_with_another_name_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "Layers.py").write_bytes(LAYERS)
    assert "cannot grade 'Layers.py'" in rejection(tmp_path / "Layers.py")


def test_not_a_zip_named_zip_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "x.zip").write_bytes(b"this is a pdf, honestly")
    assert "'x.zip' is not a valid zip file" in rejection(tmp_path / "x.zip")


def test_empty_zip_is_rejected(tmp_path: Path) -> None:
    assert "the zip file is empty" in rejection(make_zip(tmp_path / "a2.zip", {}))


def test_zip_without_graded_files_lists_what_was_expected(tmp_path: Path) -> None:
    message = rejection(make_zip(tmp_path / "a2.zip", {"a2/notebook.ipynb": b"{}", "a2/": b""}))
    assert "no graded file found" in message
    assert "layers.py, fc_net.py, optim.py" in message


def test_non_utf8_graded_file_is_rejected(tmp_path: Path) -> None:
    entries = {"cs231n/layers.py": "# réseau\n".encode("latin-1")}
    message = rejection(make_zip(tmp_path / "a2.zip", entries))
    assert "layers.py is not UTF-8 text" in message
    assert "'cs231n/layers.py'" in message


def test_non_utf8_ignored_file_is_fine(tmp_path: Path) -> None:
    entries = {"layers.py": LAYERS, "notes.txt": b"\xff\xfe\x00"}
    assert load_submission(make_zip(tmp_path / "a2.zip", entries)).ignored == ("notes.txt",)


def test_zip_above_upload_limit_is_rejected(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a2.zip", {"layers.py": LAYERS, "data.bin": os.urandom(4096)})
    assert "upload limit" in rejection(path, caps(max_upload_bytes=1024))


# ---- hostile zips ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("/etc/layers.py", "has an absolute path"),
        ("/tmp/notes.txt", "has an absolute path"),
        ("C:\\Users\\x\\layers.py", "has an absolute path"),
        ("c:layers.py", "has an absolute path"),
        ("\\\\server\\share\\layers.py", "has an absolute path"),
        ("../evil.py", "contains '..'"),
        ("a/../../layers.py", "contains '..'"),
        ("cs231n/..\\..\\layers.py", "contains '..'"),
        ("..", "contains '..'"),
    ],
)
def test_escaping_entry_rejects_the_whole_upload(tmp_path: Path, name: str, expected: str) -> None:
    path = make_zip(tmp_path / "a2.zip", {**COURSE_LAYOUT, name: b"x = 1\n"})
    message = rejection(path)
    assert f"the zip entry {name!r} {expected}" in message


def test_symlink_entry_is_rejected(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("cs231n/optim.py")
    link.external_attr = 0o120777 << 16
    path = make_zip(tmp_path / "a2.zip", [("cs231n/layers.py", LAYERS), (link, b"/etc/passwd")])
    assert "the zip entry 'cs231n/optim.py' is a symbolic link" in rejection(path)


def test_symlink_entry_with_an_ignored_name_is_rejected_too(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("data")
    link.external_attr = 0o120777 << 16
    path = make_zip(tmp_path / "a2.zip", [("layers.py", LAYERS), (link, b"/")])
    assert "the zip entry 'data' is a symbolic link" in rejection(path)


def test_nul_byte_in_entry_name_is_rejected(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a2.zip", {"cs231n/layers.pyX.txt": LAYERS})
    # zipfile cannot write a NUL in a name, so patch it into both the local and the central header.
    raw = path.read_bytes()
    assert raw.count(b"layers.pyX.txt") == 2
    path.write_bytes(raw.replace(b"layers.pyX.txt", b"layers.py\x00.txt"))
    assert "the zip entry 'cs231n/layers.py\\x00.txt' has a NUL byte in its name" in rejection(path)


def test_encrypted_entry_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "a2.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("cs231n/layers.py", LAYERS)
        # writestr clears flag_bits; the central directory is written from the info at close.
        archive.getinfo("cs231n/layers.py").flag_bits |= 0x1
    assert "the zip entry 'cs231n/layers.py' is encrypted" in rejection(path)


def test_too_many_entries_is_rejected(tmp_path: Path) -> None:
    entries = {"layers.py": LAYERS, **{f"junk/{index}": b"" for index in range(6000)}}
    message = rejection(make_zip(tmp_path / "a2.zip", entries))
    assert "the zip has 6001 entries, more than the limit of 5000" in message


def test_declared_total_size_above_limit_is_rejected(tmp_path: Path) -> None:
    entries = {"layers.py": LAYERS, "data.bin": b"\x00" * 10_000}
    message = rejection(make_zip(tmp_path / "a2.zip", entries), caps(max_total_uncompressed=5_000))
    assert "more than the 4.88281 KB limit" in message


def test_zip_bomb_graded_entry_stops_at_the_file_cap(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a2.zip", {"cs231n/layers.py": b" " * (3 * 1024 * 1024)})
    assert path.stat().st_size < 20_000
    assert "'cs231n/layers.py' is larger than the 2 MB limit for one file" in rejection(path)


def test_declared_size_lie_is_not_believed(tmp_path: Path) -> None:
    path = tmp_path / "a2.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("cs231n/layers.py", b" " * (3 * 1024 * 1024))
        # The central directory now claims 100 bytes for 3 MB of compressed spaces.
        archive.getinfo("cs231n/layers.py").file_size = 100
    message = rejection(path)
    assert "'cs231n/layers.py' is damaged inside the zip" in message


def test_unsupported_compression_is_reported_as_damaged(tmp_path: Path) -> None:
    path = tmp_path / "a2.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("layers.py", LAYERS)
        archive.getinfo("layers.py").compress_type = 99
    assert "'layers.py' is damaged inside the zip" in rejection(path)


def test_deeply_nested_entry_is_rejected(tmp_path: Path) -> None:
    name = "/".join(["d"] * 21) + "/layers.py"
    assert "nested more than 20 folders deep" in rejection(make_zip(tmp_path / "a2.zip", {name: LAYERS}))


# ---- folders -----------------------------------------------------------------------------------------------


def test_folder_symlink_named_like_a_graded_file_is_rejected(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "upload", {"cs231n/optim.py": OPTIM})
    (root / "cs231n" / "layers.py").symlink_to("/etc/passwd")
    message = rejection(root)
    assert "'cs231n/layers.py' is a symbolic link" in message


def test_folder_symlink_elsewhere_is_ignored_and_not_followed(tmp_path: Path) -> None:
    outside = make_tree(tmp_path / "outside", {"layers.py": b"stolen = 1\n"})
    root = make_tree(tmp_path / "upload", {"cs231n/layers.py": LAYERS})
    (root / "datasets").symlink_to(outside, target_is_directory=True)
    (root / "notes.txt").symlink_to("/etc/passwd")
    submission = load_submission(root)
    assert dict(submission.files) == {"layers.py": LAYERS}
    assert submission.ignored == ("datasets", "notes.txt")


def test_folder_ignores_other_files_and_debris(tmp_path: Path) -> None:
    files = {
        **COURSE_LAYOUT,
        "assignment2/sitecustomize.py": b"raise SystemExit",
        "assignment2/cs231n/.ipynb_checkpoints/layers.py": b"stale",
        "__MACOSX/assignment2/cs231n/optim.py": b"junk",
        "assignment2/cs231n/._fc_net.py": b"junk",
    }
    submission = load_submission(make_tree(tmp_path / "upload", files))
    assert submission.files["layers.py"] == LAYERS
    assert submission.ignored == ("assignment2/sitecustomize.py",)


def test_folder_duplicates_follow_the_zip_rules(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "upload", {"old/layers.py": b"old = 1\n", "new/cs231n/layers.py": LAYERS})
    assert load_submission(root).origins == {"layers.py": "new/cs231n/layers.py"}
    make_tree(root, {"newer/cs231n/layers.py": LAYERS})
    assert "'new/cs231n/layers.py' and 'newer/cs231n/layers.py'" in rejection(root)


def test_folder_with_too_many_entries_is_rejected(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path / "upload", {"layers.py": LAYERS, **{f"junk/{index}": b"" for index in range(30)}}
    )
    assert "more than 20 files and folders" in rejection(root, caps(max_entries=20))


def test_folder_nested_too_deep_is_rejected(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "upload", {"/".join(["d"] * 6) + "/layers.py": LAYERS})
    assert "nested more than 5 folders deep" in rejection(root, caps(max_depth=5))
    assert load_submission(root, caps(max_depth=6)).files == {"layers.py": LAYERS}


def test_folder_graded_file_above_cap_is_rejected(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "upload", {"cs231n/layers.py": b" " * 2048})
    message = rejection(root, caps(max_file_bytes=1024))
    assert "'cs231n/layers.py' is larger than the 1 KB limit for one file" in message


def test_folder_graded_files_above_upload_limit_are_rejected(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "upload", {"layers.py": b" " * 600, "optim.py": b" " * 600})
    assert "larger than the 1 KB limit" in rejection(root, caps(max_upload_bytes=1024))


def test_folder_fifo_named_like_a_graded_file_is_rejected(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "upload", {"optim.py": OPTIM})
    os.mkfifo(root / "layers.py")
    assert "'layers.py' is not a regular file" in rejection(root)


def test_empty_folder_lists_what_was_expected(tmp_path: Path) -> None:
    (tmp_path / "upload").mkdir()
    assert "no graded file found" in rejection(tmp_path / "upload")


# ---- loose files -------------------------------------------------------------------------------------------


def test_loose_graded_file_is_the_only_file(tmp_path: Path) -> None:
    (tmp_path / "layers.py").write_bytes(LAYERS)
    submission = load_submission(tmp_path / "layers.py")
    assert submission == Submission(
        files={"layers.py": LAYERS}, origins={"layers.py": "layers.py"}, ignored=()
    )
    assert submission.missing == ("fc_net.py", "optim.py")


def test_loose_graded_file_that_is_not_utf8_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "optim.py").write_bytes(b"\xff\xfe\xfa")
    assert "optim.py is not UTF-8 text" in rejection(tmp_path / "optim.py")


# ---- random names ------------------------------------------------------------------------------------------

NAME_PIECES = [
    "..",
    ".",
    "",
    "/",
    "\\",
    "\x00",
    "C:",
    "cs231n",
    "classifiers",
    "__MACOSX",
    "._x",
    *GRADED_FILES,
]
piece_names = st.lists(st.sampled_from(NAME_PIECES), min_size=1, max_size=6).map("".join)
text_names = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
joined_names = st.lists(st.one_of(st.sampled_from(NAME_PIECES), text_names), min_size=1, max_size=5).map(
    "/".join
)
entry_names = st.one_of(piece_names, text_names, joined_names)


def raw_entry_info(name: str) -> zipfile.ZipInfo:
    """An entry written with exactly this name: ZipInfo() would cut it at a NUL byte."""
    info = zipfile.ZipInfo()
    info.filename = name
    return info


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(entry_names, min_size=1, max_size=8))
def test_random_entry_names_never_escape(tmp_path: Path, names: list[str]) -> None:
    path = make_zip(tmp_path / "random.zip", [(raw_entry_info(name), LAYERS) for name in names])
    try:
        submission = load_submission(path)
    except UnusableSubmission:
        return
    for origin in submission.origins.values():
        assert ".." not in re.split(r"[/\\]", origin)
        assert not origin.startswith(("/", "\\"))
        assert "\x00" not in origin
        assert not re.match(r"^[A-Za-z]:", origin)
    assert set(submission.files) <= set(GRADED_FILES)
