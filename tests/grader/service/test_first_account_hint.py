"""What `grader serve` prints about the first account: the command, while no account exists, and nothing
once one does; the command names the program as the shell that started it would find it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from grader.service.accounts.service import create_user
from grader.service.server import _grader_command, first_account_hint


def test_the_hint_is_shown_until_there_is_an_account(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    hint = first_account_hint(database_url)
    assert hint is not None
    assert "users create you@example.org" in hint and "--admin --password-stdin" in hint
    with sessions.begin() as session:
        create_user(session, email="ada@example.org", name="Ada", password="a-long-password-1", is_admin=True)
    assert first_account_hint(database_url) is None


def _program(folder: Path) -> Path:
    folder.mkdir(parents=True)
    program = folder / "grader"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    return program


def test_a_program_off_the_path_is_named_by_its_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = _program(tmp_path / ".venv" / "bin")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setattr(sys, "argv", [str(program), "serve"])
    assert _grader_command() == os.path.join(".venv", "bin", "grader")


def test_a_program_on_the_path_is_named_grader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = _program(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{program.parent}:/usr/bin:/bin")
    monkeypatch.setattr(sys, "argv", [str(program), "serve"])
    assert _grader_command() == "grader"
    monkeypatch.setattr(sys, "argv", ["-c"])  # not started as the console script
    assert _grader_command() == "grader"
