"""Runs in a probe's process (on the student's modules) and in the grader (on the reference's): recipes.

How to run one probe: call the course API of a set of modules on given inputs, return raw arrays.

This package runs on both sides of the trust boundary with different modules: inside the sandbox with the
student's modules, and in the trusted grader with the reference (and its mistake variants). Using the
same recipe on both sides is what makes "compare with the reference on the same inputs" exact.
Standard library and numpy only (the sandbox image has nothing else); must work with numpy 1.24 and 2.x.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from sandbox.recipes.layers import direction, layer, loss_function, optimizer
from sandbox.recipes.models import (
    ComposedNet,
    composed_model,
    import_only,
    model_init,
    model_loss,
    model_numeric,
    train,
)
from sandbox.recipes.results import InvalidOutput, JsonDict, RecipeResult

Recipe = Callable[[Any, Mapping[str, np.ndarray], JsonDict], RecipeResult]
RECIPES: dict[str, Recipe] = {
    "layer": layer,
    "loss_function": loss_function,
    "optimizer": optimizer,
    "model_init": model_init,
    "model_loss": model_loss,
    "model_numeric": model_numeric,
    "train": train,
    "composed_model": composed_model,
    "import": import_only,
}

__all__ = ["RECIPES", "ComposedNet", "InvalidOutput", "Recipe", "RecipeResult", "direction"]
