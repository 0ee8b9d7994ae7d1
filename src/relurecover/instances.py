"""Planted two-layer instances that stress the methods (ALGORITHMS.md 1.5, 3).

Each function returns a :class:`~relurecover.TwoLayerNetwork` (and, for input
families, the inputs), seeded by ``rng``.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_positive_int, check_random_state
from .networks import TwoLayerNetwork

__all__ = ["safran_shamir"]


def safran_shamir(d: int, k: int, *, rng=None) -> TwoLayerNetwork:
    """Orthonormal ``V`` (k, d), one output, ``U`` all ones: ``y = sum_i relu(v_i . x)``.

    The family of Safran and Shamir (ICML 2018), where gradient descent on the
    square loss has spurious local minima for k >= 6.

    Examples
    --------
    >>> net = safran_shamir(5, 3, rng=0)
    >>> net.U.tolist(), bool(np.allclose(net.V @ net.V.T, np.eye(3)))
    ([[1.0, 1.0, 1.0]], True)
    """
    d = check_positive_int(d, "d")
    k = check_positive_int(k, "k")
    if k > d:
        raise ValueError(f"orthonormal V needs k <= d, got k = {k} > d = {d}.")
    g = check_random_state(rng).standard_normal((d, k))
    V = np.linalg.qr(g)[0].T
    return TwoLayerNetwork(np.ones((1, k)), V)
