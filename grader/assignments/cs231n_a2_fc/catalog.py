"""The check catalog of cs231n-a2-fc: which function is called on which inputs, for how many points."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from grader.assignments.cs231n_a2_fc import cases
from grader.assignments.cs231n_a2_fc.editions import CURRENT, Edition
from grader.assignments.cs231n_a2_fc.judges import (
    BackwardPass,
    DropoutBackward,
    DropoutForward,
    ModelInit,
    NumericGradient,
    Overfits,
)
from grader.engine.checks import AgreesWithReference, Check, Judge, Visibility
from grader.engine.probes import Probe

Q1 = "Q1 Fully-connected nets and update rules"
Q2 = "Q2 Batch and layer normalization"
Q3 = "Q3 Dropout"
QUESTIONS = (Q1, Q2, Q3)

GRADS = {
    "affine": ["dx", "dw", "db"],
    "relu": ["dx"],
    "batchnorm": ["dx", "dgamma", "dbeta"],
    "layernorm": ["dx", "dgamma", "dbeta"],
    "dropout": ["dx"],
}
MODEL_LAYERS = (
    "layers.affine_forward",
    "layers.affine_backward",
    "layers.relu_forward",
    "layers.relu_backward",
    "layers.softmax_loss",
)
BN_LAYERS = ("layers.batchnorm_forward", "layers.batchnorm_backward", "layers.batchnorm_backward_alt")
LN_LAYERS = ("layers.layernorm_forward", "layers.layernorm_backward")
DROPOUT_LAYERS = ("layers.dropout_forward", "layers.dropout_backward")
AGREES = AgreesWithReference()
BACKWARD = BackwardPass()
# A backward pass is compared with directional derivatives of its forward along random directions: a
# wrong gradient, wherever it is wrong, changes <gradient, direction> for almost every direction.
NUMERIC_STEP = 2e-6  # small against the small-variance features' spread (about 4e-3)
DIRECTIONS = 3  # per input
DIRECTION_SEED = 231


def check(
    id: str,
    question: str,
    points: float,
    visibility: Visibility,
    summary: str,
    probes: Sequence[Probe],
    judge: Judge = AGREES,
    depends_on: tuple[str, ...] = (),
    baselines: Sequence[Probe] = (),
    complete_baseline: Callable[[Probe, Mapping[str, np.ndarray]], Mapping[str, np.ndarray]] | None = None,
) -> Check:
    target = id.rsplit(".", 1)[0] if id.startswith(("layers.", "optim.")) else "fc_net.FullyConnectedNet"
    if "_backward" in target:  # a backward pass receives its forward pass's cache
        depends_on = (target.split("_backward")[0] + "_forward", *depends_on)
    return Check(
        id=id,
        target=target,
        question=question,
        points=points,
        visibility=visibility,
        summary=summary,
        probes=tuple(probes),
        judge=judge,
        depends_on=depends_on,
        baselines=tuple(baselines),
        complete_baseline=complete_baseline,
    )


def layer_probe(
    function: str,
    inputs: Mapping[str, np.ndarray],
    *,
    extra_args: Sequence[str] = (),
    param: dict[str, Any] | None = None,
    passes: Sequence[tuple[str, str | None]] = (("x", None),),
    backward: str | None = None,
    param_outputs: Sequence[str] = (),
    label: str = "case",
    keep: float | None = None,
) -> Probe:
    calls = [f"layers.{function}"] + ([f"layers.{backward}"] if backward else [])
    sandbox_options: dict[str, Any] = {}
    options: dict[str, Any] = {
        "function": function,
        "extra_args": list(extra_args),
        "param": param,
        "passes": [list(p) for p in passes],
        "param_outputs": list(param_outputs),
    }
    if keep is not None:  # dropout: the keep probability, whatever p means in the edition
        options["keep"] = keep
    if backward:
        options["backward"] = backward
        options["grads"] = GRADS[function.rsplit("_", 1)[0]]
        if function != "dropout_forward":  # dropout is random: its backward is judged by its mask
            names = ["x", *extra_args]
            directions = {"names": names, "count": DIRECTIONS, "seed": DIRECTION_SEED}
            sandbox_options = {"directions": directions, "h": NUMERIC_STEP}
    if inputs.get("dout") is not None and not backward:
        inputs = {k: v for k, v in inputs.items() if k != "dout"}
    return Probe(
        label=label,
        recipe="layer",
        modules=("layers",),
        inputs=dict(inputs),
        options=options,
        calls=tuple(calls),
        sandbox_options=sandbox_options,
    )


def optimizer_probe(
    function: str,
    inputs: Mapping[str, np.ndarray],
    config: dict[str, float],
    state_keys: Sequence[str],
    label: str = "case",
) -> Probe:
    return Probe(
        label=label,
        recipe="optimizer",
        modules=("optim",),
        inputs=dict(inputs),
        options={"function": function, "config": config, "state_keys": list(state_keys)},
        calls=(f"optim.{function}",),
    )


def model_probe(
    recipe: str,
    model: dict[str, Any],
    inputs: Mapping[str, np.ndarray],
    label: str,
    time_limit: float = 5.0,
    **options: Any,
) -> Probe:
    modules = ("fc_net", "optim", "solver") if recipe == "train" else ("fc_net",)
    return Probe(
        label=label,
        recipe=recipe,
        modules=modules,
        inputs=dict(inputs),
        options={"model": {"dtype": "float64", **model}, **options},
        calls=(),
        time_limit=time_limit,
    )


def composed(probe: Probe, edition: Edition, ops: Sequence[str] | None = None, alt: bool = False) -> Probe:
    """The same model probe computed by the course's architecture from the student's own layers.py
    (with batchnorm_backward_alt where `alt`), without the L2 penalty: add_l2_penalty adds it here."""
    model = probe.options["model"]
    keep, norm = edition.architecture(model)
    dropout = {"mode": "train", "p": edition.layer_p(keep), "seed": model["seed"]} if keep != 1 else None
    norm_backward = f"{norm}_backward" + ("_alt" if alt else "") if norm else None
    composition = {
        "hidden_layers": len(model["hidden_dims"]),
        "normalization": norm,
        "norm_backward": norm_backward,
        "dropout": dropout,
        "dtype": model.get("dtype", "float64"),
    }
    norm_layers = (f"layers.{norm}_forward", f"layers.{norm_backward}") if norm else ()
    return Probe(
        label=probe.label + ("+alt" if alt else ""),
        recipe="composed_model",
        modules=("layers",),
        inputs=probe.inputs,
        options={"composition": composition, "ops": list(ops or probe.options["ops"])},
        calls=(*MODEL_LAYERS, *norm_layers, *(DROPOUT_LAYERS if dropout else ())),
        time_limit=probe.time_limit,
        forbid=("fc_net",),  # so that the student's model cannot reach into it
    )


def compositions(probes: Sequence[Probe], edition: Edition) -> list[Probe]:
    """The baselines of a model check: one group per way the course's architecture can be composed
    (batch norm's backward pass is batchnorm_backward or batchnorm_backward_alt, as students choose)."""
    groups = [[composed(probe, edition) for probe in probes]]
    if any(edition.architecture(probe.options["model"])[1] == "batchnorm" for probe in probes):
        groups.append([composed(probe, edition, alt=True) for probe in probes])
    return [baseline for group in groups for baseline in group]


def add_l2_penalty(probe: Probe, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The course's L2 term on the weight matrices, added on this side to a composition's outputs."""
    reg = float(probe.options["model"].get("reg", 0.0))
    completed = dict(outputs)
    weights = {
        name[len("param_") :]: value for name, value in probe.inputs.items() if name.startswith("param_W")
    }
    if "loss" in completed:
        penalty = sum(0.5 * reg * float(np.sum(W.astype(np.float64) ** 2)) for W in weights.values())
        completed["loss"] = completed["loss"] + penalty
    for name, W in weights.items():
        if f"grad_{name}" in completed:
            completed[f"grad_{name}"] = completed[f"grad_{name}"] + reg * W.astype(np.float64)
    return completed


def model_check(
    id: str,
    question: str,
    points: float,
    summary: str,
    probes: Sequence[Probe],
    *,
    edition: Edition,
    depends_on: tuple[str, ...],
    judge: Judge = AGREES,
    visibility: Visibility = "hidden",
) -> Check:
    """A check of FullyConnectedNet's loss or scores: it must match the reference, or, when the layers it
    relies on fail their own checks, the course's architecture composed from those very layers."""
    baselines = compositions(probes, edition)
    return check(
        id, question, points, visibility, summary, probes, judge, depends_on, baselines, add_l2_penalty
    )


def pair(
    target: str,
    question: str,
    points: tuple[float, float],
    hidden_name: str,
    summaries: tuple[str, str],
    probes: tuple[Probe, Probe | Sequence[Probe]],
    judge: Judge = AGREES,
) -> list[Check]:
    """For one function: a visible check on the notebook's case and a hidden one on designed inputs
    (one probe, or several)."""
    notebook, hidden = probes
    hidden_probes = [hidden] if isinstance(hidden, Probe) else list(hidden)
    return [
        check(f"{target}.notebook", question, points[0], "visible", summaries[0], [notebook], judge),
        check(f"{target}.{hidden_name}", question, points[1], "hidden", summaries[1], hidden_probes, judge),
    ]


def softmax_probe(inputs: Mapping[str, np.ndarray]) -> Probe:
    return Probe(
        "case",
        "loss_function",
        ("layers",),
        dict(inputs),
        {"function": "softmax_loss"},
        ("layers.softmax_loss",),
    )


# Long by design: a table of checks whose hidden inputs come from one generator in a fixed order
# (split, the draws would move, and every seed's inputs with them).
def affine_relu_softmax_checks(seed: int, edition: Edition) -> list[Check]:
    rng = cases.case_rng(seed, "affine")
    N, shape, M = 5, (3, 4, 2), 7
    hidden_affine = {
        "x": rng.normal(size=(N, *shape)),
        "w": rng.normal(size=(int(np.prod(shape)), M)),
        "b": rng.normal(size=M),
        "dout": rng.normal(size=(N, M)),
    }
    relu_x = rng.normal(size=(6, 9))
    relu_x[np.abs(relu_x) < 1e-3] = 0.5  # keep clear of the kink, where either subgradient is fine
    hidden_relu = {"x": relu_x, "dout": rng.normal(size=relu_x.shape)}
    logits = rng.normal(0, 30, size=(8, 6)) + rng.uniform(500, 1000, size=(8, 1))
    hidden_softmax = {"x": logits, "y": rng.integers(0, 6, size=8)}
    affine: dict[str, Any] = {"extra_args": ["w", "b"]}
    affine_backward: dict[str, Any] = {"backward": "affine_backward", **affine}
    return [
        *pair(
            "layers.affine_forward",
            Q1,
            (2, 2),
            "multidim",
            (
                "affine_forward on the notebook's linspace case",
                "affine_forward with x of shape (N, d1, d2, d3)",
            ),
            (
                layer_probe("affine_forward", cases.notebook_affine_forward(), **affine),
                layer_probe("affine_forward", hidden_affine, **affine),
            ),
        ),
        *pair(
            "layers.affine_backward",
            Q1,
            (2, 2),
            "multidim",
            ("affine_backward: dx, dw, db", "affine_backward with multi-dimensional x"),
            (
                layer_probe("affine_forward", cases.notebook_affine_backward(), **affine_backward),
                layer_probe("affine_forward", hidden_affine, **affine_backward),
            ),
            BACKWARD,
        ),
        *pair(
            "layers.relu_forward",
            Q1,
            (1, 1),
            "random",
            ("relu_forward on the notebook's case", "relu_forward on random inputs"),
            (
                layer_probe("relu_forward", cases.notebook_relu_forward()),
                layer_probe("relu_forward", hidden_relu),
            ),
        ),
        *pair(
            "layers.relu_backward",
            Q1,
            (1, 1),
            "random",
            ("relu_backward on the notebook's case", "relu_backward on random inputs"),
            (
                layer_probe("relu_forward", cases.notebook_relu_backward(), backward="relu_backward"),
                layer_probe("relu_forward", hidden_relu, backward="relu_backward"),
            ),
            BACKWARD,
        ),
        *pair(
            "layers.softmax_loss",
            Q1,
            (2, 2),
            "large_scores",
            ("softmax_loss: loss and dx", "softmax_loss with scores in the hundreds"),
            (softmax_probe(cases.notebook_softmax()), softmax_probe(hidden_softmax)),
        ),
    ]


# Long by design: a table of checks whose hidden inputs come from one generator in a fixed order
# (split, the draws would move, and every seed's inputs with them).
def optimizer_checks(seed: int, edition: Edition) -> list[Check]:
    rng = cases.case_rng(seed, "optim")
    steps, shape = 4, (3, 4)

    def trajectory(scale: float) -> dict[str, np.ndarray]:
        return {"w": rng.normal(size=shape), "dw": rng.normal(0, scale, size=(steps, *shape))}

    notebook = cases.notebook_optimizer
    momentum, rmsprop, adam = trajectory(1.0), trajectory(1e-6), trajectory(1.0)
    adam_tiny = trajectory(1e-6)  # only gradients this small show where epsilon sits
    return [
        *pair(
            "optim.sgd_momentum",
            Q1,
            (2, 2),
            "steps",
            ("one SGD+momentum step, velocity saved", "four SGD+momentum steps from an empty config"),
            (
                optimizer_probe(
                    "sgd_momentum", notebook({"velocity": (0.6, 0.9)}), {"learning_rate": 1e-3}, ["velocity"]
                ),
                optimizer_probe(
                    "sgd_momentum", momentum, {"learning_rate": 0.05, "momentum": 0.8}, ["velocity"]
                ),
            ),
        ),
        *pair(
            "optim.rmsprop",
            Q1,
            (2, 2),
            "small_gradients",
            ("one RMSProp step, cache saved", "four RMSProp steps with tiny gradients"),
            (
                optimizer_probe(
                    "rmsprop", notebook({"cache": (0.6, 0.9)}), {"learning_rate": 1e-2}, ["cache"]
                ),
                optimizer_probe("rmsprop", rmsprop, {"learning_rate": 1e-2}, ["cache"]),
            ),
        ),
        *pair(
            "optim.adam",
            Q1,
            (2, 2),
            "steps",
            (
                "one Adam step at t = 5: next_w, m, v",
                "four Adam steps from an empty config (t starts at 0), with usual and with tiny gradients",
            ),
            (
                optimizer_probe(
                    "adam",
                    notebook({"m": (0.6, 0.9), "v": (0.7, 0.5)}),
                    {"learning_rate": 1e-2, "t": 5},
                    ["m", "v", "t"],
                ),
                [
                    optimizer_probe("adam", adam, {"learning_rate": 1e-2}, ["m", "v", "t"], label="usual"),
                    optimizer_probe(
                        "adam", adam_tiny, {"learning_rate": 1e-2}, ["m", "v", "t"], label="tiny"
                    ),
                ],
            ),
        ),
    ]


# Long by design: a table of checks whose hidden inputs come from one generator in a fixed order
# (split, the draws would move, and every seed's inputs with them).
def model_checks(seed: int, edition: Edition) -> list[Check]:
    rng = cases.case_rng(seed, "model")
    data, notebook_params = cases.notebook_model()
    notebook_model = {"hidden_dims": [20, 30], "input_dim": 15, "num_classes": 10, "weight_scale": 5e-2}
    dims, N = [12, 7, 6, 5], 4
    hidden_model = {"hidden_dims": dims[1:-1], "input_dim": dims[0], "num_classes": dims[-1], "reg": 0.7}
    X = rng.normal(size=(N, 3, 2, 2))
    y = rng.integers(0, dims[-1], size=N)
    params = cases.random_params(rng, dims, None)
    init_model = {
        "hidden_dims": [100, 50],
        "input_dim": 200,
        "num_classes": 10,
        "weight_scale": 2e-2,
        "dtype": "float32",
    }
    X_train, y_train = cases.blobs(rng, 50, 20, 5)
    train_model = {"hidden_dims": [40, 40], "input_dim": 20, "num_classes": 5, "weight_scale": 5e-2}
    solver = {
        "update_rule": "sgd",
        "optim_config": {"learning_rate": 0.1},
        "num_epochs": 25,
        "batch_size": 25,
        "print_every": 1000,
    }
    train_inputs = {"X_train": X_train, "y_train": y_train, "X_val": X_train, "y_val": y_train}
    return [
        check(
            "fc_net.init",
            Q1,
            3,
            "visible",
            "parameter names, shapes, dtype and initial values",
            [model_probe("model_init", init_model, {}, "init", init_seed=231)],
            judge=ModelInit(),
        ),
        model_check(
            "fc_net.initial_loss.notebook",
            Q1,
            3,
            "loss and gradients of the notebook's model, reg = 0 and reg = 3.14",
            [
                model_probe(
                    "model_loss", {**notebook_model, "reg": reg}, {**data, **p}, f"reg={reg}", ops=["loss"]
                )
                for reg, p in zip((0, 3.14), notebook_params, strict=True)
            ],
            edition=edition,
            depends_on=MODEL_LAYERS,
            visibility="visible",
        ),
        model_check(
            "fc_net.scores",
            Q1,
            2,
            "test-time scores, X of shape (N, 3, 2, 2)",
            [model_probe("model_loss", hidden_model, {"X": X, "y": y, **params}, "scores", ops=["scores"])],
            edition=edition,
            depends_on=MODEL_LAYERS,
        ),
        model_check(
            "fc_net.loss.regularized",
            Q1,
            4,
            "loss and all gradients with reg = 0.7 and non-zero biases",
            [model_probe("model_loss", hidden_model, {"X": X, "y": y, **params}, "loss", ops=["loss"])],
            edition=edition,
            depends_on=MODEL_LAYERS,
        ),
        check(
            "fc_net.training",
            Q1,
            3,
            "hidden",
            "the course Solver overfits 50 samples with your model and sgd",
            [
                model_probe(
                    "train",
                    train_model,
                    train_inputs,
                    "train",
                    time_limit=30.0,
                    solver=solver,
                    train_seed=seed % 2**31,
                )
            ],
            judge=Overfits(min_accuracy=0.9),
            depends_on=(*MODEL_LAYERS, "optim.sgd"),
        ),
    ]


# ------------------------------------------------------------------------------------------------ Q2


# Long by design: a table of checks whose hidden inputs come from one generator in a fixed order
# (split, the draws would move, and every seed's inputs with them).
def batchnorm_checks(seed: int, edition: Edition) -> list[Check]:
    rng = cases.case_rng(seed, "batchnorm")
    N, D = 4, 5
    hidden = {
        "x": cases.small_variance_features(rng, N, D),
        "gamma": rng.uniform(0.5, 2, size=D),
        "beta": rng.normal(size=D),
        "dout": rng.normal(size=(N, D)),
    }
    hidden_test = {f"x{t}": cases.small_variance_features(rng, N, D) for t in range(3)}
    hidden_test.update(
        x_test=cases.small_variance_features(rng, 6, D), gamma=hidden["gamma"], beta=hidden["beta"]
    )
    notebook_test = cases.notebook_batchnorm_test_mode()
    bn: dict[str, Any] = {
        "extra_args": ["gamma", "beta"],
        "param": {"mode": "train"},
        "param_outputs": ["running_mean", "running_var"],
    }
    train_passes = [("x", "train")]

    def test_passes(arrays: Mapping[str, np.ndarray]) -> list[tuple[str, str | None]]:
        passes: list[tuple[str, str | None]] = [(name, "train") for name in arrays if name.startswith("x")]
        return [p for p in passes if p[0] != "x_test"] + [("x_test", "test")]

    backward: dict[str, Any] = {
        "extra_args": ["gamma", "beta"],
        "param": {"mode": "train"},
        "passes": train_passes,
    }
    notebook_backward, notebook_backward_alt = (
        cases.notebook_norm_backward(),
        cases.notebook_norm_backward(100, 500),
    )
    return [
        check(
            "layers.batchnorm_forward.notebook",
            Q2,
            2,
            "visible",
            "train-mode output and running statistics",
            [layer_probe("batchnorm_forward", cases.notebook_batchnorm_forward(), passes=train_passes, **bn)],
        ),
        check(
            "layers.batchnorm_forward.small_variance",
            Q2,
            2,
            "hidden",
            "train mode, 4 samples of features whose variance is close to eps",
            [layer_probe("batchnorm_forward", hidden, passes=train_passes, **bn)],
        ),
        check(
            "layers.batchnorm_forward.notebook_test_mode",
            Q2,
            2,
            "visible",
            "50 train-mode passes, then test mode uses the running averages",
            [layer_probe("batchnorm_forward", notebook_test, passes=test_passes(notebook_test), **bn)],
        ),
        check(
            "layers.batchnorm_forward.test_mode",
            Q2,
            2,
            "hidden",
            "3 train-mode passes, then test mode",
            [layer_probe("batchnorm_forward", hidden_test, passes=test_passes(hidden_test), **bn)],
        ),
        *pair(
            "layers.batchnorm_backward",
            Q2,
            (2, 2),
            "small_variance",
            ("dx, dgamma, dbeta", "backward with features of small variance"),
            (
                layer_probe(
                    "batchnorm_forward", notebook_backward, backward="batchnorm_backward", **backward
                ),
                layer_probe("batchnorm_forward", hidden, backward="batchnorm_backward", **backward),
            ),
            BACKWARD,
        ),
        *pair(
            "layers.batchnorm_backward_alt",
            Q2,
            (1, 1),
            "small_variance",
            ("the simplified backward pass", "the simplified backward, small variance"),
            (
                layer_probe(
                    "batchnorm_forward", notebook_backward_alt, backward="batchnorm_backward_alt", **backward
                ),
                layer_probe("batchnorm_forward", hidden, backward="batchnorm_backward_alt", **backward),
            ),
            BACKWARD,
        ),
    ]


def layernorm_checks(seed: int, edition: Edition) -> list[Check]:
    rng = cases.case_rng(seed, "layernorm")
    N, D = 3, 6
    hidden = {
        "x": cases.small_variance_features(rng, D, N).T.copy(),
        "gamma": rng.uniform(0.5, 2, size=D),
        "beta": rng.normal(size=D),
        "dout": rng.normal(size=(N, D)),
    }
    ln: dict[str, Any] = {"extra_args": ["gamma", "beta"], "param": {}}
    return [
        *pair(
            "layers.layernorm_forward",
            Q2,
            (2, 2),
            "small_variance",
            ("layer norm with gamma 3 and beta 5", "rows whose variance is close to eps"),
            (
                layer_probe("layernorm_forward", cases.notebook_layernorm_forward(), **ln),
                layer_probe("layernorm_forward", hidden, **ln),
            ),
        ),
        *pair(
            "layers.layernorm_backward",
            Q2,
            (2, 2),
            "small_variance",
            ("dx, dgamma, dbeta", "backward with rows of small variance"),
            (
                layer_probe(
                    "layernorm_forward", cases.notebook_norm_backward(), backward="layernorm_backward", **ln
                ),
                layer_probe("layernorm_forward", hidden, backward="layernorm_backward", **ln),
            ),
            BACKWARD,
        ),
    ]


# Long by design: a table of checks whose hidden inputs come from one generator in a fixed order
# (split, the draws would move, and every seed's inputs with them).
def normalized_model_checks(seed: int, edition: Edition) -> list[Check]:
    rng = cases.case_rng(seed, "normalized_model")
    dims, N = [10, 8, 7, 4], 5
    X, y = rng.normal(size=(N, dims[0])), rng.integers(0, dims[-1], size=N)
    model = {"hidden_dims": dims[1:-1], "input_dim": dims[0], "num_classes": dims[-1], "reg": 0.3}
    init = {"hidden_dims": [30, 20], "input_dim": 40, "num_classes": 10, "weight_scale": 1e-2}
    probes = {}
    for norm in ("batchnorm", "layernorm"):  # both drawn in every edition: the same seed, the same inputs
        params = cases.random_params(rng, dims, norm)
        probes[norm] = {"X": X, "y": y, **params}
    norms = ("batchnorm", "layernorm") if edition.layernorm else ("batchnorm",)
    checks = [
        check(
            "fc_net.init_normalization",
            Q2,
            2,
            "visible",
            "gamma and beta on hidden layers only, ones and zeros",
            [
                model_probe("model_init", {**init, **edition.model_kwargs(normalization=norm)}, {}, norm)
                for norm in norms
            ],
            judge=ModelInit(),
        ),
        model_check(
            "fc_net.batchnorm.loss",
            Q2,
            3,
            "loss and gradients with batch normalization",
            [
                model_probe(
                    "model_loss",
                    {**model, **edition.model_kwargs(normalization="batchnorm")},
                    probes["batchnorm"],
                    "loss",
                    ops=["loss"],
                )
            ],
            edition=edition,
            depends_on=(*MODEL_LAYERS, *BN_LAYERS),
        ),
        model_check(
            "fc_net.batchnorm.running_stats",
            Q2,
            2,
            "test-mode scores after a train-mode pass: running averages kept per layer",
            [
                model_probe(
                    "model_loss",
                    {**model, **edition.model_kwargs(normalization="batchnorm")},
                    probes["batchnorm"],
                    "train_then_test",
                    ops=["loss", "scores"],
                )
            ],
            judge=AgreesWithReference(only=("scores",)),
            edition=edition,
            depends_on=(*MODEL_LAYERS, *BN_LAYERS),
        ),
    ]
    if edition.layernorm:
        checks.append(
            model_check(
                "fc_net.layernorm.loss",
                Q2,
                3,
                "loss and gradients with layer normalization",
                [
                    model_probe(
                        "model_loss",
                        {**model, **edition.model_kwargs(normalization="layernorm")},
                        probes["layernorm"],
                        "loss",
                        ops=["loss"],
                    )
                ],
                edition=edition,
                depends_on=(*MODEL_LAYERS, *LN_LAYERS),
            )
        )
    return checks


# ------------------------------------------------------------------------------------------------ Q3


# Long by design: a table of checks whose hidden inputs come from one generator in a fixed order
# (split, the draws would move, and every seed's inputs with them).
def dropout_checks(seed: int, edition: Edition) -> list[Check]:
    rng = cases.case_rng(seed, "dropout")
    notebook = cases.notebook_dropout_forward()
    hidden = {"x": rng.normal(size=(120, 150)) + 5}
    keep_hidden = float(rng.choice([0.3, 0.35, 0.65, 0.8]))

    def forward(
        arrays: Mapping[str, np.ndarray], keep: float, mode: str, label: str, dropout_seed: int | None
    ) -> Probe:
        param: dict[str, Any] = {"mode": mode, "p": edition.layer_p(keep)}
        if dropout_seed is not None:
            param["seed"] = dropout_seed
        return layer_probe(
            "dropout_forward", arrays, param=param, passes=[("x", mode)], label=label, keep=keep
        )

    def backward(arrays: Mapping[str, np.ndarray], keep: float, mode: str, label: str) -> Probe:
        return layer_probe(
            "dropout_forward",
            arrays,
            param={"mode": mode, "p": edition.layer_p(keep), "seed": 123},
            passes=[("x", mode)],
            backward="dropout_backward",
            label=label,
            keep=keep,
        )

    hidden_backward = {"x": rng.normal(size=(30, 20)) + 10, "dout": rng.normal(size=(30, 20))}
    model_seed = int(rng.integers(2**31))
    ps = ", ".join(f"{edition.layer_p(keep):g}" for keep in edition.notebook_keep)
    scaled = "scaling the rest by 1/(1 - p)" if edition.p_drops else "scaled by 1/p"
    judge = DropoutForward(swapped_code=SWAPPED_P_CODE[edition.p_drops])
    test_keep = edition.notebook_keep[1]
    return [
        check(
            "layers.dropout_forward.notebook",
            Q3,
            2,
            "visible",
            f"train mode with p = {ps} {'drops' if edition.p_drops else 'keeps'} that share, {scaled}; "
            "test mode is identity",
            [
                forward(notebook, keep, "train", f"p={edition.layer_p(keep):g}", None)
                for keep in edition.notebook_keep
            ]
            + [forward(notebook, test_keep, "test", "test", None)],
            judge=judge,
        ),
        check(
            "layers.dropout_forward.random",
            Q3,
            2,
            "hidden",
            "train and test mode with another p",
            [
                forward(hidden, keep_hidden, "train", "train", model_seed),
                forward(hidden, keep_hidden, "test", "test", None),
            ],
            judge=judge,
        ),
        check(
            "layers.dropout_backward.notebook",
            Q3,
            2,
            "visible",
            "dx uses the forward pass's mask",
            [
                backward(cases.notebook_dropout_backward(), edition.notebook_backward_keep, "train", "train"),
                backward(cases.notebook_dropout_backward(), edition.notebook_backward_keep, "test", "test"),
            ],
            judge=DropoutBackward(),
        ),
        check(
            "layers.dropout_backward.random",
            Q3,
            1,
            "hidden",
            "dx uses the mask, another p",
            [backward(hidden_backward, keep_hidden, "train", "train")],
            judge=DropoutBackward(),
        ),
        *dropout_model_checks(rng, edition),
    ]


# The mistake of reading p the other way round, in each meaning of p (True: p drops).
SWAPPED_P_CODE = {False: "dropout_p_is_drop_probability", True: "dropout_p_is_keep_probability"}


def dropout_model_checks(rng: np.random.Generator, edition: Edition) -> list[Check]:
    dims, N = [10, 9, 8, 5], 4
    X, y = rng.normal(size=(N, dims[0])), rng.integers(0, dims[-1], size=N)
    params = cases.random_params(rng, dims, None)
    model = {
        "hidden_dims": dims[1:-1],
        "input_dim": dims[0],
        "num_classes": dims[-1],
        "reg": 0.1,
        **edition.model_kwargs(keep=0.5),
        "seed": 123,
    }
    perturb = [
        [name[len("param_") :], int(rng.integers(value.size))]
        for name, value in params.items()
        for _ in range(4)
    ]
    inputs = {"X": X, "y": y, **params}
    numeric = model_probe("model_numeric", model, inputs, "numeric", perturb=perturb, h=1e-6)
    scores = model_probe("model_loss", model, inputs, "test_scores", ops=["scores"])
    return [
        check(
            "fc_net.dropout",
            Q3,
            4,
            "hidden",
            "with dropout: gradients match finite differences of your own loss; test mode ignores dropout",
            [numeric, scores],
            judge=NumericGradient(h=1e-6, no_dropout=edition.without_dropout()),
            depends_on=(*MODEL_LAYERS, *DROPOUT_LAYERS),
            baselines=[composed(numeric, edition, ops=["loss"]), composed(scores, edition)],
            complete_baseline=add_l2_penalty,
        ),
    ]


def build_checks(seed: int, edition: Edition = CURRENT) -> list[Check]:
    """Every check of the catalog in `edition`'s API, with hidden inputs drawn from `seed`."""
    builders = [
        affine_relu_softmax_checks,
        optimizer_checks,
        model_checks,
        batchnorm_checks,
        *([layernorm_checks] if edition.layernorm else []),
        normalized_model_checks,
        dropout_checks,
    ]
    checks = [check for builder in builders for check in builder(seed, edition)]
    return checks
