"""Runs in a probe's process (on the student's modules) and in the grader (on the reference's), trusting
neither: recipes of the model (FullyConnectedNet): initialization, loss and gradients, numeric gradients,
the course's architecture composed from the student's layers alone, and a short training run.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from sandbox.recipes.results import SAFE_NAME, JsonDict, RecipeResult, as_plain_array, fresh, unpack


def _build_model(mods: Any, inputs: Mapping[str, np.ndarray], options: JsonDict) -> Any:
    kwargs = dict(options["model"])
    kwargs["dtype"] = getattr(np, kwargs.get("dtype", "float64"))
    np.random.seed(options.get("init_seed", 0))
    model = mods.fc_net.FullyConnectedNet(**kwargs)
    for name in inputs:
        if name.startswith("param_"):
            model.params[name[len("param_") :]] = fresh(inputs, name)
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
            loss, grads = unpack(model.loss(fresh(inputs, "X"), fresh(inputs, "y")), 2, "loss(X, y)")
            result.record("loss", loss)
            _record_grads(result, grads)
        else:
            result.record("scores", model.loss(fresh(inputs, "X")))
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
        value = unpack(model.loss(X.copy(), y.copy()), 2, "loss(X, y)")[0]
        return float(as_plain_array(value))

    loss, grads = unpack(model.loss(X.copy(), y.copy()), 2, "loss(X, y)")
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
        X = fresh(inputs, "X").astype(net.dtype)
        if op == "loss":
            loss, grads = net.loss(X, fresh(inputs, "y"))
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
            name[len("param_") :]: fresh(inputs, name).astype(self.dtype)
            for name in inputs
            if name.startswith("param_")
        }

    def call(self, name: str, count: int, *args: Any) -> tuple[Any, ...]:
        return unpack(getattr(self.layers, name)(*args), count, name)

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
    data = {name: fresh(inputs, name) for name in ("X_train", "y_train", "X_val", "y_val")}
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
