"""How to run one probe: call the course API of a set of modules on given inputs, return raw arrays.

This file runs on both sides of the trust boundary with different modules: inside the sandbox with the
student's modules, and in the trusted grader with the reference (and its mistake variants). Using the
same recipe on both sides is what makes "compare with the reference on the same inputs" exact.
Standard library and numpy only (the sandbox image has nothing else); must work with numpy 1.24 and 2.x.
"""

from __future__ import annotations

import copy
import re
import struct
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]
JsonDict = dict[str, Any]

# The result stream between the sandbox's runner and the trusted side is defined here, once, because
# this is the one module both sides import. A frame: magic, probe index, header length, payload length,
# then the JSON header and the npz payload. An empty frame with READY_INDEX says the runner has its job.
FRAME = struct.Struct(">8sIII")
FRAME_MAGIC = b"\x00GRADER1"
READY_INDEX = 0xFFFFFFFF
MAX_RESULT_BYTES = 4 * 1024 * 1024  # one probe's arrays; the largest real result is ~2 MB
# Terminal escapes, C0/C1 controls and lone surrogates: never shown to a person, whichever side cleans.
UNPRINTABLE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")

SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
MAX_OUTPUTS = 200


class InvalidOutput(Exception):
    """A value the student's code returned cannot be turned into a plain numeric array."""


class RecipeResult:
    """Raw outputs of one probe; `invalid` says why an output could not be recorded."""

    def __init__(self) -> None:
        self.arrays: Arrays = {}
        self.invalid: dict[str, str] = {}

    def record(self, name: str, value: Any) -> None:
        if len(self.arrays) + len(self.invalid) >= MAX_OUTPUTS:
            return
        try:
            self.arrays[name] = as_plain_array(value)
        except InvalidOutput as exc:
            self.invalid[name] = str(exc)


def as_plain_array(value: Any) -> np.ndarray:
    """A copy of `value` as a base-class numeric ndarray, or InvalidOutput."""
    if isinstance(value, np.ndarray):
        # subok=False strips ndarray subclasses and whatever methods they rigged.
        array = np.array(value, subok=False, copy=True)
    elif isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        array = np.array(float(value))
    elif value is None:
        raise InvalidOutput("returned None (is the function still a stub?)")
    else:
        raise InvalidOutput(f"returned a {type(value).__name__}, expected a numpy array")
    if array.dtype.kind not in "biuf":
        raise InvalidOutput(f"returned an array of dtype {array.dtype}, expected numbers")
    return array


def _unpack(value: Any, count: int, what: str) -> tuple[Any, ...]:
    """The values a function returned; `return [out, cache]` works in the notebook, so a list does too."""
    if count == 1 and not isinstance(value, tuple):
        return (value,)
    if not isinstance(value, (tuple, list)) or len(value) != count:
        raise TypeError(f"{what} should return a tuple of {count} values, got {type(value).__name__}")
    return tuple(value)


def _fresh(inputs: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    # Every call gets its own copy: student code that writes into its inputs must not change later calls.
    return inputs[name].copy()


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
        grads = _unpack(backward(_fresh(inputs, "dout"), cache), len(options["grads"]), options["backward"])
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
            param[key] = _fresh(inputs, input_name)
    cache: Any = None
    out: Any = None
    for x_name, mode in options["passes"]:
        args: list[Any] = [_fresh(inputs, x_name)]
        args += [_fresh(inputs, name) for name in options.get("extra_args", [])]
        if param is not None:
            if mode is not None:
                param["mode"] = mode
            args.append(param)
        out, cache = _unpack(forward(*args), 2, options["function"])
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
    loss, dx = _unpack(function(_fresh(inputs, "x"), _fresh(inputs, "y")), 2, options["function"])
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
            config[name[len("config_") :]] = _fresh(inputs, name)
    w = _fresh(inputs, "w")
    dws = inputs["dw"]
    steps: list[np.ndarray] = []
    for step in range(dws.shape[0]):
        w, config = _unpack(update(w, dws[step].copy(), config), 2, options["function"])
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


def _build_model(mods: Any, inputs: Mapping[str, np.ndarray], options: JsonDict) -> Any:
    kwargs = dict(options["model"])
    kwargs["dtype"] = getattr(np, kwargs.get("dtype", "float64"))
    np.random.seed(options.get("init_seed", 0))
    model = mods.fc_net.FullyConnectedNet(**kwargs)
    for name in inputs:
        if name.startswith("param_"):
            model.params[name[len("param_") :]] = _fresh(inputs, name)
    return model


def _record_grads(result: RecipeResult, grads: Any) -> None:
    if not isinstance(grads, dict):
        raise TypeError(
            f"loss(X, y) should return (loss, grads) with grads a dict, got {type(grads).__name__}"
        )
    for name, value in grads.items():
        if isinstance(name, str) and SAFE_NAME.match(name):
            result.record(f"grad_{name}", value)


def model_init(mods: Any, inputs: Mapping[str, np.ndarray], options: JsonDict) -> RecipeResult:
    """Construct FullyConnectedNet after np.random.seed(init_seed) and report every parameter."""
    result = RecipeResult()
    model = _build_model(mods, {}, options)
    for name, value in model.params.items():
        if isinstance(name, str) and SAFE_NAME.match(name):
            result.record(f"param_{name}", value)
    return result


def model_loss(mods: Any, inputs: Mapping[str, np.ndarray], options: JsonDict) -> RecipeResult:
    """Set the given parameters, then run `ops` in order: "loss" -> loss, grads; "scores" -> scores."""
    result = RecipeResult()
    model = _build_model(mods, inputs, options)
    for op in options["ops"]:
        if op == "loss":
            loss, grads = _unpack(model.loss(_fresh(inputs, "X"), _fresh(inputs, "y")), 2, "loss(X, y)")
            result.record("loss", loss)
            _record_grads(result, grads)
        else:
            result.record("scores", model.loss(_fresh(inputs, "X")))
    return result


def model_numeric(mods: Any, inputs: Mapping[str, np.ndarray], options: JsonDict) -> RecipeResult:
    """The model's loss at the given parameters and at the perturbations the trusted side chose.

    options: perturb ([param name, flat index] ...), h. Outputs: loss, grad_*, plus, minus, repeat (the
    loss at the unperturbed parameters once more, to see whether the loss is deterministic).
    """
    result = RecipeResult()
    model = _build_model(mods, inputs, options)
    X, y = inputs["X"], inputs["y"]

    def loss_at() -> float:
        value = _unpack(model.loss(X.copy(), y.copy()), 2, "loss(X, y)")[0]
        return float(as_plain_array(value))

    loss, grads = _unpack(model.loss(X.copy(), y.copy()), 2, "loss(X, y)")
    result.record("loss", loss)
    _record_grads(result, grads)
    h = float(options["h"])
    plus, minus = [], []
    for name, index in options["perturb"]:
        flat = model.params[name].reshape(-1)  # a view: writing into it moves the parameter
        original = flat[index]
        flat[index] = original + h
        plus.append(loss_at())
        flat[index] = original - h
        minus.append(loss_at())
        flat[index] = original
    result.record("plus", np.array(plus))
    result.record("minus", np.array(minus))
    result.record("repeat", loss_at())
    return result


def composed_model(mods: Any, inputs: Mapping[str, np.ndarray], options: JsonDict) -> RecipeResult:
    """The course's architecture built from the student's own layer functions: what the student's model
    computes when its code is right but its layers are not (a bug then costs points once, in the layer).

    {affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax, with the parameters
    given as param_<name> inputs; runs `ops` as model_loss does. options["composition"]: hidden_layers,
    normalization ("batchnorm", "layernorm" or None), norm_backward (the normalization's backward
    function), dropout (the dropout_param of the layers, or None), dtype. The L2 penalty is left out:
    the trusted side adds it. It calls layers.py only; the runner lets no fc_net be imported here.
    """
    result = RecipeResult()
    net = ComposedNet(mods.layers, options["composition"], inputs)
    for op in options["ops"]:
        X = _fresh(inputs, "X").astype(net.dtype)
        if op == "loss":
            loss, grads = net.loss(X, _fresh(inputs, "y"))
            result.record("loss", loss)
            for name, value in grads.items():
                result.record(f"grad_{name}", value)
        else:
            result.record("scores", net.forward(X, "test")[0])
    return result


class ComposedNet:
    """The course's FullyConnectedNet as a composition of a layers module's functions."""

    def __init__(self, layers: Any, composition: JsonDict, inputs: Mapping[str, np.ndarray]) -> None:
        self.layers = layers
        self.dtype = getattr(np, composition.get("dtype", "float64"))
        self.norm: str | None = composition.get("normalization")
        self.norm_backward: str = composition.get("norm_backward") or f"{self.norm}_backward"
        self.hidden = int(composition["hidden_layers"])
        self.dropout: dict[str, Any] | None = (
            dict(composition["dropout"]) if composition.get("dropout") else None
        )
        self.norm_params: list[dict[str, Any]] = [
            {"mode": "train"} if self.norm == "batchnorm" else {} for _ in range(self.hidden)
        ]
        self.params = {
            name[len("param_") :]: _fresh(inputs, name).astype(self.dtype)
            for name in inputs
            if name.startswith("param_")
        }

    def call(self, name: str, count: int, *args: Any) -> tuple[Any, ...]:
        return _unpack(getattr(self.layers, name)(*args), count, name)

    def forward(self, X: np.ndarray, mode: str) -> tuple[Any, list[tuple[Any, ...]], Any]:
        """Scores and the caches of every block, with the student's forward functions."""
        params, caches, out = self.params, [], X
        for layer in range(1, self.hidden + 1):
            out, fc_cache = self.call("affine_forward", 2, out, params[f"W{layer}"], params[f"b{layer}"])
            norm_cache = dropout_cache = None
            if self.norm is not None:
                norm_param = self.norm_params[layer - 1]
                if self.norm == "batchnorm":
                    norm_param["mode"] = mode
                gamma, beta = params[f"gamma{layer}"], params[f"beta{layer}"]
                out, norm_cache = self.call(f"{self.norm}_forward", 2, out, gamma, beta, norm_param)
            out, relu_cache = self.call("relu_forward", 2, out)
            if self.dropout is not None:
                self.dropout["mode"] = mode
                out, dropout_cache = self.call("dropout_forward", 2, out, self.dropout)
            caches.append((fc_cache, norm_cache, relu_cache, dropout_cache))
        last = self.hidden + 1
        scores, last_cache = self.call("affine_forward", 2, out, params[f"W{last}"], params[f"b{last}"])
        return scores, caches, last_cache

    def loss(self, X: np.ndarray, y: np.ndarray) -> tuple[Any, dict[str, Any]]:
        scores, caches, last_cache = self.forward(X, "train")
        loss, dscores = self.call("softmax_loss", 2, scores, y)
        last = self.hidden + 1
        grads: dict[str, Any] = {}
        dout, grads[f"W{last}"], grads[f"b{last}"] = self.call("affine_backward", 3, dscores, last_cache)
        for layer in range(self.hidden, 0, -1):
            fc_cache, norm_cache, relu_cache, dropout_cache = caches[layer - 1]
            if self.dropout is not None:
                (dout,) = self.call("dropout_backward", 1, dout, dropout_cache)
            (dout,) = self.call("relu_backward", 1, dout, relu_cache)
            if self.norm is not None:
                dout, grads[f"gamma{layer}"], grads[f"beta{layer}"] = self.call(
                    self.norm_backward, 3, dout, norm_cache
                )
            dout, grads[f"W{layer}"], grads[f"b{layer}"] = self.call("affine_backward", 3, dout, fc_cache)
        return loss, grads


def train(mods: Any, inputs: Mapping[str, np.ndarray], options: JsonDict) -> RecipeResult:
    """Train the model with the course Solver and the module's update rule; report losses and parameters."""
    result = RecipeResult()
    model = _build_model(mods, {}, options)
    data = {name: _fresh(inputs, name) for name in ("X_train", "y_train", "X_val", "y_val")}
    solver_options = copy.deepcopy(options["solver"])
    solver_options["verbose"] = False
    np.random.seed(options.get("train_seed", 0))
    solver = mods.solver.Solver(model, data, **solver_options)
    solver.train()
    result.record("loss_history", np.array([float(v) for v in solver.loss_history]))
    # The trained parameters go out too: the trusted side measures the accuracy itself, with the
    # reference network, instead of believing a number computed next to the student's code.
    for name, value in model.params.items():
        if isinstance(name, str) and SAFE_NAME.match(name):
            result.record(f"param_{name}", value)
    return result


def import_only(mods: Any, inputs: Mapping[str, np.ndarray], options: JsonDict) -> RecipeResult:
    """Nothing but the imports; used to learn once whether a module can be imported at all."""
    return RecipeResult()


RECIPES: dict[str, Callable[[Any, Mapping[str, np.ndarray], JsonDict], RecipeResult]] = {
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
