"""Two-layer and deep ReLU networks, planted random instances, save and load.

Weights are stored as PyTorch stores them: samples are rows, ``X`` has shape
``(n, d)``; a two-layer network ``y = U f(V x + b) + c`` has ``V`` of shape
``(k, d)``, ``b`` of shape ``(k,)``, ``U`` of shape ``(m, k)`` and ``c`` of shape
``(m,)``, i.e. ``nn.Linear(d, k) -> f -> nn.Linear(k, m)``. Without biases
(``b = 0``, ``c = 0``) it is the network of both papers. (The papers write the
data as ``d x n``.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Sequence

import numpy as np

from ._validation import as_2d_float, check_positive_int, check_random_state
from .activations import Activation, get_activation

__all__ = ["TwoLayerNetwork", "DeepNetwork", "gaussian_inputs"]


def gaussian_inputs(n: int, d: int, *, rng=None) -> np.ndarray:
    """Draw ``n`` samples of ``x ~ N(0, I_d)`` as an array of shape ``(n, d)``.

    Parameters
    ----------
    n : int
        Number of samples (rows).
    d : int
        Input dimension (columns).
    rng : None, int or numpy.random.Generator, default=None
        Seed or generator.

    Returns
    -------
    ndarray of shape (n, d)
        Independent standard normal entries, one sample a row.

    Examples
    --------
    >>> gaussian_inputs(3, 2, rng=0).shape
    (3, 2)
    """
    n = check_positive_int(n, "n")
    d = check_positive_int(d, "d")
    return check_random_state(rng).standard_normal((n, d))


#: the array of a saved network that holds its metadata, a JSON object as a string.
METADATA_KEY = "metadata"


def _metadata_entry(metadata) -> dict:
    """``{METADATA_KEY: <0-d str array>}`` for ``np.savez`` (empty for None)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
        raise ValueError(f"`metadata` must be a dict with str keys, got "
                         f"{type(metadata).__name__}.")
    try:
        text = json.dumps(dict(metadata), allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`metadata` must be JSON-serialisable (str, int, float, bool, "
                         f"None, lists and dicts of them; no NaN or infinity): {exc}"
                         ) from None
    return {METADATA_KEY: np.array(text)}


def read_metadata(path) -> dict:
    """The metadata saved with a network (``save(path, metadata=...)``).

    Parameters
    ----------
    path : str or path-like
        An ``.npz`` archive written by ``TwoLayerNetwork.save`` or
        ``DeepNetwork.save`` (or any ``.npz``).

    Returns
    -------
    dict
        The dictionary given to ``save``; empty when the file holds none (files
        written before metadata existed, or saved without it).

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
    >>> TwoLayerNetwork.random(4, 2, 2, rng=0).save(path, metadata={"exact": True})
    >>> read_metadata(path)
    {'exact': True}
    """
    with _open_npz(path) as f:
        if METADATA_KEY not in f.files:
            return {}
        text = str(f[METADATA_KEY])
    try:
        meta = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{os.fspath(path)!r}: its metadata is not valid JSON ({exc}).") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{os.fspath(path)!r}: its metadata is not a JSON object.")
    return meta


def _open_npz(path):
    """``np.load`` that insists on an ``.npz`` archive (a ``.npy`` holds no network)."""
    f = np.load(path, allow_pickle=False)
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{os.fspath(path)!r} is a single array, not an .npz archive of a network."
        )
    return f


def _check_X(X, d: int) -> np.ndarray:
    X = as_2d_float(X, "X")
    if X.shape[1] != d:
        raise ValueError(
            f"`X` has {X.shape[1]} features (columns) but the network expects d = {d}."
        )
    return X


def _check_vector(a, name: str, size: int, what: str) -> np.ndarray:
    """A bias vector: None -> zeros, else finite, 1-D, of length ``size``."""
    if a is None:
        return np.zeros(size)
    a = np.asarray(a, dtype=float)
    if a.ndim == 2 and 1 in a.shape:
        a = a.ravel()
    if a.ndim != 1 or a.shape[0] != size:
        raise ValueError(f"`{name}` must have shape ({size},) (one entry per {what}), got "
                         f"shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return a


class _Formats:
    """Conversions to and from scikit-learn and PyTorch, and to ONNX, shared by both
    network classes (the work is done by :mod:`relurecover.formats`)."""

    @classmethod
    def _converted(cls, net):
        """``net`` (what :mod:`relurecover.formats` built) as an instance of ``cls``."""
        raise NotImplementedError  # each class says how it takes the other's form

    @classmethod
    def from_mlp(cls, mlp):
        """The network of a fitted scikit-learn ``MLPRegressor`` (ReLU)
        (:func:`relurecover.formats.from_mlp`).

        Parameters
        ----------
        mlp : sklearn.neural_network.MLPRegressor
            Fitted, ReLU.

        Returns
        -------
        TwoLayerNetwork or DeepNetwork
            An instance of the class it is called on.
        """
        from .formats import from_mlp

        return cls._converted(from_mlp(mlp))

    @classmethod
    def from_torch(cls, module):
        """The network of an ``nn.Sequential`` of ``Linear`` and ``ReLU``
        (:func:`relurecover.formats.from_torch`).

        Parameters
        ----------
        module : torch.nn.Sequential
            ``Linear`` layers alternating with ``ReLU``.

        Returns
        -------
        TwoLayerNetwork or DeepNetwork
            An instance of the class it is called on.
        """
        from .formats import from_torch

        return cls._converted(from_torch(module))

    def to_mlp(self):
        """A scikit-learn ``MLPRegressor`` predicting as this network does
        (:func:`relurecover.formats.to_mlp`).

        Returns
        -------
        sklearn.neural_network.MLPRegressor
        """
        from .formats import to_mlp

        return to_mlp(self)

    def to_torch(self, *, dtype=None):
        """A PyTorch ``nn.Sequential`` of ``Linear`` and ``ReLU`` with these weights
        (:func:`relurecover.formats.to_torch`).

        Parameters
        ----------
        dtype : torch.dtype, default=None
            None: ``torch.float64``.

        Returns
        -------
        torch.nn.Sequential
        """
        from .formats import to_torch

        return to_torch(self, dtype=dtype)

    def to_onnx(self, path, *, dtype=np.float64):
        """Write this network to an ONNX file, ``Gemm`` and ``Relu`` nodes with a
        dynamic batch dimension (:func:`relurecover.formats.to_onnx`).

        Parameters
        ----------
        path : str or path-like
            The file to write.
        dtype : numpy dtype, str or torch.dtype, default=numpy.float64
            Of the weights, the input ``"X"`` and the output ``"Y"``: float64 or
            float32.

        Returns
        -------
        pathlib.Path
            ``path``.
        """
        from .formats import to_onnx

        return to_onnx(self, path, dtype=dtype)


class TwoLayerNetwork(_Formats):
    """The network ``y = U f(V x + b) + c``.

    Parameters
    ----------
    U : array-like of shape (m, k)
        Output weights.
    V : array-like of shape (k, d)
        Hidden-layer weights, one row per unit.
    activation : str, Activation or callable, default="relu"
        A rectified activation, see :func:`relurecover.activations.get_activation`.
    b : array-like of shape (k,), default=None
        Hidden biases (None: zero).
    c : array-like of shape (m,), default=None
        Output biases (None: zero).

    Examples
    --------
    >>> net = TwoLayerNetwork.random(5, 3, 2, rng=0)
    >>> net
    TwoLayerNetwork(d=5, k=3, m=2, activation='relu')
    >>> net.predict(gaussian_inputs(4, 5, rng=1)).shape
    (4, 2)
    >>> TwoLayerNetwork.random(5, 3, 2, bias_scale=0.5, rng=0).has_biases
    True
    """

    def __init__(self, U, V, activation="relu", b=None, c=None):
        U = as_2d_float(U, "U")
        V = as_2d_float(V, "V")
        if U.shape[1] != V.shape[0]:
            raise ValueError(
                f"`U` has {U.shape[1]} columns but `V` has {V.shape[0]} rows; both "
                "must equal the number of hidden units k (U: (m, k), V: (k, d))."
            )
        self.U = U
        self.V = V
        self.b = _check_vector(b, "b", V.shape[0], "hidden unit")
        self.c = _check_vector(c, "c", U.shape[0], "output")
        self.activation = get_activation(activation)

    @classmethod
    def random(cls, d: int, k: int, m: int, *, activation="relu", bias_scale: float = 0.0,
               output_bias_scale: float | None = None, rng=None):
        """A planted instance with i.i.d. standard Gaussian weights.

        Parameters
        ----------
        d : int
            Input dimension.
        k : int
            Hidden units.
        m : int
            Outputs.
        activation : str, Activation or callable, default="relu"
            A rectified activation.
        bias_scale : float, default=0.0
            Hidden biases ``b_i ~ N(0, bias_scale^2) ||v_i||`` (so unit ``i`` is
            active on a fraction ``Phi(b_i / ||v_i||)`` of Gaussian inputs). 0: no
            biases.
        output_bias_scale : float, default=None
            Output biases ``c ~ N(0, output_bias_scale^2)``; None: 1 when
            ``bias_scale > 0``, else 0.
        rng : None, int or numpy.random.Generator, default=None
            Seed or generator for ``V`` (drawn first), ``U``, then ``b`` and ``c``.

        Returns
        -------
        TwoLayerNetwork
            ``V`` of shape ``(k, d)`` and ``U`` of shape ``(m, k)``, entries ``N(0, 1)``.
        """
        d = check_positive_int(d, "d")
        k = check_positive_int(k, "k")
        m = check_positive_int(m, "m")
        for name, val in (("bias_scale", bias_scale), ("output_bias_scale", output_bias_scale)):
            if val is not None and (isinstance(val, bool) or not np.isfinite(val) or val < 0):
                raise ValueError(f"`{name}` must be a finite number >= 0, got {val!r}.")
        rng = check_random_state(rng)
        V = rng.standard_normal((k, d))
        U = rng.standard_normal((m, k))
        if output_bias_scale is None:
            output_bias_scale = 1.0 if bias_scale > 0 else 0.0
        b = c = None
        if bias_scale > 0:
            b = bias_scale * rng.standard_normal(k) * np.linalg.norm(V, axis=1)
        if output_bias_scale > 0:
            c = output_bias_scale * rng.standard_normal(m)
        return cls(U, V, activation=activation, b=b, c=c)

    @property
    def has_biases(self) -> bool:
        """Whether ``b`` or ``c`` has a non-zero entry."""
        return bool(np.any(self.b) or np.any(self.c))

    @property
    def n_inputs(self) -> int:
        """Input dimension ``d``."""
        return self.V.shape[1]

    @property
    def n_hidden(self) -> int:
        """Hidden units ``k``."""
        return self.V.shape[0]

    @property
    def n_outputs(self) -> int:
        """Outputs ``m``."""
        return self.U.shape[0]

    def hidden(self, X) -> np.ndarray:
        """Hidden activations ``f(X V^T + b)``.

        Parameters
        ----------
        X : array-like of shape (n, d)
            Inputs, one sample a row.

        Returns
        -------
        ndarray of shape (n, k)
            Column ``i`` is ``f(X v_i + b_i)``, the activation vector of unit ``i``.
        """
        X = _check_X(X, self.n_inputs)
        S = X @ self.V.T
        if np.any(self.b):
            S += self.b
        return self.activation(S)

    def predict(self, X) -> np.ndarray:
        """Outputs ``f(X V^T + b) U^T + c``.

        Parameters
        ----------
        X : array-like of shape (n, d)
            Inputs, one sample a row.

        Returns
        -------
        ndarray of shape (n, m)
            One output vector a row.
        """
        Y = self.hidden(X) @ self.U.T
        if np.any(self.c):
            Y += self.c
        return Y

    __call__ = predict

    def save(self, path, metadata=None) -> None:
        """Write ``U``, ``V``, ``b``, ``c`` and the activation's name to an ``.npz`` file.

        Parameters
        ----------
        path : str or path-like
            Destination (``np.savez`` appends ``.npz`` when it is missing).
        metadata : dict, default=None
            JSON-serialisable facts about the network (e.g. ``exact``, the
            certificate, the method), stored as one JSON string in the archive and
            read back by :func:`read_metadata`; :meth:`load` ignores it.

        Raises
        ------
        ValueError
            For a custom activation, which cannot be stored by name, or metadata
            that is not a JSON-serialisable dict.
        """
        if self.activation.name == "custom":
            raise ValueError(
                "a network with a custom activation cannot be saved by name; save "
                "U and V yourself, or use a registered activation."
            )
        extra = _metadata_entry(metadata)
        np.savez(path, U=self.U, V=self.V, b=self.b, c=self.c,
                 activation=np.array(self.activation.name), kind=np.array("two-layer"),
                 **extra)

    @classmethod
    def load(cls, path):
        """Read a network written by :meth:`save` (or any ``.npz`` with ``U``, ``V``).

        Parameters
        ----------
        path : str or path-like
            An ``.npz`` archive with arrays ``U`` and ``V`` (and optionally ``b``,
            ``c`` and the activation's name; zero biases and ReLU when absent, so
            files written before biases existed load unchanged).

        Returns
        -------
        TwoLayerNetwork
        """
        with _open_npz(path) as f:
            if "U" not in f or "V" not in f:
                raise ValueError(
                    f"{os.fspath(path)!r} holds no two-layer network: arrays `U` and "
                    f"`V` are missing (found {sorted(f.files)})."
                )
            act = str(f["activation"]) if "activation" in f else "relu"
            b = f["b"] if "b" in f else None
            c = f["c"] if "c" in f else None
            return cls(f["U"], f["V"], activation=act, b=b, c=c)

    @classmethod
    def _converted(cls, net):
        if not isinstance(net, TwoLayerNetwork):
            raise ValueError(f"the model has {len(net.widths)} hidden layers; use "
                             "DeepNetwork.from_mlp / DeepNetwork.from_torch.")
        return net

    def __repr__(self) -> str:
        return (
            f"TwoLayerNetwork(d={self.n_inputs}, k={self.n_hidden}, "
            f"m={self.n_outputs}, activation={self.activation.name!r}"
            + (", biases=True)" if self.has_biases else ")")
        )


class DeepNetwork(_Formats):
    """The network ``F(x) = W_{L+1} relu(W_L ... relu(W_1 x + b_1) ... + b_L) + b_{L+1}``.

    Parameters
    ----------
    weights : sequence of array-like
        ``W_1`` of shape ``(k_1, d)``, then ``W_l`` of shape ``(k_l, k_{l-1})``;
        the last is the output layer (``(m, k_L)``, ``m = 1`` for a scalar output).
    biases : sequence of array-like or None, default=None
        One bias vector per layer (``b_l`` of shape ``(k_l,)``, the last ``(m,)``);
        None, or None for a layer, means zero.

    Examples
    --------
    >>> net = DeepNetwork.random(10, [4, 4], rng=0)
    >>> net
    DeepNetwork(d=10, widths=[4, 4], m=1)
    >>> net.predict(gaussian_inputs(3, 10, rng=1)).shape
    (3, 1)
    """

    def __init__(self, weights: Sequence, biases: Sequence | None = None):
        weights = [as_2d_float(W, f"weights[{i}]") for i, W in enumerate(weights)]
        if len(weights) < 1:
            raise ValueError("`weights` must hold at least one matrix.")
        for i in range(1, len(weights)):
            if weights[i].shape[1] != weights[i - 1].shape[0]:
                raise ValueError(
                    f"weights[{i}] has {weights[i].shape[1]} columns but weights[{i-1}] "
                    f"has {weights[i-1].shape[0]} rows; consecutive layers must chain."
                )
        if biases is None:
            biases = [None] * len(weights)
        biases = list(biases)
        if len(biases) != len(weights):
            raise ValueError(f"`biases` must hold one vector per layer ({len(weights)}), "
                             f"got {len(biases)}.")
        self.weights = weights
        self.biases = [_check_vector(bv, f"biases[{i}]", W.shape[0], "unit of the layer")
                       for i, (W, bv) in enumerate(zip(weights, biases))]

    @property
    def has_biases(self) -> bool:
        """Whether any layer has a non-zero bias."""
        return any(np.any(bv) for bv in self.biases)

    @classmethod
    def random(cls, d: int, widths: Sequence[int], m: int = 1, *, rng=None):
        """Planted instance: i.i.d. Gaussian layers scaled by ``1/sqrt(fan_in)``.

        The first layer is standard Gaussian (its scale is free for a ReLU
        network); every later layer is scaled by ``1/sqrt(fan_in)`` so the
        outputs stay of order one.

        Parameters
        ----------
        d : int
            Input dimension.
        widths : sequence of int
            Hidden widths ``(k_1, ..., k_L)``.
        m : int, default=1
            Outputs.
        rng : None, int or numpy.random.Generator, default=None
            Seed or generator.

        Returns
        -------
        DeepNetwork
            Layers of shapes ``(k_1, d), (k_2, k_1), ..., (m, k_L)``.
        """
        d = check_positive_int(d, "d")
        m = check_positive_int(m, "m")
        widths = [check_positive_int(w, "widths[i]") for w in widths]
        rng = check_random_state(rng)
        sizes = [d, *widths, m]
        Ws = []
        for i in range(len(sizes) - 1):
            scale = 1.0 if i == 0 else 1.0 / np.sqrt(sizes[i])
            Ws.append(scale * rng.standard_normal((sizes[i + 1], sizes[i])))
        return cls(Ws)

    @property
    def n_inputs(self) -> int:
        """Input dimension ``d``."""
        return self.weights[0].shape[1]

    @property
    def widths(self) -> list[int]:
        """Hidden widths ``[k_1, ..., k_L]``."""
        return [W.shape[0] for W in self.weights[:-1]]

    @property
    def n_outputs(self) -> int:
        """Outputs ``m``."""
        return self.weights[-1].shape[0]

    def predict(self, X) -> np.ndarray:
        """Outputs ``F(x)`` for every row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n, d)
            Inputs, one sample a row.

        Returns
        -------
        ndarray of shape (n, m)
            One output vector a row.
        """
        H = _check_X(X, self.n_inputs)
        for W, bv in zip(self.weights[:-1], self.biases[:-1]):
            H = np.maximum(H @ W.T + bv, 0.0)
        return H @ self.weights[-1].T + self.biases[-1]

    __call__ = predict

    def save(self, path, metadata=None) -> None:
        """Write the layers to an ``.npz`` file (``W0``, ``W1``, ... and ``b0``, ``b1``, ...).

        Parameters
        ----------
        path : str or path-like
            Destination (``np.savez`` appends ``.npz`` when it is missing).
        metadata : dict, default=None
            JSON-serialisable facts about the network (e.g. the held-out error and
            the verdict), stored as one JSON string in the archive and read back by
            :func:`read_metadata`; :meth:`load` ignores it.

        Raises
        ------
        ValueError
            For metadata that is not a JSON-serialisable dict.
        """
        np.savez(path, kind=np.array("deep"), **_metadata_entry(metadata),
                 **{f"W{i}": W for i, W in enumerate(self.weights)},
                 **{f"b{i}": bv for i, bv in enumerate(self.biases)})

    @classmethod
    def load(cls, path):
        """Read a network written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            An ``.npz`` archive with arrays ``W0``, ``W1``, ... (first layer first)
            and optionally ``b0``, ``b1``, ... (zero when absent).

        Returns
        -------
        DeepNetwork
        """
        with _open_npz(path) as f:
            keys = sorted((k for k in f.files if k[:1] == "W" and k[1:].isdigit()),
                          key=lambda k: int(k[1:]))
            if not keys:
                raise ValueError(
                    f"{os.fspath(path)!r} holds no deep network (no arrays W0, W1, ...)."
                )
            biases = [f[f"b{k[1:]}"] if f"b{k[1:]}" in f else None for k in keys]
            return cls([f[k] for k in keys], biases)

    @classmethod
    def _converted(cls, net):
        if isinstance(net, TwoLayerNetwork):  # one hidden layer is a deep network too
            return cls([net.V, net.U], [net.b, net.c])
        return net

    def __repr__(self) -> str:
        return (
            f"DeepNetwork(d={self.n_inputs}, widths={self.widths}, m={self.n_outputs}"
            + (", biases=True)" if self.has_biases else ")")
        )


def load_network(path):
    """Load a :class:`TwoLayerNetwork` or :class:`DeepNetwork` from an ``.npz`` file.

    Parameters
    ----------
    path : str or path-like
        An archive written by ``TwoLayerNetwork.save`` or ``DeepNetwork.save``; its
        ``kind`` entry (or, without one, the presence of ``U``) says which.

    Returns
    -------
    TwoLayerNetwork or DeepNetwork
    """
    with _open_npz(path) as f:
        kind = str(f["kind"]) if "kind" in f else ("two-layer" if "U" in f else "deep")
    return TwoLayerNetwork.load(path) if kind == "two-layer" else DeepNetwork.load(path)


__all__ += ["load_network", "read_metadata"]
