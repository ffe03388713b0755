"""The assignment catalogs the grader knows, by name."""

from __future__ import annotations

from grader.engine.assignment import Assignment


class UnknownAssignment(Exception):
    """No catalog has that name."""


def get_assignment(name: str) -> Assignment:
    from grader.assignments import cs231n_a2_fc

    catalogs = {cs231n_a2_fc.ASSIGNMENT.name: cs231n_a2_fc.ASSIGNMENT}
    if name not in catalogs:
        raise UnknownAssignment(f"unknown assignment {name!r}; known: {', '.join(sorted(catalogs))}")
    return catalogs[name]
