"""Two-layer and deep ReLU networks, planted random instances, save and load.

Weights are stored as PyTorch stores them: samples are rows, ``X`` has shape
``(n, d)``; a two-layer network ``y = U f(V x)`` has ``V`` of shape ``(k, d)`` and
``U`` of shape ``(m, k)``, i.e. ``nn.Linear(d, k, bias=False) -> f ->
nn.Linear(k, m, bias=False)``. (The papers write the data as ``d x n``.)
"""

from __future__ import annotations

import os
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


class TwoLayerNetwork:
    """The network ``y = U f(V x)``.

    Parameters
    ----------
    U : array-like of shape (m, k)
        Output weights.
    V : array-like of shape (k, d)
        Hidden-layer weights, one row per unit.
    activation : str, Activation or callable, default="relu"
        A rectified activation, see :func:`relurecover.activations.get_activation`.

    Examples
    --------
    >>> net = TwoLayerNetwork.random(5, 3, 2, rng=0)
    >>> net
    TwoLayerNetwork(d=5, k=3, m=2, activation='relu')
    >>> net.predict(gaussian_inputs(4, 5, rng=1)).shape
    (4, 2)
    """

    def __init__(self, U, V, activation="relu"):
        U = as_2d_float(U, "U")
        V = as_2d_float(V, "V")
        if U.shape[1] != V.shape[0]:
            raise ValueError(
                f"`U` has {U.shape[1]} columns but `V` has {V.shape[0]} rows; both "
                "must equal the number of hidden units k (U: (m, k), V: (k, d))."
            )
        self.U = U
        self.V = V
        self.activation = get_activation(activation)

    @classmethod
    def random(cls, d: int, k: int, m: int, *, activation="relu", rng=None):
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
        rng : None, int or numpy.random.Generator, default=None
            Seed or generator for ``V`` (drawn first) and ``U``.

        Returns
        -------
        TwoLayerNetwork
            ``V`` of shape ``(k, d)`` and ``U`` of shape ``(m, k)``, entries ``N(0, 1)``.
        """
        d = check_positive_int(d, "d")
        k = check_positive_int(k, "k")
        m = check_positive_int(m, "m")
        rng = check_random_state(rng)
        V = rng.standard_normal((k, d))
        U = rng.standard_normal((m, k))
        return cls(U, V, activation=activation)

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
        """Hidden activations ``f(X V^T)``.

        Parameters
        ----------
        X : array-like of shape (n, d)
            Inputs, one sample a row.

        Returns
        -------
        ndarray of shape (n, k)
            Column ``i`` is ``f(X v_i)``, the activation vector of unit ``i``.
        """
        X = _check_X(X, self.n_inputs)
        return self.activation(X @ self.V.T)

    def predict(self, X) -> np.ndarray:
        """Outputs ``f(X V^T) U^T``.

        Parameters
        ----------
        X : array-like of shape (n, d)
            Inputs, one sample a row.

        Returns
        -------
        ndarray of shape (n, m)
            One output vector a row.
        """
        return self.hidden(X) @ self.U.T

    __call__ = predict

    def save(self, path) -> None:
        """Write ``U``, ``V`` and the activation's name to an ``.npz`` file.

        Parameters
        ----------
        path : str or path-like
            Destination (``np.savez`` appends ``.npz`` when it is missing).

        Raises
        ------
        ValueError
            For a custom activation, which cannot be stored by name.
        """
        if self.activation.name == "custom":
            raise ValueError(
                "a network with a custom activation cannot be saved by name; save "
                "U and V yourself, or use a registered activation."
            )
        np.savez(path, U=self.U, V=self.V, activation=np.array(self.activation.name),
                 kind=np.array("two-layer"))

    @classmethod
    def load(cls, path):
        """Read a network written by :meth:`save` (or any ``.npz`` with ``U``, ``V``).

        Parameters
        ----------
        path : str or path-like
            An ``.npz`` archive with arrays ``U`` and ``V`` (and optionally the
            activation's name; ReLU when absent).

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
            return cls(f["U"], f["V"], activation=act)

    def __repr__(self) -> str:
        return (
            f"TwoLayerNetwork(d={self.n_inputs}, k={self.n_hidden}, "
            f"m={self.n_outputs}, activation={self.activation.name!r})"
        )


class DeepNetwork:
    """The network ``F(x) = W_{L+1} relu(W_L ... relu(W_1 x))``, no biases.

    Parameters
    ----------
    weights : sequence of array-like
        ``W_1`` of shape ``(k_1, d)``, then ``W_l`` of shape ``(k_l, k_{l-1})``;
        the last is the output layer (``(m, k_L)``, ``m = 1`` for a scalar output).

    Examples
    --------
    >>> net = DeepNetwork.random(10, [4, 4], rng=0)
    >>> net
    DeepNetwork(d=10, widths=[4, 4], m=1)
    >>> net.predict(gaussian_inputs(3, 10, rng=1)).shape
    (3, 1)
    """

    def __init__(self, weights: Sequence):
        weights = [as_2d_float(W, f"weights[{i}]") for i, W in enumerate(weights)]
        if len(weights) < 1:
            raise ValueError("`weights` must hold at least one matrix.")
        for i in range(1, len(weights)):
            if weights[i].shape[1] != weights[i - 1].shape[0]:
                raise ValueError(
                    f"weights[{i}] has {weights[i].shape[1]} columns but weights[{i-1}] "
                    f"has {weights[i-1].shape[0]} rows; consecutive layers must chain."
                )
        self.weights = weights

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
        for W in self.weights[:-1]:
            H = np.maximum(H @ W.T, 0.0)
        return H @ self.weights[-1].T

    __call__ = predict

    def save(self, path) -> None:
        """Write the layers to an ``.npz`` file (``W0``, ``W1``, ...).

        Parameters
        ----------
        path : str or path-like
            Destination (``np.savez`` appends ``.npz`` when it is missing).
        """
        np.savez(path, kind=np.array("deep"),
                 **{f"W{i}": W for i, W in enumerate(self.weights)})

    @classmethod
    def load(cls, path):
        """Read a network written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            An ``.npz`` archive with arrays ``W0``, ``W1``, ... (first layer first).

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
            return cls([f[k] for k in keys])

    def __repr__(self) -> str:
        return (
            f"DeepNetwork(d={self.n_inputs}, widths={self.widths}, m={self.n_outputs})"
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


__all__.append("load_network")
