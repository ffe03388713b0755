"""Every grade of the fixture corpus is bit-identical to the golden one (tests/tools/golden_reports.py):
the same seeds give the same reports, check by check, message by message.

The sandbox computes the same digits on every CPU (tests/sandbox/test_sandbox_image.py), so the reports
are expected bit for bit; only the measured errors are compared to within finite-difference noise
(NOISE), in case a machine still rounds one operation otherwise: such noise moves no score, status or
message, which stay exact."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.tools.golden_reports import SEED, Entry, comparable, corpus, corpus_grader, read_golden

GOLDEN = read_golden()
# Far below what any check's threshold tells apart; the differences between CPUs' code paths were <3e-8.
NOISE = 1e-7


def within_noise(errors: Any, then: Any) -> bool:
    """The same errors (a number, or a dict or list of them) up to finite-difference noise."""
    if isinstance(errors, dict) and isinstance(then, dict):
        return errors.keys() == then.keys() and all(within_noise(errors[k], then[k]) for k in errors)
    if isinstance(errors, list) and isinstance(then, list):
        return len(errors) == len(then) and all(map(within_noise, errors, then))
    if isinstance(errors, float | int) and isinstance(then, float | int):
        return abs(errors - then) <= NOISE
    return bool(errors == then)


def same_report(report: dict[str, Any], golden: dict[str, Any]) -> bool:
    checks, then = report["checks"], golden["checks"]
    rest, then_rest = ({k: v for k, v in r.items() if k != "checks"} for r in (report, golden))
    return rest == then_rest and len(checks) == len(then) and all(map(same_check, checks, then))


def same_check(check: dict[str, Any], then: dict[str, Any]) -> bool:
    rest, then_rest = ({k: v for k, v in c.items() if k != "errors"} for c in (check, then))
    return rest == then_rest and within_noise(check.get("errors"), then.get("errors"))


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
        (check["id"], {key: (check[key], then.get(key)) for key in check if check[key] != then.get(key)})
        for check, then in zip(report["checks"], golden["checks"], strict=False)
        if not same_check(check, then)
    ]
    assert differing == []
    assert same_report(report, golden)


def test_a_changed_grade_would_be_seen(
    entries: dict[str, Entry], grade: Callable[[Entry], dict[str, Any]]
) -> None:
    """The control: the same buggy upload graded with another seed (its errors measured on other inputs)
    differs from the golden report, even under the seed's own name."""
    name = "fixture/relu_backward_masks_dout"
    other_seed = Entry(entries[name].path, entries[name].assignment, seed=8)
    report = {**comparable(grade(other_seed)), "seed": SEED}
    assert same_report(GOLDEN[name], GOLDEN[name])
    assert not same_report(report, GOLDEN[name])


def test_noise_is_told_from_a_changed_error() -> None:
    check = {"id": "c", "score": 2.0, "errors": {"out": 2.2e-16, "dx": [3e-9, 0.5]}}
    assert same_check(check, {**check, "errors": {"out": 6.8e-17, "dx": [2.9e-8, 0.5]}})
    assert not same_check(check, {**check, "errors": {"out": 2.2e-16, "dx": [3e-9, 0.4999]}})
    assert not same_check(check, {**check, "errors": {"out": 2.2e-16}})
    assert not same_check(check, {**check, "score": 1.5})
