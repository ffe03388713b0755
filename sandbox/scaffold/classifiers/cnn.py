"""In a probe's process, in the student's package, trusting nothing: the course's ThreeLayerConvNet stub.

It is a graded exercise of the assignment's convolutional part; the sandbox holds no answers, so it
imports and behaves as the starter code does (no parameters; loss gives None scores, or 0 and {}).
"""

import numpy as np

# The course's order: later modules' names win where they overlap.
# isort: off
from ..layers import *
from ..fast_layers import *
from ..layer_utils import *

# isort: on


class ThreeLayerConvNet:
    """
    A three-layer convolutional network with the following architecture:

    conv - relu - 2x2 max pool - affine - relu - affine - softmax

    The network operates on minibatches of data that have shape (N, C, H, W)
    consisting of N images, each with height H and width W and with C input
    channels.
    """

    def __init__(
        self,
        input_dim=(3, 32, 32),
        num_filters=32,
        filter_size=7,
        hidden_dim=100,
        num_classes=10,
        weight_scale=1e-3,
        reg=0.0,
        dtype=np.float32,
    ):
        """
        Initialize a new network.

        Inputs:
        - input_dim: Tuple (C, H, W) giving size of input data
        - num_filters: Number of filters to use in the convolutional layer
        - filter_size: Width/height of filters to use in the convolutional layer
        - hidden_dim: Number of units to use in the fully-connected hidden layer
        - num_classes: Number of scores to produce from the final affine layer.
        - weight_scale: Scalar giving standard deviation for random initialization
          of weights.
        - reg: Scalar giving L2 regularization strength
        - dtype: numpy datatype to use for computation.
        """
        self.params = {}
        self.reg = reg
        self.dtype = dtype

        # TODO: Initialize weights and biases for the three-layer convolutional network
        # (W1, b1 for the convolutional layer, W2, b2 and W3, b3 for the affine layers).

        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def loss(self, X, y=None):
        """
        Evaluate loss and gradient for the three-layer convolutional network.

        Input / output: Same API as TwoLayerNet in fc_net.py.
        """
        scores = None
        # TODO: Implement the forward pass for the three-layer convolutional net.

        if y is None:
            return scores

        loss, grads = 0, {}
        # TODO: Implement the backward pass for the three-layer convolutional net.

        return loss, grads
