"""What a report may tell before its hidden checks are shown: which functions fail hidden checks only, and
the visible checks' messages without the lines that name them. The service's student view and the
Gradescope results share it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any


def hidden_only_failures(report: Mapping[str, Any]) -> set[str]:
    """The functions that fail hidden checks only: what a hidden result would tell."""

    def failing(visibility: str) -> set[str]:
        checks = report["checks"]
        return {c["target"] for c in checks if c["visibility"] == visibility and c["status"] != "passed"}

    return failing("hidden") - failing("visible")


def without_hidden_failures(checks: Sequence[dict[str, Any]], targets: set[str]) -> list[dict[str, Any]]:
    """Visible checks' messages name other functions that fail ("it relies on functions that fail their
    own checks: layers.relu_forward", "the exact gradient of your own relu_forward"); a line naming one
    that fails hidden checks only would reveal a hidden result, so it is left out."""
    if not targets:
        return list(checks)
    names = targets | {target.rsplit(".", 1)[-1] for target in targets}
    alternatives = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    mentions = re.compile(rf"(?<![\w.])(?:{alternatives})(?!\w)")
    kept = []
    for check in checks:
        lines = [line for line in check["message"].split("\n") if not mentions.search(line)]
        kept.append({**check, "message": "\n".join(lines)})
    return kept
