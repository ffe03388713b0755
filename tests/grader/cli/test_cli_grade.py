"""`grader grade` and `grader checks` as a user runs them: exit codes, the JSON document, the tables."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grader import EXAMPLE_SUBMISSION
from grader.cli import app

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "submissions"
runner = CliRunner()


def zip_folder(folder: Path, destination: Path) -> Path:
    with zipfile.ZipFile(destination, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder.parent).as_posix())
    return destination


@pytest.mark.usefixtures("sandbox_image")  # the default sandbox: Docker
def test_grade_zip_prints_exactly_one_json_document(tmp_path: Path) -> None:
    upload = zip_folder(FIXTURES / "correct_dasecv_zip" / "assignment2", tmp_path / "submission.zip")
    result = runner.invoke(app, ["grade", str(upload), "--seed", "5", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {
        "assignment",
        "seed",
        "score",
        "max_score",
        "questions",
        "checks",
        "sandbox",
        "notes",
    }
    assert report["notes"] == []
    assert report["assignment"] == "cs231n-a2-fc" and report["seed"] == 5
    assert report["score"] == report["max_score"] > 0
    assert [q["name"][:2] for q in report["questions"]] == ["Q1", "Q2", "Q3"]
    for check in report["checks"]:
        assert set(check) == {
            "id",
            "target",
            "question",
            "status",
            "score",
            "max_score",
            "visibility",
            "message",
            "diagnosis",
            "errors",
        }
        assert check["status"] == "passed" and check["visibility"] in ("visible", "hidden")
        assert check["target"].split(".")[0] in ("layers", "optim", "fc_net")
        assert all(isinstance(value, float) for value in check["errors"].values())


@pytest.mark.usefixtures("sandbox_image")  # the default sandbox: Docker
def test_grade_prints_tables_and_feedback_for_a_buggy_submission(tmp_path: Path) -> None:
    folder = tmp_path / "sub"
    folder.mkdir()
    for name in ("layers.py", "optim.py", "fc_net.py"):
        text = (EXAMPLE_SUBMISSION / name).read_text()
        if name == "layers.py":
            text = text.replace("exp_scores = np.exp(shifted)", "exp_scores = np.exp(x)")
        (folder / name).write_text(text)
    result = runner.invoke(app, ["grade", str(folder), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "Q1 Fully-connected nets and update rules" in result.stdout
    assert "layers.softmax_loss.large_scores" in result.stdout
    assert "softmax_not_stable" in result.stdout and "subtract each row's maximum" in result.stdout


@pytest.mark.usefixtures("sandbox_image")  # the default sandbox: Docker
def test_random_seed_is_reported_when_not_given(tmp_path: Path) -> None:
    result = runner.invoke(app, ["grade", str(EXAMPLE_SUBMISSION), "--json"])
    assert result.exit_code == 0
    assert isinstance(json.loads(result.stdout)["seed"], int)


@pytest.mark.parametrize(
    ("make_upload", "message"),
    [
        (lambda tmp: tmp / "missing.zip", "does not exist"),
        (lambda tmp: (tmp / "notes.txt").write_text("hi") and tmp / "notes.txt", "zip"),
        (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "layers.py"),
    ],
)
def test_unusable_input_exits_2_with_a_message(tmp_path: Path, make_upload, message: str) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["grade", str(make_upload(tmp_path)), "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr


def test_hostile_zip_exits_2(tmp_path: Path) -> None:
    upload = tmp_path / "evil.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        archive.writestr("../layers.py", "import os")
    result = runner.invoke(app, ["grade", str(upload)])
    assert result.exit_code == 2
    assert "../layers.py" in result.stderr


def test_unknown_assignment_exits_2() -> None:
    result = runner.invoke(app, ["grade", str(EXAMPLE_SUBMISSION), "--assignment", "cs231n-a9"])
    assert result.exit_code == 2
    assert "unknown assignment" in result.stderr


def test_sandbox_that_cannot_start_exits_3(monkeypatch: pytest.MonkeyPatch) -> None:
    from grader.settings import get_settings

    monkeypatch.setenv("GRADER_SANDBOX_PYTHON", "/nonexistent/python3")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["grade", str(EXAMPLE_SUBMISSION), "--sandbox", "process", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "sandbox could not run" in result.stderr


def test_checks_lists_the_catalog() -> None:
    result = runner.invoke(app, ["checks"])
    assert result.exit_code == 0
    for check_id in ("layers.batchnorm_forward.notebook", "optim.adam.steps", "fc_net.dropout"):
        assert check_id in result.stdout


@pytest.mark.parametrize("edition", ["cs231n-a2-fc", "cs231n-a2-fc-2018", "cs231n-a2-fc-2017"])
def test_checks_lists_each_edition_and_names_the_others(edition: str) -> None:
    result = runner.invoke(app, ["checks", "--assignment", edition])
    assert result.exit_code == 0, result.output
    assert "layers.dropout_forward.notebook" in result.output
    assert ("layers.layernorm_forward" in result.output) == (edition != "cs231n-a2-fc-2017")
    others = result.output.split("other editions:")[-1].split("(")[0]
    editions = {"cs231n-a2-fc", "cs231n-a2-fc-2018", "cs231n-a2-fc-2017"}
    assert {name.strip() for name in others.split(",")} == editions - {edition}
