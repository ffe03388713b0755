"""The assignment catalogs the grader knows, by name."""

from __future__ import annotations

from grader.engine.assignment import Assignment


class UnknownAssignment(Exception):
    """No catalog has that name."""


def known_assignments() -> dict[str, Assignment]:
    """Every catalog by name; the editions of one assignment are catalogs of their own."""
    from grader.assignments import cs231n_a2_fc

    return dict(cs231n_a2_fc.ASSIGNMENTS)


def get_assignment(name: str) -> Assignment:
    catalogs = known_assignments()
    if name not in catalogs:
        raise UnknownAssignment(f"unknown assignment {name!r}; known: {', '.join(sorted(catalogs))}")
    return catalogs[name]
