"""The course-compatible modules of the sandbox scaffold: fast_layers, im2col, layer_utils, data_utils,
vis_utils and classifiers/cnn, checked through the reference package (which contains the scaffold, see
reference/__init__.py) against naive loops and numeric gradients, and imported in a fresh interpreter
from a package laid out like a student's (any name, relative imports only, numpy and the standard
library only, no file touched and nothing printed at import).
"""

import ast
import json
import pickle
import shutil
import subprocess
import sys
import textwrap
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

import numpy as np
import pytest

# The course-provided modules are imported as modules: they live in sandbox/scaffold (see
# reference/__init__.py), where import sorting cannot see them as part of `reference`.
from reference import data_utils, fast_layers, gradient_check, im2col, layer_utils, layers, vis_utils
from reference.classifiers import cnn, fc_net
from reference.layers import batchnorm_backward, batchnorm_forward

REPO = Path(__file__).resolve().parents[2]
SCAFFOLD = REPO / "sandbox" / "scaffold"
SCAFFOLD_MODULES = [
    "fast_layers",
    "im2col",
    "layer_utils",
    "data_utils",
    "vis_utils",
    "solver",
    "gradient_check",
    "classifiers.cnn",
]

eval_numerical_gradient = gradient_check.eval_numerical_gradient
eval_numerical_gradient_array = gradient_check.eval_numerical_gradient_array
ThreeLayerConvNet = cnn.ThreeLayerConvNet


def rel_error(x, y):
    """The course's relative error: max(|x - y| / max(1e-8, |x| + |y|))."""
    return np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)))


# Naive loops: the definitions the fast layers must agree with


def conv_forward_loops(x, w, b, stride, pad):
    """Convolution by an explicit loop over output positions; out: (N, F, H', W'), H' floored."""
    N, _, H, W = x.shape
    F, _, HH, WW = w.shape
    x_padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out_h = 1 + (H + 2 * pad - HH) // stride
    out_w = 1 + (W + 2 * pad - WW) // stride
    out = np.zeros((N, F, out_h, out_w), dtype=np.result_type(x, w, b))
    for i in range(out_h):
        for j in range(out_w):
            window = x_padded[:, :, i * stride : i * stride + HH, j * stride : j * stride + WW]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out


def max_pool_forward_loops(x, pool_height, pool_width, stride):
    """Max pooling by an explicit loop over output positions."""
    N, C, H, W = x.shape
    out_h = 1 + (H - pool_height) // stride
    out_w = 1 + (W - pool_width) // stride
    out = np.zeros((N, C, out_h, out_w), dtype=x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            window = x[:, :, i * stride : i * stride + pool_height, j * stride : j * stride + pool_width]
            out[:, :, i, j] = window.max(axis=(2, 3))
    return out


def max_pool_backward_loops(dout, x, pool_height, pool_width, stride):
    """Max pooling's gradient: each upstream value goes to the (first) maximum of its window."""
    dx = np.zeros_like(x)
    N, C, out_h, out_w = dout.shape
    for n in range(N):
        for c in range(C):
            for i in range(out_h):
                for j in range(out_w):
                    window = x[
                        n, c, i * stride : i * stride + pool_height, j * stride : j * stride + pool_width
                    ]
                    di, dj = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * stride + di, j * stride + dj] += dout[n, c, i, j]
    return dx


# Convolution


CONV_FORWARDS = {
    "fast": (fast_layers.conv_forward_fast, fast_layers.conv_backward_fast),
    "strides": (fast_layers.conv_forward_strides, fast_layers.conv_backward_strides),
    "im2col": (fast_layers.conv_forward_im2col, fast_layers.conv_backward_im2col),
}
# (x shape, w shape, stride, pad): square and rectangular inputs and filters, strides 1 and 2, with and
# without padding; every case tiles, as conv_forward_im2col requires.
CONV_CASES = [
    ((2, 3, 7, 7), (4, 3, 3, 3), 1, 0),
    ((2, 3, 7, 7), (4, 3, 3, 3), 1, 1),
    ((2, 3, 7, 7), (4, 3, 3, 3), 2, 1),
    ((3, 2, 7, 9), (5, 2, 3, 5), 2, 1),
    ((2, 3, 8, 8), (3, 3, 4, 4), 2, 2),
    ((1, 1, 5, 6), (2, 1, 1, 2), 1, 0),
]


def conv_inputs(x_shape, w_shape, seed=231, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    return x, w, b


def test_fast_conv_is_the_strides_version():
    assert fast_layers.conv_forward_fast is fast_layers.conv_forward_strides
    assert fast_layers.conv_backward_fast is fast_layers.conv_backward_strides


@pytest.mark.parametrize("variant", list(CONV_FORWARDS))
@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "pad"), CONV_CASES)
def test_conv_forward_matches_the_loop(variant, x_shape, w_shape, stride, pad):
    x, w, b = conv_inputs(x_shape, w_shape)
    out, _ = CONV_FORWARDS[variant][0](x, w, b, {"stride": stride, "pad": pad})
    expected = conv_forward_loops(x, w, b, stride, pad)
    assert out.shape == expected.shape
    assert rel_error(out, expected) < 1e-12


@pytest.mark.parametrize("variant", list(CONV_FORWARDS))
@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "pad"), [CONV_CASES[1], CONV_CASES[3], CONV_CASES[4]]
)
def test_conv_backward_matches_numeric_gradients(variant, x_shape, w_shape, stride, pad):
    forward, backward = CONV_FORWARDS[variant]
    x, w, b = conv_inputs(x_shape, w_shape, seed=1)
    conv_param = {"stride": stride, "pad": pad}
    out, cache = forward(x, w, b, conv_param)
    dout = np.random.default_rng(2).standard_normal(out.shape)

    dx, dw, db = backward(dout, cache)

    dx_num = eval_numerical_gradient_array(lambda x: forward(x, w, b, conv_param)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: forward(x, w, b, conv_param)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda b: forward(x, w, b, conv_param)[0], b, dout)
    assert (dx.shape, dw.shape, db.shape) == (x.shape, w.shape, b.shape)
    assert rel_error(dx, dx_num) < 1e-8
    assert rel_error(dw, dw_num) < 1e-8
    assert rel_error(db, db_num) < 1e-8


@pytest.mark.parametrize("variant", ["fast", "strides"])
def test_strides_conv_floors_sizes_that_do_not_tile(variant):
    # The course leaves the tiling asserts of the strides version commented out: sizes are floored.
    forward, backward = CONV_FORWARDS[variant]
    x, w, b = conv_inputs((2, 2, 6, 7), (3, 2, 3, 3), seed=3)
    conv_param = {"stride": 2, "pad": 0}
    out, cache = forward(x, w, b, conv_param)
    assert rel_error(out, conv_forward_loops(x, w, b, 2, 0)) < 1e-12

    dout = np.random.default_rng(4).standard_normal(out.shape)
    dx, dw, _ = backward(dout, cache)
    assert (
        rel_error(dx, eval_numerical_gradient_array(lambda x: forward(x, w, b, conv_param)[0], x, dout))
        < 1e-8
    )
    assert (
        rel_error(dw, eval_numerical_gradient_array(lambda w: forward(x, w, b, conv_param)[0], w, dout))
        < 1e-8
    )


@pytest.mark.parametrize("variant", list(CONV_FORWARDS))
def test_conv_keeps_float32_and_accepts_non_contiguous_input(variant):
    forward, backward = CONV_FORWARDS[variant]
    x, w, b = conv_inputs((3, 2, 5, 5), (4, 2, 3, 3), dtype=np.float32)
    x = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # same values, other strides
    assert not x.flags.c_contiguous
    out, cache = forward(x, w, b, {"stride": 1, "pad": 1})
    assert out.dtype == np.float32
    expected = conv_forward_loops(x.astype(np.float64), w, b, 1, 1)
    # float32 rounding against the outputs' scale: an output near 0 makes the elementwise relative error
    # of rounding alone exceed 1e-5, by how the CPU's BLAS orders its sums.
    assert np.max(np.abs(out - expected)) < 1e-6 * np.max(np.abs(expected))
    dx, dw, db = backward(np.ones_like(out), cache)
    assert dx.dtype == dw.dtype == db.dtype == np.float32


# Max pooling


POOL_VARIANTS = {
    "fast": (fast_layers.max_pool_forward_fast, fast_layers.max_pool_backward_fast),
    "reshape": (fast_layers.max_pool_forward_reshape, fast_layers.max_pool_backward_reshape),
    "im2col": (fast_layers.max_pool_forward_im2col, fast_layers.max_pool_backward_im2col),
}
# (x shape, pool_height, pool_width, stride); the reshape method takes square tiling windows only.
SQUARE_TILING = [((2, 3, 8, 8), 2, 2, 2), ((3, 2, 6, 9), 3, 3, 3)]
OVERLAPPING = [((2, 3, 7, 7), 3, 3, 2), ((2, 2, 6, 8), 2, 4, 2), ((1, 2, 5, 5), 2, 2, 1)]
POOL_CASES = [
    *((variant, *case) for variant in POOL_VARIANTS for case in SQUARE_TILING),
    *(("fast", *case) for case in OVERLAPPING),
    *(("im2col", *case) for case in OVERLAPPING),
]


@pytest.mark.parametrize(("variant", "x_shape", "pool_height", "pool_width", "stride"), POOL_CASES)
def test_max_pool_matches_the_loops_and_numeric_gradients(variant, x_shape, pool_height, pool_width, stride):
    forward, backward = POOL_VARIANTS[variant]
    rng = np.random.default_rng(231)
    x = rng.standard_normal(x_shape)
    pool_param = {"pool_height": pool_height, "pool_width": pool_width, "stride": stride}

    out, cache = forward(x, pool_param)
    assert rel_error(out, max_pool_forward_loops(x, pool_height, pool_width, stride)) == 0

    dout = rng.standard_normal(out.shape)
    dx = backward(dout, cache)
    assert dx.shape == x.shape
    assert rel_error(dx, max_pool_backward_loops(dout, x, pool_height, pool_width, stride)) < 1e-14
    dx_num = eval_numerical_gradient_array(lambda x: forward(x, pool_param)[0], x, dout)
    assert rel_error(dx, dx_num) < 1e-8


def test_fast_max_pool_chooses_reshape_only_for_square_tiling_windows():
    x = np.random.default_rng(0).standard_normal((1, 1, 6, 6))
    assert (
        fast_layers.max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 2})[1][0]
        == "reshape"
    )
    assert (
        fast_layers.max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 1})[1][0]
        == "im2col"
    )


def test_reshape_max_pool_splits_the_gradient_between_tied_maxima():
    x = np.zeros((1, 1, 2, 2))
    out, cache = fast_layers.max_pool_forward_reshape(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    dx = fast_layers.max_pool_backward_reshape(np.ones_like(out), cache)
    assert np.array_equal(dx, np.full((1, 1, 2, 2), 0.25))


# im2col


@pytest.mark.parametrize(
    ("x_shape", "field", "padding", "stride"), [((2, 3, 5, 5), (3, 3), 1, 1), ((2, 2, 7, 8), (3, 2), 0, 2)]
)
def test_im2col_columns_are_the_receptive_fields(x_shape, field, padding, stride):
    field_height, field_width = field
    N, C, H, W = x_shape
    x = np.random.default_rng(5).standard_normal(x_shape)
    cols = im2col.im2col_indices(x, field_height, field_width, padding=padding, stride=stride)

    out_h = 1 + (H + 2 * padding - field_height) // stride
    out_w = 1 + (W + 2 * padding - field_width) // stride
    assert cols.shape == (C * field_height * field_width, out_h * out_w * N)
    x_padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    for oh in range(out_h):
        for ow in range(out_w):
            for n in range(N):
                field_values = x_padded[
                    n, :, oh * stride : oh * stride + field_height, ow * stride : ow * stride + field_width
                ]
                assert np.array_equal(cols[:, (oh * out_w + ow) * N + n], field_values.reshape(-1))

    k, i, j = im2col.get_im2col_indices(x_shape, field_height, field_width, padding, stride)
    assert k.shape == (C * field_height * field_width, 1)
    assert i.shape == j.shape == (C * field_height * field_width, out_h * out_w)


@pytest.mark.parametrize(("padding", "stride"), [(0, 1), (1, 1), (1, 2), (1, 3), (2, 2)])
def test_col2im_is_the_adjoint_of_im2col_and_undoes_it_up_to_overlaps(padding, stride):
    rng = np.random.default_rng(6)
    x_shape = (2, 3, 7, 7)
    x = rng.standard_normal(x_shape)
    cols = im2col.im2col_indices(x, 3, 3, padding=padding, stride=stride)
    c = rng.standard_normal(cols.shape)

    back = im2col.col2im_indices(c, x_shape, 3, 3, padding=padding, stride=stride)
    assert back.shape == x_shape
    assert np.isclose(np.sum(cols * c), np.sum(x * back), rtol=1e-12)

    # Each pixel comes back once per receptive field that holds it.
    ones = np.ones(x_shape)
    overlaps = im2col.col2im_indices(
        im2col.im2col_indices(ones, 3, 3, padding, stride), x_shape, 3, 3, padding, stride
    )
    round_trip = im2col.col2im_indices(cols, x_shape, 3, 3, padding, stride)
    assert np.allclose(round_trip, x * overlaps, rtol=1e-12, atol=0)


def test_col2im_default_field_is_3x3_padding_1_stride_1():
    x = np.random.default_rng(7).standard_normal((1, 2, 4, 4))
    cols = im2col.im2col_indices(x, 3, 3)
    assert cols.shape == (2 * 9, 16)
    assert np.array_equal(
        im2col.col2im_indices(cols, x.shape), im2col.col2im_indices(cols, x.shape, 3, 3, 1, 1)
    )


# Convenience layers


def test_layer_utils_chains_the_reference_layers_and_the_fast_layers():
    assert layer_utils.affine_forward is layers.affine_forward
    assert layer_utils.relu_forward is layers.relu_forward
    assert layer_utils.conv_forward_fast is fast_layers.conv_forward_strides
    assert layer_utils.max_pool_forward_fast is fast_layers.max_pool_forward_fast


def test_conv_relu_pool_matches_the_loops_and_numeric_gradients():
    x, w, b = conv_inputs((2, 3, 6, 6), (3, 3, 3, 3), seed=8)
    conv_param = {"stride": 1, "pad": 1}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}

    out, cache = layer_utils.conv_relu_pool_forward(x, w, b, conv_param, pool_param)
    expected = max_pool_forward_loops(np.maximum(conv_forward_loops(x, w, b, 1, 1), 0), 2, 2, 2)
    assert rel_error(out, expected) < 1e-12

    dout = np.random.default_rng(9).standard_normal(out.shape)
    dx, dw, db = layer_utils.conv_relu_pool_backward(dout, cache)

    def forward(x, w, b):
        return layer_utils.conv_relu_pool_forward(x, w, b, conv_param, pool_param)[0]

    assert rel_error(dx, eval_numerical_gradient_array(lambda x: forward(x, w, b), x, dout)) < 1e-7
    assert rel_error(dw, eval_numerical_gradient_array(lambda w: forward(x, w, b), w, dout)) < 1e-7
    assert rel_error(db, eval_numerical_gradient_array(lambda b: forward(x, w, b), b, dout)) < 1e-7


def test_conv_relu_matches_the_loop_and_numeric_gradients():
    x, w, b = conv_inputs((2, 3, 5, 5), (3, 3, 3, 3), seed=10)
    conv_param = {"stride": 2, "pad": 1}

    out, cache = layer_utils.conv_relu_forward(x, w, b, conv_param)
    assert rel_error(out, np.maximum(conv_forward_loops(x, w, b, 2, 1), 0)) < 1e-12

    dout = np.random.default_rng(11).standard_normal(out.shape)
    dx, dw, db = layer_utils.conv_relu_backward(dout, cache)

    def forward(x, w, b):
        return layer_utils.conv_relu_forward(x, w, b, conv_param)[0]

    assert rel_error(dx, eval_numerical_gradient_array(lambda x: forward(x, w, b), x, dout)) < 1e-7
    assert rel_error(dw, eval_numerical_gradient_array(lambda w: forward(x, w, b), w, dout)) < 1e-7
    assert rel_error(db, eval_numerical_gradient_array(lambda b: forward(x, w, b), b, dout)) < 1e-7


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """A stand-in for the student's spatial batchnorm (the reference has none): batchnorm over N, H, W."""
    N, C, H, W = x.shape
    out, cache = batchnorm_forward(x.transpose(0, 2, 3, 1).reshape(-1, C), gamma, beta, bn_param)
    return out.reshape(N, H, W, C).transpose(0, 3, 1, 2), cache


def spatial_batchnorm_backward(dout, cache):
    N, C, H, W = dout.shape
    dx, dgamma, dbeta = batchnorm_backward(dout.transpose(0, 2, 3, 1).reshape(-1, C), cache)
    return dx.reshape(N, H, W, C).transpose(0, 3, 1, 2), dgamma, dbeta


def test_conv_bn_relu_looks_up_spatial_batchnorm_only_when_called():
    # The reference's layers.py has no spatial batchnorm; layer_utils still imports, like the course's.
    assert not hasattr(layers, "spatial_batchnorm_forward")
    x, w, b = conv_inputs((2, 3, 4, 4), (2, 3, 3, 3))
    with pytest.raises(NameError, match="spatial_batchnorm_forward"):
        layer_utils.conv_bn_relu_forward(
            x, w, b, np.ones(2), np.zeros(2), {"stride": 1, "pad": 1}, {"mode": "train"}
        )


def test_conv_bn_relu_with_a_spatial_batchnorm_matches_numeric_gradients(monkeypatch):
    monkeypatch.setattr(layer_utils, "spatial_batchnorm_forward", spatial_batchnorm_forward, raising=False)
    monkeypatch.setattr(layer_utils, "spatial_batchnorm_backward", spatial_batchnorm_backward, raising=False)
    rng = np.random.default_rng(12)
    x, w, b = conv_inputs((3, 2, 4, 4), (3, 2, 3, 3), seed=13)
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    conv_param = {"stride": 1, "pad": 1}

    def forward(x, w, b, gamma, beta):
        out, _ = layer_utils.conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, {"mode": "train"})
        return out

    out, cache = layer_utils.conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, {"mode": "train"})
    expected = np.maximum(
        spatial_batchnorm_forward(conv_forward_loops(x, w, b, 1, 1), gamma, beta, {"mode": "train"})[0], 0
    )
    assert rel_error(out, expected) < 1e-10

    dout = rng.standard_normal(out.shape)
    dx, dw, db, dgamma, dbeta = layer_utils.conv_bn_relu_backward(dout, cache)
    assert (
        rel_error(dx, eval_numerical_gradient_array(lambda x: forward(x, w, b, gamma, beta), x, dout)) < 1e-6
    )
    assert (
        rel_error(dw, eval_numerical_gradient_array(lambda w: forward(x, w, b, gamma, beta), w, dout)) < 1e-6
    )
    assert (
        rel_error(dgamma, eval_numerical_gradient_array(lambda g: forward(x, w, b, g, beta), gamma, dout))
        < 1e-6
    )
    assert (
        rel_error(dbeta, eval_numerical_gradient_array(lambda be: forward(x, w, b, gamma, be), beta, dout))
        < 1e-6
    )
    # The batchnorm removes the conv bias: its gradient is zero.
    assert np.max(np.abs(db)) < 1e-10


# ThreeLayerConvNet


def test_classifiers_cnn_is_the_scaffold_file_wired_to_the_reference():
    assert Path(cnn.__file__).resolve() == SCAFFOLD / "classifiers" / "cnn.py"
    assert Path(fc_net.__file__).resolve() == REPO / "reference" / "classifiers" / "fc_net.py"
    assert not (SCAFFOLD / "classifiers" / "__init__.py").exists()
    assert cnn.affine_forward is layers.affine_forward
    assert cnn.conv_relu_pool_forward is layer_utils.conv_relu_pool_forward


def test_three_layer_convnet_is_the_course_stub_and_holds_no_answer():
    """A graded exercise of the assignment's convolutional part: the sandbox ships it as handed out."""
    model = ThreeLayerConvNet(input_dim=(3, 8, 8), num_filters=4, hidden_dim=7, reg=0.5)
    assert model.params == {} and model.reg == 0.5 and model.dtype == np.float32
    X = np.random.randn(2, 3, 8, 8)
    assert model.loss(X) is None
    assert model.loss(X, np.array([1, 2])) == (0, {})
    assert "conv_relu_pool_forward(" not in (SCAFFOLD / "classifiers" / "cnn.py").read_text()


# data_utils


def write_cifar_folder(folder, images_per_batch=4):
    """A CIFAR-10-like folder: five training batches and a test batch, pickled as the dataset is."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(14)
    batches = {}
    for name in [*(f"data_batch_{b}" for b in range(1, 6)), "test_batch"]:
        batch = {
            "batch_label": name,
            "data": rng.integers(0, 256, size=(images_per_batch, 3072), dtype=np.uint8),
            "labels": [int(label) for label in rng.integers(0, 10, size=images_per_batch)],
        }
        with (folder / name).open("wb") as f:
            pickle.dump(batch, f, protocol=2)
        batches[name] = batch
    return batches


def test_load_cifar10_reads_the_batches_with_the_course_shapes(tmp_path):
    batches = write_cifar_folder(tmp_path / "cifar-10-batches-py")
    Xtr, Ytr, Xte, Yte = data_utils.load_CIFAR10(str(tmp_path / "cifar-10-batches-py"))

    assert Xtr.shape == (20, 32, 32, 3) and Xtr.dtype == np.float64
    assert Ytr.shape == (20,)
    assert Xte.shape == (4, 32, 32, 3)
    assert Yte.shape == (4,)
    # Pixel (row, col) of channel ch is data[ch * 1024 + row * 32 + col].
    first = batches["data_batch_1"]["data"][0]
    assert Xtr[0, 5, 7, 2] == first[2 * 1024 + 5 * 32 + 7]
    assert np.array_equal(
        Xtr[:4], batches["data_batch_1"]["data"].reshape(4, 3, 32, 32).transpose(0, 2, 3, 1)
    )
    assert list(Ytr[4:8]) == batches["data_batch_2"]["labels"]
    assert list(Yte) == batches["test_batch"]["labels"]


def test_get_cifar10_data_subsamples_centres_and_puts_channels_first(tmp_path):
    # get_CIFAR10_data reads datasets/ next to its own file, so a copy of the module reads a tmp folder.
    shutil.copyfile(SCAFFOLD / "data_utils.py", tmp_path / "data_utils.py")
    write_cifar_folder(tmp_path / "datasets" / "cifar-10-batches-py")
    spec = spec_from_file_location("data_utils_copy", tmp_path / "data_utils.py")
    copy = module_from_spec(spec)
    spec.loader.exec_module(copy)

    data = copy.get_CIFAR10_data(num_training=15, num_validation=5, num_test=3)
    shapes = {name: value.shape for name, value in data.items()}
    assert shapes == {
        "X_train": (15, 3, 32, 32),
        "y_train": (15,),
        "X_val": (5, 3, 32, 32),
        "y_val": (5,),
        "X_test": (3, 3, 32, 32),
        "y_test": (3,),
    }
    assert np.allclose(data["X_train"].mean(axis=0), 0)
    raw = copy.get_CIFAR10_data(num_training=15, num_validation=5, num_test=3, subtract_mean=False)
    assert np.allclose(raw["X_val"] - raw["X_train"].mean(axis=0), data["X_val"])
    assert raw["X_train"].min() >= 0 and raw["X_train"].max() <= 255


def test_loaders_raise_a_clear_error_when_the_dataset_is_absent(tmp_path):
    missing = tmp_path / "cifar-10-batches-py"
    with pytest.raises(FileNotFoundError, match="CIFAR-10 not found"):
        data_utils.load_CIFAR10(str(missing))
    with pytest.raises(FileNotFoundError, match="CIFAR-10 batch not found"):
        data_utils.load_CIFAR_batch(str(missing / "data_batch_1"))
    # The sandbox (and this repository) has no datasets/ folder next to the scaffold.
    with pytest.raises(FileNotFoundError, match="CIFAR-10 not found"):
        data_utils.get_CIFAR10_data()
    with pytest.raises(FileNotFoundError, match="Tiny ImageNet not found"):
        data_utils.load_tiny_imagenet(str(tmp_path / "tiny-imagenet-100-A"))
    with pytest.raises(
        FileNotFoundError, match=r"ImageNet validation images not found.*get_imagenet_val\.sh"
    ):
        data_utils.load_imagenet_val(num=5)
    with pytest.raises(FileNotFoundError, match="Models folder not found"):
        data_utils.load_models(str(tmp_path / "models"))


def test_load_tiny_imagenet_says_images_cannot_be_decoded(tmp_path):
    (tmp_path / "train" / "n01").mkdir(parents=True)
    (tmp_path / "wnids.txt").write_text("n01\n")
    (tmp_path / "words.txt").write_text("n01\tgoldfish, Carassius auratus\n")
    (tmp_path / "train" / "n01" / "n01_boxes.txt").write_text("n01_0.JPEG\t0\t0\t63\t63\n")
    with pytest.raises(OSError, match="needs imageio"):
        data_utils.load_tiny_imagenet(str(tmp_path))


def test_load_models_unpickles_models_and_skips_other_files(tmp_path):
    with (tmp_path / "model_a.pkl").open("wb") as f:
        pickle.dump({"model": {"W1": [1, 2]}}, f)
    (tmp_path / "README.txt").write_text("not a pickle\n")
    assert data_utils.load_models(str(tmp_path)) == {"model_a.pkl": {"W1": [1, 2]}}


# vis_utils


def test_visualize_grid_tiles_images_scaled_to_ubound():
    Xs = np.random.default_rng(15).standard_normal((5, 4, 3, 2))
    Xs[4] = 7.0  # a constant image has no range to scale
    grid = vis_utils.visualize_grid(Xs, ubound=255.0, padding=1)
    assert grid.shape == (3 * 4 + 2, 3 * 3 + 2, 2)
    assert np.isfinite(grid).all()
    first = grid[0:4, 0:3]
    assert first.min() == 0 and np.isclose(first.max(), 255)
    assert not grid[4].any() and not grid[:, 3].any()  # padding rows and columns stay blank
    assert not grid[5:9, 8:11].any()  # the constant image
    assert not grid[10:14, 4:7].any()  # cells past the last image
    assert vis_utils.visualize_grid(Xs[:4], ubound=1.0, padding=0).shape == (8, 6, 2)


def test_vis_grid_and_vis_nn_normalize_to_unit_range():
    rng = np.random.default_rng(16)
    G = vis_utils.vis_grid(rng.standard_normal((5, 4, 3, 2)))
    assert G.shape == (3 * 4 + 3, 3 * 3 + 3, 2)
    assert G.min() == 0 and G.max() == 1
    rows = [[rng.standard_normal((4, 3, 2)) for _ in range(3)] for _ in range(2)]
    G = vis_utils.vis_nn(rows)
    assert G.shape == (2 * 4 + 2, 3 * 3 + 3, 2)
    assert G.min() == 0 and G.max() == 1
    # The padding starts at 1, and the whole grid is scaled together.
    low = min(1.0, min(image.min() for row in rows for image in row))
    high = max(1.0, max(image.max() for row in rows for image in row))
    assert np.allclose(G[5:9, 4:7], (rows[1][1] - low) / (high - low))


# Imports in a package laid out like a student's


def build_course_package(root, package):
    """<root>/<package>/: the scaffold with the reference's layers, optim and fc_net, like the sandbox's."""
    pkg = root / package
    (pkg / "classifiers").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "classifiers" / "__init__.py").write_text("")
    for source in SCAFFOLD.glob("*.py"):
        shutil.copyfile(source, pkg / source.name)
    for source in (SCAFFOLD / "classifiers").glob("*.py"):
        shutil.copyfile(source, pkg / "classifiers" / source.name)
    for name in ("layers.py", "optim.py", "classifiers/fc_net.py"):
        shutil.copyfile(REPO / "reference" / name, pkg / name)
    return pkg


def scaffold_absolute_imports():
    """Top-level modules the scaffold's files import by absolute name (the standard library and numpy)."""
    names = set()
    for source in [*SCAFFOLD.glob("*.py"), *SCAFFOLD.glob("classifiers/*.py")]:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.partition(".")[0])
    return sorted(names)


IMPORT_EVERY_MODULE = textwrap.dedent(
    """
    import contextlib, importlib, io, json, os, sys
    root, package, preimports, modules = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4:]
    sys.path.insert(0, root)
    import numpy
    before = set(sys.modules)
    for name in preimports:
        importlib.import_module(name)
    importlib.import_module(package)
    # From here on, every file the imports open or list is recorded.
    events = []
    WATCHED = {"open", "os.listdir", "os.scandir", "os.mkdir", "os.remove", "os.rename", "os.rmdir"}
    def watch(event, args):
        if event in WATCHED:
            target = args[0]
            path = os.fsdecode(target) if isinstance(target, (str, bytes, os.PathLike)) else repr(target)
            events.append([event, path])
    sys.addaudithook(watch)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        for module in modules:
            importlib.import_module(package + "." + module)
    new = sorted({name.partition(".")[0] for name in set(sys.modules) - before})
    output = {"stdout": stdout.getvalue(), "stderr": stderr.getvalue()}
    print(json.dumps({"new_modules": new, "events": events, **output}))
    """
)


@pytest.mark.parametrize("package", ["cs231n", "daseCV"])
def test_every_scaffold_module_imports_with_numpy_and_the_standard_library_only(tmp_path, package):
    pkg = build_course_package(tmp_path, package)
    preimports = [name for name in scaffold_absolute_imports() if name != "numpy"]
    assert set(preimports) <= sys.stdlib_module_names, "the scaffold imports a third-party module by name"
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-B",
            "-c",
            IMPORT_EVERY_MODULE,
            str(tmp_path),
            package,
            ",".join(preimports),
            *SCAFFOLD_MODULES,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(result.stdout)

    # Only the package itself and standard-library modules join numpy (any name works: imports are relative).
    assert set(report["new_modules"]) - {package} <= sys.stdlib_module_names, report["new_modules"]
    assert package in report["new_modules"]
    # Nothing is printed (the course's fast_layers prints a hint about Cython; student output is shown).
    assert report["stdout"] == "" and report["stderr"] == ""
    # Importing reads the package's own sources and nothing else (no dataset, no listing of other folders).
    touched = [(event, Path(path)) for event, path in report["events"]]
    assert ("open", pkg / "data_utils.py") in touched, "the audit hook saw no import: the check is blind"
    for event, path in touched:
        inside = path == pkg or pkg in path.parents
        assert inside and (path.suffix in (".py", ".pyc") or path.is_dir()), (event, str(path))


def test_the_scaffold_holds_every_module_of_the_course_package():
    present = {
        path.relative_to(SCAFFOLD).with_suffix("").as_posix().replace("/", ".")
        for path in SCAFFOLD.rglob("*.py")
    }
    assert present == set(SCAFFOLD_MODULES)
    assert not (SCAFFOLD / "__init__.py").exists()
    # Relative imports only: the package may be renamed (daseCV, cs682, ...).
    for source in SCAFFOLD.rglob("*.py"):
        assert "cs231n." not in source.read_text(), source
