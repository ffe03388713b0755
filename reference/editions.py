"""The assignment's API editions: the reference shaped like each year's starter code.

CS231n assignment 2 changed its public API over the years; a course picks the edition it hands out.
See docs/editions.md for the sources of every difference listed here.

- "cs231n-a2-fc" (2021 onwards): the reference itself. FullyConnectedNet(dropout_keep_ratio=1,
  normalization=None, ...); dropout_param["p"] is the probability of keeping a unit; layer norm;
  Adam's t starts at 0.
- "cs231n-a2-fc-2018" (2018 to 2020): FullyConnectedNet(dropout=1, normalization=None, ...), with
  dropout the keep probability. Everything else is the 2021 API.
- "cs231n-a2-fc-2017" (2017 and earlier): FullyConnectedNet(dropout=0, use_batchnorm=False, ...),
  with dropout the probability of DROPPING a unit; dropout_param["p"] drops; no layer norm;
  rmsprop(x, dx, config) and adam(x, dx, config), Adam's t starting at 1.

Every edition is built on the reference (subclasses and thin wrappers that translate arguments), so a
fix in the reference reaches all of them. What is exactly reproducible across editions:

- 2018 is the 2021 reference under other argument names: FullyConnectedNet(dropout=k) gives bit for bit
  the parameters, loss, gradients and scores of FullyConnectedNet(dropout_keep_ratio=k), dropout with a
  seed included.
- 2017 draws the same random numbers in the same order as 2021 (the weights W1, W2, ... at
  construction; one np.random.rand(*x.shape) per dropout layer per train-mode pass, after reseeding when
  a seed is given; nothing in test mode). So its parameters, and its loss and gradients without dropout
  (dropout=0) or with batch normalization (use_batchnorm=True), are bit for bit those of the 2021
  reference (dropout_keep_ratio=1, normalization="batchnorm"); test-time scores are identical whatever
  the dropout; the global RNG ends in the same state after every call, so a Solver draws the same
  minibatches. Train-time dropout is not reproducible: from the same uniform numbers u, 2017 keeps
  u >= p where 2021 keeps u < keep. With p == keep the 2017 layer keeps exactly the units the 2021
  layer drops (their masks are complements), and at p == keep == 0.5 both scale by 2, so the two
  outputs add up to 2 * x.
- Adam's update is the reference's in every edition: t is incremented before it is used. Only the
  default differs: 0 from 2018 (the first update uses t = 1), 1 in 2017 (the first update uses t = 2).
  The notebook's check passes t=5 explicitly, so its expected values are the same in every edition.
"""

import inspect
import types

import numpy as np

# The course-provided modules (layer_utils, solver, gradient_check) are found through reference.__path__.
from . import gradient_check, layer_utils, layers, optim, solver
from .classifiers import fc_net

EDITIONS = ("cs231n-a2-fc", "cs231n-a2-fc-2018", "cs231n-a2-fc-2017")

# Layer normalization arrived with the 2018 edition.
LAYERNORM_FUNCTIONS = ("layernorm_forward", "layernorm_backward")


def own_functions(module):
    """The public functions defined in `module` itself (not the ones it imports)."""
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_") and inspect.isfunction(value) and value.__module__ == module.__name__
    }


def public_functions(module):
    """The public functions `module` offers, its own and the ones it imports with `import *`."""
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_") and inspect.isfunction(value)
    }


# 2018 to 2020


class FullyConnectedNet2018(fc_net.FullyConnectedNet):
    """The 2018-2020 FullyConnectedNet: `dropout` is the keep probability (1 disables dropout).

    {affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax, exactly the
    reference's network: FullyConnectedNet2018(dropout=k) is FullyConnectedNet(dropout_keep_ratio=k).
    """

    def __init__(
        self,
        hidden_dims,
        input_dim=3 * 32 * 32,
        num_classes=10,
        dropout=1,
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
        - dropout: scalar between 0 and 1 giving the probability of keeping a unit;
          if dropout=1 the network does not use dropout at all
        - normalization: "batchnorm", "layernorm", or None for no normalization (the default)
        - reg: scalar giving the L2 regularization strength
        - weight_scale: scalar giving the standard deviation for random initialization of the weights
        - dtype: a numpy datatype object; all computations will be performed using this datatype
        - seed: if not None, pass this random seed to the dropout layers
        """
        super().__init__(
            hidden_dims,
            input_dim=input_dim,
            num_classes=num_classes,
            dropout_keep_ratio=dropout,
            normalization=normalization,
            reg=reg,
            weight_scale=weight_scale,
            dtype=dtype,
            seed=seed,
        )


# 2017 and earlier


def dropout_forward_2017(x, dropout_param):
    """Forward pass for inverted dropout, 2017 edition.

    Note that p is the probability of DROPPING a neuron output. Kept outputs are divided by 1 - p at
    training time so that test time needs no rescaling.

    The random numbers are those of the 2021 reference (seeded before the mode check, one
    np.random.rand(*x.shape) in train mode, none in test mode), read the other way: a unit is kept
    when its number is >= p. With the same seed and p, the units kept here are exactly the units the
    2021 dropout_forward (p = keep probability) drops.

    Inputs:
    - x: input data, of any shape
    - dropout_param: a dictionary with the following keys:
      - p: dropout parameter; each neuron output is dropped with probability p (0 <= p < 1)
      - mode: 'test' or 'train'. In train mode dropout is applied; in test mode the input is returned.
      - seed: seed for the random number generator, which makes this function deterministic

    Outputs:
    - out: array of the same shape and dtype as x
    - cache: tuple (dropout_param, mask). In training mode, mask is the dropout mask that was used
      to multiply the input (0 or 1 / (1 - p)); in test mode, mask is None.
    """
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])

    mask = None
    if mode == "train":
        mask = (np.random.rand(*x.shape) >= p) / (1 - p)
        out = x * mask
    elif mode == "test":
        out = x
    else:
        raise ValueError(f'Invalid forward dropout mode "{mode}"')

    cache = (dropout_param, mask)
    out = out.astype(x.dtype, copy=False)
    return out, cache


def rmsprop_2017(x, dx, config=None):
    """RMSProp with the 2017 argument names (x, dx); the update is the reference's rmsprop.

    config format: learning_rate (1e-2), decay_rate (0.99), epsilon (1e-8), cache (zeros).
    """
    return optim.rmsprop(x, dx, config)


def adam_2017(x, dx, config=None):
    """Adam with the 2017 argument names and defaults: t is 1 when absent.

    The update is the reference's adam: t is incremented before it is used, so from an empty config
    the first update corrects the bias with t = 2 (the 2018 and later default of 0 gives t = 1).

    config format: learning_rate (1e-3), beta1 (0.9), beta2 (0.999), epsilon (1e-8),
    m and v (zeros), t (iteration number, 1 when absent).
    """
    if config is None:
        config = {}
    config.setdefault("t", 1)
    return optim.adam(x, dx, config)


OPTIM_2017 = types.MappingProxyType(
    {"sgd": optim.sgd, "sgd_momentum": optim.sgd_momentum, "rmsprop": rmsprop_2017, "adam": adam_2017}
)


class FullyConnectedNet2017(fc_net.FullyConnectedNet):
    """The 2017 FullyConnectedNet: `dropout` is the probability of dropping a unit, `use_batchnorm` a flag.

    {affine - [batch norm] - relu - [dropout]} x (L - 1) - affine - softmax, the reference's network
    with the 2017 dropout layer (dropout_forward_2017, whose cache the reference's dropout_backward
    takes as it is). There is no layer normalization; normalization= is not an argument, so passing
    it raises TypeError like any unknown keyword.
    """

    def __init__(
        self,
        hidden_dims,
        input_dim=3 * 32 * 32,
        num_classes=10,
        dropout=0,
        use_batchnorm=False,
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
        - dropout: scalar between 0 and 1 giving the probability of dropping a unit;
          if dropout=0 the network does not use dropout at all
        - use_batchnorm: whether the network uses batch normalization
        - reg: scalar giving the L2 regularization strength
        - weight_scale: scalar giving the standard deviation for random initialization of the weights
        - dtype: a numpy datatype object; all computations will be performed using this datatype
        - seed: if not None, pass this random seed to the dropout layers
        """
        # The reference builds the parameters and bn_params; dropout draws no random numbers there, so
        # the weights come out exactly as the 2021 reference draws them.
        super().__init__(
            hidden_dims,
            input_dim=input_dim,
            num_classes=num_classes,
            dropout_keep_ratio=1,
            normalization="batchnorm" if use_batchnorm else None,
            reg=reg,
            weight_scale=weight_scale,
            dtype=dtype,
            seed=seed,
        )
        self.use_batchnorm = use_batchnorm
        self.use_dropout = dropout > 0

        # The same dropout_param is passed to each dropout layer; its p drops.
        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout}
            if seed is not None:
                self.dropout_param["seed"] = seed

    def _hidden_forward(self, x, layer):
        """Forward pass of hidden block `layer`: the reference's affine - [norm] - relu, then 2017 dropout."""
        # The reference block runs without its own dropout; the 2017 layer then takes its place, last.
        use_dropout, self.use_dropout = self.use_dropout, False
        try:
            out, (fc_cache, norm_cache, relu_cache, _) = super()._hidden_forward(x, layer)
        finally:
            self.use_dropout = use_dropout

        dropout_cache = None
        if self.use_dropout:
            out, dropout_cache = dropout_forward_2017(out, self.dropout_param)
        return out, (fc_cache, norm_cache, relu_cache, dropout_cache)


class Solver2017(solver.Solver):
    """The course's Solver, taking its update rule from the 2017 optim (Adam's t starts at 1)."""

    def __init__(self, model, data, **kwargs):
        update_rule = kwargs.get("update_rule", "sgd")
        super().__init__(model, data, **kwargs)
        # The base class checked the name against the reference's optim, whose rules have the same names.
        self.update_rule = OPTIM_2017[update_rule]


def reference_modules(edition: str) -> types.SimpleNamespace:
    """The trusted reference in `edition`'s API, shaped like the student's package as the recipes see it.

    Returns a namespace with layers, optim, fc_net, layer_utils, solver and gradient_check: the
    reference's modules for "cs231n-a2-fc", new namespaces (never shared between calls) for the others.
    """
    if edition == "cs231n-a2-fc":
        return types.SimpleNamespace(
            layers=layers,
            optim=optim,
            fc_net=fc_net,
            layer_utils=layer_utils,
            solver=solver,
            gradient_check=gradient_check,
        )
    if edition == "cs231n-a2-fc-2018":
        return types.SimpleNamespace(
            layers=layers,
            optim=optim,
            fc_net=types.SimpleNamespace(FullyConnectedNet=FullyConnectedNet2018),
            layer_utils=layer_utils,
            solver=solver,
            gradient_check=gradient_check,
        )
    if edition == "cs231n-a2-fc-2017":
        layer_functions = {
            name: function
            for name, function in own_functions(layers).items()
            if name not in LAYERNORM_FUNCTIONS
        }
        layer_functions["dropout_forward"] = dropout_forward_2017
        # layer_utils.py re-exports the layers (`from .layers import *`): it carries the edition's layers too.
        convenience_layers = {
            name: layer_functions.get(name, function)
            for name, function in public_functions(layer_utils).items()
            if name not in LAYERNORM_FUNCTIONS
        }
        return types.SimpleNamespace(
            layers=types.SimpleNamespace(**layer_functions),
            optim=types.SimpleNamespace(**OPTIM_2017),
            fc_net=types.SimpleNamespace(FullyConnectedNet=FullyConnectedNet2017),
            layer_utils=types.SimpleNamespace(**convenience_layers),
            solver=types.SimpleNamespace(Solver=Solver2017),
            gradient_check=gradient_check,
        )
    raise ValueError(f'Unknown edition "{edition}"; the editions are {", ".join(EDITIONS)}')
