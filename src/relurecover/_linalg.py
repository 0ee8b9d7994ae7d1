"""Linear-algebra helpers shared by every path: ranks, spans, whitening, scaling.

One home for each of these decisions, so that every path makes them the same way
(docs/algorithms.md 0, "Numerics"):

- numerical ranks are counted on **row-equilibrated** matrices: a rank does not
  change when a row is multiplied by a positive number, so rows far larger than a
  typical row are scaled down to :data:`ROW_CAP` times the median row norm before
  the singular values are counted; one huge row then cannot hide the rest;
- relative residuals (the certificates) are measured the same way, and with norms
  that neither underflow nor overflow (:func:`safe_norm`);
- data far from unit scale is rescaled by exact powers of two
  (:func:`power_of_two_scale`), which changes no digit of the result.

Everything here trusts its input: validation happens in the public functions.
"""

from __future__ import annotations

import contextlib

import numpy as np

__all__ = [
    "RANK_RTOL",
    "ROW_CAP",
    "SPAN_RTOL",
    "affine_column_space",
    "affine_rank",
    "blas_threads",
    "column_space",
    "inverse_sqrt",
    "matrix_rank",
    "numerical_rank",
    "power_of_two_scale",
    "relative_residual",
    "streamed_relative_residual",
    "caps_from_norms",
    "row_caps",
    "row_norms",
    "row_span",
    "safe_norm",
    "scale_and_row_norms",
]

#: relative singular-value threshold of every numerical rank (of ``Y``, of ``X``,
#: of the hidden layer): float64 rounding of exact data leaves singular values
#: near ``1e-15`` of the largest, noise of relative size ``1e-9`` lifts them above.
RANK_RTOL = 1e-9
#: relative threshold for the span of the inputs: raw features can be badly
#: scaled (breast-cancer features have cond(X) near 1e7), so directions are
#: dropped only below this; exact zeros (digits' constant pixels) fall far below.
SPAN_RTOL = 1e-10
#: no row counts more than this many median row norms in a rank or a residual:
#: Gaussian rows never come near it (the largest of 1e6 rows of N(0, I_d) has
#: at most about 8 times the median norm, at d = 1), an outlier row does.
ROW_CAP = 16.0
#: data whose largest entry lies within ``2**+-SCALE_EXPONENT_MAX`` is used as it
#: is; outside, it is rescaled by a power of two (lossless).
SCALE_EXPONENT_MAX = 16


def safe_norm(A) -> float:
    """Frobenius norm of ``A`` without underflow or overflow of the squares.

    Parameters
    ----------
    A : array-like
        Any real array.

    Returns
    -------
    float
        ``||A||_F``; ``inf`` when ``A`` holds an infinite or NaN entry.
    """
    A = np.asarray(A, dtype=np.float64)
    if A.size == 0:
        return 0.0
    s = float(np.abs(A).max())
    if not np.isfinite(s):
        return np.inf
    if s == 0.0:
        return 0.0
    return s * float(np.sqrt(np.sum(np.square(A / s))))


def row_norms(A, *, exponent: int = 0, chunk_size: int = 16384) -> np.ndarray:
    """Euclidean norms of the rows of ``A * 2**-exponent``, read in chunks.

    Parameters
    ----------
    A : array-like of shape (n, p)
        Rows (a memory map is read chunk by chunk; no full-size temporary).
    exponent : int, default=0
        The rows are scaled by ``2**-exponent`` first (exact), so that entries far
        from unit scale do not overflow when squared.
    chunk_size : int, default=16384
        Rows per chunk.

    Returns
    -------
    ndarray of shape (n,)
        The norms (of the scaled rows).
    """
    from .moments import iter_chunks

    out = np.empty(A.shape[0])
    for sl in iter_chunks(A.shape[0], chunk_size):
        C = np.asarray(A[sl], dtype=np.float64)
        if exponent:
            C = np.ldexp(C, -exponent)
        out[sl] = np.sqrt(np.einsum("ij,ij->i", C, C))
    return out


def binary_exponent(x: float) -> int:
    """``e`` with ``x = f 2**e``, ``0.5 <= |f| < 1`` (``numpy.frexp``); 0 for a zero or
    non-finite ``x``.

    Parameters
    ----------
    x : float
        A magnitude, e.g. the largest entry of an array.

    Returns
    -------
    int
    """
    return int(np.frexp(x)[1]) if x != 0 and np.isfinite(x) else 0


def scale_and_row_norms(A, *, chunk_size: int = 16384, any_scale: bool = False):
    """:func:`power_of_two_scale` and :func:`row_norms` of the rescaled rows, in
    one read of ``A`` when no rescaling is needed (the common case).

    Parameters
    ----------
    A : array-like of shape (n, p)
        Rows.
    chunk_size : int, default=16384
        Rows per chunk.
    any_scale : bool, default=False
        Rescale whenever the squares could underflow or overflow (largest entry
        outside ``2**+-SCALE_EXPONENT_MAX``, as with False) and report the
        exponent of the largest entry either way.

    Returns
    -------
    exponent : int
        As :func:`power_of_two_scale` (with ``any_scale``, the largest entry's).
    norms : ndarray of shape (n,)
        Norms of the rows of ``A * 2**-exponent``.
    """
    from .moments import iter_chunks

    measured = getattr(A, "row_norms", None)
    if callable(measured) and A._norms is not None:  # the validating pass measured them
        top = A.max_abs
        e = binary_exponent(top)
        if abs(e) <= SCALE_EXPONENT_MAX and not any_scale:
            e = 0
        return e, A.row_norms(e)
    top = 0.0
    norms = np.empty(A.shape[0])
    for sl in iter_chunks(A.shape[0], chunk_size):
        C = np.asarray(A[sl], dtype=np.float64)
        top = max(top, float(C.max()), -float(C.min()))
        with np.errstate(over="ignore"):
            norms[sl] = np.sqrt(np.einsum("ij,ij->i", C, C))
    e = binary_exponent(top)
    if abs(e) <= SCALE_EXPONENT_MAX:
        return (e if any_scale else 0), (np.ldexp(norms, -e) if any_scale else norms)
    return e, row_norms(A, exponent=e, chunk_size=chunk_size)


def caps_from_norms(norms: np.ndarray, cap: float = ROW_CAP) -> np.ndarray:
    """Weights ``w_j = min(1, cap * median / norms_j)``, the median over non-zero rows.

    Parameters
    ----------
    norms : ndarray of shape (n,)
        Row norms.
    cap : float, default=ROW_CAP
        How many median row norms a row may have before it is scaled down.

    Returns
    -------
    ndarray of shape (n,)
        Weights in ``(0, 1]``; 1 for rows at most ``cap`` medians long and zero rows.
    """
    w = np.ones(norms.shape[0])
    nz = norms > 0
    if not nz.any():
        return w
    limit = cap * float(np.median(norms[nz]))
    big = norms > limit
    w[big] = limit / norms[big]
    return w


def row_caps(A: np.ndarray, cap: float = ROW_CAP) -> np.ndarray:
    """Weights ``w_j = min(1, cap * median / ||a_j||)`` that cap large rows.

    The median is over the non-zero rows. Rows at most ``cap`` median norms long
    keep weight 1; longer rows are scaled down to ``cap`` median norms. Zero rows
    keep weight 1. Entries at any scale are safe (each row is measured in units
    of the largest entry of ``A``).

    Parameters
    ----------
    A : ndarray of shape (n, p)
        Rows to weigh.
    cap : float, default=ROW_CAP
        How many median row norms a row may have before it is scaled down.

    Returns
    -------
    ndarray of shape (n,)
        Weights in ``(0, 1]``.
    """
    if A.shape[0] == 0 or A.shape[1] == 0:
        return np.ones(A.shape[0])
    return caps_from_norms(_scaled_row_norms(A), cap)


def _scaled_row_norms(A, chunk_size: int = 16384) -> np.ndarray:
    """Row norms of ``A`` in units of its largest entry, read in chunks (one
    pass when no entry is far from unit scale, two otherwise)."""
    e, norms = scale_and_row_norms(A, chunk_size=chunk_size, any_scale=True)
    return norms


def numerical_rank(s: np.ndarray, rtol: float = RANK_RTOL) -> int:
    """Number of singular values above ``rtol`` times the largest.

    Parameters
    ----------
    s : ndarray of shape (p,)
        Singular values, largest first.
    rtol : float, default=RANK_RTOL
        Relative threshold.

    Returns
    -------
    int
        ``#{s_i > rtol * s_0}`` (0 for an empty or zero spectrum).
    """
    if s.size == 0 or not s[0] > 0:
        return 0
    return int(np.count_nonzero(s > rtol * s[0]))


def matrix_rank(A: np.ndarray, rtol: float = RANK_RTOL) -> int:
    """Numerical rank of ``A``, counted on its row-equilibrated form.

    ``diag(w) A`` with the caps ``w`` of :func:`row_caps` has the rank of ``A``
    (``w > 0``), and one huge row cannot push the other singular values under
    the threshold.

    Parameters
    ----------
    A : ndarray of shape (n, p)
        Any matrix.
    rtol : float, default=RANK_RTOL
        Relative singular-value threshold.

    Returns
    -------
    int
        The numerical rank.
    """
    if A.size == 0:
        return 0
    s = np.linalg.svd(A * row_caps(A)[:, None], compute_uv=False)
    return numerical_rank(s, rtol)


def column_space(Y: np.ndarray, rtol: float = RANK_RTOL):
    """Orthonormal basis of the column space of ``Y`` and its numerical rank.

    The rank is counted on ``diag(w) Y`` with the row caps ``w`` of
    :func:`row_caps` (the rank of ``Y`` itself, since ``w > 0``), so one huge row
    cannot push the other singular values under the threshold; the basis is that
    of ``Y`` (the rounding step needs vectors of its column space, docs/algorithms.md 1.4).

    Parameters
    ----------
    Y : ndarray of shape (n, m)
        Labels (or any matrix).
    rtol : float, default=RANK_RTOL
        Relative singular-value threshold.

    Returns
    -------
    B : ndarray of shape (n, min(n, m))
        Left singular vectors of ``Y``, the first ``rank`` of them a basis.
    s : ndarray of shape (min(n, m),)
        Singular values of the row-equilibrated ``Y`` (what the rank counts).
    rank : int
        The numerical rank.
    """
    w = row_caps(Y)
    if np.all(w == 1.0):
        B, s, _ = np.linalg.svd(Y, full_matrices=False)
        return B, s, numerical_rank(s, rtol)
    s = np.linalg.svd(Y * w[:, None], compute_uv=False)
    B = np.linalg.svd(Y, full_matrices=False)[0]
    return B, s, numerical_rank(s, rtol)


def _without_offset(Y: np.ndarray, offset: np.ndarray | None):
    """``Y`` less its projection on ``offset`` (ones by default), and the unit offset."""
    n = Y.shape[0]
    o = np.ones(n) if offset is None else np.asarray(offset, dtype=float)
    o = o / safe_norm(o)
    Yc = Y - np.outer(o, o @ Y)
    Yc -= np.outer(o, o @ Yc)  # twice is enough (Kahan)
    return Yc, o


def affine_rank(Y: np.ndarray, offset: np.ndarray | None = None,
                rtol: float = RANK_RTOL) -> int:
    """The rank :func:`affine_column_space` counts, without its basis.

    Parameters
    ----------
    Y : ndarray of shape (n, m)
        Labels.
    offset : ndarray of shape (n,), default=None
        The vector an output bias multiplies (None: ones).
    rtol : float, default=RANK_RTOL
        Relative singular-value threshold.

    Returns
    -------
    int
        The numerical rank of ``Y`` modulo ``offset``: the same singular values
        (:func:`matrix_rank` of ``Y`` less its projection on ``offset``), at a
        fraction of the cost (no left singular vectors).
    """
    return matrix_rank(_without_offset(Y, offset)[0], rtol)


def affine_column_space(Y: np.ndarray, offset: np.ndarray | None = None,
                        rtol: float = RANK_RTOL):
    """Basis of ``span{columns of Y, offset}`` and the rank of ``Y`` modulo ``offset``.

    Labels of a network with an output bias, ``Y = H U^T + 1 c^T``, span
    ``colspan(H)`` plus the constant vector (docs/algorithms.md 6). ``Y`` loses its
    projection on ``offset`` (the constant vector by default), the rank of what
    is left is counted by :func:`column_space`, and the normalised ``offset`` is
    put first: ``span{Y, offset} = span{offset} + colspan(Y - offset (...))``
    exactly, and the spectrum returned is that of ``Y`` without its constant
    part, so a noise floor shows in it as without biases.

    Parameters
    ----------
    Y : ndarray of shape (n, m)
        Labels.
    offset : ndarray of shape (n,), default=None
        The vector an output bias multiplies (None: ones).
    rtol : float, default=RANK_RTOL
        Relative singular-value threshold.

    Returns
    -------
    B : ndarray of shape (n, 1 + min(n, m))
        ``offset / ||offset||`` then the left singular vectors of the rest; the first
        ``rank + 1`` columns are a basis of ``span{Y, offset}``.
    s : ndarray of shape (min(n, m),)
        Singular values of the rest (row-equilibrated, as in :func:`column_space`).
    rank : int
        Numerical rank of ``Y`` modulo ``offset`` (the number of hidden units a
        network with an output bias needs).
    """
    Yc, o = _without_offset(Y, offset)
    B, s, rank = column_space(Yc, rtol)
    return np.hstack([o[:, None], B]), s, rank


def row_span(X, *, chunk_size: int = 16384, rtol: float = SPAN_RTOL):
    """Orthonormal basis of the row span of ``X`` from a streaming QR.

    The ``R`` factors of the row chunks are stacked and factored again, so ``X`` is
    read once; rows are capped first (:func:`row_caps`, each chunk against its own
    median), which leaves the span unchanged and keeps one huge row
    from hiding the others.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Inputs.
    chunk_size : int, default=16384
        Rows per chunk.
    rtol : float, default=SPAN_RTOL
        Relative singular-value threshold for the rank.

    Returns
    -------
    Q : ndarray of shape (d, r)
        Orthonormal basis of the span (right singular vectors).
    s : ndarray of shape (min(n, d),)
        Singular values of the row-equilibrated ``X``.
    r : int
        The numerical rank.
    """
    from .moments import iter_chunks

    n, d = X.shape
    Rs = []
    for sl in iter_chunks(n, chunk_size):
        C = np.asarray(X[sl], dtype=np.float64)
        Rs.append(np.linalg.qr(C * row_caps(C)[:, None], mode="r"))
        if len(Rs) > 8:
            Rs = [np.linalg.qr(np.vstack(Rs), mode="r")]
    R = np.linalg.qr(np.vstack(Rs), mode="r") if len(Rs) > 1 else Rs[0]
    _, s, Vt = np.linalg.svd(R, full_matrices=False)
    r = numerical_rank(s, rtol)
    return Vt[:r].T, s, r


def inverse_sqrt(M: np.ndarray, *, floor: float = 0.0):
    """``M^{-1/2}`` of a symmetric positive semi-definite matrix, and its spectrum.

    Parameters
    ----------
    M : ndarray of shape (p, p)
        Symmetric positive semi-definite (a second-moment matrix).
    floor : float, default=0.0
        Eigenvalues are raised to at least ``floor`` times the largest before the
        inverse square root (0: no floor; the caller ensures ``M`` is definite).

    Returns
    -------
    A : ndarray of shape (p, p)
        ``E diag(w)^{-1/2} E^T``.
    w : ndarray of shape (p,)
        The eigenvalues of ``M``, ascending (before the floor).
    """
    w, E = np.linalg.eigh(M)
    wf = np.maximum(w, w[-1] * floor) if floor > 0 else w
    return (E / np.sqrt(wf)) @ E.T, w


def power_of_two_scale(A) -> int:
    """The exponent ``e`` such that ``A * 2**-e`` has its largest entry near 1.

    0 when the largest ``|entry|`` of ``A`` lies within ``2**+-SCALE_EXPONENT_MAX``
    (data used as it is); otherwise the power of two of that entry, so that
    rescaling (``np.ldexp(A, -e)``) is exact and squares neither underflow nor
    overflow. Reads ``A`` twice (its maximum and minimum), with no temporary copy.

    Parameters
    ----------
    A : array-like
        The data (finite).

    Returns
    -------
    int
        The exponent.
    """
    top = getattr(A, "max_abs", None)  # a validated ChunkedArray knows it
    if top is None:
        A = np.asarray(A)
        if A.size == 0:
            return 0
        top = max(float(A.max()), -float(A.min()))
    if top == 0.0 or not np.isfinite(top):
        return 0
    e = int(np.frexp(top)[1])
    return e if abs(e) > SCALE_EXPONENT_MAX else 0


class _ResidualKernel:
    """One chunk's sums of squares for :func:`streamed_relative_residual`."""

    def __init__(self, predict, exponent):
        self.predict, self.exponent = predict, exponent

    def __call__(self, Xc, Yc, wc):
        with np.errstate(over="ignore", invalid="ignore"):
            R = np.ldexp(Yc - self.predict(Xc), -self.exponent)
        Ys = np.ldexp(Yc, -self.exponent)
        w = wc.reshape(-1, 1)
        return np.array([np.sum(R * R), np.sum(Ys * Ys), np.sum((R * w) ** 2),
                         np.sum((Ys * w) ** 2)])


def streamed_relative_residual(X, Y, predict, *, exponent: int = 0,
                               chunk_size: int = 16384) -> float:
    """:func:`relative_residual` of ``predict(X)`` against ``Y``, in one chunked
    pass over rows that need not fit in memory (docs/algorithms.md 8).

    Parameters
    ----------
    X : array-like of shape (n, d)
        Inputs (a ChunkedArray is read where it lives).
    Y : array-like of shape (n, m)
        Labels.
    predict : callable
        ``predict(X_block) -> Y_block``.
    exponent : int, default=0
        Residuals and labels are measured in units of ``2**exponent`` (exact),
        chosen so that their squares neither underflow nor overflow.
    chunk_size : int, default=16384
        Rows per chunk.

    Returns
    -------
    float
        The relative residual (the larger of the plain and the row-capped one).
    """
    from .moments import map_reduce

    w = row_caps(Y)
    s = map_reduce(_ResidualKernel(predict, exponent), X, Y, w, chunk_size=chunk_size)
    if s[1] == 0.0:
        return np.inf
    plain = float(np.sqrt(s[0] / s[1]))
    if not np.isfinite(plain):
        return np.inf
    return plain if np.all(w == 1.0) else max(plain, float(np.sqrt(s[2] / s[3])))


def relative_residual(Y: np.ndarray, Yhat: np.ndarray) -> float:
    """The certificate ``||Y - Yhat|| / ||Y||``, in a form no row can dominate.

    The larger of the plain relative residual and the relative residual of the
    rows weighted by the caps of :func:`row_caps` (computed on ``Y``): a wrong
    network that reproduces a few huge rows and nothing else has a small plain
    residual but not a small capped one. Both are computed with
    :func:`safe_norm` (labels at ``1e-160`` or ``1e154`` do not underflow or
    overflow). Used by every path's certificate (docs/algorithms.md 1.6).

    Parameters
    ----------
    Y : ndarray of shape (n, m)
        Labels.
    Yhat : ndarray of shape (n, m)
        A network's outputs on the same rows.

    Returns
    -------
    float
        The relative residual; ``inf`` when ``Y`` is zero or ``Yhat`` is not finite.
    """
    R = Y - Yhat
    ny = safe_norm(Y)
    if ny == 0.0:
        return np.inf
    plain = safe_norm(R) / ny
    if not np.isfinite(plain):
        return np.inf
    w = row_caps(Y)[:, None]
    if np.all(w == 1.0):
        return float(plain)
    return float(max(plain, safe_norm(R * w) / safe_norm(Y * w)))


def blas_threads(n):
    """A context in which BLAS runs on ``n`` threads (``threadpoolctl``; None: as they are).

    One thread for the passes made of many small products: the noisy refinement's
    chunks and ``k d x k d`` Gram matrices (on a busy machine OpenBLAS threads that
    waited for a core made it 10 to 100 times slower), filtered PCA's grouped Grams,
    SYRKs on blocks of a few hundred rows (on two cores a second thread made filtered
    PCA at n = 2e5, d = 200 take 1.9 s instead of 0.9 s: its synchronisation cost more
    than it computed), and the deep path's fits (``learn_deep(n_threads=...)``).
    """
    if n is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(n, user_api="blas")
