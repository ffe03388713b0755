"""CS231n assignment 2, the fully-connected part: layers, normalization, dropout, update rules, the model."""

from __future__ import annotations

import importlib
import types

from grader.assignments.cs231n_a2_fc.catalog import QUESTIONS, build_checks
from grader.assignments.cs231n_a2_fc.mutants import MISTAKES, MUTANTS
from grader.engine.assignment import Assignment


def reference_modules() -> types.SimpleNamespace:
    """The trusted reference, shaped like the student's package as the recipes see it."""
    # layer_utils, solver and gradient_check are the course's files, found through reference.__path__.
    names = {
        "layers": "layers",
        "optim": "optim",
        "fc_net": "classifiers.fc_net",
        "layer_utils": "layer_utils",
        "solver": "solver",
        "gradient_check": "gradient_check",
    }
    return types.SimpleNamespace(
        **{key: importlib.import_module(f"reference.{name}") for key, name in names.items()}
    )


ASSIGNMENT = Assignment(
    name="cs231n-a2-fc",
    title="CS231n assignment 2: fully-connected nets, batch/layer norm, dropout, update rules",
    package="cs231n",
    package_aliases=("daseCV",),
    questions=QUESTIONS,
    mistakes=MISTAKES,
    mutants=MUTANTS,
    build_checks=build_checks,
    reference_modules=reference_modules,
)
