"""In a probe's process, in the student's package, trusting nothing: the course's fast conv/pool layers.

The course's version speeds up two steps with an optional Cython extension (im2col_cython) and prints
a hint when it is missing. Here those steps are numpy (slicing over the filter window, which is as fast
for the sizes of the assignment), and nothing is printed: the names, signatures and results are the
course's. A backward function always receives the cache its own forward function returned.
"""

import numpy as np

from .im2col import *


def _pad_spatial(x, pad):
    """Zero-pad the two spatial axes of x: (N, C, H, W) -> (N, C, H + 2 * pad, W + 2 * pad), contiguous."""
    return np.ascontiguousarray(np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant"))


def _col2im_6d(dx_cols, N, C, H, W, HH, WW, pad, stride):
    """Add the columns of each receptive field back onto the input they were taken from.

    Inputs:
    - dx_cols: (C, HH, WW, N, out_h, out_w) gradient with respect to every receptive field element

    Returns:
    - dx: (N, C, H, W), overlapping receptive fields summed
    """
    out_h, out_w = dx_cols.shape[4], dx_cols.shape[5]
    dx_padded = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=dx_cols.dtype)
    # One strided slice per filter element: HH * WW vectorised additions instead of a loop over pixels.
    for hh in range(HH):
        for ww in range(WW):
            rows = slice(hh, hh + stride * (out_h - 1) + 1, stride)
            cols = slice(ww, ww + stride * (out_w - 1) + 1, stride)
            dx_padded[:, :, rows, cols] += dx_cols[:, hh, ww].transpose(1, 0, 2, 3)
    return dx_padded[:, :, pad : pad + H, pad : pad + W]


def conv_forward_im2col(x, w, b, conv_param):
    """A fast implementation of the forward pass for a convolutional layer based on im2col and col2im.

    Inputs:
    - x: (N, C, H, W) input data
    - w: (F, C, HH, WW) filter weights
    - b: (F,) biases
    - conv_param: dictionary with 'stride' and 'pad'; (H + 2 * pad - HH) and (W + 2 * pad - WW)
      must be multiples of the stride

    Returns a tuple of:
    - out: (N, F, H', W') output, H' = 1 + (H + 2 * pad - HH) // stride, W' likewise
    - cache: (x, w, b, conv_param, x_cols)
    """
    N, _, H, W = x.shape
    num_filters, _, filter_height, filter_width = w.shape
    stride, pad = conv_param["stride"], conv_param["pad"]

    # Check dimensions
    assert (W + 2 * pad - filter_width) % stride == 0, "width does not work"
    assert (H + 2 * pad - filter_height) % stride == 0, "height does not work"

    # Create output
    out_height = (H + 2 * pad - filter_height) // stride + 1
    out_width = (W + 2 * pad - filter_width) // stride + 1

    x_cols = im2col_indices(x, filter_height, filter_width, pad, stride)
    res = w.reshape((num_filters, -1)).dot(x_cols) + b.reshape(-1, 1)

    out = res.reshape(num_filters, out_height, out_width, N)
    out = out.transpose(3, 0, 1, 2)

    cache = (x, w, b, conv_param, x_cols)
    return out, cache


def conv_backward_im2col(dout, cache):
    """A fast implementation of the backward pass for a convolutional layer based on im2col and col2im.

    Inputs:
    - dout: (N, F, H', W') upstream derivatives
    - cache: from conv_forward_im2col

    Returns a tuple of:
    - dx: (N, C, H, W) gradient with respect to x
    - dw: (F, C, HH, WW) gradient with respect to w
    - db: (F,) gradient with respect to b
    """
    x, w, _, conv_param, x_cols = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    num_filters, _, filter_height, filter_width = w.shape
    _, _, out_h, out_w = dout.shape

    db = np.sum(dout, axis=(0, 2, 3))

    dout_reshaped = dout.transpose(1, 2, 3, 0).reshape(num_filters, -1)
    dw = dout_reshaped.dot(x_cols.T).reshape(w.shape)

    dx_cols = w.reshape(num_filters, -1).T.dot(dout_reshaped)
    # The columns of im2col_indices, (C * HH * WW, out_h * out_w * N), as (C, HH, WW, N, out_h, out_w).
    dx_cols = dx_cols.reshape(C, filter_height, filter_width, out_h, out_w, N).transpose(0, 1, 2, 5, 3, 4)
    dx = _col2im_6d(dx_cols, N, C, H, W, filter_height, filter_width, pad, stride)

    return dx, dw, db


def conv_forward_strides(x, w, b, conv_param):  # long: the course's own, line for line
    """A fast implementation of the forward pass for a convolutional layer based on stride tricks.

    Inputs:
    - x: (N, C, H, W) input data
    - w: (F, C, HH, WW) filter weights
    - b: (F,) biases
    - conv_param: dictionary with 'stride' and 'pad'

    Returns a tuple of:
    - out: (N, F, H', W') output, H' = 1 + (H + 2 * pad - HH) // stride, W' likewise
    - cache: (x, w, b, conv_param, x_cols)
    """
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    stride, pad = conv_param["stride"], conv_param["pad"]

    # Pad the input
    x_padded = _pad_spatial(x, pad)

    # Figure out output dimensions
    H += 2 * pad
    W += 2 * pad
    out_h = (H - HH) // stride + 1
    out_w = (W - WW) // stride + 1

    # Perform an im2col operation by picking clever strides
    shape = (C, HH, WW, N, out_h, out_w)
    strides = (H * W, W, 1, C * H * W, stride * W, stride)
    strides = tuple(x_padded.itemsize * s for s in strides)
    x_stride = np.lib.stride_tricks.as_strided(x_padded, shape=shape, strides=strides, writeable=False)
    x_cols = np.ascontiguousarray(x_stride)
    x_cols = x_cols.reshape(C * HH * WW, N * out_h * out_w)

    # Now all our convolutions are a big matrix multiply
    res = w.reshape(F, -1).dot(x_cols) + b.reshape(-1, 1)

    # Reshape the output
    res = res.reshape(F, N, out_h, out_w)
    out = res.transpose(1, 0, 2, 3)

    # Be nice and return a contiguous array
    out = np.ascontiguousarray(out)

    cache = (x, w, b, conv_param, x_cols)
    return out, cache


def conv_backward_strides(dout, cache):
    """A fast implementation of the backward pass for a convolutional layer based on stride tricks.

    Inputs:
    - dout: (N, F, H', W') upstream derivatives
    - cache: from conv_forward_strides

    Returns a tuple of:
    - dx: (N, C, H, W) gradient with respect to x
    - dw: (F, C, HH, WW) gradient with respect to w
    - db: (F,) gradient with respect to b
    """
    x, w, _, conv_param, x_cols = cache
    stride, pad = conv_param["stride"], conv_param["pad"]

    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, out_h, out_w = dout.shape

    db = np.sum(dout, axis=(0, 2, 3))

    dout_reshaped = dout.transpose(1, 0, 2, 3).reshape(F, -1)
    dw = dout_reshaped.dot(x_cols.T).reshape(w.shape)

    dx_cols = w.reshape(F, -1).T.dot(dout_reshaped)
    dx_cols = dx_cols.reshape(C, HH, WW, N, out_h, out_w)
    dx = _col2im_6d(dx_cols, N, C, H, W, HH, WW, pad, stride)

    return dx, dw, db


conv_forward_fast = conv_forward_strides
conv_backward_fast = conv_backward_strides


def max_pool_forward_fast(x, pool_param):
    """A fast implementation of the forward pass for a max pooling layer.

    This chooses between the reshape method and the im2col method. If the pooling regions are square
    and tile the input image, then we can use the reshape method which is very fast. Otherwise we fall
    back on the im2col method, which is not much faster than the naive method.

    Inputs:
    - x: (N, C, H, W) input data
    - pool_param: dictionary with 'pool_height', 'pool_width' and 'stride'

    Returns a tuple of:
    - out: (N, C, H', W') output, H' = 1 + (H - pool_height) // stride, W' likewise
    - cache: (method, cache of that method)
    """
    _, _, H, W = x.shape
    pool_height, pool_width = pool_param["pool_height"], pool_param["pool_width"]
    stride = pool_param["stride"]

    same_size = pool_height == pool_width == stride
    tiles = H % pool_height == 0 and W % pool_width == 0
    if same_size and tiles:
        out, reshape_cache = max_pool_forward_reshape(x, pool_param)
        cache = ("reshape", reshape_cache)
    else:
        out, im2col_cache = max_pool_forward_im2col(x, pool_param)
        cache = ("im2col", im2col_cache)
    return out, cache


def max_pool_backward_fast(dout, cache):
    """A fast implementation of the backward pass for a max pooling layer.

    This switches between the reshape method and the im2col method depending on which method was used
    to generate the cache.

    Inputs:
    - dout: (N, C, H', W') upstream derivatives
    - cache: from max_pool_forward_fast

    Returns:
    - dx: (N, C, H, W) gradient with respect to x
    """
    method, real_cache = cache
    if method == "reshape":
        return max_pool_backward_reshape(dout, real_cache)
    elif method == "im2col":
        return max_pool_backward_im2col(dout, real_cache)
    else:
        raise ValueError(f'Unrecognized method "{method}"')


def max_pool_forward_reshape(x, pool_param):
    """A fast implementation of the forward pass for the max pooling layer that uses some clever reshaping.

    This can only be used for square pooling regions that tile the input.

    Inputs:
    - x: (N, C, H, W) input data
    - pool_param: dictionary with 'pool_height', 'pool_width' and 'stride', all equal, dividing H and W

    Returns a tuple of:
    - out: (N, C, H // pool_height, W // pool_width) output
    - cache: (x, x_reshaped, out)
    """
    N, C, H, W = x.shape
    pool_height, pool_width = pool_param["pool_height"], pool_param["pool_width"]
    stride = pool_param["stride"]
    assert pool_height == pool_width == stride, "Invalid pool params"
    assert H % pool_height == 0
    assert W % pool_width == 0
    x_reshaped = x.reshape(N, C, H // pool_height, pool_height, W // pool_width, pool_width)
    out = x_reshaped.max(axis=3).max(axis=4)

    cache = (x, x_reshaped, out)
    return out, cache


def max_pool_backward_reshape(dout, cache):
    """A fast implementation of the backward pass for the max pooling layer that uses some clever
    broadcasting and reshaping.

    This can only be used if the forward pass was computed using max_pool_forward_reshape.

    NOTE: if there are multiple argmaxes, this method will assign gradient to ALL argmax elements of
    the input rather than picking one, dividing it evenly between them. This is unlikely to occur in
    practice, so it shouldn't matter much.

    Inputs:
    - dout: (N, C, H', W') upstream derivatives
    - cache: from max_pool_forward_reshape

    Returns:
    - dx: (N, C, H, W) gradient with respect to x
    """
    x, x_reshaped, out = cache

    dx_reshaped = np.zeros_like(x_reshaped)
    out_newaxis = out[:, :, :, np.newaxis, :, np.newaxis]
    mask = x_reshaped == out_newaxis
    dout_newaxis = dout[:, :, :, np.newaxis, :, np.newaxis]
    dout_broadcast, _ = np.broadcast_arrays(dout_newaxis, dx_reshaped)
    dx_reshaped[mask] = dout_broadcast[mask]
    dx_reshaped /= np.sum(mask, axis=(3, 5), keepdims=True)
    dx = dx_reshaped.reshape(x.shape)

    return dx


def max_pool_forward_im2col(x, pool_param):
    """An implementation of the forward pass for max pooling based on im2col.

    This isn't much faster than the naive version, so it should be avoided if possible.

    Inputs:
    - x: (N, C, H, W) input data
    - pool_param: dictionary with 'pool_height', 'pool_width' and 'stride'; (H - pool_height) and
      (W - pool_width) must be multiples of the stride

    Returns a tuple of:
    - out: (N, C, H', W') output, H' = 1 + (H - pool_height) // stride, W' likewise
    - cache: (x, x_cols, x_cols_argmax, pool_param)
    """
    N, C, H, W = x.shape
    pool_height, pool_width = pool_param["pool_height"], pool_param["pool_width"]
    stride = pool_param["stride"]

    assert (H - pool_height) % stride == 0, "Invalid height"
    assert (W - pool_width) % stride == 0, "Invalid width"

    out_height = (H - pool_height) // stride + 1
    out_width = (W - pool_width) // stride + 1

    x_split = x.reshape(N * C, 1, H, W)
    x_cols = im2col_indices(x_split, pool_height, pool_width, padding=0, stride=stride)
    x_cols_argmax = np.argmax(x_cols, axis=0)
    x_cols_max = x_cols[x_cols_argmax, np.arange(x_cols.shape[1])]
    out = x_cols_max.reshape(out_height, out_width, N, C).transpose(2, 3, 0, 1)

    cache = (x, x_cols, x_cols_argmax, pool_param)
    return out, cache


def max_pool_backward_im2col(dout, cache):
    """An implementation of the backward pass for max pooling based on im2col.

    This isn't much faster than the naive version, so it should be avoided if possible.

    Inputs:
    - dout: (N, C, H', W') upstream derivatives
    - cache: from max_pool_forward_im2col

    Returns:
    - dx: (N, C, H, W) gradient with respect to x
    """
    x, x_cols, x_cols_argmax, pool_param = cache
    N, C, H, W = x.shape
    pool_height, pool_width = pool_param["pool_height"], pool_param["pool_width"]
    stride = pool_param["stride"]

    dout_reshaped = dout.transpose(2, 3, 0, 1).flatten()
    dx_cols = np.zeros_like(x_cols)
    dx_cols[x_cols_argmax, np.arange(dx_cols.shape[1])] = dout_reshaped
    dx = col2im_indices(dx_cols, (N * C, 1, H, W), pool_height, pool_width, padding=0, stride=stride)
    dx = dx.reshape(x.shape)

    return dx
