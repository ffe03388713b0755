"""Reference first-order update rules, with the course's API.

Each update rule has the interface:

    def update(w, dw, config=None):

Inputs:
- w: array giving the current weights, of any shape
- dw: array of the same shape as w giving the gradient of the loss with respect to w
- config: dictionary of hyperparameters such as learning rate and momentum, and of the state an
  update rule keeps between iterations (velocity, moment estimates, step count). If the rule needs
  a value that is not in config, a default is filled in, so config=None gives the defaults.

Returns:
- next_w: the weights after the update
- config: the config dictionary to pass to the next iteration of the update rule

The rules do not modify w or dw in place: next_w is a new array.
"""

import numpy as np


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent.

    config format:
    - learning_rate: scalar learning rate (default 1e-2)
    """
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)

    next_w = w - config["learning_rate"] * dw
    return next_w, config


def sgd_momentum(w, dw, config=None):
    """Stochastic gradient descent with momentum.

    config format:
    - learning_rate: scalar learning rate (default 1e-2)
    - momentum: scalar between 0 and 1 giving the momentum value (default 0.9);
      momentum = 0 reduces to sgd
    - velocity: array of the same shape as w and dw, a moving average of the gradients
      (zeros when absent)
    """
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity", np.zeros_like(w))

    v = config["momentum"] * v - config["learning_rate"] * dw
    next_w = w + v

    config["velocity"] = v
    return next_w, config


def rmsprop(w, dw, config=None):
    """RMSProp: a per-parameter learning rate from a moving average of squared gradients.

    config format:
    - learning_rate: scalar learning rate (default 1e-2)
    - decay_rate: scalar between 0 and 1, decay rate of the squared-gradient cache (default 0.99)
    - epsilon: small scalar that avoids dividing by zero (default 1e-8)
    - cache: moving average of the second moments of the gradients (zeros when absent)
    """
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("cache", np.zeros_like(w))

    cache = config["decay_rate"] * config["cache"] + (1 - config["decay_rate"]) * dw**2
    # epsilon is added outside the square root, as in the course.
    next_w = w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])

    config["cache"] = cache
    return next_w, config


def adam(w, dw, config=None):
    """Adam: moving averages of the gradient and its square, with bias correction.

    config format:
    - learning_rate: scalar learning rate (default 1e-3)
    - beta1: decay rate for the moving average of the first moment of the gradient (default 0.9)
    - beta2: decay rate for the moving average of the second moment of the gradient (default 0.999)
    - epsilon: small scalar that avoids dividing by zero (default 1e-8)
    - m: moving average of the gradient (zeros when absent)
    - v: moving average of the squared gradient (zeros when absent)
    - t: iteration number (0 when absent)
    """
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("m", np.zeros_like(w))
    config.setdefault("v", np.zeros_like(w))
    config.setdefault("t", 0)

    beta1, beta2 = config["beta1"], config["beta2"]
    # t is incremented before it is used: the first update corrects the bias with t = 1, never t = 0.
    t = config["t"] + 1
    m = beta1 * config["m"] + (1 - beta1) * dw
    v = beta2 * config["v"] + (1 - beta2) * dw**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    next_w = w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"])

    config["m"], config["v"], config["t"] = m, v, t
    return next_w, config
