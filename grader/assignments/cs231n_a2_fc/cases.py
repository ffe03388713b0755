"""Inputs of the checks: the course notebooks' own cases (visible) and designed hidden cases (per seed).

The notebook cases are rebuilt exactly as the notebooks build them, so students recognize them.
Hidden cases are drawn from the run's seed and designed to expose mistakes: small-variance features
make the place of eps matter, tiny batches make the biased and unbiased variance differ, large logits
break an unstable softmax, multi-dimensional x needs a reshape, several steps need saved optimizer state.
"""

from __future__ import annotations

import functools
import itertools
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]


def notebook_case(build: Callable[..., Arrays]) -> Callable[..., Arrays]:
    """Build a notebook case once: it is the same for every run. Its arrays are made read-only, since
    every grading shares them; each call returns a new dict of them."""
    built = functools.cache(build)

    @functools.wraps(build)
    def case(*args: Any) -> Arrays:
        arrays = built(*args)
        for array in arrays.values():
            array.flags.writeable = False
        return dict(arrays)

    return case


def case_rng(seed: int, name: str) -> np.random.Generator:
    """An independent generator per (run seed, case): adding a case never changes the others."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


@notebook_case
def notebook_affine_forward() -> Arrays:
    num_inputs, input_shape, output_dim = 2, (4, 5, 6), 3
    input_size = num_inputs * int(np.prod(input_shape))
    weight_size = output_dim * int(np.prod(input_shape))
    return {
        "x": np.linspace(-0.1, 0.5, num=input_size).reshape(num_inputs, *input_shape),
        "w": np.linspace(-0.2, 0.3, num=weight_size).reshape(int(np.prod(input_shape)), output_dim),
        "b": np.linspace(-0.3, 0.1, num=output_dim),
    }


def legacy(seed: int = 231) -> np.random.RandomState:
    """The notebooks' np.random.seed(231) stream, without touching the global generator."""
    return np.random.RandomState(seed)


@notebook_case
def notebook_affine_backward() -> Arrays:
    rs = legacy()
    x, w, b = rs.randn(10, 2, 3), rs.randn(6, 5), rs.randn(5)
    return {"x": x, "w": w, "b": b, "dout": rs.randn(10, 5)}


@notebook_case
def notebook_relu_forward() -> Arrays:
    return {"x": np.linspace(-0.5, 0.5, num=12).reshape(3, 4)}


@notebook_case
def notebook_relu_backward() -> Arrays:
    rs = legacy()
    x = rs.randn(10, 10)
    return {"x": x, "dout": rs.randn(*x.shape)}


@notebook_case
def notebook_softmax() -> Arrays:
    rs = legacy()
    num_classes, num_inputs = 10, 50
    x = 0.001 * rs.randn(num_inputs, num_classes)
    return {"x": x, "y": rs.randint(num_classes, size=num_inputs)}


def notebook_two_layer_activations(
    rs: np.random.RandomState, N: int, W1: np.ndarray, W2: np.ndarray
) -> np.ndarray:
    X = rs.randn(N, W1.shape[0])
    activations: np.ndarray = np.maximum(0, X.dot(W1)).dot(W2)
    return activations


@notebook_case
def notebook_batchnorm_forward() -> Arrays:
    rs = legacy()
    N, D1, D2, D3 = 200, 50, 60, 3
    X = rs.randn(N, D1)
    W1, W2 = rs.randn(D1, D2), rs.randn(D2, D3)
    a = np.maximum(0, X.dot(W1)).dot(W2)
    return {"x": a, "gamma": np.asarray([1.0, 2.0, 3.0]), "beta": np.asarray([11.0, 12.0, 13.0])}


@notebook_case
def notebook_batchnorm_test_mode(train_passes: int = 50) -> Arrays:
    rs = legacy()
    N, D1, D2, D3 = 200, 50, 60, 3
    W1, W2 = rs.randn(D1, D2), rs.randn(D2, D3)
    arrays = {f"x{t}": notebook_two_layer_activations(rs, N, W1, W2) for t in range(train_passes)}
    arrays["x_test"] = notebook_two_layer_activations(rs, N, W1, W2)
    arrays["gamma"], arrays["beta"] = np.ones(D3), np.zeros(D3)
    return arrays


@notebook_case
def notebook_norm_backward(N: int = 4, D: int = 5) -> Arrays:
    rs = legacy()
    x = 5 * rs.randn(N, D) + 12
    gamma, beta = rs.randn(D), rs.randn(D)
    return {"x": x, "gamma": gamma, "beta": beta, "dout": rs.randn(N, D)}


@notebook_case
def notebook_layernorm_forward() -> Arrays:
    rs = legacy()
    N, D1, D2, D3 = 4, 50, 60, 3
    X = rs.randn(N, D1)
    W1, W2 = rs.randn(D1, D2), rs.randn(D2, D3)
    a = np.maximum(0, X.dot(W1)).dot(W2)
    return {"x": a, "gamma": np.asarray([3.0, 3.0, 3.0]), "beta": np.asarray([5.0, 5.0, 5.0])}


@notebook_case
def notebook_dropout_forward() -> Arrays:
    """The notebook's x, its first 100 of 500 rows: 50,000 units measure the keep rate to about 0.013
    (six standard deviations) where 250,000 give 0.01, at a fifth of the data through the sandbox."""
    return {"x": (legacy().randn(500, 500) + 10)[:100]}


@notebook_case
def notebook_dropout_backward() -> Arrays:
    rs = legacy()
    x = rs.randn(10, 10) + 10
    return {"x": x, "dout": rs.randn(*x.shape)}


def notebook_optimizer(state: dict[str, tuple[float, float]]) -> Arrays:
    """The update-rule cases: w, dw and each state array as np.linspace over (4, 5)."""
    N, D = 4, 5
    arrays = {
        "w": np.linspace(-0.4, 0.6, num=N * D).reshape(N, D),
        "dw": np.linspace(-0.6, 0.4, num=N * D).reshape(1, N, D),
    }
    for key, (start, stop) in state.items():
        arrays[f"config_{key}"] = np.linspace(start, stop, num=N * D).reshape(N, D)
    return arrays


def notebook_model() -> tuple[Arrays, list[Arrays]]:
    """X, y and the initial parameters of the notebook's models for reg = 0 and reg = 3.14."""
    from reference.classifiers.fc_net import FullyConnectedNet

    state = np.random.get_state()
    try:
        np.random.seed(231)
        N, D, H1, H2, C = 2, 15, 20, 30, 10
        X, y = np.random.randn(N, D), np.random.randint(C, size=(N,))
        params = []
        for reg in (0, 3.14):
            model = FullyConnectedNet(  # type: ignore[no-untyped-call]
                [H1, H2], input_dim=D, num_classes=C, reg=reg, weight_scale=5e-2, dtype=np.float64
            )
            params.append({f"param_{k}": v.copy() for k, v in model.params.items()})
    finally:
        np.random.set_state(state)
    return {"X": X, "y": y}, params


def random_params(rng: np.random.Generator, dims: list[int], normalization: str | None) -> Arrays:
    """Parameters with non-trivial biases, gammas and betas, so every term of the loss shows."""
    params: Arrays = {}
    for layer, (d_in, d_out) in enumerate(itertools.pairwise(dims), start=1):
        params[f"param_W{layer}"] = rng.normal(0, 1 / np.sqrt(d_in), size=(d_in, d_out))
        params[f"param_b{layer}"] = rng.normal(0, 0.1, size=d_out)
        if normalization and layer < len(dims) - 1:
            params[f"param_gamma{layer}"] = rng.uniform(0.5, 1.5, size=d_out)
            params[f"param_beta{layer}"] = rng.normal(0, 0.2, size=d_out)
    return params


def small_variance_features(rng: np.random.Generator, N: int, D: int) -> np.ndarray:
    """Features whose variance is comparable to eps = 1e-5, around large means."""
    return rng.normal(0, 1, size=(N, D)) * rng.uniform(1e-3, 8e-3, size=D) + rng.uniform(-20, 20, size=D)


def blobs(rng: np.random.Generator, n: int, dim: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Separable clusters: a small data set any working network learns by heart."""
    centers = rng.normal(0, 3, size=(classes, dim))
    y = np.arange(n) % classes
    return centers[y] + rng.normal(0, 0.5, size=(n, dim)), y
