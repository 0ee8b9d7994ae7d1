"""The boundary of deep/: samples checked, and rescaled by exact powers of two.

The moments of filtered PCA square the inputs (``x x^T``) and the labels (``||y||``),
so data of scale ``1e200`` overflow and data of scale ``1e-300`` underflow. Both
are rescaled on the way in by a power of two (``np.ldexp``: no bit is lost), and the
results are mapped back on the way out: subspaces are scale-free, and a ReLU network
without biases is positively homogeneous, so ``W_1 / s_x`` and ``s_y W_{L+1}`` give
the same function of the original data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats

from .._validation import as_2d_float
from ..moments import DEFAULT_CHUNK, iter_chunks

__all__ = ["OutlierRows", "check_samples", "outlier_rows", "rms_exponent",
           "set_aside_outliers", "standardize_inputs", "scale_exponent"]

#: the mean square of the inputs counts as 1 (the model, ``x ~ N(0, I)``) when it is
#: within this many standard errors of 1 (``sqrt(2 / (n d))`` for Gaussian entries);
#: further away, the inputs are divided by their root mean square first.
SCALE_Z = 6.0
#: a row is an outlier when its squared norm, in units of the sample's scale (the
#: median squared norm over the median of chi-square(d)), is above the chi-square(d)
#: quantile of upper tail ``OUTLIER_P / n``: a sample of ``N(0, s^2 I)`` of any size
#: has one with probability about OUTLIER_P.
OUTLIER_P = 1e-6
#: outliers are set aside only when they are at most this fraction of the rows; more
#: are not a few bad rows but inputs that are not Gaussian (kept, and said).
OUTLIER_MAX_FRACTION = 0.01


def check_samples(X, y, *, zero_y: str):
    """``X`` (n, d) and ``y`` (n, m) as finite float64 arrays, or a ValueError.

    Rejects empty shapes, mismatched rows, all-zero ``X`` or ``y`` and a constant
    ``y``; ``zero_y`` says why such a ``y`` is refused.
    """
    X = as_2d_float(X, "X")
    Y = as_2d_float(y, "y", allow_1d_column=True)
    n, d = X.shape
    if d == 0:
        raise ValueError(f"`X` has no columns (shape {X.shape}): pass inputs of shape "
                         "(n_samples, d) with d >= 1.")
    if n == 0:
        raise ValueError(f"`X` has no rows (shape {X.shape}): pass at least one sample.")
    if Y.shape[1] == 0:
        raise ValueError(f"`y` has no columns (shape {Y.shape}): pass labels of shape "
                         "(n_samples,) or (n_samples, m) with m >= 1.")
    if Y.shape[0] != n:
        raise ValueError(
            f"`X` and `y` must have the same number of rows (samples); got {n} and "
            f"{Y.shape[0]}."
        )
    if not np.any(X):
        raise ValueError("`X` is identically zero: pass standard Gaussian inputs "
                         "x ~ N(0, I), one sample a row.")
    if not np.any(Y):
        raise ValueError(f"`y` is identically zero: {zero_y}")
    # (with n <= d the sample is too small anyway, and that is the error to say)
    if n > d and np.array_equal(Y, np.broadcast_to(Y[0], Y.shape)):
        raise ValueError(f"`y` is constant (every row is "
                         f"{np.array2string(Y[0], precision=6)}): {zero_y}")
    return X, Y


#: binary exponents of the largest entry between which squares and their sums are
#: computed as they are (no overflow; what underflows is below 2**-1000 of the sum).
SAFE_EXPONENTS = (-400, 400)


def _abs_max(A) -> float:
    """``max |A|`` without a temporary array of ``|A|``."""
    A = np.asarray(A, dtype=np.float64)
    return float(max(A.max(initial=0.0), -A.min(initial=0.0))) if A.size else 0.0


def _sum_squares(A) -> float:
    """``sum A**2`` without a temporary array of squares."""
    A = np.asarray(A, dtype=np.float64).reshape(A.shape[0], -1)
    return float(np.einsum("ij,ij->", A, A))


def rms_exponent(A, chunk_size: int = DEFAULT_CHUNK):
    """``A``'s root mean square as ``c * 2**e`` with ``c`` in ``[2**-0.5, 2**0.5]``.

    Two chunked passes (the largest entry, then the mean square in units of it),
    so neither step overflows nor underflows. ``A`` must not be all zero.

    Returns
    -------
    e : int
        ``round(log2(rms))``; ``A * 2**-e`` has root mean square ``c``.
    c : float
    """
    n = A.shape[0]
    top = max(_abs_max(A[sl]) for sl in iter_chunks(n, chunk_size))
    e0 = int(np.frexp(top)[1])
    if SAFE_EXPONENTS[0] < e0 < SAFE_EXPONENTS[1]:
        # squares neither overflow nor lose the sum to underflow: no scaled copy
        ss = sum(_sum_squares(A[sl]) for sl in iter_chunks(n, chunk_size)) * 4.0**-e0
    else:
        ss = sum(_sum_squares(np.ldexp(np.asarray(A[sl], dtype=np.float64), -e0))
                 for sl in iter_chunks(n, chunk_size))
    r = np.sqrt(ss / A.size)  # in (0, 1]: the largest entry alone gives >= 0.5 / sqrt(size)
    e = e0 + int(np.round(np.log2(r)))
    return e, float(np.ldexp(r, e0 - e))


def scale_exponent(A, chunk_size: int = DEFAULT_CHUNK) -> int:
    """The power of two ``e`` that brings ``A``'s root mean square into ``[0.7, 1.4]``."""
    return rms_exponent(A, chunk_size)[0]


def standardize_inputs(X, chunk_size: int = DEFAULT_CHUNK):
    """``X`` in units where its mean square is 1, and the factor that was applied.

    Filtered PCA compares ``E[1{filter} x x^T] - I`` with a noise floor, so the
    inputs must have unit variance. A power of two is always lossless; when the
    root mean square, after it, still differs from 1 by more than ``SCALE_Z``
    standard errors (the data are ``N(0, s^2 I)`` with ``s`` not a power of two),
    ``X`` is also divided by it. Standard inputs are returned as they are (no copy).

    Returns
    -------
    X : ndarray
        The rescaled inputs (``X`` itself when no rescaling is needed).
    factor : float
        What ``X`` was divided by: its root mean square, rounded to the nearest
        power of two when that counts as exact (1.0 for standard inputs).
    """
    e, c = rms_exponent(X, chunk_size)
    if abs(c * c - 1.0) <= SCALE_Z * np.sqrt(2.0 / X.size):
        return (X if e == 0 else np.ldexp(X, -e)), float(np.ldexp(1.0, e))
    return np.ldexp(X, -e) / c, float(np.ldexp(c, e))


def outlier_rows(X, chunk_size: int = DEFAULT_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """Rows far outside the range of a Gaussian sample (see :data:`OUTLIER_P`).

    Norms are measured as ``max_j |x_ij|`` times the norm of the row in units of it,
    in logarithms, so rows at any scale (1e-300 to 1e300) neither overflow nor
    underflow, and the scale is the median (one huge row cannot move it).

    Parameters
    ----------
    X : ndarray of shape (n, d)
        The inputs.
    chunk_size : int, default=DEFAULT_CHUNK
        Rows read at a time.

    Returns
    -------
    rows : ndarray of int
        Indices of the outlier rows, increasing.
    log_ratio : ndarray of shape (len(rows),)
        ``log10`` of each one's norm over the median row norm.
    """
    n, d = X.shape
    log_sq = np.empty(n)
    for sl in iter_chunks(n, chunk_size):
        A = np.asarray(X[sl], dtype=np.float64)
        top = np.maximum(A.max(axis=1), -A.min(axis=1))
        with np.errstate(divide="ignore"):
            if top.min() > 2.0**SAFE_EXPONENTS[0] and top.max() < 2.0**SAFE_EXPONENTS[1]:
                # every row's squares are safe as they are: no scaled copy
                log_sq[sl] = np.log(np.einsum("ij,ij->i", A, A))
                continue
            safe = np.where(top > 0, top, 1.0)
            B = A / safe[:, None]
            log_sq[sl] = np.where(top > 0, 2.0 * np.log(safe)
                                  + np.log(np.einsum("ij,ij->i", B, B)), -np.inf)
    med = float(np.median(log_sq))
    if not np.isfinite(med):  # most rows zero: no scale to measure against
        return np.zeros(0, dtype=int), np.zeros(0)
    limit = float(np.log(scipy.stats.chi2.isf(OUTLIER_P / n, d) / scipy.stats.chi2.median(d)))
    rows = np.flatnonzero(log_sq - med > limit)
    return rows, (log_sq[rows] - med) / (2.0 * np.log(10.0))


@dataclass(frozen=True)
class OutlierRows:
    """Rows set aside by :func:`set_aside_outliers` (docs/algorithms.md 5.1).

    Attributes
    ----------
    rows : ndarray of int
        Their indices in the data as given.
    X, Y : ndarray
        Their inputs and labels.
    log10_norm_ratio : float
        ``log10`` of the largest one's norm over the median row norm.
    """

    rows: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    log10_norm_ratio: float


def set_aside_outliers(X, Y, chunk_size: int = DEFAULT_CHUNK):
    """``X`` and ``Y`` without their outlier rows (:func:`outlier_rows`), when few.

    The deep path's moments and fits assume ``x ~ N(0, I)``: one row of norm 1e4
    times the others' made filtered PCA find all ``d`` directions. A few such rows
    (at most :data:`OUTLIER_MAX_FRACTION`) are set aside and returned, so that the
    caller can measure the result on them; more are kept and a note says the
    inputs do not look Gaussian. Data without outliers are returned as they are.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    Y : ndarray of shape (n, m)
    chunk_size : int, default=DEFAULT_CHUNK

    Returns
    -------
    X, Y : ndarray
        The rows kept (the arrays themselves when nothing is set aside).
    outliers : OutlierRows or None
        The rows set aside.
    note : str
        "" or a sentence for the caller's message.
    """
    rows, ratio = outlier_rows(X, chunk_size)
    if rows.size == 0:
        return X, Y, None, ""
    n = X.shape[0]
    top = float(ratio.max())
    if rows.size > OUTLIER_MAX_FRACTION * n:
        return X, Y, None, (
            f"{rows.size} of {n} rows lie far outside the range of a Gaussian sample "
            f"(norms up to 10^{top:.1f} times the median): the inputs do not look like "
            "x ~ N(0, s^2 I), which this method assumes")
    keep = np.ones(n, dtype=bool)
    keep[rows] = False
    out = OutlierRows(rows=rows, X=X[rows], Y=Y[rows], log10_norm_ratio=top)
    note = (f"{rows.size} outlier row{'s' if rows.size > 1 else ''} (norm up to 10^{top:.1f} "
            f"times the median; rows {', '.join(map(str, rows[:5]))}"
            f"{', ...' if rows.size > 5 else ''}) set aside: not a draw of a Gaussian")
    return X[keep], Y[keep], out, note
