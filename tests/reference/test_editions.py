"""The assignment's API editions (reference/editions.py): each year's public API over the same reference.

Sources of the APIs and of the figures used here: docs/editions.md.
"""

import inspect

import numpy as np
import pytest

from reference import editions, gradient_check, layer_utils, layers, optim, solver
from reference.classifiers import fc_net
from reference.editions import EDITIONS, reference_modules

CURRENT, E2018, E2017 = EDITIONS
MODULES = ("layers", "optim", "fc_net", "layer_utils", "solver", "gradient_check")
EMPTY = inspect.Parameter.empty


def parameters(function):
    """[(name, default)] of a function's (or a class constructor's) parameters."""
    return [(p.name, p.default) for p in inspect.signature(function).parameters.values()]


def assert_printed(value, printed, decimals):
    np.testing.assert_allclose(value, printed, rtol=0, atol=0.5 * 10.0**-decimals)


# What reference_modules returns


def test_editions_are_named_as_the_catalog_names_them():
    assert EDITIONS == ("cs231n-a2-fc", "cs231n-a2-fc-2018", "cs231n-a2-fc-2017")


@pytest.mark.parametrize("edition", EDITIONS)
def test_every_edition_has_the_modules_the_recipes_use(edition):
    mods = reference_modules(edition)
    assert sorted(vars(mods)) == sorted(MODULES)
    assert callable(mods.fc_net.FullyConnectedNet)
    assert callable(mods.solver.Solver)
    assert mods.gradient_check is gradient_check
    for name in ("sgd", "sgd_momentum", "rmsprop", "adam"):
        assert callable(getattr(mods.optim, name))
    for name in ("affine_relu_forward", "affine_relu_backward", "affine_forward", "dropout_forward"):
        assert callable(getattr(mods.layer_utils, name))


def test_the_current_edition_is_the_reference_itself():
    mods = reference_modules(CURRENT)
    assert (mods.layers, mods.optim, mods.fc_net) == (layers, optim, fc_net)
    assert (mods.layer_utils, mods.solver) == (layer_utils, solver)


def test_2018_changes_only_the_model():
    mods = reference_modules(E2018)
    assert (mods.layers, mods.optim, mods.layer_utils, mods.solver) == (layers, optim, layer_utils, solver)
    assert issubclass(mods.fc_net.FullyConnectedNet, fc_net.FullyConnectedNet)


def test_2017_namespaces_are_new_on_every_call():
    first, second = reference_modules(E2017), reference_modules(E2017)
    for name in ("layers", "optim", "fc_net", "layer_utils", "solver"):
        assert getattr(first, name) is not getattr(second, name)


def test_an_unknown_edition_is_refused():
    with pytest.raises(ValueError, match="cs231n-a2-fc-2017"):
        reference_modules("cs231n-a2-fc-2016")


# Signatures

HEAD = [("hidden_dims", EMPTY), ("input_dim", 3 * 32 * 32), ("num_classes", 10)]
TAIL = [("reg", 0.0), ("weight_scale", 1e-2), ("dtype", np.float32), ("seed", None)]
MODEL_SIGNATURES = {
    CURRENT: [*HEAD, ("dropout_keep_ratio", 1), ("normalization", None), *TAIL],
    E2018: [*HEAD, ("dropout", 1), ("normalization", None), *TAIL],
    E2017: [*HEAD, ("dropout", 0), ("use_batchnorm", False), *TAIL],
}


@pytest.mark.parametrize("edition", EDITIONS)
def test_model_signature(edition):
    assert parameters(reference_modules(edition).fc_net.FullyConnectedNet) == MODEL_SIGNATURES[edition]


@pytest.mark.parametrize(
    ("edition", "first_arguments"),
    [(CURRENT, ("w", "dw")), (E2018, ("w", "dw")), (E2017, ("x", "dx"))],
)
def test_update_rule_signatures(edition, first_arguments):
    mods = reference_modules(edition)
    for name in ("sgd", "sgd_momentum"):
        assert parameters(getattr(mods.optim, name)) == [("w", EMPTY), ("dw", EMPTY), ("config", None)]
    # 2017 and earlier named the arguments of rmsprop and adam x and dx.
    for name in ("rmsprop", "adam"):
        expected = [(first_arguments[0], EMPTY), (first_arguments[1], EMPTY), ("config", None)]
        assert parameters(getattr(mods.optim, name)) == expected


@pytest.mark.parametrize("edition", EDITIONS)
def test_layer_signatures_are_the_references(edition):
    mods = reference_modules(edition)
    for name, function in editions.own_functions(layers).items():
        if hasattr(mods.layers, name):
            assert parameters(getattr(mods.layers, name)) == parameters(function)


def test_2017_layers_have_batchnorm_alt_but_no_layernorm():
    mods = reference_modules(E2017)
    assert callable(mods.layers.batchnorm_backward_alt)
    expected = set(editions.own_functions(layers)) - {"layernorm_forward", "layernorm_backward"}
    assert set(vars(mods.layers)) == expected
    for module in (mods.layers, mods.layer_utils):
        assert not hasattr(module, "layernorm_forward")
        assert not hasattr(module, "layernorm_backward")
    assert mods.layer_utils.dropout_forward is editions.dropout_forward_2017
    # Everything else layer_utils offers is the reference's.
    for name, function in vars(mods.layer_utils).items():
        if name != "dropout_forward":
            assert function is getattr(layer_utils, name)


@pytest.mark.parametrize("edition", [CURRENT, E2018])
def test_later_editions_have_layernorm(edition):
    assert reference_modules(edition).layers.layernorm_forward is layers.layernorm_forward


@pytest.mark.parametrize(
    ("edition", "refused"),
    [
        (CURRENT, {"dropout": 0.5}),
        (E2018, {"dropout_keep_ratio": 0.5}),
        (E2017, {"dropout_keep_ratio": 0.5}),
        (E2017, {"normalization": "batchnorm"}),
        (E2017, {"normalization": "layernorm"}),
    ],
)
def test_arguments_of_other_editions_are_refused(edition, refused):
    with pytest.raises(TypeError):
        reference_modules(edition).fc_net.FullyConnectedNet([4], input_dim=3, num_classes=2, **refused)


# The models reproduce the 2021 reference on equivalent settings

N, D, H1, H2, C = 5, 15, 20, 30, 10


def model_inputs():
    rng = np.random.RandomState(231)
    return rng.randn(N, 3, D // 3), rng.randint(C, size=N)


def build(edition, init_seed=0, **kwargs):
    np.random.seed(init_seed)
    return reference_modules(edition).fc_net.FullyConnectedNet(
        [H1, H2], input_dim=D, num_classes=C, weight_scale=5e-2, dtype=np.float64, **kwargs
    )


def assert_same_model(a, b):
    """Same parameters, loss, gradients and test-time scores, bit for bit, and the same RNG draws."""
    X, y = model_inputs()
    assert a.params.keys() == b.params.keys()
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])

    np.random.seed(7)
    loss_a, grads_a = a.loss(X, y)
    state_a = np.random.get_state()[1].copy()
    np.random.seed(7)
    loss_b, grads_b = b.loss(X, y)
    state_b = np.random.get_state()[1].copy()

    assert loss_a == loss_b
    assert grads_a.keys() == grads_b.keys() == a.params.keys()
    for name in grads_a:
        np.testing.assert_array_equal(grads_a[name], grads_b[name])
    np.testing.assert_array_equal(state_a, state_b)
    np.testing.assert_array_equal(a.loss(X), b.loss(X))


EQUIVALENT_SETTINGS = [
    pytest.param({}, {}, {}, id="defaults"),
    pytest.param({"dropout_keep_ratio": 1}, {"dropout": 1}, {"dropout": 0}, id="dropout-off-explicitly"),
    pytest.param({"reg": 3.14}, {"reg": 3.14}, {"reg": 3.14}, id="reg"),
    pytest.param(
        {"normalization": "batchnorm", "reg": 0.1},
        {"normalization": "batchnorm", "reg": 0.1},
        {"use_batchnorm": True, "reg": 0.1},
        id="batchnorm",
    ),
]


@pytest.mark.parametrize(("current", "v2018", "v2017"), EQUIVALENT_SETTINGS)
def test_older_editions_reproduce_the_reference(current, v2018, v2017):
    # A fresh reference model for each: a loss call moves the batchnorm running statistics.
    assert_same_model(build(E2018, **v2018), build(CURRENT, **current))
    assert_same_model(build(E2017, **v2017), build(CURRENT, **current))


def test_2017_batchnorm_keeps_the_same_running_statistics():
    X, y = model_inputs()
    ours, theirs = build(E2017, use_batchnorm=True), build(CURRENT, normalization="batchnorm")
    ours.loss(X, y)
    theirs.loss(X, y)
    assert ours.use_batchnorm and len(ours.bn_params) == 2
    for mine, reference_param in zip(ours.bn_params, theirs.bn_params, strict=True):
        np.testing.assert_array_equal(mine["running_mean"], reference_param["running_mean"])
        np.testing.assert_array_equal(mine["running_var"], reference_param["running_var"])


def test_2018_layernorm_is_the_reference():
    assert_same_model(build(E2018, normalization="layernorm"), build(CURRENT, normalization="layernorm"))


@pytest.mark.parametrize("seed", [123, None])
@pytest.mark.parametrize("keep", [0.75, 0.5])
def test_2018_dropout_is_the_references(keep, seed):
    # The 2018 mask is the 2021 one: same keep probability, same random numbers.
    assert_same_model(
        build(E2018, dropout=keep, seed=seed), build(CURRENT, dropout_keep_ratio=keep, seed=seed)
    )


def test_2018_stores_dropout_like_the_course():
    model = build(E2018, dropout=0.75, seed=123)
    assert model.use_dropout
    assert model.dropout_param == {"mode": "train", "p": 0.75, "seed": 123}
    assert not build(E2018).use_dropout


def test_2017_stores_dropout_and_batchnorm_like_the_course():
    model = build(E2017, dropout=0.25, seed=123, use_batchnorm=True)
    assert model.use_dropout and model.use_batchnorm
    assert model.dropout_param == {"mode": "train", "p": 0.25, "seed": 123}
    assert model.bn_params == [{"mode": "train"}, {"mode": "train"}]

    plain = build(E2017)
    assert not plain.use_dropout and not plain.use_batchnorm
    assert plain.dropout_param == {} and plain.bn_params == []
    assert sorted(plain.params) == ["W1", "W2", "W3", "b1", "b2", "b3"]


def test_2017_dropout_draws_like_the_reference_but_keeps_other_units():
    X, y = model_inputs()
    ours, theirs = build(E2017, dropout=0.25), build(CURRENT, dropout_keep_ratio=0.75)

    # Test time draws nothing and applies no dropout: the scores are the reference's.
    np.testing.assert_array_equal(ours.loss(X), theirs.loss(X))

    # Train time draws the same numbers (so the RNG ends in the same state) but keeps u >= p, not u < keep.
    np.random.seed(7)
    loss_ours, _ = ours.loss(X, y)
    state_ours = np.random.get_state()[1].copy()
    np.random.seed(7)
    loss_theirs, _ = theirs.loss(X, y)
    np.testing.assert_array_equal(state_ours, np.random.get_state()[1])
    assert loss_ours != loss_theirs


@pytest.mark.parametrize("seed", [123, None])
def test_2017_model_is_the_reference_network_with_the_2017_dropout_layer(monkeypatch, seed):
    X, y = model_inputs()
    ours = build(E2017, dropout=0.25, seed=seed, use_batchnorm=True)
    np.random.seed(7)
    loss_ours, grads_ours = ours.loss(X, y)

    # The 2021 network whose dropout layer reads its p as the 2017 layer does: the 2017 network.
    monkeypatch.setattr(fc_net, "dropout_forward", editions.dropout_forward_2017)
    theirs = build(CURRENT, dropout_keep_ratio=0.25, seed=seed, normalization="batchnorm")
    np.random.seed(7)
    loss_theirs, grads_theirs = theirs.loss(X, y)

    assert loss_ours == loss_theirs
    for name in grads_ours:
        np.testing.assert_array_equal(grads_ours[name], grads_theirs[name])


def test_2017_model_gradients_with_dropout_pass_a_numeric_check():
    X, y = model_inputs()
    model = build(E2017, dropout=0.5, seed=123)
    _, grads = model.loss(X, y)
    for name in sorted(grads):
        numeric = gradient_check.eval_numerical_gradient(
            lambda _: model.loss(X, y)[0], model.params[name], verbose=False, h=1e-5
        )
        error = np.max(
            np.abs(numeric - grads[name]) / np.maximum(1e-8, np.abs(numeric) + np.abs(grads[name]))
        )
        assert error < 1e-6, name


# The 2017 dropout layer: p drops, kept units are scaled by 1 / (1 - p)

dropout_2017 = editions.dropout_forward_2017


def dropout_input(shape=(500, 500), seed=231):
    # + 10 keeps every input away from 0, so a zero output always means a dropped unit.
    return np.random.RandomState(seed).randn(*shape) + 10


@pytest.mark.parametrize("p", [0.3, 0.6, 0.75])
def test_2017_dropout_keeps_about_1_minus_p_scaled_by_1_over_1_minus_p(p):
    x = dropout_input()
    np.random.seed(0)
    out, (_, mask) = dropout_2017(x, {"mode": "train", "p": p})

    kept = out != 0
    assert abs(kept.mean() - (1 - p)) < 0.005  # 250,000 units: the standard deviation is below 0.001
    np.testing.assert_array_equal(out[kept], x[kept] * (1 / (1 - p)))
    np.testing.assert_array_equal(mask, kept / (1 - p))
    assert abs(out.mean() - x.mean()) < 0.2  # its standard deviation is below 0.04


def test_2017_dropout_test_mode_returns_the_input_and_draws_nothing():
    x = dropout_input((10, 10))
    np.random.seed(3)
    out, (_, mask) = dropout_2017(x, {"mode": "test", "p": 0.3})
    state_after = np.random.get_state()[1].copy()
    np.random.seed(3)

    np.testing.assert_array_equal(out, x)
    assert mask is None
    np.testing.assert_array_equal(state_after, np.random.get_state()[1])


def test_2017_dropout_draws_one_rand_call_per_train_pass():
    x = dropout_input((7, 3))
    np.random.seed(3)
    dropout_2017(x, {"mode": "train", "p": 0.3})
    state_after = np.random.get_state()[1].copy()
    np.random.seed(3)
    np.random.rand(*x.shape)
    np.testing.assert_array_equal(state_after, np.random.get_state()[1])


@pytest.mark.parametrize("p", [0.25, 0.5, 0.7])
def test_2017_dropout_keeps_the_units_the_2021_dropout_drops(p):
    x = dropout_input((50, 40))
    ours, _ = dropout_2017(x, {"mode": "train", "p": p, "seed": 5})
    theirs, _ = layers.dropout_forward(x, {"mode": "train", "p": p, "seed": 5})
    np.testing.assert_array_equal(ours != 0, theirs == 0)
    if p == 0.5:
        # Both scale by 2, so each unit is 2 x in exactly one of the two outputs.
        np.testing.assert_array_equal(ours + theirs, 2 * x)


def test_2017_dropout_seed_makes_it_deterministic_and_p_0_keeps_everything():
    x = dropout_input((20, 10))
    param = {"mode": "train", "p": 0.4, "seed": 123}
    np.testing.assert_array_equal(dropout_2017(x, param)[0], dropout_2017(x, param)[0])
    np.testing.assert_array_equal(dropout_2017(x, {"mode": "train", "p": 0})[0], x)


def test_2017_dropout_keeps_the_dtype_and_refuses_unknown_modes():
    x = dropout_input((6, 4)).astype(np.float32)
    out, _ = dropout_2017(x, {"mode": "train", "p": 0.5, "seed": 1})
    assert out.dtype == np.float32
    with pytest.raises(ValueError, match="mode"):
        dropout_2017(x, {"mode": "eval", "p": 0.5})


def test_2017_dropout_backward_uses_the_mask():
    mods = reference_modules(E2017)
    x = dropout_input((10, 10))
    dout = np.random.RandomState(1).randn(*x.shape)
    # The 2017 notebook's check: p = 0.8 (drop), seed 123.
    param = {"mode": "train", "p": 0.8, "seed": 123}
    out, cache = mods.layers.dropout_forward(x, param)
    dx = mods.layers.dropout_backward(dout, cache)

    np.testing.assert_array_equal(dx, dout * cache[1])
    np.testing.assert_array_equal(dx == 0, out == 0)
    numeric = gradient_check.eval_numerical_gradient_array(
        lambda xx: mods.layers.dropout_forward(xx, param)[0], x, dout
    )
    np.testing.assert_allclose(dx, numeric, rtol=1e-8, atol=1e-8)

    _, test_cache = mods.layers.dropout_forward(x, {"mode": "test", "p": 0.8})
    np.testing.assert_array_equal(mods.layers.dropout_backward(dout, test_cache), dout)


# Update rules: Adam's t

ADAM_EXPECTED_NEXT_W = np.asarray(
    [
        [-0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977],
        [-0.1380274, -0.08544591, -0.03286534, 0.01971428, 0.0722929],
        [0.1248705, 0.17744702, 0.23002243, 0.28259667, 0.33516969],
        [0.38774145, 0.44031188, 0.49288093, 0.54544852, 0.59801459],
    ]
)


@pytest.mark.parametrize("edition", EDITIONS)
def test_adam_notebook_check_is_the_same_in_every_edition(edition):
    # The check passes t=5 explicitly; every edition increments it before use, as the figures require.
    N_, D_ = 4, 5
    w = np.linspace(-0.4, 0.6, num=N_ * D_).reshape(N_, D_)
    dw = np.linspace(-0.6, 0.4, num=N_ * D_).reshape(N_, D_)
    m = np.linspace(0.6, 0.9, num=N_ * D_).reshape(N_, D_)
    v = np.linspace(0.7, 0.5, num=N_ * D_).reshape(N_, D_)
    config = {"learning_rate": 1e-2, "m": m, "v": v, "t": 5}

    next_w, config = reference_modules(edition).optim.adam(w, dw, config=config)

    assert_printed(next_w, ADAM_EXPECTED_NEXT_W, 8)
    assert config["t"] == 6


@pytest.mark.parametrize(("edition", "first_t"), [(CURRENT, 1), (E2018, 1), (E2017, 2)])
def test_adam_t_default(edition, first_t):
    w, dw = np.linspace(-1, 1, 6), np.linspace(0.5, -0.5, 6)
    next_w, config = reference_modules(edition).optim.adam(w, dw)
    assert config["t"] == first_t

    # The edition's first step is the reference's step from t = first_t - 1.
    expected, _ = optim.adam(w, dw, {"t": first_t - 1})
    np.testing.assert_array_equal(next_w, expected)
    _, config = reference_modules(edition).optim.adam(w, dw, None)
    assert config["t"] == first_t


def test_2017_rmsprop_and_sgd_are_the_references():
    mods = reference_modules(E2017)
    w, dw = np.linspace(-1, 1, 6), np.linspace(0.5, -0.5, 6)
    for name in ("sgd", "sgd_momentum", "rmsprop"):
        ours, _ = getattr(mods.optim, name)(w, dw, {"learning_rate": 0.1})
        theirs, _ = getattr(optim, name)(w, dw, {"learning_rate": 0.1})
        np.testing.assert_array_equal(ours, theirs)


class ConstantModel:
    """A stand-in model with one parameter, a constant gradient and class-0 scores."""

    def __init__(self):
        self.params = {"w": np.zeros(3)}

    def loss(self, X, y=None):
        if y is None:
            return np.tile([1.0, 0.0], (X.shape[0], 1))
        return 0.0, {"w": np.ones(3)}


@pytest.mark.parametrize(("edition", "t_after_one_step"), [(CURRENT, 1), (E2018, 1), (E2017, 2)])
def test_solver_uses_the_editions_update_rules(edition, t_after_one_step):
    X = np.zeros((4, 2))
    y = np.zeros(4, dtype=np.int64)
    data = {"X_train": X, "y_train": y, "X_val": X, "y_val": y}
    trainer = reference_modules(edition).solver.Solver(
        ConstantModel(), data, update_rule="adam", batch_size=4, num_epochs=1, verbose=False
    )
    trainer.train()
    assert trainer.optim_configs["w"]["t"] == t_after_one_step


def test_2017_solver_refuses_unknown_update_rules():
    X = np.zeros((4, 2))
    data = {"X_train": X, "y_train": np.zeros(4, dtype=np.int64), "X_val": X, "y_val": np.zeros(4)}
    with pytest.raises(ValueError, match="Invalid update_rule"):
        reference_modules(E2017).solver.Solver(ConstantModel(), data, update_rule="nesterov")


# Notebook figures of the older editions (Dropout.ipynb), where they differ from today's

LOSS_DECIMALS = 14  # the printed losses have 16 significant digits; see test_published_figures.py


def small_net_inputs():
    np.random.seed(231)
    X = np.random.randn(2, 15)
    y = np.random.randint(10, size=(2,))
    return X, y


def notebook_dropout_losses(edition, dropouts):
    """Dropout.ipynb's gradient-check cell: models built one after another, each loss seeded with 123."""
    X, y = small_net_inputs()
    losses = []
    for dropout in dropouts:
        model = reference_modules(edition).fc_net.FullyConnectedNet(
            [20, 30],
            input_dim=15,
            num_classes=10,
            weight_scale=5e-2,
            dtype=np.float64,
            dropout=dropout,
            seed=123,
        )
        losses.append(model.loss(X, y)[0])
    return losses


def test_2018_notebook_dropout_losses():
    # Printed by the 2018 notebook for dropout in [1, 0.75, 0.5] (keep probabilities); the same figures
    # as the 2021 notebook's dropout_keep_ratio cell.
    printed = [2.3004790897684924, 2.302371489704412, 2.3042759220785896]
    assert_printed(notebook_dropout_losses(E2018, [1, 0.75, 0.5]), printed, LOSS_DECIMALS)


def test_2017_notebook_dropout_losses():
    # The 2017 cell runs dropout in [0, 0.25, 0.5] (drop probabilities) and prints no expected values.
    # dropout=0 is the network without dropout, whose loss the later notebooks publish; the other two
    # are this reference's own figures (2017 mask), kept so that a change in them is noticed.
    losses = notebook_dropout_losses(E2017, [0, 0.25, 0.5])
    assert_printed(losses[0], 2.3004790897684924, LOSS_DECIMALS)
    assert_printed(losses[1:], [2.3048692151235994, 2.310136908722148], LOSS_DECIMALS)


def notebook_dropout_statistics(dropout_forward, ps):
    """Dropout.ipynb's forward cell: x drawn once, then the p values draw their masks in turn."""
    np.random.seed(231)
    x = np.random.randn(500, 500) + 10
    statistics = []
    for p in ps:
        out, _ = dropout_forward(x, {"mode": "train", "p": p})
        out_test, _ = dropout_forward(x, {"mode": "test", "p": p})
        np.testing.assert_array_equal(out_test, x)
        statistics.append((out.mean(), (out == 0).mean()))
    return statistics


def test_2017_notebook_dropout_statistics():
    # The 2017 cell uses p in [0.3, 0.6, 0.75] (drop) where later ones use [0.25, 0.4, 0.7] (keep). It
    # prints no expected values: the fraction of zeros should be about p and the mean about 10. The exact
    # figures are this reference's (mask u >= p), kept so that a change in them is noticed.
    figures = {
        0.3: (9.985265770517648, 0.300876),
        0.6: (10.035153558044966, 0.598632),
        0.75: (10.021625749126567, 0.749504),
    }
    statistics = notebook_dropout_statistics(reference_modules(E2017).layers.dropout_forward, figures)
    for (p, (mean, zeros)), (train_mean, zero_fraction) in zip(figures.items(), statistics, strict=True):
        assert abs(zero_fraction - p) < 0.005
        assert zero_fraction == zeros
        assert_printed(train_mean, mean, 12)


def test_2017_students_other_mask_convention_is_the_2021_reference_at_keep_1_minus_p():
    # A 2017 solution (AKSoo/CS231n-2017, Dropout.ipynb) keeps u < 1 - p and printed these figures;
    # the 2021 reference with keep probability 1 - p reproduces them: its masks are that convention's.
    printed = {
        0.3: (9.990848162756775, 0.300672),
        0.6: (9.977917658761159, 0.600796),
        0.75: (9.991640741515118, 0.750232),
    }
    statistics = notebook_dropout_statistics(
        lambda x, param: layers.dropout_forward(x, {**param, "p": 1 - param["p"]}), printed
    )
    for (mean, zeros), (train_mean, zero_fraction) in zip(printed.values(), statistics, strict=True):
        assert zero_fraction == zeros
        assert_printed(train_mean, mean, 12)
