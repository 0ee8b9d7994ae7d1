"""The output layer and the certificate, shared by every two-layer path (docs/algorithms.md 1.6).

Given the hidden units ``V``, the labels are linear in ``U``:
``Y = f(X V^T) U^T``. :func:`fit_output_layer` reads ``X`` once, fits ``U`` by least
squares and measures the certificate, the relative residual on all the data
(:func:`relurecover._linalg.relative_residual`: no row can dominate it, and it
neither underflows nor overflows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .._linalg import matrix_rank, relative_residual
from ..moments import iter_chunks

__all__ = ["OutputFit", "fit_output_layer"]

#: rows of the hidden layer on which its rank is counted (enough to see k
#: independent columns of a generic design many times over).
RANK_ROWS_BASE = 1000


@dataclass(frozen=True, kw_only=True)
class OutputFit:
    """``U`` fitted on ``H = f(X V^T)``, the certificate and the hidden layer.

    Attributes
    ----------
    U : ndarray of shape (m, k)
        Least-squares output weights.
    certificate : float
        Relative residual of ``H U^T`` against ``Y`` (inf if not finite).
    rank_hidden : int
        Numerical rank of ``H``; ``exact`` needs it to be ``k``.
    hidden : ndarray of shape (n, k)
        The hidden layer ``f(X V^T)``.
    """

    U: np.ndarray
    certificate: float
    rank_hidden: int
    hidden: np.ndarray


def fit_output_layer(X, Y, V, activation, *, chunk_size: int = 16384) -> OutputFit:
    """``U`` by least squares on ``H = f(X V^T)`` and the certificate (docs/algorithms.md 1.6).

    Parameters
    ----------
    X : array-like of shape (n, d)
        Inputs (read once, in chunks).
    Y : ndarray of shape (n, m)
        Labels.
    V : ndarray of shape (k, d)
        Hidden units.
    activation : Activation
        The rectified activation ``f``.
    chunk_size : int, default=16384
        Rows per chunk.

    Returns
    -------
    OutputFit
        ``U``, the certificate, the rank of ``H`` and ``H`` itself.
    """
    n = X.shape[0]
    k = V.shape[0]
    H = np.empty((n, k))
    with np.errstate(over="ignore", invalid="ignore"):
        for sl in iter_chunks(n, chunk_size):
            H[sl] = activation(np.asarray(X[sl], dtype=float) @ V.T)
    if not np.isfinite(H).all():
        return OutputFit(U=np.zeros((Y.shape[1], k)), certificate=np.inf, rank_hidden=0,
                         hidden=H)
    rank_H = matrix_rank(H[: min(n, 20 * k + RANK_ROWS_BASE)])
    # normal equations + one refinement step: float64 accuracy for the well
    # conditioned H of a Gaussian design, 5x cheaper than an SVD least squares
    try:
        c = scipy.linalg.cho_factor(H.T @ H, check_finite=False)
        Ut = scipy.linalg.cho_solve(c, H.T @ Y, check_finite=False)
        Ut += scipy.linalg.cho_solve(c, H.T @ (Y - H @ Ut), check_finite=False)
        if not np.isfinite(Ut).all():
            raise np.linalg.LinAlgError("normal equations not finite")
    except (np.linalg.LinAlgError, ValueError):
        Ut = np.linalg.lstsq(H, Y, rcond=None)[0]
    cert = relative_residual(Y, H @ Ut)
    return OutputFit(U=Ut.T, certificate=cert, rank_hidden=int(rank_H), hidden=H)
