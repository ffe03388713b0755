"""Numeric gradient checks of every reference backward function and of the reference model, in float64.

Layer checks replay the course notebooks' cells (same seeds, same shapes); thresholds sit about ten
times above the errors those cells produce, far below what any mistake gives (around 1e-2 or more).
"""

import numpy as np
import pytest

# The course-provided modules are imported as modules: they live in sandbox/scaffold (see
# reference/__init__.py), where import sorting cannot see them as part of `reference`.
from reference import gradient_check, layer_utils, solver
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

eval_numerical_gradient = gradient_check.eval_numerical_gradient
eval_numerical_gradient_array = gradient_check.eval_numerical_gradient_array
affine_relu_forward, affine_relu_backward = layer_utils.affine_relu_forward, layer_utils.affine_relu_backward


def rel_error(x, y):
    """The course's relative error: max(|x - y| / max(1e-8, |x| + |y|))."""
    return np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)))


def test_affine_backward():
    np.random.seed(231)
    x = np.random.randn(10, 2, 3)
    w = np.random.randn(6, 5)
    b = np.random.randn(5)
    dout = np.random.randn(10, 5)

    dx_num = eval_numerical_gradient_array(lambda x: affine_forward(x, w, b)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: affine_forward(x, w, b)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda b: affine_forward(x, w, b)[0], b, dout)

    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)

    assert dx.shape == x.shape
    assert rel_error(dx_num, dx) < 1e-9
    assert rel_error(dw_num, dw) < 1e-9
    assert rel_error(db_num, db) < 1e-9


def test_relu_backward():
    np.random.seed(231)
    x = np.random.randn(10, 10)
    dout = np.random.randn(*x.shape)

    dx_num = eval_numerical_gradient_array(lambda x: relu_forward(x)[0], x, dout)

    _, cache = relu_forward(x)
    dx = relu_backward(dout, cache)

    assert rel_error(dx_num, dx) < 1e-10


def test_affine_relu_backward():
    np.random.seed(231)
    x = np.random.randn(2, 3, 4)
    w = np.random.randn(12, 10)
    b = np.random.randn(10)
    dout = np.random.randn(2, 10)

    _, cache = affine_relu_forward(x, w, b)
    dx, dw, db = affine_relu_backward(dout, cache)

    dx_num = eval_numerical_gradient_array(lambda x: affine_relu_forward(x, w, b)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: affine_relu_forward(x, w, b)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda b: affine_relu_forward(x, w, b)[0], b, dout)

    assert rel_error(dx_num, dx) < 1e-9
    assert rel_error(dw_num, dw) < 1e-9
    assert rel_error(db_num, db) < 1e-9


def test_softmax_loss():
    np.random.seed(231)
    num_classes, num_inputs = 10, 50
    x = 0.001 * np.random.randn(num_inputs, num_classes)
    y = np.random.randint(num_classes, size=num_inputs)

    dx_num = eval_numerical_gradient(lambda x: softmax_loss(x, y)[0], x, verbose=False)
    loss, dx = softmax_loss(x, y)

    # Near-zero scores give nearly uniform probabilities, so the loss is close to log(C).
    assert abs(loss - np.log(num_classes)) < 1e-2
    assert rel_error(dx_num, dx) < 1e-7


def test_softmax_loss_is_stable_for_large_scores():
    x = np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 2000.0]])
    y = np.array([0, 1])

    loss, dx = softmax_loss(x, y)

    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, 500.0)
    np.testing.assert_allclose(dx, [[0.0, 0.0, 0.0], [0.0, -0.5, 0.5]], atol=1e-12)


def batchnorm_check_inputs(N=4, D=5):
    """BatchNormalization.ipynb's gradient-check inputs: shifted, scaled features."""
    np.random.seed(231)
    x = 5 * np.random.randn(N, D) + 12
    gamma = np.random.randn(D)
    beta = np.random.randn(D)
    dout = np.random.randn(N, D)
    return x, gamma, beta, dout


@pytest.mark.parametrize("backward", [batchnorm_backward, batchnorm_backward_alt])
def test_batchnorm_backward(backward):
    x, gamma, beta, dout = batchnorm_check_inputs()
    bn_param = {"mode": "train"}
    fx = lambda x: batchnorm_forward(x, gamma, beta, bn_param)[0]  # noqa: E731
    fg = lambda a: batchnorm_forward(x, a, beta, bn_param)[0]  # noqa: E731
    fb = lambda b: batchnorm_forward(x, gamma, b, bn_param)[0]  # noqa: E731

    dx_num = eval_numerical_gradient_array(fx, x, dout)
    da_num = eval_numerical_gradient_array(fg, gamma.copy(), dout)
    db_num = eval_numerical_gradient_array(fb, beta.copy(), dout)

    _, cache = batchnorm_forward(x, gamma, beta, bn_param)
    dx, dgamma, dbeta = backward(dout, cache)

    assert rel_error(dx_num, dx) < 1e-8
    assert rel_error(da_num, dgamma) < 1e-10
    assert rel_error(db_num, dbeta) < 1e-10


def test_batchnorm_backward_alt_matches_batchnorm_backward():
    x, gamma, beta, dout = batchnorm_check_inputs(N=100, D=500)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})

    dx1, dgamma1, dbeta1 = batchnorm_backward(dout, cache)
    dx2, dgamma2, dbeta2 = batchnorm_backward_alt(dout, cache)

    # Agreement to 1e-12 of the gradient's scale. Elementwise, entries a million times smaller than the
    # largest (3e-6 here) come out of a cancellation, and any two correct formulas differ there at about
    # 1e-12 relative; the course's rel_error is asserted with room for that.
    assert np.abs(dx1 - dx2).max() < 1e-12 * np.abs(dx1).max()
    assert rel_error(dx1, dx2) < 1e-11
    assert rel_error(dgamma1, dgamma2) < 1e-12
    assert rel_error(dbeta1, dbeta2) < 1e-12


def test_layernorm_backward():
    x, gamma, beta, dout = batchnorm_check_inputs()
    ln_param = {}
    fx = lambda x: layernorm_forward(x, gamma, beta, ln_param)[0]  # noqa: E731
    fg = lambda a: layernorm_forward(x, a, beta, ln_param)[0]  # noqa: E731
    fb = lambda b: layernorm_forward(x, gamma, b, ln_param)[0]  # noqa: E731

    dx_num = eval_numerical_gradient_array(fx, x, dout)
    da_num = eval_numerical_gradient_array(fg, gamma.copy(), dout)
    db_num = eval_numerical_gradient_array(fb, beta.copy(), dout)

    _, cache = layernorm_forward(x, gamma, beta, ln_param)
    dx, dgamma, dbeta = layernorm_backward(dout, cache)

    assert rel_error(dx_num, dx) < 1e-8
    assert rel_error(da_num, dgamma) < 1e-10
    assert rel_error(db_num, dbeta) < 1e-10


def test_dropout_backward():
    np.random.seed(231)
    x = np.random.randn(10, 10) + 10
    dout = np.random.randn(*x.shape)

    # The seed makes every forward pass draw the same mask, which the numeric gradient needs.
    dropout_param = {"mode": "train", "p": 0.2, "seed": 123}
    _, cache = dropout_forward(x, dropout_param)
    dx = dropout_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda xx: dropout_forward(xx, dropout_param)[0], x, dout)

    assert rel_error(dx, dx_num) < 1e-10


def test_dropout_backward_test_mode_passes_gradient_through():
    dout = np.random.randn(3, 4)
    _, cache = dropout_forward(np.ones((3, 4)), {"mode": "test", "p": 0.3})

    assert np.array_equal(dropout_backward(dout, cache), dout)


# Model gradients. With these inputs and h=1e-5 no finite difference straddles a ReLU kink, so every
# parameter's error is about 1e-7 at most; a seed where one does would show errors near 1 (a known
# artefact of numeric checks through ReLUs, not of the model).
MODEL_CASES = [
    pytest.param(None, 0.0, 1, id="plain-reg0"),
    pytest.param(None, 0.7, 1, id="plain-reg0.7"),
    pytest.param("batchnorm", 0.0, 1, id="batchnorm-reg0"),
    pytest.param("batchnorm", 0.7, 1, id="batchnorm-reg0.7"),
    pytest.param("layernorm", 0.0, 1, id="layernorm-reg0"),
    pytest.param("layernorm", 0.7, 1, id="layernorm-reg0.7"),
    pytest.param(None, 0.0, 0.5, id="dropout0.5-reg0"),
    pytest.param(None, 0.7, 0.5, id="dropout0.5-reg0.7"),
    pytest.param("batchnorm", 0.7, 0.5, id="batchnorm-dropout0.5-reg0.7"),
]


@pytest.mark.parametrize(("normalization", "reg", "dropout_keep_ratio"), MODEL_CASES)
def test_fully_connected_net_gradients(normalization, reg, dropout_keep_ratio):
    np.random.seed(231)
    N, H1, H2, C = 6, 12, 10, 7
    X = np.random.randn(N, 3, 3)  # multi-dimensional input: the first affine layer must flatten it
    y = np.random.randint(C, size=(N,))
    model = FullyConnectedNet(
        [H1, H2],
        input_dim=9,
        num_classes=C,
        dropout_keep_ratio=dropout_keep_ratio,
        normalization=normalization,
        reg=reg,
        weight_scale=3e-1,
        dtype=np.float64,
        seed=123,
    )

    loss, grads = model.loss(X, y)

    assert np.isfinite(loss)
    assert set(grads) == set(model.params)
    for name in sorted(grads):
        grad_num = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name], h=1e-5)
        assert grads[name].shape == model.params[name].shape
        if normalization == "batchnorm" and name in ("b1", "b2"):
            # Batch norm subtracts the batch mean, so the biases before it have no effect: both
            # gradients are zero up to rounding and a relative error would compare noise with noise.
            assert np.abs(grad_num).max() < 1e-9, name
            assert np.abs(grads[name]).max() < 1e-12, name
        else:
            assert rel_error(grad_num, grads[name]) < 1e-6, name


def test_solver_overfits_fifty_samples():
    rng = np.random.RandomState(0)
    num_train, D, C = 50, 20, 10
    data = {
        "X_train": rng.randn(num_train, D),
        "y_train": rng.randint(C, size=num_train),
        "X_val": rng.randn(20, D),
        "y_val": rng.randint(C, size=20),
    }
    np.random.seed(231)
    model = FullyConnectedNet([100, 100], input_dim=D, num_classes=C, weight_scale=1e-1, dtype=np.float64)

    trainer = solver.Solver(
        model,
        data,
        update_rule="adam",
        optim_config={"learning_rate": 1e-2},
        num_epochs=20,
        batch_size=25,
        verbose=False,
    )
    trainer.train()

    # Training accuracy as measured at the last epoch. (After train() the model holds the parameters with
    # the best *validation* accuracy, as in the course, so they are not the overfitted ones.)
    assert trainer.train_acc_history[-1] == 1.0
    assert trainer.loss_history[-1] < 0.01 * trainer.loss_history[0]
