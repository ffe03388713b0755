"""Points each single-bug fixture loses, per check target: where a bug costs points, and how many.

usage: python tests/tools/points_lost.py [--seed N] [--json FILE]   (local executor; about a minute)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script: the fixtures are imported as tests.fixtures...

from grader.assignments import get_assignment  # noqa: E402
from grader.engine.grading import grade_submission  # noqa: E402
from grader.intake.uploads import load_submission  # noqa: E402
from grader.sandbox_client.executor import LocalProcessExecutor  # noqa: E402
from tests.fixtures.submissions import buggy  # noqa: E402


def points_lost(seed: int) -> dict[str, dict[str, float]]:
    """fixture name -> check target -> points lost."""
    assignment = get_assignment("cs231n-a2-fc")
    table: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in buggy.BUGS:
            folder = buggy.materialize(name, Path(tmp))
            report = grade_submission(
                load_submission(folder), assignment, seed=seed, executor=LocalProcessExecutor()
            )
            lost: dict[str, float] = defaultdict(float)
            for check in report.checks:
                if check.score < check.max_score:
                    lost[check.target] += round(check.max_score - check.score, 4)
            table[name] = dict(lost)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    table = points_lost(args.seed)
    for name, lost in table.items():
        where = ", ".join(f"{target} {points:g}" for target, points in sorted(lost.items()))
        print(f"{name:32s} {sum(lost.values()):6.2f}  {where}")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
