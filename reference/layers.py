"""Reference layers for fully-connected nets: forward/backward pairs with the course's exact API.

A backward function always receives the cache returned by its own forward function; caches are
opaque tuples and nothing outside this module looks inside them.
"""

# REFERENCE-CANARY-7f3e: this marker must never appear in anything that enters the sandbox or
# reaches a student; the security tests search sandbox inputs and outputs for it.

import numpy as np


def affine_forward(x, w, b):
    """Compute the forward pass for an affine (fully connected) layer.

    The input x has shape (N, d_1, ..., d_k): a minibatch of N examples, each of which is
    reshaped into a vector of dimension D = d_1 * ... * d_k before the product.

    Inputs:
    - x: (N, d_1, ..., d_k) input data
    - w: (D, M) weights
    - b: (M,) biases

    Returns a tuple of:
    - out: (N, M) output
    - cache: (x, w, b)
    """
    out = x.reshape(x.shape[0], -1).dot(w) + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    """Compute the backward pass for an affine layer.

    Inputs:
    - dout: (N, M) upstream derivative
    - cache: (x, w, b) from affine_forward; x: (N, d_1, ..., d_k), w: (D, M), b: (M,)

    Returns a tuple of:
    - dx: (N, d_1, ..., d_k) gradient with respect to x
    - dw: (D, M) gradient with respect to w
    - db: (M,) gradient with respect to b
    """
    x, w, _ = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    """Compute the forward pass for a layer of rectified linear units (ReLUs).

    Input:
    - x: inputs, of any shape

    Returns a tuple of:
    - out: output, of the same shape as x
    - cache: x
    """
    # np.maximum with a Python 0 keeps x's dtype (float32 stays float32).
    out = np.maximum(x, 0)
    cache = x
    return out, cache


def relu_backward(dout, cache):
    """Compute the backward pass for a layer of rectified linear units (ReLUs).

    Input:
    - dout: upstream derivatives, of any shape
    - cache: input x, of the same shape as dout

    Returns:
    - dx: gradient with respect to x
    """
    x = cache
    # The subgradient at exactly 0 is taken as 0, like the course.
    dx = np.where(x > 0, dout, 0)
    return dx


def softmax_loss(x, y):
    """Compute the loss and gradient for softmax classification.

    Inputs:
    - x: (N, C) class scores; x[i, j] is the score of the jth class for the ith input
    - y: (N,) labels, y[i] in 0 <= y[i] < C

    Returns a tuple of:
    - loss: scalar, the mean cross-entropy over the N inputs
    - dx: (N, C) gradient of the loss with respect to x
    """
    # Subtracting the row maximum leaves the softmax unchanged and keeps exp() from overflowing.
    shifted_logits = x - np.max(x, axis=1, keepdims=True)
    Z = np.sum(np.exp(shifted_logits), axis=1, keepdims=True)
    log_probs = shifted_logits - np.log(Z)
    probs = np.exp(log_probs)
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx


def batchnorm_forward(x, gamma, beta, bn_param):
    """Forward pass for batch normalization.

    During training the sample mean and (biased) variance are computed from minibatch statistics
    and used to normalize the incoming data. During training we also keep an exponentially decaying
    running mean of the mean and variance of each feature, and these averages are used to normalize
    data at test time:

    running_mean = momentum * running_mean + (1 - momentum) * sample_mean
    running_var = momentum * running_var + (1 - momentum) * sample_var

    Input:
    - x: (N, D) data
    - gamma: (D,) scale parameter
    - beta: (D,) shift parameter
    - bn_param: dictionary with the following keys:
      - mode: 'train' or 'test'; required
      - eps: constant for numeric stability (default 1e-5)
      - momentum: constant for the running mean / variance (default 0.9)
      - running_mean: (D,) running mean of the features; zeros when absent
      - running_var: (D,) running variance of the features; zeros when absent
      The updated running_mean and running_var are stored back into bn_param.

    Returns a tuple of:
    - out: (N, D) output
    - cache: values needed by the backward pass (None in test mode)
    """
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)

    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))

    if mode == "train":
        sample_mean = x.mean(axis=0)
        sample_var = x.var(axis=0)  # biased (divides by N), as in the paper's training-time normalization
        std = np.sqrt(sample_var + eps)
        x_centered = x - sample_mean
        x_hat = x_centered / std
        out = gamma * x_hat + beta

        running_mean = momentum * running_mean + (1 - momentum) * sample_mean
        running_var = momentum * running_var + (1 - momentum) * sample_var
        cache = (x_centered, x_hat, std, gamma)
    elif mode == "test":
        x_hat = (x - running_mean) / np.sqrt(running_var + eps)
        out = gamma * x_hat + beta
        cache = None
    else:
        raise ValueError(f'Invalid forward batchnorm mode "{mode}"')

    # Store the updated running means back into bn_param
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var

    return out, cache


def batchnorm_backward(dout, cache):
    """Backward pass for batch normalization, step by step through the computation graph.

    Inputs:
    - dout: (N, D) upstream derivatives
    - cache: from batchnorm_forward in train mode

    Returns a tuple of:
    - dx: (N, D) gradient with respect to the inputs x
    - dgamma: (D,) gradient with respect to the scale parameter gamma
    - dbeta: (D,) gradient with respect to the shift parameter beta
    """
    x_centered, x_hat, std, gamma = cache
    N = dout.shape[0]

    # out = gamma * x_hat + beta
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma

    # x_hat = x_centered * inv_std
    inv_std = 1 / std
    dx_centered = dx_hat * inv_std
    dinv_std = (dx_hat * x_centered).sum(axis=0)

    # inv_std = 1 / std, std = sqrt(var + eps)
    dstd = -dinv_std / std**2
    dvar = 0.5 * dstd / std

    # var = mean(x_centered ** 2): x_centered reaches the output by two branches, sum them
    dx_centered += 2 * x_centered * dvar / N

    # x_centered = x - mean, mean = sum(x) / N: again two branches into x
    dmean = -dx_centered.sum(axis=0)
    dx = dx_centered + dmean / N

    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    """Backward pass for batch normalization in the simplified closed form.

    dx = gamma / (N * std) * (N * dout - sum(dout) - x_hat * sum(dout * x_hat)), sums over the batch.

    Inputs / outputs: same as batchnorm_backward.
    """
    _, x_hat, std, gamma = cache
    N = dout.shape[0]

    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = gamma / (N * std) * (N * dout - dbeta - x_hat * dgamma)

    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, ln_param):
    """Forward pass for layer normalization.

    Each data point (row of x) is normalized over its features; train and test behave the same,
    so no running statistics are kept and any 'mode' in ln_param is ignored.

    Input:
    - x: (N, D) data
    - gamma: (D,) scale parameter
    - beta: (D,) shift parameter
    - ln_param: dictionary with the following keys:
      - eps: constant for numeric stability (default 1e-5)

    Returns a tuple of:
    - out: (N, D) output
    - cache: values needed by the backward pass
    """
    eps = ln_param.get("eps", 1e-5)

    mean = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    std = np.sqrt(var + eps)
    x_hat = (x - mean) / std
    out = gamma * x_hat + beta

    cache = (x_hat, std, gamma)
    return out, cache


def layernorm_backward(dout, cache):
    """Backward pass for layer normalization.

    The same closed form as batchnorm_backward_alt, with the sums taken over the D features
    of each row instead of over the N rows.

    Inputs:
    - dout: (N, D) upstream derivatives
    - cache: from layernorm_forward

    Returns a tuple of:
    - dx: (N, D) gradient with respect to the inputs x
    - dgamma: (D,) gradient with respect to the scale parameter gamma
    - dbeta: (D,) gradient with respect to the shift parameter beta
    """
    x_hat, std, gamma = cache
    D = dout.shape[1]

    # gamma and beta are per feature, so their gradients still sum over the batch.
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)

    dx_hat = dout * gamma
    dx = (
        D * dx_hat - dx_hat.sum(axis=1, keepdims=True) - x_hat * (dx_hat * x_hat).sum(axis=1, keepdims=True)
    ) / (D * std)

    return dx, dgamma, dbeta


def dropout_forward(x, dropout_param):
    """Forward pass for inverted dropout.

    Note that p is the probability of KEEPING a neuron output. Kept outputs are divided by p at
    training time so that test time needs no rescaling.

    Inputs:
    - x: input data, of any shape
    - dropout_param: a dictionary with the following keys:
      - p: dropout parameter; each neuron output is kept with probability p
      - mode: 'test' or 'train'. In train mode dropout is applied; in test mode the input is returned.
      - seed: seed for the random number generator. Passing seed makes this function deterministic,
        which is needed for gradient checking but not in real networks.

    Outputs:
    - out: array of the same shape and dtype as x
    - cache: tuple (dropout_param, mask). In training mode, mask is the dropout mask that was used
      to multiply the input; in test mode, mask is None.
    """
    p, mode = dropout_param["p"], dropout_param["mode"]
    # Seeded before the mode check, like the course, so the global RNG ends in the same state.
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])

    mask = None
    if mode == "train":
        mask = (np.random.rand(*x.shape) < p) / p
        out = x * mask
    elif mode == "test":
        out = x
    else:
        raise ValueError(f'Invalid forward dropout mode "{mode}"')

    cache = (dropout_param, mask)
    # The mask is float64; keep the output in the input's dtype.
    out = out.astype(x.dtype, copy=False)
    return out, cache


def dropout_backward(dout, cache):
    """Backward pass for inverted dropout.

    Inputs:
    - dout: upstream derivatives, of any shape
    - cache: (dropout_param, mask) from dropout_forward

    Returns:
    - dx: gradient with respect to x, same shape and dtype as dout
    """
    _, mask = cache
    # Decided by the mask, not by dropout_param["mode"]: the dict is shared with the caller (a model flips
    # it between train and test), so its mode may have changed since this forward pass ran.
    if mask is None:
        return dout
    return (dout * mask).astype(dout.dtype, copy=False)
