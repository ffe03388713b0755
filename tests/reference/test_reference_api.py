"""The reference keeps the course's API and conventions: names, defaults, state, dtypes, RNG order."""

from pathlib import Path

import numpy as np
import pytest

# The course-provided modules are imported as modules: they live in sandbox/scaffold (see
# reference/__init__.py), where import sorting cannot see them as part of `reference`.
from reference import gradient_check, layer_utils, layers, optim, solver
from reference.classifiers.fc_net import FullyConnectedNet
from reference.layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    dropout_backward,
    dropout_forward,
    layernorm_backward,
    layernorm_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
)
from reference.optim import adam, rmsprop, sgd, sgd_momentum

Solver = solver.Solver

SCAFFOLD = Path(__file__).resolve().parents[2] / "sandbox" / "scaffold"


# The course-provided files are the sandbox's scaffold, wired to the reference's layers and optim


@pytest.mark.parametrize("module", [solver, layer_utils, gradient_check])
def test_course_files_are_the_sandbox_scaffold(module):
    assert Path(module.__file__).resolve().parent == SCAFFOLD


def test_scaffold_relative_imports_resolve_to_the_reference():
    assert solver.optim is optim
    assert layer_utils.affine_forward is layers.affine_forward
    assert not (SCAFFOLD / "__init__.py").exists()


def test_layers_carry_the_canary():
    assert "REFERENCE-CANARY-7f3e" in Path(layers.__file__).read_text()


# Solver


class RecordingModel:
    """A stand-in model that records the minibatches it is given and always predicts class 0."""

    def __init__(self):
        self.params = {"w": np.zeros(3)}
        self.batches = []

    def loss(self, X, y=None):
        if y is None:
            return np.tile([1.0, 0.0], (X.shape[0], 1))
        self.batches.append(X.copy())
        return 0.0, {"w": np.ones(3)}


def tiny_data(num_train=8):
    X = np.arange(num_train * 2, dtype=np.float64).reshape(num_train, 2)
    y = np.zeros(num_train, dtype=np.int64)
    return {"X_train": X, "y_train": y, "X_val": X, "y_val": y}


def test_solver_draws_minibatches_like_the_course():
    data = tiny_data()
    np.random.seed(5)
    expected = data["X_train"][np.random.choice(8, 4)]

    model = RecordingModel()
    trainer = Solver(model, data, batch_size=4, verbose=False)
    np.random.seed(5)
    trainer._step()

    np.testing.assert_array_equal(model.batches[0], expected)
    # sgd with the course's default learning rate 1e-2
    np.testing.assert_allclose(model.params["w"], -1e-2 * np.ones(3))


def test_solver_writes_no_checkpoint_unless_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Solver(RecordingModel(), tiny_data(), batch_size=4, num_epochs=2, verbose=False).train()
    assert list(tmp_path.iterdir()) == []

    Solver(
        RecordingModel(), tiny_data(), batch_size=4, num_epochs=2, verbose=False, checkpoint_name="ckpt"
    ).train()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt_epoch_0.pkl",
        "ckpt_epoch_1.pkl",
        "ckpt_epoch_2.pkl",
    ]


def test_solver_rejects_unknown_arguments_and_update_rules():
    with pytest.raises(ValueError, match="Unrecognized arguments"):
        Solver(RecordingModel(), tiny_data(), learning_rate=1e-3)
    with pytest.raises(ValueError, match="Invalid update_rule"):
        Solver(RecordingModel(), tiny_data(), update_rule="nesterov")


def test_solver_prints_progress_like_the_course(capsys):
    Solver(RecordingModel(), tiny_data(), batch_size=4, num_epochs=1, print_every=1).train()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "(Iteration 1 / 2) loss: 0.000000"
    assert lines[1] == "(Epoch 0 / 1) train acc: 1.000000; val_acc: 1.000000"


# Layers: shapes and dtypes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layers_keep_the_input_dtype(dtype):
    rng = np.random.RandomState(0)
    x = rng.randn(4, 2, 3).astype(dtype)
    w = rng.randn(6, 5).astype(dtype)
    b = rng.randn(5).astype(dtype)
    dout = rng.randn(4, 5).astype(dtype)
    gamma = rng.randn(5).astype(dtype)
    beta = rng.randn(5).astype(dtype)

    out, cache = affine_forward(x, w, b)
    assert out.dtype == dtype
    assert all(g.dtype == dtype for g in affine_backward(dout, cache))

    out, cache = relu_forward(out)
    assert out.dtype == dtype
    assert relu_backward(dout, cache).dtype == dtype

    loss, dx = softmax_loss(out, np.array([0, 1, 2, 3]))
    assert np.asarray(loss).dtype == dtype
    assert dx.dtype == dtype

    bn_param = {"mode": "train"}
    out, cache = batchnorm_forward(dout, gamma, beta, bn_param)
    assert out.dtype == dtype
    assert bn_param["running_mean"].dtype == dtype
    assert bn_param["running_var"].dtype == dtype
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        assert all(g.dtype == dtype for g in backward(dout, cache))
    bn_param["mode"] = "test"
    assert batchnorm_forward(dout, gamma, beta, bn_param)[0].dtype == dtype

    out, cache = layernorm_forward(dout, gamma, beta, {})
    assert out.dtype == dtype
    assert all(g.dtype == dtype for g in layernorm_backward(dout, cache))

    out, cache = dropout_forward(dout, {"mode": "train", "p": 0.5, "seed": 0})
    assert out.dtype == dtype
    assert dropout_backward(dout, cache).dtype == dtype


def test_affine_flattens_multidimensional_input():
    x = np.arange(24.0).reshape(2, 3, 4)
    w = np.ones((12, 2))
    out, cache = affine_forward(x, w, np.zeros(2))
    np.testing.assert_array_equal(out, x.reshape(2, 12).sum(axis=1, keepdims=True) * np.ones((1, 2)))
    dx, dw, db = affine_backward(np.ones((2, 2)), cache)
    assert dx.shape == (2, 3, 4)
    assert dw.shape == (12, 2)
    assert db.shape == (2,)


# Batch and layer normalization


def test_batchnorm_running_averages_start_at_zero_and_are_stored_back():
    rng = np.random.RandomState(1)
    x = rng.randn(8, 3) * 4 + 2
    bn_param = {"mode": "train"}

    batchnorm_forward(x, np.ones(3), np.zeros(3), bn_param)

    # momentum 0.9 from zero: one step keeps 10% of the batch statistics; the variance is the biased one
    np.testing.assert_allclose(bn_param["running_mean"], 0.1 * x.mean(axis=0))
    np.testing.assert_allclose(bn_param["running_var"], 0.1 * x.var(axis=0))


def test_batchnorm_uses_momentum_and_eps_from_bn_param():
    rng = np.random.RandomState(2)
    x = rng.randn(8, 3) * 1e-3  # variance around 1e-6: the value of eps changes the output visibly
    running_mean, running_var = np.full(3, 0.5), np.full(3, 2.0)
    bn_param = {
        "mode": "train",
        "momentum": 0.5,
        "eps": 1e-3,
        "running_mean": running_mean,
        "running_var": running_var,
    }

    out, _ = batchnorm_forward(x, np.ones(3), np.zeros(3), bn_param)

    np.testing.assert_allclose(out, (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-3))
    np.testing.assert_allclose(bn_param["running_mean"], 0.5 * 0.5 + 0.5 * x.mean(axis=0))
    np.testing.assert_allclose(bn_param["running_var"], 0.5 * 2.0 + 0.5 * x.var(axis=0))


def test_batchnorm_test_mode_uses_running_averages():
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    bn_param = {"mode": "test", "running_mean": np.array([1.0, 2.0]), "running_var": np.array([4.0, 16.0])}
    gamma, beta = np.array([2.0, 3.0]), np.array([1.0, -1.0])

    out, _ = batchnorm_forward(x, gamma, beta, bn_param)

    expected = gamma * (x - [1.0, 2.0]) / np.sqrt(np.array([4.0, 16.0]) + 1e-5) + beta
    np.testing.assert_allclose(out, expected)


def test_batchnorm_rejects_unknown_mode():
    with pytest.raises(ValueError, match="Invalid forward batchnorm mode"):
        batchnorm_forward(np.ones((2, 2)), np.ones(2), np.zeros(2), {"mode": "eval"})


def test_layernorm_normalizes_each_row_and_keeps_no_state():
    rng = np.random.RandomState(3)
    x = rng.randn(4, 6) * 3 + 7
    ln_param = {"mode": "train"}

    out, _ = layernorm_forward(x, np.ones(6), np.zeros(6), ln_param)

    expected = (x - x.mean(axis=1, keepdims=True)) / np.sqrt(x.var(axis=1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(out, expected)
    assert ln_param == {"mode": "train"}
    ln_param["mode"] = "test"
    np.testing.assert_array_equal(layernorm_forward(x, np.ones(6), np.zeros(6), ln_param)[0], out)


# Dropout


def test_dropout_p_is_the_keep_probability_and_is_inverted():
    x = np.full((400, 500), 2.0)
    out, (_, mask) = dropout_forward(x, {"mode": "train", "p": 0.3, "seed": 0})

    kept = out != 0
    assert abs(kept.mean() - 0.3) < 0.01
    np.testing.assert_allclose(out[kept], 2.0 / 0.3)
    np.testing.assert_array_equal(out, x * mask)


def test_dropout_seed_makes_the_mask_reproducible():
    x = np.ones((20, 20))
    param = {"mode": "train", "p": 0.5, "seed": 42}
    np.testing.assert_array_equal(dropout_forward(x, param)[0], dropout_forward(x, param)[0])

    np.random.seed(42)
    expected = x * (np.random.rand(20, 20) < 0.5) / 0.5
    np.testing.assert_array_equal(dropout_forward(x, param)[0], expected)


def test_dropout_test_mode_returns_the_input_unchanged():
    x = np.random.randn(3, 4).astype(np.float32)
    out, (_, mask) = dropout_forward(x, {"mode": "test", "p": 0.3})
    assert out is x
    assert mask is None


# Optimizers


def test_update_rules_fill_in_the_course_defaults():
    w, dw = np.ones((2, 3)), np.full((2, 3), 0.5)

    assert sgd(w, dw)[1] == {"learning_rate": 1e-2}

    _, config = sgd_momentum(w, dw)
    assert (config["learning_rate"], config["momentum"]) == (1e-2, 0.9)
    np.testing.assert_allclose(config["velocity"], -1e-2 * dw)  # from zero velocity

    _, config = rmsprop(w, dw)
    assert (config["learning_rate"], config["decay_rate"], config["epsilon"]) == (1e-2, 0.99, 1e-8)
    np.testing.assert_allclose(config["cache"], 0.01 * dw**2)  # from a zero cache

    _, config = adam(w, dw)
    assert (config["learning_rate"], config["beta1"], config["beta2"], config["epsilon"]) == (
        1e-3,
        0.9,
        0.999,
        1e-8,
    )
    assert config["t"] == 1
    np.testing.assert_allclose(config["m"], 0.1 * dw)
    np.testing.assert_allclose(config["v"], 0.001 * dw**2)


def test_adam_first_step_is_bias_corrected_with_t_equal_one():
    w, dw = np.zeros(4), np.array([3.0, -2.0, 1e-3, -5.0])

    next_w, config = adam(w, dw, {"learning_rate": 0.1})

    # With t incremented to 1 before use, m_hat = dw and v_hat = dw**2: every weight moves by about lr.
    np.testing.assert_allclose(next_w, -0.1 * np.sign(dw), rtol=1e-4)
    next_w, config = adam(next_w, dw, config)
    assert config["t"] == 2
    np.testing.assert_allclose(next_w, -0.2 * np.sign(dw), rtol=1e-4)


def test_sgd_momentum_and_rmsprop_formulas():
    w, dw = np.array([1.0, -2.0]), np.array([0.5, 4.0])
    v = np.array([0.1, -0.3])
    next_w, config = sgd_momentum(w, dw, {"learning_rate": 0.1, "momentum": 0.8, "velocity": v.copy()})
    np.testing.assert_allclose(config["velocity"], 0.8 * v - 0.1 * dw)
    np.testing.assert_allclose(next_w, w + 0.8 * v - 0.1 * dw)

    cache = np.array([0.2, 0.7])
    next_w, config = rmsprop(w, dw, {"learning_rate": 0.1, "cache": cache.copy()})
    new_cache = 0.99 * cache + 0.01 * dw**2
    np.testing.assert_allclose(config["cache"], new_cache)
    np.testing.assert_allclose(next_w, w - 0.1 * dw / (np.sqrt(new_cache) + 1e-8))


@pytest.mark.parametrize("rule", [sgd, sgd_momentum, rmsprop, adam])
def test_update_rules_do_not_modify_their_inputs(rule):
    w, dw = np.ones(3), np.full(3, 0.5)
    rule(w, dw)
    np.testing.assert_array_equal(w, np.ones(3))
    np.testing.assert_array_equal(dw, np.full(3, 0.5))


@pytest.mark.parametrize("rule", [sgd, sgd_momentum, rmsprop, adam])
def test_update_rules_keep_float32(rule):
    w, dw = np.ones(3, dtype=np.float32), np.full(3, 0.5, dtype=np.float32)
    next_w, _ = rule(w, dw)
    assert next_w.dtype == np.float32


# FullyConnectedNet


def test_model_draws_weights_layer_by_layer_and_casts_to_dtype():
    np.random.seed(7)
    model = FullyConnectedNet([4, 3], input_dim=5, num_classes=2, weight_scale=0.1, normalization="batchnorm")

    np.random.seed(7)
    expected = [np.random.randn(5, 4) * 0.1, np.random.randn(4, 3) * 0.1, np.random.randn(3, 2) * 0.1]
    assert model.num_layers == 3
    for layer, W in enumerate(expected, start=1):
        np.testing.assert_array_equal(model.params[f"W{layer}"], W.astype(np.float32))
    assert sorted(model.params) == sorted(
        ["W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3"]
    )
    assert all(p.dtype == np.float32 for p in model.params.values())
    np.testing.assert_array_equal(model.params["gamma2"], np.ones(3))
    np.testing.assert_array_equal(model.params["beta1"], np.zeros(4))
    np.testing.assert_array_equal(model.params["b3"], np.zeros(2))


def test_model_state_dicts_follow_the_course():
    model = FullyConnectedNet([4, 3], input_dim=5, dropout_keep_ratio=0.5, seed=9, normalization="batchnorm")
    assert model.use_dropout
    assert model.dropout_param == {"mode": "train", "p": 0.5, "seed": 9}
    assert model.bn_params == [{"mode": "train"}, {"mode": "train"}]

    model = FullyConnectedNet([4, 3], input_dim=5, normalization="layernorm")
    assert not model.use_dropout
    assert model.dropout_param == {}
    assert model.bn_params == [{}, {}]

    model = FullyConnectedNet([4], input_dim=5)
    assert model.bn_params == []
    assert model.normalization is None

    with pytest.raises(ValueError, match="Invalid normalization"):
        FullyConnectedNet([4], input_dim=5, normalization="groupnorm")


def test_model_loss_switches_train_and_test_mode():
    np.random.seed(0)
    model = FullyConnectedNet(
        [6, 5], input_dim=12, num_classes=3, dropout_keep_ratio=0.5, normalization="batchnorm"
    )
    X = np.random.randn(4, 3, 4)  # float64 and multi-dimensional: the model casts and flattens it
    y = np.array([0, 1, 2, 1])

    _, grads = model.loss(X, y)
    assert model.dropout_param["mode"] == "train"
    assert all(p["mode"] == "train" for p in model.bn_params)
    assert all(g.dtype == np.float32 for g in grads.values())

    scores = model.loss(X)
    assert scores.shape == (4, 3)
    assert scores.dtype == np.float32
    assert model.dropout_param["mode"] == "test"
    assert all(p["mode"] == "test" for p in model.bn_params)
    # test mode is deterministic: no dropout, running statistics instead of batch statistics
    np.testing.assert_array_equal(model.loss(X), scores)


def test_model_l2_regularization_covers_weights_only():
    np.random.seed(0)
    X = np.random.randn(5, 6)
    y = np.array([0, 1, 2, 0, 1])
    model = FullyConnectedNet([4], input_dim=6, num_classes=3, normalization="layernorm", dtype=np.float64)
    model.params["b1"] += 1.0  # non-zero biases, gamma and beta must stay out of the penalty
    model.params["beta1"] += 0.5
    model.params["gamma1"] *= 2.0

    loss0, grads0 = model.loss(X, y)
    model.reg = 0.3
    loss, grads = model.loss(X, y)

    penalty = 0.5 * 0.3 * sum(np.sum(model.params[k] ** 2) for k in ("W1", "W2"))
    np.testing.assert_allclose(loss - loss0, penalty)
    for name in grads:
        extra = 0.3 * model.params[name] if name.startswith("W") else 0.0
        np.testing.assert_allclose(grads[name], grads0[name] + extra)
