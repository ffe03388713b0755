"""Runs in a probe's process (on the student's modules) and in the grader (on the reference's), trusting
neither: recipes of one layer function, loss function or update rule, recording raw arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from sandbox.recipes.results import JsonDict, RecipeResult, as_plain_array, fresh, unpack


def layer(mods: Any, inputs: Mapping[str, np.ndarray], options: JsonDict) -> RecipeResult:
    """Forward passes of one layer function (train/test modes), then optionally its backward pass.

    options: function, extra_args (input names after x), param (dict of scalars or None),
    param_arrays (input name -> param key), passes ([x input name, mode or None] ...),
    backward (function name or None), grads (names of the backward's return values),
    param_outputs (param keys to report after the passes), directions ({"names": inputs, "count": K,
    "seed": s}) and h: the forward passes are run again with each named input moved by +h and -h times
    each of K random directions (direction(): the trusted side draws the same ones), and "plus"/"minus"
    report sum(out * dout) each time, from which the trusted side forms directional derivatives of the
    forward pass.
    """
    result = RecipeResult()
    forward: Callable[..., Any] = getattr(mods.layers, options["function"])
    out, cache, param = _forward_passes(forward, inputs, options)
    result.record("out", out)
    if param is not None:
        for key in options.get("param_outputs", []):
            if key in param:
                result.record(key, param[key])
    if options.get("backward"):
        backward: Callable[..., Any] = getattr(mods.layers, options["backward"])
        grads = unpack(backward(fresh(inputs, "dout"), cache), len(options["grads"]), options["backward"])
        for name, value in zip(options["grads"], grads, strict=True):
            result.record(name, value)
    if options.get("directions"):
        plus, minus = _perturbed_forward(forward, inputs, options)
        result.record("plus", plus)
        result.record("minus", minus)
    return result


def _forward_passes(
    forward: Callable[..., Any], inputs: Mapping[str, np.ndarray], options: JsonDict
) -> tuple[Any, Any, dict[str, Any] | None]:
    """Run the passes in order with one param dict (running averages carry over); the last out and cache."""
    param: dict[str, Any] | None = None
    if options.get("param") is not None:
        param = dict(options["param"])
        for input_name, key in options.get("param_arrays", {}).items():
            param[key] = fresh(inputs, input_name)
    cache: Any = None
    out: Any = None
    for x_name, mode in options["passes"]:
        args: list[Any] = [fresh(inputs, x_name)]
        args += [fresh(inputs, name) for name in options.get("extra_args", [])]
        if param is not None:
            if mode is not None:
                param["mode"] = mode
            args.append(param)
        out, cache = unpack(forward(*args), 2, options["function"])
    return out, cache, param


def direction(seed: int, input_index: int, k: int, shape: tuple[int, ...]) -> np.ndarray:
    """The k-th direction in which input number `input_index` of a probe is moved: the same on both sides."""
    return np.random.default_rng([seed, input_index, k]).standard_normal(shape)


def _perturbed_forward(
    forward: Callable[..., Any], inputs: Mapping[str, np.ndarray], options: JsonDict
) -> tuple[np.ndarray, np.ndarray]:
    """sum(out * dout) with each named input moved by +h and by -h times each direction, from scratch."""
    h, dout, spec = float(options["h"]), inputs["dout"], options["directions"]
    sums: dict[float, list[float]] = {h: [], -h: []}
    for input_index, name in enumerate(spec["names"]):
        for k in range(int(spec["count"])):
            toward = direction(int(spec["seed"]), input_index, k, inputs[name].shape)
            for step in (h, -h):
                moved = {**inputs, name: inputs[name] + step * toward}
                out = as_plain_array(_forward_passes(forward, moved, options)[0])
                sums[step].append(float(np.sum(out * dout)) if out.shape == dout.shape else float("nan"))
    return np.array(sums[h]), np.array(sums[-h])


def loss_function(mods: Any, inputs: Mapping[str, np.ndarray], options: JsonDict) -> RecipeResult:
    """A loss layer: loss, dx = function(x, y)."""
    result = RecipeResult()
    function = getattr(mods.layers, options["function"])
    loss, dx = unpack(function(fresh(inputs, "x"), fresh(inputs, "y")), 2, options["function"])
    result.record("loss", loss)
    result.record("dx", dx)
    return result


def optimizer(mods: Any, inputs: Mapping[str, np.ndarray], options: JsonDict) -> RecipeResult:
    """Several steps of an update rule, carrying `config` from one step to the next as the Solver does.

    inputs: w, dw (steps, *w.shape), config_<key> initial state arrays. options: function, config
    (scalars), state_keys (config keys to report after the last step).
    """
    result = RecipeResult()
    update = getattr(mods.optim, options["function"])
    config: Any = dict(options.get("config", {}))
    for name in inputs:
        if name.startswith("config_"):
            config[name[len("config_") :]] = fresh(inputs, name)
    w = fresh(inputs, "w")
    dws = inputs["dw"]
    steps: list[np.ndarray] = []
    for step in range(dws.shape[0]):
        w, config = unpack(update(w, dws[step].copy(), config), 2, options["function"])
        steps.append(as_plain_array(w))
        if not isinstance(config, dict):
            raise TypeError(f"{options['function']} should return (next_w, config) with config a dict")
    if all(step.shape == steps[0].shape for step in steps):
        result.record("w", np.stack(steps))
    else:
        result.invalid["w"] = "next_w changed shape between steps"
    for key in options.get("state_keys", []):
        if key in config:
            result.record(f"config_{key}", config[key])
    return result
