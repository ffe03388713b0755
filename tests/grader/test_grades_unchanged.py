"""Every grade of the fixture corpus is bit-identical to the golden one (tests/tools/golden_reports.py):
the same seeds give the same reports, check by check, message by message."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.tools.golden_reports import Entry, comparable, corpus, corpus_grader, read_golden

GOLDEN = read_golden()

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def entries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Entry]:
    return corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def grade(sandbox_image: str) -> Iterator[Callable[[Entry], dict[str, Any]]]:
    with corpus_grader() as grade:
        yield grade


def test_the_corpus_is_the_recorded_one(entries: dict[str, Entry]) -> None:
    assert sorted(entries) == sorted(GOLDEN)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_the_grade_is_the_golden_one(
    name: str, entries: dict[str, Entry], grade: Callable[[Entry], dict[str, Any]]
) -> None:
    report, golden = comparable(grade(entries[name])), GOLDEN[name]

    differing = [
        (check["id"], {key: (check[key], then[key]) for key in check if check[key] != then[key]})
        for check, then in zip(report["checks"], golden["checks"], strict=False)
        if check != then
    ]
    assert differing == []
    assert report == golden


def test_a_changed_grade_would_be_seen(
    entries: dict[str, Entry], grade: Callable[[Entry], dict[str, Any]]
) -> None:
    """The control: the same upload graded with another seed differs from the golden report."""
    name = "correct/correct_course/seed7"
    other_seed = Entry(entries[name].path, entries[name].assignment, seed=8)
    assert comparable(grade(other_seed)) != GOLDEN[name]
