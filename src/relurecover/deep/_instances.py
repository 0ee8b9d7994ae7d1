"""Planted deep instances used by the tests, the benchmark and the demo."""

from __future__ import annotations

import numpy as np

from .._validation import check_positive_int, check_random_state
from ..networks import DeepNetwork

__all__ = ["alternating_network"]


def alternating_network(d: int, n_directions: int = 4, *, rng=None) -> DeepNetwork:
    """``F(x) = sum_{j<q} (-1)^j |<u cos(j pi/q) + v sin(j pi/q), x>|``, ``q = n_directions``.

    ``u, v`` are a random orthonormal pair in ``R^d``. With ``|t| = relu(t) + relu(-t)``
    it is a two-layer ReLU network with ``2 q`` units, returned as a
    :class:`DeepNetwork` (``W_1`` of shape ``(2q, d)``, output ``(1, 2q)``). For even
    ``q`` its plain second moment ``E[y (x x^T - I)]`` vanishes (docs/algorithms.md 5.1),
    so plain PCA is blind while filtered PCA finds the plane ``span(u, v)``.

    Parameters
    ----------
    d : int
        Input dimension (at least 2).
    n_directions : int, default=4
        ``q``, the directions of the plane (``2 q`` hidden units). Even ``q`` makes
        the plain second moment vanish.
    rng : None, int or numpy.random.Generator, default=None
        Seeds the plane ``span(u, v)``.

    Returns
    -------
    DeepNetwork
        One hidden layer: ``W_1`` of shape ``(2 q, d)`` (rows ``+-a_j``), output
        weights ``(-1)^j`` of shape ``(1, 2 q)``.

    Examples
    --------
    >>> net = alternating_network(10, rng=0)
    >>> net
    DeepNetwork(d=10, widths=[8], m=1)
    """
    d = check_positive_int(d, "d")
    q = check_positive_int(n_directions, "n_directions")
    if d < 2:
        raise ValueError(f"`d` must be at least 2 (the plane needs two directions), got {d}.")
    rng = check_random_state(rng)
    uv = np.linalg.qr(rng.standard_normal((d, 2)))[0]
    t = np.pi * np.arange(q) / q
    A = np.cos(t)[:, None] * uv[:, 0] + np.sin(t)[:, None] * uv[:, 1]  # (q, d)
    W1 = np.empty((2 * q, d))
    W1[0::2], W1[1::2] = A, -A
    signs = (-1.0) ** np.arange(q)
    W2 = np.repeat(signs, 2)[None, :]
    return DeepNetwork([W1, W2])
