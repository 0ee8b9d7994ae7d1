"""Streaming Hermite-moment estimators (docs/algorithms.md section 1, steps 1-3).

Every estimator reads the data in row chunks, so ``X`` may be a ``numpy.memmap``
larger than memory; each chunk is converted to float64 on the fly.

For ``x ~ N(0, I_d)`` and a two-layer ReLU network ``y = U relu(V x)``:

- first moment: ``E[y x^T] = U V / 2`` (its row space is ``span(V)``);
- second moment: ``E[y (x) (x x^T - I)] = sum_i w_i (x) vhat_i (x) vhat_i`` with
  ``w_i = ||v_i|| U[:, i] / sqrt(2 pi)``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DEFAULT_CHUNK",
    "iter_chunks",
    "first_moment",
    "contracted_second_moments",
    "second_moment_weights",
]

#: rows per chunk: 2**14 rows of 1000 float64 features is 128 MiB.
DEFAULT_CHUNK = 16384


def iter_chunks(n: int, chunk_size: int = DEFAULT_CHUNK):
    """Yield ``slice`` objects that cover ``range(n)`` in blocks of ``chunk_size`` rows."""
    for start in range(0, n, chunk_size):
        yield slice(start, min(start + chunk_size, n))


def _rows(A, sl):
    return np.asarray(A[sl], dtype=np.float64)


def first_moment(X, Y, *, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """Empirical ``E[y x^T] = Y^T X / n``, shape ``(m, d)`` (step 1: the subspace).

    Examples
    --------
    >>> from relurecover import TwoLayerNetwork, gaussian_inputs
    >>> net = TwoLayerNetwork.random(4, 2, 3, rng=0)
    >>> X = gaussian_inputs(400_000, 4, rng=1)
    >>> M1 = first_moment(X, net.predict(X))
    >>> bool(np.abs(M1 - net.U @ net.V / 2).max() < 0.05)
    True
    """
    n, d = X.shape
    M = np.zeros((Y.shape[1], d))
    for sl in iter_chunks(n, chunk_size):
        M += _rows(Y, sl).T @ _rows(X, sl)
    return M / n


def contracted_second_moments(Z, Y, A, *, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """Contractions of the second-moment tensor along its output mode (step 2).

    Returns ``T[c] = E[(y . A[:, c]) (z z^T - I)]``, shape ``(n_contractions, p, p)``,
    for projected inputs ``Z`` of shape ``(n, p)`` (``z = Q^T x``, still standard
    Gaussian when ``Q`` is orthonormal) and ``A`` of shape ``(m, n_contractions)``.
    Contracting first costs ``n p^2`` per contraction instead of ``n m p^2`` for
    the whole tensor.
    """
    n, p = Z.shape
    c = A.shape[1]
    T = np.zeros((c, p, p))
    s = np.zeros(c)
    for sl in iter_chunks(n, chunk_size):
        Zc = _rows(Z, sl)
        W = _rows(Y, sl) @ A  # (rows, c)
        s += W.sum(axis=0)
        for j in range(c):
            T[j] += (Zc * W[:, j : j + 1]).T @ Zc
    T -= s[:, None, None] * np.eye(p)[None]
    return T / n


def second_moment_weights(Z, Y, P, *, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """The output-mode factors ``w_i`` of the second moment, given the directions ``P``.

    With ``T = sum_i w_i (x) p_i (x) p_i`` and ``R = P^{-1}`` (rows ``r_i``,
    ``r_i . p_j = delta_ij``), ``w_i = E[y ((r_i . z)^2 - ||r_i||^2)]``: one pass
    costing ``n p^2 + n m p`` instead of the whole ``m x p x p`` tensor (step 3).

    Returns an array of shape ``(m, p)``; column ``i`` is ``w_i``.
    """
    n, p = Z.shape
    R = np.linalg.pinv(P)  # (p, p), rows are the dual basis
    rn = (R * R).sum(axis=1)
    W = np.zeros((Y.shape[1], P.shape[1]))
    for sl in iter_chunks(n, chunk_size):
        Zr = _rows(Z, sl) @ R.T
        W += _rows(Y, sl).T @ (Zr * Zr - rn)
    return W / n
