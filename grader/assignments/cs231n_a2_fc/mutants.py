"""Known mistakes, written as variants of the reference, and the explanation each one gets.

A failing check's outputs are compared with each variant's outputs on the same inputs; a match names
the mistake. Each variant changes exactly one thing, the way students actually get it wrong.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from grader.engine.checks import Mutant

MISTAKES = {
    "bn_eps_outside_sqrt": "eps is added outside the square root: normalize with np.sqrt(var + eps), "
    "not np.sqrt(var) + eps.",
    "bn_running_average_swapped": "the running averages give the weight `momentum` to the new batch: use "
    "running = momentum * running + (1 - momentum) * batch_statistic.",
    "bn_test_uses_batch_stats": "test mode normalizes with the test batch's own mean and variance: at test "
    "time use bn_param['running_mean'] and bn_param['running_var'].",
    "bn_unbiased_variance": "the variance is the unbiased one (divided by N - 1): batch norm uses the "
    "biased variance, x.var(axis=0), divided by N.",
    "bn_running_stats_not_stored": "the running mean and variance are not stored back into bn_param, so "
    "test mode never sees them: assign bn_param['running_mean'] and bn_param['running_var'].",
    "ln_normalizes_over_batch": "layer norm normalizes over the batch (axis 0): it normalizes each data "
    "point over its features (axis 1).",
    "dropout_p_is_drop_probability": "p is used as the probability of dropping a unit: in this assignment p "
    "is the probability of KEEPING a unit, mask = (np.random.rand(*x.shape) < p) / p.",
    "dropout_not_inverted": "the kept units are not divided by p: inverted dropout scales at training time "
    "so that test time needs no scaling.",
    "dropout_test_mode_scaled": "test mode scales the input: with inverted dropout, test mode returns x "
    "unchanged.",
    "dropout_backward_ignores_mask": "the backward pass ignores the dropout mask: dx = dout * mask, with "
    "the same mask (including the 1/p) as the forward pass.",
    "softmax_not_stable": "softmax overflows on large scores: subtract each row's maximum before np.exp "
    "(this does not change the result).",
    "momentum_formula": "the momentum update differs from the course's: v = mu * v - learning_rate * dw, "
    "then w = w + v.",
    "optimizer_state_not_saved": "the optimizer's state (velocity, cache, m, v or t) is not written back "
    "to config, so every step starts from the initial state: store it, e.g. config['velocity'] = v.",
    "adam_t_incremented_late": "t is used before it is incremented: increase config['t'] first, then "
    "correct the bias with 1 - beta ** t (t = 1 on the first step).",
    "adam_no_bias_correction": "the moment estimates are not bias-corrected: use m / (1 - beta1 ** t) and "
    "v / (1 - beta2 ** t) in the update.",
    "rmsprop_eps_inside_sqrt": "epsilon is inside the square root: divide by np.sqrt(cache) + epsilon.",
    "l2_missing_half": "the L2 loss is missing its 0.5 factor: add 0.5 * reg * np.sum(W * W) for each weight "
    "matrix (and reg * W to its gradient).",
    "l2_regularizes_bias": "biases (or gamma/beta) are regularized: only the weight matrices W1..WL get the "
    "L2 penalty.",
    "weight_init_scale": "the initial weights do not follow weight_scale: draw them as "
    "np.random.randn(fan_in, fan_out) * weight_scale.",
    "l2_skips_last_layer": "the output layer's weights are left out of the L2 penalty: every weight matrix "
    "W1..WL, the last one included, adds 0.5 * reg * np.sum(W * W) to the loss and reg * W to its gradient.",
    "bn_test_mode_skips_affine": "test-mode batch norm leaves out gamma and beta: after normalizing with the "
    "running averages, scale by gamma and shift by beta, as in train mode.",
    "model_ignores_normalization": "the model creates gamma and beta but never applies the normalization "
    "layers: with normalization set, each hidden affine layer is followed by batchnorm_forward or "
    "layernorm_forward (and its backward pass) before the ReLU.",
    "adam_eps_inside_sqrt": "epsilon is inside the square root in Adam: divide by np.sqrt(v_hat) + epsilon "
    "(only tiny gradients show the difference).",
    "dropout_mask_shared": "the dropout mask is shared along a row or a column: draw one random number per "
    "element, mask = (np.random.rand(*x.shape) < p) / p.",
    "relu_backward_masks_dout": "relu_backward masks by the sign of dout: the gradient passes where the "
    "forward pass's INPUT was positive, dx = dout * (x > 0).",
    "missing_params": "model.params lacks parameters the network needs; expected names are W1..WL, b1..bL "
    "and, with normalization, gamma1..gamma(L-1) and beta1..beta(L-1).",
    "missing_grads": "the gradients returned by loss(X, y) lack some parameters: grads needs one entry per "
    "key of model.params, with the same name.",
}


# Where p drops (2017 and earlier), the dropout explanations say so; that edition has no layer norm.
MISTAKES_P_DROPS = {
    **{
        code: text
        for code, text in MISTAKES.items()
        if code not in ("dropout_p_is_drop_probability", "ln_normalizes_over_batch")
    },
    "dropout_p_is_keep_probability": "p is used as the probability of keeping a unit: in this edition p is "
    "the probability of DROPPING a unit, mask = (np.random.rand(*x.shape) >= p) / (1 - p).",
    "dropout_not_inverted": "the kept units are not divided by 1 - p: inverted dropout scales at training "
    "time so that test time needs no scaling.",
    "dropout_backward_ignores_mask": "the backward pass ignores the dropout mask: dx = dout * mask, with "
    "the same mask (including the 1/(1 - p)) as the forward pass.",
    "dropout_mask_shared": "the dropout mask is shared along a row or a column: draw one random number per "
    "element, mask = (np.random.rand(*x.shape) >= p) / (1 - p).",
}


def with_functions(reference: Any, module: str, **functions: Any) -> types.SimpleNamespace:
    """The reference modules with some functions of `module` replaced."""
    replaced = types.SimpleNamespace(**{**vars(getattr(reference, module)), **functions})
    return types.SimpleNamespace(**{**vars(reference), module: replaced})


def batchnorm_variant(
    *,
    eps_outside: bool = False,
    swapped: bool = False,
    test_batch_stats: bool = False,
    ddof: int = 0,
    store: bool = True,
    test_affine: bool = True,
) -> Any:
    """A batch-norm forward pass with one of the known mistakes (forward outputs only, no cache)."""

    def batchnorm_forward(x: Any, gamma: Any, beta: Any, bn_param: dict[str, Any]) -> tuple[Any, None]:
        eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
        running_mean = bn_param.get("running_mean", np.zeros(x.shape[1]))
        running_var = bn_param.get("running_var", np.zeros(x.shape[1]))
        train = bn_param["mode"] == "train"
        mean, var = (
            (x.mean(axis=0), x.var(axis=0, ddof=ddof))
            if train or test_batch_stats
            else (running_mean, running_var)
        )
        std = np.sqrt(var) + eps if eps_outside else np.sqrt(var + eps)
        if train:
            keep = 1 - momentum if swapped else momentum
            running_mean = keep * running_mean + (1 - keep) * mean
            running_var = keep * running_var + (1 - keep) * var
            if store:
                bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
        if not train and not test_affine:
            return (x - mean) / std, None
        return gamma * (x - mean) / std + beta, None

    return batchnorm_forward


def layernorm_over_batch(x: Any, gamma: Any, beta: Any, ln_param: dict[str, Any]) -> tuple[Any, None]:
    eps = ln_param.get("eps", 1e-5)
    return gamma * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) + beta, None


def softmax_loss_unstable(x: Any, y: Any) -> tuple[Any, Any]:
    probs = np.exp(x) / np.sum(np.exp(x), axis=1, keepdims=True)
    N = x.shape[0]
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    return -np.sum(np.log(probs[np.arange(N), y])) / N, dx / N


def sgd_momentum_other_formula(w: Any, dw: Any, config: Any = None) -> tuple[Any, Any]:
    config = config if config is not None else {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config["momentum"] * config.get("velocity", np.zeros_like(w)) + dw
    config["velocity"] = v
    return w - config["learning_rate"] * v, config


def forgetful(update: Any) -> Any:
    """The same update rule, but nothing it computes is written back into config."""

    def step(w: Any, dw: Any, config: Any = None) -> tuple[Any, Any]:
        original = dict(config or {})
        next_w, _ = update(w, dw, dict(original))
        return next_w, original

    return step


def default_t(reference: Any) -> int:
    """Adam's initial t in the reference's edition (0 from 2018, 1 before), read off one step."""
    _, config = reference.optim.adam(np.zeros(1), np.zeros(1), {})
    return int(config["t"]) - 1


def adam_variant(
    *, late_t: bool = False, bias_correction: bool = True, eps_inside: bool = False, first_t: int = 0
) -> Any:
    def adam(w: Any, dw: Any, config: Any = None) -> tuple[Any, Any]:
        config = config if config is not None else {}
        lr, beta1, beta2 = (
            config.get("learning_rate", 1e-3),
            config.get("beta1", 0.9),
            config.get("beta2", 0.999),
        )
        eps = config.get("epsilon", 1e-8)
        t = np.float64(config.get("t", first_t)) + (0 if late_t else 1)
        m = beta1 * config.get("m", np.zeros_like(w)) + (1 - beta1) * dw
        v = beta2 * config.get("v", np.zeros_like(w)) + (1 - beta2) * dw**2
        m_hat, v_hat = (m / (1 - beta1**t), v / (1 - beta2**t)) if bias_correction else (m, v)
        config["m"], config["v"], config["t"] = m, v, int(t) + (1 if late_t else 0)
        step = m_hat / np.sqrt(v_hat + eps) if eps_inside else m_hat / (np.sqrt(v_hat) + eps)
        return w - lr * step, config

    return adam


def rmsprop_eps_inside(w: Any, dw: Any, config: Any = None) -> tuple[Any, Any]:
    config = config if config is not None else {}
    lr, decay, eps = (
        config.get("learning_rate", 1e-2),
        config.get("decay_rate", 0.99),
        config.get("epsilon", 1e-8),
    )
    cache = decay * config.get("cache", np.zeros_like(w)) + (1 - decay) * dw**2
    config["cache"] = cache
    return w - lr * dw / np.sqrt(cache + eps), config


def model_variant(
    reference: Any, *, weight_factor: float = 0.0, penalized: tuple[str, ...] = (), last_weight: float = 0.0
) -> types.SimpleNamespace:
    """The reference network with its L2 term changed.

    weight_factor: extra multiples of 0.5*reg*W**2 on every weight matrix; last_weight: extra multiples on
    the output layer's only (-1 leaves it out); penalized: prefixes of other parameters (b, gamma, beta)
    that wrongly get 0.5*reg*p**2 too.
    """
    base = reference.fc_net.FullyConnectedNet

    class FullyConnectedNet(base):  # type: ignore[misc, valid-type]
        def loss(self, X: Any, y: Any = None) -> Any:
            result = super().loss(X, y)
            if y is None:
                return result
            loss, grads = result
            for name, value in self.params.items():
                kind = name.rstrip("0123456789")  # "b1" -> "b", "beta1" -> "beta"
                factor = float(kind in penalized)
                if kind == "W":
                    factor = weight_factor + (last_weight if name == f"W{self.num_layers}" else 0.0)
                loss += factor * 0.5 * self.reg * np.sum(value * value)
                grads[name] = grads[name] + factor * self.reg * value
            return loss, grads

    return replace_class(reference, FullyConnectedNet)


def replace_class(reference: Any, network: type) -> types.SimpleNamespace:
    fc_net = types.SimpleNamespace(**{**vars(reference.fc_net), "FullyConnectedNet": network})
    return types.SimpleNamespace(**{**vars(reference), "fc_net": fc_net})


def model_without_normalization(reference: Any) -> types.SimpleNamespace:
    """The reference network that builds gamma and beta but never normalizes (nor returns their grads)."""
    base = reference.fc_net.FullyConnectedNet

    class FullyConnectedNet(base):  # type: ignore[misc, valid-type]
        def loss(self, X: Any, y: Any = None) -> Any:
            normalization = getattr(self, "normalization")  # noqa: B009  (the base is untyped)
            setattr(self, "normalization", None)  # noqa: B010
            try:
                return super().loss(X, y)
            finally:
                setattr(self, "normalization", normalization)  # noqa: B010

    return replace_class(reference, FullyConnectedNet)


def relu_backward_by_dout(dout: Any, cache: Any) -> Any:
    return dout * (dout > 0)


BN = ("layers.batchnorm_forward",)


def batchnorm_mutant(code: str, evidence: tuple[str, ...], **mistake: Any) -> Mutant:
    """A mistake in batchnorm_forward, judged on the outputs it changes."""
    return Mutant(
        code,
        BN,
        evidence,
        lambda ref: with_functions(ref, "layers", batchnorm_forward=batchnorm_variant(**mistake)),
    )


MODEL = ("fc_net.FullyConnectedNet",)


def model_mutant(code: str, **l2: Any) -> Mutant:
    """A mistake in the model's L2 term: it shows in the loss and in the gradients it touches, perhaps
    in some layers only (the loss then sums the places that are wrong and the places that are right)."""
    return Mutant(code, MODEL, ("loss", "grad_*"), lambda ref: model_variant(ref, **l2), aggregates=("loss",))


STATE = tuple(f"config_{key}" for key in ("velocity", "cache", "m", "v", "t"))
MUTANTS = (
    batchnorm_mutant("bn_eps_outside_sqrt", ("out",), eps_outside=True),
    batchnorm_mutant("bn_running_average_swapped", ("out", "running_mean", "running_var"), swapped=True),
    batchnorm_mutant("bn_test_uses_batch_stats", ("out",), test_batch_stats=True),
    batchnorm_mutant("bn_unbiased_variance", ("out", "running_var"), ddof=1),
    batchnorm_mutant("bn_running_stats_not_stored", ("out", "running_mean", "running_var"), store=False),
    batchnorm_mutant("bn_test_mode_skips_affine", ("out",), test_affine=False),
    Mutant(
        "relu_backward_masks_dout",
        ("layers.relu_backward",),
        ("dx",),
        lambda ref: with_functions(ref, "layers", relu_backward=relu_backward_by_dout),
    ),
    Mutant(
        "ln_normalizes_over_batch",
        ("layers.layernorm_forward",),
        ("out",),
        lambda ref: with_functions(ref, "layers", layernorm_forward=layernorm_over_batch),
    ),
    Mutant(
        "softmax_not_stable",
        ("layers.softmax_loss",),
        ("loss", "dx"),
        lambda ref: with_functions(ref, "layers", softmax_loss=softmax_loss_unstable),
    ),
    Mutant(
        "momentum_formula",
        ("optim.sgd_momentum",),
        ("w", "config_velocity"),
        lambda ref: with_functions(ref, "optim", sgd_momentum=sgd_momentum_other_formula),
    ),
    Mutant(
        "optimizer_state_not_saved",
        ("optim.sgd_momentum", "optim.rmsprop", "optim.adam"),
        ("w", *STATE),
        lambda ref: with_functions(
            ref,
            "optim",
            sgd_momentum=forgetful(ref.optim.sgd_momentum),
            rmsprop=forgetful(ref.optim.rmsprop),
            adam=forgetful(ref.optim.adam),
        ),
    ),
    Mutant(
        "adam_t_incremented_late",
        ("optim.adam",),
        ("w",),
        lambda ref: with_functions(ref, "optim", adam=adam_variant(late_t=True, first_t=default_t(ref))),
    ),
    Mutant(
        "adam_no_bias_correction",
        ("optim.adam",),
        ("w",),
        lambda ref: with_functions(
            ref, "optim", adam=adam_variant(bias_correction=False, first_t=default_t(ref))
        ),
    ),
    Mutant(
        "adam_eps_inside_sqrt",
        ("optim.adam",),
        ("w",),
        lambda ref: with_functions(ref, "optim", adam=adam_variant(eps_inside=True, first_t=default_t(ref))),
    ),
    Mutant(
        "rmsprop_eps_inside_sqrt",
        ("optim.rmsprop",),
        ("w",),
        lambda ref: with_functions(ref, "optim", rmsprop=rmsprop_eps_inside),
    ),
    model_mutant("l2_missing_half", weight_factor=1.0),
    model_mutant("l2_skips_last_layer", last_weight=-1.0),
    model_mutant("l2_regularizes_bias", penalized=("b",)),
    model_mutant("l2_regularizes_bias", penalized=("b", "gamma", "beta")),
    Mutant(
        "model_ignores_normalization",
        MODEL,
        ("loss", "grad_*", "scores"),
        model_without_normalization,
    ),
)


def dropout_variant(mask: Any, *, test_scale: bool = False) -> Any:
    """A dropout forward pass whose train-mode mask is mask(x, p); test mode returns x, or x * p."""

    def dropout_forward(x: Any, dropout_param: dict[str, Any]) -> tuple[Any, Any]:
        p, mode = dropout_param["p"], dropout_param["mode"]
        if "seed" in dropout_param:
            np.random.seed(dropout_param["seed"])
        if mode == "train":
            drop_mask = mask(x, p)
            return x * drop_mask, (dropout_param, drop_mask)
        return (x * p if test_scale else x), (dropout_param, None)

    return dropout_forward


def element_mask(x: Any, p: float) -> Any:
    return (np.random.rand(*x.shape) < p) / p


def dropout_backward_without_mask(dout: Any, cache: Any) -> Any:
    return dout


def dropout_mutant(code: str, **functions: Any) -> Mutant:
    return Mutant(
        code,
        ("layers.dropout_forward", "layers.dropout_backward"),
        (),
        lambda ref: with_functions(ref, "layers", **functions),
    )


# Mistakes that the property judges (judges.py) recognise, not the matching above: dropout masks differ
# between correct implementations, so no variant's outputs could be matched. Written as variants all
# the same, so that tests can grade them on every seed.
JUDGED_MUTANTS = (
    dropout_mutant(
        "dropout_p_is_drop_probability",
        dropout_forward=dropout_variant(lambda x, p: (np.random.rand(*x.shape) < 1 - p) / (1 - p)),
    ),
    dropout_mutant(
        "dropout_not_inverted",
        dropout_forward=dropout_variant(lambda x, p: 1.0 * (np.random.rand(*x.shape) < p)),
    ),
    dropout_mutant(
        "dropout_test_mode_scaled", dropout_forward=dropout_variant(element_mask, test_scale=True)
    ),
    dropout_mutant("dropout_backward_ignores_mask", dropout_backward=dropout_backward_without_mask),
    dropout_mutant(
        "dropout_mask_shared",
        dropout_forward=dropout_variant(lambda x, p: (np.random.rand(x.shape[1]) < p) / p),
    ),
)
