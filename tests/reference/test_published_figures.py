"""The reference reproduces the figures printed in the course notebooks (CS231n assignment 2, 2023).

Each test replays a notebook cell with the same seed and the same order of random calls, then compares
with the printed output to the digits printed. A figure that stops matching means the reference (or
its order of random calls) changed; never loosen the figure to make it pass.
"""

import numpy as np

from reference.classifiers.fc_net import FullyConnectedNet
from reference.layers import (
    affine_forward,
    batchnorm_forward,
    dropout_forward,
    layernorm_forward,
    relu_forward,
)
from reference.optim import adam, rmsprop, sgd_momentum


def assert_printed(value, printed, decimals):
    """Assert that `value` rounds to `printed`, which was printed with `decimals` decimal places."""
    np.testing.assert_allclose(value, printed, rtol=0, atol=0.5 * 10.0**-decimals)


def two_layer_activations(N, D1=50, D2=60, D3=3):
    """BatchNormalization.ipynb: X, W1, W2 drawn in this order, a = relu(X W1) W2."""
    X = np.random.randn(N, D1)
    W1 = np.random.randn(D1, D2)
    W2 = np.random.randn(D2, D3)
    return np.maximum(0, X.dot(W1)).dot(W2)


# FullyConnectedNets.ipynb / two_layer_net.ipynb: layer checks on linspace inputs


def test_affine_forward_linspace():
    num_inputs, input_shape, output_dim = 2, (4, 5, 6), 3
    input_size = num_inputs * np.prod(input_shape)
    weight_size = output_dim * np.prod(input_shape)
    x = np.linspace(-0.1, 0.5, num=input_size).reshape(num_inputs, *input_shape)
    w = np.linspace(-0.2, 0.3, num=weight_size).reshape(np.prod(input_shape), output_dim)
    b = np.linspace(-0.3, 0.1, num=output_dim)

    out, _ = affine_forward(x, w, b)

    correct_out = np.array([[1.49834967, 1.70660132, 1.91485297], [3.25553199, 3.5141327, 3.77273342]])
    assert_printed(out, correct_out, 8)


def test_relu_forward_linspace():
    x = np.linspace(-0.5, 0.5, num=12).reshape(3, 4)

    out, _ = relu_forward(x)

    correct_out = np.array(
        [
            [0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.04545455, 0.13636364],
            [0.22727273, 0.31818182, 0.40909091, 0.5],
        ]
    )
    assert_printed(out, correct_out, 8)


def optimizer_inputs():
    N, D = 4, 5
    w = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
    dw = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)
    return N, D, w, dw


def test_sgd_momentum_linspace():
    N, D, w, dw = optimizer_inputs()
    v = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    config = {"learning_rate": 1e-3, "velocity": v}

    next_w, _ = sgd_momentum(w, dw, config=config)

    expected_next_w = np.asarray(
        [
            [0.1406, 0.20738947, 0.27417895, 0.34096842, 0.40775789],
            [0.47454737, 0.54133684, 0.60812632, 0.67491579, 0.74170526],
            [0.80849474, 0.87528421, 0.94207368, 1.00886316, 1.07565263],
            [1.14244211, 1.20923158, 1.27602105, 1.34281053, 1.4096],
        ]
    )
    expected_velocity = np.asarray(
        [
            [0.5406, 0.55475789, 0.56891579, 0.58307368, 0.59723158],
            [0.61138947, 0.62554737, 0.63970526, 0.65386316, 0.66802105],
            [0.68217895, 0.69633684, 0.71049474, 0.72465263, 0.73881053],
            [0.75296842, 0.76712632, 0.78128421, 0.79544211, 0.8096],
        ]
    )
    assert_printed(next_w, expected_next_w, 8)
    assert_printed(config["velocity"], expected_velocity, 8)


def test_rmsprop_linspace():
    N, D, w, dw = optimizer_inputs()
    cache = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    config = {"learning_rate": 1e-2, "cache": cache}

    next_w, _ = rmsprop(w, dw, config=config)

    expected_next_w = np.asarray(
        [
            [-0.39223849, -0.34037513, -0.28849239, -0.23659121, -0.18467247],
            [-0.132737, -0.08078555, -0.02881884, 0.02316247, 0.07515774],
            [0.12716641, 0.17918792, 0.23122175, 0.28326742, 0.33532447],
            [0.38739248, 0.43947102, 0.49155973, 0.54365823, 0.59576619],
        ]
    )
    expected_cache = np.asarray(
        [
            [0.5976, 0.6126277, 0.6277108, 0.64284931, 0.65804321],
            [0.67329252, 0.68859723, 0.70395734, 0.71937285, 0.73484377],
            [0.75037008, 0.7659518, 0.78158892, 0.79728144, 0.81302936],
            [0.82883269, 0.84469141, 0.86060554, 0.87657507, 0.8926],
        ]
    )
    assert_printed(next_w, expected_next_w, 8)
    assert_printed(config["cache"], expected_cache, 8)


def test_adam_linspace():
    N, D, w, dw = optimizer_inputs()
    m = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    v = np.linspace(0.7, 0.5, num=N * D).reshape(N, D)
    config = {"learning_rate": 1e-2, "m": m, "v": v, "t": 5}

    next_w, _ = adam(w, dw, config=config)

    expected_next_w = np.asarray(
        [
            [-0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977],
            [-0.1380274, -0.08544591, -0.03286534, 0.01971428, 0.0722929],
            [0.1248705, 0.17744702, 0.23002243, 0.28259667, 0.33516969],
            [0.38774145, 0.44031188, 0.49288093, 0.54544852, 0.59801459],
        ]
    )
    expected_v = np.asarray(
        [
            [0.69966, 0.68908382, 0.67851319, 0.66794809, 0.65738853],
            [0.64683452, 0.63628604, 0.6257431, 0.61520571, 0.60467385],
            [0.59414753, 0.58362676, 0.57311152, 0.56260183, 0.55209767],
            [0.54159906, 0.53110598, 0.52061845, 0.51013645, 0.49966],
        ]
    )
    expected_m = np.asarray(
        [
            [0.48, 0.49947368, 0.51894737, 0.53842105, 0.55789474],
            [0.57736842, 0.59684211, 0.61631579, 0.63578947, 0.65526316],
            [0.67473684, 0.69421053, 0.71368421, 0.73315789, 0.75263158],
            [0.77210526, 0.79157895, 0.81105263, 0.83052632, 0.85],
        ]
    )
    assert_printed(next_w, expected_next_w, 8)
    assert_printed(config["v"], expected_v, 8)
    assert_printed(config["m"], expected_m, 8)
    assert config["t"] == 6


# BatchNormalization.ipynb


def test_batchnorm_train_time_statistics():
    np.random.seed(231)
    a = two_layer_activations(N=200)

    assert_printed(a.mean(axis=0), [-2.3814598, -13.18038246, 1.91780462], 8)
    assert_printed(a.std(axis=0), [27.18502186, 34.21455511, 37.68611762], 8)

    a_norm, _ = batchnorm_forward(a, np.ones(3), np.zeros(3), {"mode": "train"})
    # Printed as [5.99520433e-17 7.16093851e-17 8.32667268e-19]: zero up to rounding.
    np.testing.assert_allclose(a_norm.mean(axis=0), 0, atol=1e-15)
    assert_printed(a_norm.std(axis=0), [0.99999999, 1.0, 1.0], 8)

    gamma = np.asarray([1.0, 2.0, 3.0])
    beta = np.asarray([11.0, 12.0, 13.0])
    a_norm, _ = batchnorm_forward(a, gamma, beta, {"mode": "train"})
    assert_printed(a_norm.mean(axis=0), [11.0, 12.0, 13.0], 8)
    assert_printed(a_norm.std(axis=0), [0.99999999, 1.99999999, 2.99999999], 8)


def test_batchnorm_test_time_statistics():
    np.random.seed(231)
    N, D1, D2, D3 = 200, 50, 60, 3
    W1 = np.random.randn(D1, D2)
    W2 = np.random.randn(D2, D3)

    bn_param = {"mode": "train"}
    gamma = np.ones(D3)
    beta = np.zeros(D3)
    for _ in range(50):
        X = np.random.randn(N, D1)
        a = np.maximum(0, X.dot(W1)).dot(W2)
        batchnorm_forward(a, gamma, beta, bn_param)

    bn_param["mode"] = "test"
    X = np.random.randn(N, D1)
    a = np.maximum(0, X.dot(W1)).dot(W2)
    a_norm, _ = batchnorm_forward(a, gamma, beta, bn_param)

    assert_printed(a_norm.mean(axis=0), [-0.03927354, -0.04349152, -0.10452688], 8)
    assert_printed(a_norm.std(axis=0), [1.01531428, 1.01238373, 0.97819988], 8)


def test_layernorm_statistics():
    np.random.seed(231)
    a = two_layer_activations(N=4)

    assert_printed(a.mean(axis=1), [-59.06673243, -47.60782686, -43.31137368, -26.40991744], 8)
    assert_printed(a.std(axis=1), [10.07429373, 28.39478981, 35.28360729, 4.01831507], 8)

    a_norm, _ = layernorm_forward(a, np.ones(3), np.zeros(3), {"mode": "train"})
    np.testing.assert_allclose(a_norm.mean(axis=1), 0, atol=1e-15)
    assert_printed(a_norm.std(axis=1), [0.99999995, 0.99999999, 1.0, 0.99999969], 8)

    gamma = np.asarray([3.0, 3.0, 3.0])
    beta = np.asarray([5.0, 5.0, 5.0])
    a_norm, _ = layernorm_forward(a, gamma, beta, {"mode": "train"})
    assert_printed(a_norm.mean(axis=1), [5.0, 5.0, 5.0, 5.0], 8)
    assert_printed(a_norm.std(axis=1), [2.99999985, 2.99999998, 2.99999999, 2.99999907], 8)


# Dropout.ipynb


def test_dropout_forward_statistics():
    # x is drawn once; the three p values then draw their masks one after another from the same RNG.
    np.random.seed(231)
    x = np.random.randn(500, 500) + 10
    published = {
        0.25: (10.014059116977283, 0.749784),
        0.4: (9.977917658761159, 0.600796),
        0.7: (9.987811912159426, 0.30074),
    }

    for p, (train_mean, zero_fraction) in published.items():
        out, _ = dropout_forward(x, {"mode": "train", "p": p})
        out_test, _ = dropout_forward(x, {"mode": "test", "p": p})

        assert_printed(out.mean(), train_mean, 12)
        assert (out == 0).mean() == zero_fraction
        assert out_test.mean() == x.mean()
        assert (out_test == 0).mean() == 0.0
    assert_printed(x.mean(), 10.000207878477502, 12)


# Initial losses of the FullyConnectedNet gradient checks. The losses are printed with 16 significant
# digits; different correct formulas differ in the last unit (the course's own notebooks print
# 2.3004790897684924 in one and 2.300479089768492 in another), so compare to 1e-14.
LOSS_DECIMALS = 14


def small_net_inputs():
    np.random.seed(231)
    N, D, H1, H2, C = 2, 15, 20, 30, 10
    X = np.random.randn(N, D)
    y = np.random.randint(C, size=(N,))
    return X, y, D, H1, H2, C


def test_fully_connected_net_initial_loss_with_reg():
    X, y, D, H1, H2, C = small_net_inputs()
    published = {0: 2.3004790897684924, 3.14: 7.052114776533016}

    # Models are built inside the loop, so each one continues the global RNG where the previous one left it.
    for reg, initial_loss in published.items():
        model = FullyConnectedNet(
            [H1, H2], input_dim=D, num_classes=C, reg=reg, weight_scale=5e-2, dtype=np.float64
        )
        loss, _ = model.loss(X, y)
        assert_printed(loss, initial_loss, LOSS_DECIMALS)


def test_fully_connected_net_initial_loss_with_dropout():
    X, y, D, H1, H2, C = small_net_inputs()
    published = {1: 2.300479089768492, 0.75: 2.302371489704412, 0.5: 2.30427592207859}

    # The notebook gradient-checks each model before building the next. That does not change the RNG
    # state: every loss call reseeds with seed=123 and draws the same masks, so one call is equivalent.
    for dropout_keep_ratio, initial_loss in published.items():
        model = FullyConnectedNet(
            [H1, H2],
            input_dim=D,
            num_classes=C,
            weight_scale=5e-2,
            dtype=np.float64,
            dropout_keep_ratio=dropout_keep_ratio,
            seed=123,
        )
        loss, _ = model.loss(X, y)
        assert_printed(loss, initial_loss, LOSS_DECIMALS)
