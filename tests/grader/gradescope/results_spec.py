"""Gradescope's results.json, as its autograder specification publishes it
(https://gradescope-autograders.readthedocs.io/en/latest/specs/#output-format): the keys each level may
have, their types and their allowed values. `problems(document)` lists every way a document breaks it."""

from __future__ import annotations

import math
from typing import Any

VISIBILITIES = frozenset({"hidden", "after_due_date", "after_published", "visible"})
FORMATS = frozenset({"text", "html", "simple_format", "md", "ansi"})
STATUSES = frozenset({"passed", "failed"})
ORDERS = frozenset({"asc", "desc"})
NUMBER, TEXT, OBJECT, LIST = "number", "string", "object", "list"

TOP_LEVEL: dict[str, str | frozenset[str]] = {
    "score": NUMBER,  # optional, but required if a test has none
    "execution_time": NUMBER,  # seconds
    "output": TEXT,
    "output_format": FORMATS,
    "test_output_format": FORMATS,
    "test_name_format": FORMATS,
    "visibility": VISIBILITIES,
    "stdout_visibility": VISIBILITIES,
    "extra_data": OBJECT,
    "tests": LIST,
    "leaderboard": LIST,
}
TEST: dict[str, str | frozenset[str]] = {
    "score": NUMBER,
    "max_score": NUMBER,
    "status": STATUSES,
    "name": TEXT,
    "name_format": FORMATS,
    "number": TEXT,
    "output": TEXT,
    "output_format": FORMATS,
    "tags": LIST,
    "visibility": VISIBILITIES,
    "extra_data": OBJECT,
}
LEADERBOARD: dict[str, str | frozenset[str]] = {"name": TEXT, "value": NUMBER, "order": ORDERS}


def _wrong(value: Any, kind: str | frozenset[str]) -> str | None:
    """Why `value` is not of `kind`, or None."""
    if isinstance(kind, frozenset):
        return None if value in kind else f"{value!r} is not one of {sorted(kind)}"
    if kind == NUMBER:
        fine = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return None if fine else f"{value!r} is not a finite number"
    expected = {TEXT: str, OBJECT: dict, LIST: list}[kind]
    return None if isinstance(value, expected) else f"{value!r} is not a {kind}"


def _check(where: str, item: Any, fields: dict[str, str | frozenset[str]]) -> list[str]:
    if not isinstance(item, dict):
        return [f"{where}: not an object"]
    found = [f"{where}.{key}: not a field of the specification" for key in item if key not in fields]
    for key, kind in fields.items():
        if key in item and (why := _wrong(item[key], kind)):
            found.append(f"{where}.{key}: {why}")
    return found


def problems(document: Any) -> list[str]:
    """Every way `document` breaks the published format (empty: it is a valid results.json)."""
    found = _check("results", document, TOP_LEVEL)
    if found and found[0] == "results: not an object":
        return found
    tests = document.get("tests", [])
    for position, test in enumerate(tests if isinstance(tests, list) else []):
        found += _check(f"tests[{position}]", test, TEST)
        if isinstance(test, dict) and not all(isinstance(tag, str) for tag in test.get("tags", [])):
            found.append(f"tests[{position}].tags: not a list of strings")
    for position, entry in enumerate(document.get("leaderboard", []) or []):
        value = entry.get("value") if isinstance(entry, dict) else None
        fields = {**LEADERBOARD, "value": TEXT} if isinstance(value, str) else LEADERBOARD
        found += _check(f"leaderboard[{position}]", entry, fields)
    if "score" not in document and not (
        isinstance(tests, list) and tests and all(isinstance(t, dict) and "score" in t for t in tests)
    ):
        found.append("results.score: required when a test has no score")
    return found


def assert_valid(document: Any) -> None:
    found = problems(document)
    assert not found, "\n".join(found)


def assert_scores_add_up(document: dict[str, Any]) -> None:
    """The tests' scores add up to the document's score (to the report's 4 decimals, exactly)."""
    total = math.fsum(test["score"] for test in document["tests"])
    assert document["score"] == round(document["score"], 4)
    assert abs(total - document["score"]) < 1e-9, (total, document["score"])
    for test in document["tests"]:
        assert 0 <= test["score"] <= test["max_score"], test
        if test["max_score"] > 0:
            assert (test["status"] == "passed") == (test["score"] >= test["max_score"]), test
