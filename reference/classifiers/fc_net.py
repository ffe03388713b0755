"""Reference multi-layer fully-connected network, with the course's API."""

import numpy as np

from ..layers import (
    affine_backward,
    affine_forward,
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


class FullyConnectedNet:
    """Class for a multi-layer fully connected neural network.

    Network contains an arbitrary number of hidden layers, ReLU nonlinearities,
    and a softmax loss function. This will also implement dropout and batch/layer
    normalization as options. For a network with L layers, the architecture will be

    {affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax

    where batch/layer normalization and dropout are optional and the {...} block is
    repeated L - 1 times.

    Learnable parameters are stored in the self.params dictionary and will be learned
    using the Solver class.
    """

    def __init__(
        self,
        hidden_dims,
        input_dim=3 * 32 * 32,
        num_classes=10,
        dropout_keep_ratio=1,
        normalization=None,
        reg=0.0,
        weight_scale=1e-2,
        dtype=np.float32,
        seed=None,
    ):
        """Initialize a new FullyConnectedNet.

        Inputs:
        - hidden_dims: a list of integers giving the size of each hidden layer
        - input_dim: an integer giving the size of the input
        - num_classes: an integer giving the number of classes to classify
        - dropout_keep_ratio: scalar between 0 and 1 giving the probability of keeping a unit;
          if dropout_keep_ratio=1 the network does not use dropout at all
        - normalization: "batchnorm", "layernorm", or None for no normalization (the default)
        - reg: scalar giving the L2 regularization strength
        - weight_scale: scalar giving the standard deviation for random initialization of the weights
        - dtype: a numpy datatype object; all computations will be performed using this datatype.
          float32 is faster but less accurate, so use float64 for numeric gradient checking.
        - seed: if not None, pass this random seed to the dropout layers, which makes them
          deterministic so the model can be gradient checked
        """
        if normalization not in (None, "batchnorm", "layernorm"):
            raise ValueError(f'Invalid normalization "{normalization}"')
        self.normalization = normalization
        self.use_dropout = dropout_keep_ratio != 1
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        self.dtype = dtype
        self.params = {}

        # Drawn layer by layer (W1, then W2, ...) so the global RNG is consumed in the course's order.
        layer_dims = [input_dim, *hidden_dims, num_classes]
        for layer in range(1, self.num_layers + 1):
            d_in, d_out = layer_dims[layer - 1], layer_dims[layer]
            self.params[f"W{layer}"] = np.random.randn(d_in, d_out) * weight_scale
            self.params[f"b{layer}"] = np.zeros(d_out)
            if self.normalization is not None and layer < self.num_layers:
                self.params[f"gamma{layer}"] = np.ones(d_out)
                self.params[f"beta{layer}"] = np.zeros(d_out)

        # When using dropout we need to pass a dropout_param dictionary to each
        # dropout layer so that the layer knows the dropout probability and the mode
        # (train / test). The same dropout_param is passed to each dropout layer.
        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout_keep_ratio}
            if seed is not None:
                self.dropout_param["seed"] = seed

        # With batch normalization we need to keep track of running means and
        # variances, so we need to pass a special bn_param object to each batch
        # normalization layer: self.bn_params[0] to the first one, self.bn_params[1]
        # to the second one, etc. Layer normalization keeps no state; its dicts stay
        # empty, as in the course's starter code.
        self.bn_params = []
        if self.normalization == "batchnorm":
            self.bn_params = [{"mode": "train"} for _ in range(self.num_layers - 1)]
        if self.normalization == "layernorm":
            self.bn_params = [{} for _ in range(self.num_layers - 1)]

        # Cast all parameters to the correct datatype.
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def loss(self, X, y=None):
        """Compute loss and gradient for the fully connected net.

        Inputs:
        - X: (N, d_1, ..., d_k) input data
        - y: (N,) labels; y[i] gives the label for X[i]

        Returns:
        If y is None, run a test-time forward pass of the model and return:
        - scores: (N, C) classification scores, where scores[i, c] is the score for X[i] and class c

        If y is not None, run a training-time forward and backward pass and return a tuple of:
        - loss: scalar value giving the loss
        - grads: dictionary with the same keys as self.params, mapping parameter names to
          gradients of the loss with respect to those parameters
        """
        X = X.astype(self.dtype)
        mode = "test" if y is None else "train"

        # Set train/test mode for batchnorm params and dropout param since they
        # behave differently during training and testing.
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        if self.normalization == "batchnorm":
            for bn_param in self.bn_params:
                bn_param["mode"] = mode

        # Forward pass: L - 1 hidden blocks, then the last affine layer alone.
        caches = []
        out = X
        for layer in range(1, self.num_layers):
            out, cache = self._hidden_forward(out, layer)
            caches.append(cache)
        L = self.num_layers
        scores, last_cache = affine_forward(out, self.params[f"W{L}"], self.params[f"b{L}"])

        # If test mode return early.
        if mode == "test":
            return scores

        grads = {}
        loss, dscores = softmax_loss(scores, y)
        # L2 regularization on the weights only (not biases, gamma or beta), with the course's
        # factor 0.5 so that its gradient is reg * W.
        for layer in range(1, L + 1):
            W = self.params[f"W{layer}"]
            loss += 0.5 * self.reg * np.sum(W * W)

        dout, dW, db = affine_backward(dscores, last_cache)
        grads[f"W{L}"] = dW + self.reg * self.params[f"W{L}"]
        grads[f"b{L}"] = db
        for layer in range(L - 1, 0, -1):
            dout, layer_grads = self._hidden_backward(dout, caches[layer - 1], layer)
            grads.update(layer_grads)

        return loss, grads

    def _hidden_forward(self, x, layer):
        """Forward pass of hidden block `layer` (1-based): affine - [norm] - relu - [dropout]."""
        out, fc_cache = affine_forward(x, self.params[f"W{layer}"], self.params[f"b{layer}"])

        norm_cache = None
        if self.normalization == "batchnorm":
            gamma, beta = self.params[f"gamma{layer}"], self.params[f"beta{layer}"]
            out, norm_cache = batchnorm_forward(out, gamma, beta, self.bn_params[layer - 1])
        elif self.normalization == "layernorm":
            gamma, beta = self.params[f"gamma{layer}"], self.params[f"beta{layer}"]
            out, norm_cache = layernorm_forward(out, gamma, beta, self.bn_params[layer - 1])

        out, relu_cache = relu_forward(out)

        dropout_cache = None
        if self.use_dropout:
            out, dropout_cache = dropout_forward(out, self.dropout_param)

        return out, (fc_cache, norm_cache, relu_cache, dropout_cache)

    def _hidden_backward(self, dout, cache, layer):
        """Backward pass of hidden block `layer`; returns (dx, grads of that block's parameters)."""
        fc_cache, norm_cache, relu_cache, dropout_cache = cache
        grads = {}

        if self.use_dropout:
            dout = dropout_backward(dout, dropout_cache)
        dout = relu_backward(dout, relu_cache)

        if self.normalization is not None:
            norm_backward = (
                batchnorm_backward_alt if self.normalization == "batchnorm" else layernorm_backward
            )
            dout, grads[f"gamma{layer}"], grads[f"beta{layer}"] = norm_backward(dout, norm_cache)

        dx, dW, db = affine_backward(dout, fc_cache)
        grads[f"W{layer}"] = dW + self.reg * self.params[f"W{layer}"]
        grads[f"b{layer}"] = db
        return dx, grads
