"""CS231n assignment 2, the fully-connected part: layers, normalization, dropout, update rules, the model.

One catalog, in three editions of the course's API (2021 onwards, 2018 to 2020, 2017 and earlier).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from grader.assignments.cs231n_a2_fc.catalog import QUESTIONS, build_checks
from grader.assignments.cs231n_a2_fc.editions import EDITIONS, Edition, edition_mismatch
from grader.assignments.cs231n_a2_fc.mutants import MISTAKES, MISTAKES_P_DROPS, MUTANTS
from grader.engine.assignment import Assignment
from reference.editions import reference_modules


def edition_notes(edition: Edition, files: Mapping[str, bytes]) -> list[str]:
    """What a student should know before reading the checks: their model takes another year's API."""
    note = edition_mismatch(files.get("fc_net.py"), edition)
    return [note] if note else []


def assignment(edition: Edition) -> Assignment:
    return Assignment(
        name=edition.name,
        title="CS231n assignment 2: fully-connected nets, batch/layer norm, dropout, update rules"
        f" ({edition.years} edition)",
        package="cs231n",
        package_aliases=("daseCV",),
        questions=QUESTIONS,
        mistakes=MISTAKES_P_DROPS if edition.p_drops else MISTAKES,
        mutants=MUTANTS,
        build_checks=functools.partial(build_checks, edition=edition),
        reference_modules=functools.partial(reference_modules, edition.name),
        notes=functools.partial(edition_notes, edition),
    )


ASSIGNMENTS = {name: assignment(edition) for name, edition in EDITIONS.items()}
ASSIGNMENT = ASSIGNMENTS["cs231n-a2-fc"]
