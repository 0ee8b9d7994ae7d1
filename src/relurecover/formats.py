"""Networks in and out of other libraries' formats: scikit-learn, PyTorch and ONNX.

A :class:`~relurecover.networks.TwoLayerNetwork` ``y = U relu(V x + b) + c`` is a
scikit-learn ``MLPRegressor`` with one hidden layer (``coefs_ = [V^T, U^T]``,
``intercepts_ = [b, c]``, ReLU, identity output) and a PyTorch
``nn.Sequential(nn.Linear(d, k), nn.ReLU(), nn.Linear(k, m))``; a
:class:`~relurecover.networks.DeepNetwork` is the same with more hidden layers.
The conversions copy the weights (float64 by default) and check that the
structure is one these networks have: a rectified ReLU, an identity output.
:func:`to_onnx` writes that ``nn.Sequential`` to an ONNX file (``Gemm`` and
``Relu`` nodes, float64 by default, any number of rows).

PyTorch is optional: the torch functions import it when called and raise
:class:`relurecover.deep.MissingDependencyError` without it; :func:`to_onnx` also
needs ``onnx`` and ``onnxscript`` (``pip install 'relurecover[torch,onnx]'``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from .networks import DeepNetwork, TwoLayerNetwork

__all__ = ["from_mlp", "to_mlp", "to_torch", "from_torch", "to_onnx"]


def _layers(net):
    """``[(W, bias), ...]`` of a network, first layer first (PyTorch's shapes)."""
    if isinstance(net, TwoLayerNetwork):
        if not net.activation.is_relu:
            raise ValueError(
                f"only ReLU networks have an MLPRegressor / PyTorch / ONNX form here "
                f"(MLPRegressor's activations are 'identity', 'logistic', 'tanh' and "
                f"'relu'); this one uses {net.activation.name!r}.")
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


#: what :func:`to_onnx` raises without one of the packages it needs.
ONNX_HINT = ("to_onnx needs PyTorch, onnx and onnxscript (torch.onnx.export): pip install "
             "'relurecover[torch,onnx]' (onnxruntime, in the onnx extra, runs the file).")
#: the names of the graph's input and output.
ONNX_INPUT, ONNX_OUTPUT = "X", "Y"


def _onnx_torch():
    """``torch`` once ``torch``, ``onnx`` and ``onnxscript`` are all importable."""
    from .deep._learn import MissingDependencyError

    missing = []
    for name in ("torch", "onnx", "onnxscript"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingDependencyError(f"{ONNX_HINT} Missing: {', '.join(missing)}.")
    import torch

    return torch


def _onnx_dtype(dtype, torch):
    """``dtype`` (NumPy's, a string, or torch's) as ``torch.float64`` / ``torch.float32``."""
    if isinstance(dtype, torch.dtype):
        known = {torch.float64: torch.float64, torch.float32: torch.float32}
        if dtype in known:
            return known[dtype]
    else:
        try:
            np_dtype = np.dtype(dtype)
        except TypeError:
            np_dtype = None
        if np_dtype == np.float64:
            return torch.float64
        if np_dtype == np.float32:
            return torch.float32
    raise ValueError(f"`dtype` must be float64 or float32 (NumPy's or torch's), got "
                     f"{dtype!r}.")


@contextlib.contextmanager
def _quiet_exporter():
    """Silence what ``torch.onnx.export`` says on every call that is not about the
    model: the registry's note that torchvision (whose operators a ``Linear`` and
    ``ReLU`` network does not use) is absent, and a deprecation inside torch."""
    registry = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry.level
    registry.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
            yield
    finally:
        registry.setLevel(level)


def to_onnx(net, path, *, dtype=np.float64):
    """Write ``net`` to an ONNX file: ``Gemm`` layers with ``Relu`` between them.

    The module of :func:`to_torch` is exported by ``torch.onnx.export`` (the
    ``torch.export``-based exporter, which needs ``onnxscript``) with a dynamic
    batch dimension. The graph has one input ``"X"`` of shape ``(batch, d)`` and
    one output ``"Y"`` of shape ``(batch, m)`` (2-D also for ``m = 1``); the
    weights are stored in the file itself, in ``dtype``. With float64,
    onnxruntime's CPU provider reproduces ``net.predict`` to rounding
    (``tests/test_onnx.py``: 1e-12 relative).

    Parameters
    ----------
    net : TwoLayerNetwork or DeepNetwork
        A ReLU network.
    path : str or path-like
        The file to write (conventionally ``.onnx``); overwritten if it exists.
    dtype : numpy dtype, str or torch.dtype, default=numpy.float64
        Of the weights and of the input and output: float64 (exact copies of the
        weights) or float32.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    MissingDependencyError
        When ``torch``, ``onnx`` or ``onnxscript`` is missing (an ImportError that
        names the extras ``torch`` and ``onnx``).
    ValueError
        For a network whose activation is not ReLU, or another ``dtype``.

    Examples
    --------
    >>> import pytest; ort = pytest.importorskip("onnxruntime")
    >>> _ = pytest.importorskip("onnxscript")
    >>> import tempfile, os
    >>> net = TwoLayerNetwork.random(4, 3, 2, bias_scale=0.5, rng=0)
    >>> path = to_onnx(net, os.path.join(tempfile.mkdtemp(), "net.onnx"))
    >>> X = np.random.default_rng(1).standard_normal((5, 4))
    >>> Y = ort.InferenceSession(str(path)).run(None, {"X": X})[0]
    >>> Y.dtype, bool(np.allclose(Y, net.predict(X), rtol=1e-12, atol=0))
    (dtype('float64'), True)
    """
    torch = _onnx_torch()
    tdtype = _onnx_dtype(dtype, torch)
    module = to_torch(net, dtype=tdtype).eval()
    d = _layers(net)[0][0].shape[1]
    path = Path(os.fspath(path))
    example = (torch.zeros(2, d, dtype=tdtype),)  # traced once; the batch is dynamic
    with _quiet_exporter():
        torch.onnx.export(module, example, str(path), dynamo=True, verbose=False,
                          input_names=[ONNX_INPUT], output_names=[ONNX_OUTPUT],
                          dynamic_shapes=({0: torch.export.Dim("batch")},),
                          external_data=False, optimize=True)
    return path
