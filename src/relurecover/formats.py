"""Networks in and out of other libraries' formats: scikit-learn and PyTorch.

A :class:`~relurecover.networks.TwoLayerNetwork` ``y = U relu(V x + b) + c`` is a
scikit-learn ``MLPRegressor`` with one hidden layer (``coefs_ = [V^T, U^T]``,
``intercepts_ = [b, c]``, ReLU, identity output) and a PyTorch
``nn.Sequential(nn.Linear(d, k), nn.ReLU(), nn.Linear(k, m))``; a
:class:`~relurecover.networks.DeepNetwork` is the same with more hidden layers.
The conversions copy the weights (float64 by default) and check that the
structure is one these networks have: a rectified ReLU, an identity output.

PyTorch is optional: the torch functions import it when called and raise
:class:`relurecover.deep.MissingDependencyError` without it.
"""

from __future__ import annotations

import numpy as np

from .networks import DeepNetwork, TwoLayerNetwork

__all__ = ["from_mlp", "to_mlp", "to_torch", "from_torch"]


def _layers(net):
    """``[(W, bias), ...]`` of a network, first layer first (PyTorch's shapes)."""
    if isinstance(net, TwoLayerNetwork):
        if not net.activation.is_relu:
            raise ValueError(
                f"only ReLU networks have an MLPRegressor / PyTorch form here; this one "
                f"uses {net.activation.name!r}.")
        return [(net.V, net.b), (net.U, net.c)]
    if isinstance(net, DeepNetwork):
        return list(zip(net.weights, net.biases))
    raise TypeError(f"expected a TwoLayerNetwork or DeepNetwork, got {type(net).__name__}.")


def _from_layers(layers):
    """A :class:`TwoLayerNetwork` for one hidden layer, else a :class:`DeepNetwork`."""
    if len(layers) == 2:
        (V, b), (U, c) = layers
        return TwoLayerNetwork(U, V, activation="relu", b=b, c=c)
    return DeepNetwork([W for W, _ in layers], [bv for _, bv in layers])


def from_mlp(mlp):
    """The network of a fitted scikit-learn ``MLPRegressor`` (ReLU, identity output).

    Parameters
    ----------
    mlp : sklearn.neural_network.MLPRegressor
        Fitted, with ``activation="relu"``.

    Returns
    -------
    TwoLayerNetwork or DeepNetwork
        One hidden layer: ``TwoLayerNetwork(coefs_[1].T, coefs_[0].T,
        b=intercepts_[0], c=intercepts_[1])``; more: a ``DeepNetwork``.

    Raises
    ------
    ValueError
        When ``mlp`` is not fitted, or its activation is not ReLU.

    Examples
    --------
    >>> net = TwoLayerNetwork.random(4, 3, 2, bias_scale=0.5, rng=0)
    >>> back = from_mlp(to_mlp(net))
    >>> bool(np.all(back.V == net.V) and np.all(back.c == net.c))
    True
    """
    coefs = getattr(mlp, "coefs_", None)
    if coefs is None:
        raise ValueError("the MLPRegressor is not fitted (it has no `coefs_`): fit it first.")
    if getattr(mlp, "activation", None) != "relu":
        raise ValueError(
            f"the MLPRegressor uses activation={getattr(mlp, 'activation', None)!r}; only "
            "'relu' (a rectified activation) has a relurecover network.")
    if getattr(mlp, "out_activation_", "identity") != "identity":
        raise ValueError(f"the MLPRegressor's output activation is "
                         f"{mlp.out_activation_!r}, not 'identity'.")
    layers = [(np.array(W, dtype=float).T, np.array(bv, dtype=float))
              for W, bv in zip(mlp.coefs_, mlp.intercepts_)]
    return _from_layers(layers)


def to_mlp(net):
    """A scikit-learn ``MLPRegressor`` that predicts as ``net`` does, without training.

    Its fitted attributes (``coefs_``, ``intercepts_``, ``n_layers_``,
    ``n_outputs_``, ``n_features_in_``, ``out_activation_``) are set from the
    weights; ``n_iter_`` is 0 and ``loss_`` is NaN (it was never trained).

    Parameters
    ----------
    net : TwoLayerNetwork or DeepNetwork
        A ReLU network.

    Returns
    -------
    sklearn.neural_network.MLPRegressor
        ``predict(X)`` equals ``net.predict(X)`` (raveled for one output, as
        scikit-learn does).
    """
    from sklearn.neural_network import MLPRegressor

    layers = _layers(net)
    mlp = MLPRegressor(hidden_layer_sizes=tuple(W.shape[0] for W, _ in layers[:-1]),
                       activation="relu")
    mlp.coefs_ = [np.array(W, dtype=float).T.copy() for W, _ in layers]
    mlp.intercepts_ = [np.array(bv, dtype=float).copy() for _, bv in layers]
    mlp.n_layers_ = len(layers) + 1
    mlp.n_outputs_ = layers[-1][0].shape[0]
    mlp.n_features_in_ = layers[0][0].shape[1]
    mlp.out_activation_ = "identity"
    mlp.n_iter_ = 0
    mlp.t_ = 0
    mlp.loss_ = float("nan")
    return mlp


def _torch():
    from .deep._learn import MissingDependencyError, import_torch

    try:
        return import_torch()
    except MissingDependencyError as exc:
        raise MissingDependencyError(
            "to_torch / from_torch need PyTorch: pip install 'relurecover[torch]' (the "
            "scikit-learn conversions, from_mlp and to_mlp, do not).") from exc


def to_torch(net, *, dtype=None):
    """``nn.Sequential(Linear, ReLU, ..., Linear)`` with the weights of ``net``.

    Parameters
    ----------
    net : TwoLayerNetwork or DeepNetwork
        A ReLU network.
    dtype : torch.dtype, default=None
        Of the parameters; None means ``torch.float64`` (exact copies).

    Returns
    -------
    torch.nn.Sequential
        ``nn.Linear`` layers with biases, ``nn.ReLU`` between them.
    """
    torch = _torch()
    dtype = torch.float64 if dtype is None else dtype
    mods = []
    layers = _layers(net)
    for i, (W, bv) in enumerate(layers):
        lin = torch.nn.Linear(W.shape[1], W.shape[0], bias=True, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(W, dtype=dtype))
            lin.bias.copy_(torch.as_tensor(bv, dtype=dtype))
        mods.append(lin)
        if i < len(layers) - 1:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def from_torch(module):
    """The network of a PyTorch ``nn.Sequential`` of ``Linear`` and ``ReLU`` layers.

    Parameters
    ----------
    module : torch.nn.Sequential
        ``Linear`` layers (with or without bias) alternating with ``ReLU``, a
        ``Linear`` last.

    Returns
    -------
    TwoLayerNetwork or DeepNetwork
        One hidden layer: a ``TwoLayerNetwork``; more: a ``DeepNetwork``.

    Raises
    ------
    ValueError
        For any other structure (another activation, two ``Linear`` in a row, a
        ``ReLU`` last), naming the layer.
    """
    torch = _torch()
    mods = list(module.children()) if isinstance(module, torch.nn.Sequential) else [module]
    layers = []
    expect_linear = True
    for i, mod in enumerate(mods):
        if expect_linear:
            if not isinstance(mod, torch.nn.Linear):
                raise ValueError(f"layer {i} is {type(mod).__name__}; expected nn.Linear "
                                 "(the layers must alternate Linear, ReLU, ..., Linear).")
            W = mod.weight.detach().cpu().double().numpy()
            bv = (np.zeros(W.shape[0]) if mod.bias is None
                  else mod.bias.detach().cpu().double().numpy())
            layers.append((W, bv))
        elif not isinstance(mod, torch.nn.ReLU):
            raise ValueError(f"layer {i} is {type(mod).__name__}; only nn.ReLU (rectified) "
                             "may sit between the Linear layers.")
        expect_linear = not expect_linear
    if expect_linear or len(layers) < 2:
        raise ValueError("the module must end with an nn.Linear and hold at least one "
                         "hidden layer (Linear, ReLU, Linear).")
    return _from_layers(layers)
