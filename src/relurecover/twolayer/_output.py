"""The output layer and the certificate, shared by every two-layer path (docs/algorithms.md 1.6).

Given the hidden units ``(V, b)``, the labels are linear in ``(U, c)``:
``Y = f(X V^T + b) U^T + c`` (docs/algorithms.md 6). :func:`fit_output_layer` reads
``X`` once, fits ``U`` and ``c`` by least squares and measures the certificate, the
relative residual on all the data in the form of
:func:`relurecover._linalg.relative_residual` (no row can dominate it: the rows
capped by :func:`relurecover._linalg.row_caps` are measured too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .._linalg import RANK_RTOL, matrix_rank, row_caps, safe_norm
from ..activations import canonical_units
from ..moments import iter_chunks, map_reduce

__all__ = ["OutputFit", "fit_output_layer", "missing_units_note"]

#: rows of the hidden layer on which its rank is counted (enough to see k
#: independent columns of a generic design many times over).
RANK_ROWS_BASE = 1000
#: a bias at most this fraction of its unit's typical pre-activation (hidden) or
#: of its output's typical (median) size (output) is rounding error: set to 0.
BIAS_SNAP = 1e-12
#: rows on which the pre-activations' scale is measured for that test.
SNAP_ROWS = 2000
#: rows of the hidden layer the notes on units that were not found look at
#: (enough to see any unit active on a fraction 1e-4; read only when a unit is
#: missing).
HIDDEN_ROWS = 200_000


@dataclass(frozen=True, kw_only=True)
class OutputFit:
    """``U`` and ``c`` fitted on ``H = f(X V^T + b)``, the certificate and ``H``.

    Attributes
    ----------
    U : ndarray of shape (m, k)
        Least-squares output weights.
    c : ndarray of shape (m,)
        Least-squares output bias (zero to rounding for bias-free labels).
    V, b : ndarray of shape (k, d) and (k,)
        The hidden units as fitted: those given, in the canonical form of
        :func:`relurecover.activations.canonical_units`.
    certificate : float
        Relative residual of ``H U^T + c`` against ``Y`` (inf if not finite).
    rank_hidden : int
        Numerical rank of ``H`` modulo the constant vector (of ``[H, 1]``, less
        one); ``exact`` needs it to be ``k``.
    hidden : ndarray of shape (min(n, 20 k + RANK_ROWS_BASE), k)
        The hidden layer ``f(X V^T + b)`` on the first rows (the rows its rank is
        counted on; :func:`hidden_rows` computes it on more).
    active_rows : ndarray of int of shape (k,)
        On how many of all ``n`` rows each unit is active (``f > 0``).
    activation : Activation
        The activation ``f``.
    """

    U: np.ndarray
    c: np.ndarray
    V: np.ndarray
    b: np.ndarray
    certificate: float
    rank_hidden: int
    hidden: np.ndarray
    active_rows: np.ndarray
    activation: object = None


class _OutputKernel:
    """One chunk's part of the output-layer pass (picklable, for Dask workers):
    the R factor of ``[H, o, Y]`` (``H = f(X V^T + b w)``, ``o`` the offset
    column), the same for the rows weighted by the caps when given, the rows on
    which each unit is active, and the count of non-finite hidden values."""

    def __init__(self, V, b, activation, has_bias_column, has_offset, has_caps):
        self.V, self.b, self.activation = V, b, activation
        self.flags = (has_bias_column, has_offset, has_caps)

    def hidden(self, Xc, wc=None):
        with np.errstate(over="ignore", invalid="ignore"):
            S = Xc @ self.V.T
            if np.any(self.b):
                S += self.b if wc is None else np.outer(wc, self.b)
            return self.activation(S)

    def __call__(self, Xc, Yc, *extra):
        extra = list(extra)
        has_w, has_o, has_caps = self.flags
        wc = extra.pop(0).ravel() if has_w else None
        oc = extra.pop(0).ravel() if has_o else np.ones(Xc.shape[0])
        caps = extra.pop(0).ravel() if has_caps else None
        H = self.hidden(Xc, wc)
        p = H.shape[1] + 1 + Yc.shape[1]
        bad = int(np.size(H) - np.count_nonzero(np.isfinite(H)))
        active = np.count_nonzero(H > 0, axis=0)
        if bad:
            z = np.zeros((p, p))
            return z, z, active, bad
        A = np.hstack([H, oc[:, None], Yc])
        R = _r_factor(A)
        Rw = _r_factor(A * caps[:, None]) if caps is not None else np.zeros((p, p))
        return R, Rw, active, 0


def _r_factor(A):
    """The ``p x p`` R factor of ``A`` (rows of zeros below when ``A`` has fewer rows)."""
    R = scipy.linalg.qr(A, mode="r", check_finite=False)[0]
    p = A.shape[1]
    if R.shape[0] < p:
        R = np.vstack([R, np.zeros((p - R.shape[0], p))])
    return R[:p]


def _merge(a, b):
    """Combine two chunks' parts: R factors by a QR of the stacked pair (TSQR),
    counts by addition."""
    return (_r_factor(np.vstack([a[0], b[0]])), _r_factor(np.vstack([a[1], b[1]])),
            a[2] + b[2], a[3] + b[3])


def fit_output_layer(X, Y, V, activation, *, b=None, bias_column=None, offset=None,
                     chunk_size: int = 16384) -> OutputFit:
    """``U``, ``c`` by least squares on ``[f(X V^T + b), 1]`` and the certificate
    (docs/algorithms.md 1.6, 6, 8).

    One pass over the rows (:func:`relurecover.moments.map_reduce`: in chunks, or
    as Dask tasks): the R factor of ``[H, 1, Y]`` by a tree of small QR
    factorisations (TSQR, backward stable: no normal equations), from which the
    fit, the fit without output biases and the residual of both follow exactly
    (``||[H, 1, Y] z|| = ||R z||``). Never holds ``H`` whole.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Inputs (read once, in chunks; a ChunkedArray is read where it lives).
    Y : array-like of shape (n, m)
        Labels.
    V : ndarray of shape (k, d)
        Hidden units.
    activation : Activation
        The rectified activation ``f``.
    b : ndarray of shape (k,), default=None
        Hidden biases (None: zero).
    bias_column : ndarray of shape (n,), default=None
        What ``b`` multiplies on each row (None: ones). Rows shortened by ``w``
        (exact change of units, ``twolayer._recover._Units``) carry ``w`` here ...
    offset : ndarray of shape (n,), default=None
        ... and ``w^p`` here: what ``c`` multiplies (None: ones).
    chunk_size : int, default=16384
        Rows per chunk.

    Returns
    -------
    OutputFit
        ``U``, ``c``, the certificate, the rank of ``H`` and ``H`` on the first rows.
    """
    n = X.shape[0]
    k = V.shape[0]
    m = Y.shape[1]
    b = np.zeros(k) if b is None else np.asarray(b, dtype=float)
    _, V, b, _ = canonical_units(None, V, b, None, activation)
    b = _snap_biases(X, V, b, bias_column)
    caps = row_caps(Y)
    caps = None if np.all(caps == 1.0) else caps
    kernel = _OutputKernel(V, b, activation, bias_column is not None, offset is not None,
                           caps is not None)
    extra = [a for a in (bias_column, offset, caps) if a is not None]
    R, Rw, active, bad = map_reduce(kernel, X, Y, *extra, combine=_merge,
                                    chunk_size=chunk_size, stage="output layer")
    rows = min(n, 20 * k + RANK_ROWS_BASE)
    H = kernel.hidden(np.asarray(X[:rows], dtype=float),
                      None if bias_column is None else bias_column[:rows])
    if bad or not np.isfinite(R).all():
        return OutputFit(U=np.zeros((m, k)), c=np.zeros(m), V=V, b=b, certificate=np.inf,
                         rank_hidden=0, hidden=H, active_rows=active,
                         activation=activation)
    # rank of H modulo the constant: the constant column scaled like H's columns
    ones = np.ones(rows) if offset is None else offset[:rows]
    Hr = np.hstack([H[:rows], ones[:, None] * max(float(np.abs(H[:rows]).max(
        initial=0.0)), 1e-300) / max(float(np.abs(ones).max()), 1e-300)])
    rank_H = matrix_rank(Hr) - 1
    Ut = _solve(R, k)
    # an output bias at rounding level of its output is zero: refit without it
    Ya = np.abs(np.asarray(Y[:rows], dtype=float))
    typical = np.array([np.median(col[col > 0]) if np.any(col > 0) else 0.0
                        for col in Ya.T])  # ReLU outputs are often exactly 0
    snap = np.flatnonzero(np.abs(Ut[k]) <= BIAS_SNAP * typical)
    if snap.size:
        keep = np.r_[np.arange(k), np.arange(k + 1, k + 1 + m)]
        Us = _solve(_r_factor(R[:, keep]), k - 1)
        Ut[:k, snap] = Us[:, snap]
        Ut[k, snap] = 0.0
    cert = _certificate(R, Ut, k)
    if caps is not None:
        cert = max(cert, _certificate(Rw, Ut, k))
    return OutputFit(U=Ut[:k].T, c=Ut[k].copy(), V=V, b=b, certificate=cert,
                     rank_hidden=int(rank_H), hidden=H, active_rows=active,
                     activation=activation)


def hidden_rows(out: OutputFit, X, rows: int, bias_column=None,
                chunk_size: int = 16384) -> np.ndarray:
    """The hidden layer of ``out``'s units on the first ``rows`` rows of ``X``
    (read in chunks; a prefix of ``out.hidden`` when it holds enough rows)."""
    if rows <= out.hidden.shape[0]:
        return out.hidden[:rows]
    kernel = _OutputKernel(out.V, out.b, out.activation, False, False, False)
    H = np.empty((rows, out.V.shape[0]))
    for sl in iter_chunks(rows, chunk_size):
        H[sl] = kernel.hidden(np.asarray(X[sl], dtype=float),
                              None if bias_column is None else bias_column[sl])
    return H


def _solve(R, k):
    """The least-squares ``W`` of ``Y ~ [H, 1] W`` (or ``H W`` when the constant
    column was dropped and ``k`` counts the columns before ``Y``) from the R
    factor of ``[H, (1,) Y]``: a triangular solve, or the minimum-norm solution
    when ``H`` is rank deficient."""
    p = k + 1
    R11, R12 = R[:p, :p], R[:p, p:]
    diag = np.abs(np.diag(R11))
    if diag.size and diag.min() > RANK_RTOL * max(diag.max(), 1e-300):
        W = scipy.linalg.solve_triangular(R11, R12, check_finite=False)
        if np.isfinite(W).all():
            return W
    return scipy.linalg.lstsq(R11, R12, check_finite=False)[0]


def _certificate(R, W, k):
    """``||Y - [H, 1] W|| / ||Y||`` from the R factor of ``[H, 1, Y]``: the columns
    of ``[H, 1, Y]`` are ``Q R``, so the residual is ``R [-W; I]``."""
    p = k + 1
    m = R.shape[1] - p
    Z = np.vstack([-W, np.eye(m)])
    ny = safe_norm(R[:, p:])
    if ny == 0.0:
        return np.inf
    with np.errstate(over="ignore", invalid="ignore"):
        c = safe_norm(R @ Z) / ny
    return float(c) if np.isfinite(c) else np.inf


def _snap_biases(X, V, b, bias_column):
    """Hidden biases at rounding level of their unit's pre-activation are zero.

    A bias-free network comes out of the affine solve with ``|b_i|`` about
    ``1e-16 |v_i . x|``: meaningless digits (and, for data far from unit scale,
    digits that dominate the unit's norm ``||[v_i, b_i]||``). The scale of
    ``v_i . x`` is its median size on the first rows (one huge row cannot inflate it).
    """
    if not np.any(b):
        return b
    rows = min(X.shape[0], SNAP_ROWS)
    with np.errstate(over="ignore", invalid="ignore"):
        S = np.asarray(X[:rows], dtype=float) @ V.T
        w = 1.0 if bias_column is None else bias_column[:rows, None]
        scale = np.median(np.abs(S / w), axis=0)  # typical, not inflated by one row
    return np.where(np.abs(b) <= BIAS_SNAP * scale, 0.0, b)


def missing_units_note(X, Y, out: OutputFit, n_missing: int, *, bias_column=None,
                       offset=None, diag=None, rng=None) -> str:
    """Why ``n_missing`` units were not found, when the data say (docs/algorithms.md 6).

    With ``H`` the hidden layer of the units found, the missing units contribute
    ``Y - [H, 1] W`` for the right ``W``. Two cases are not identifiable and are
    said so, never invented:

    - that contribution vanishes on all but ``q`` rows, ``q`` at most the ``d + 1``
      an affine solve for ``(v, b)`` needs: the missing units are active on those
      ``q`` samples only. ``W`` is fitted on a few random small sets of rows (one
      of them misses the ``q`` rows with high probability) and the rows where the
      fit is exact are counted;
    - ``Y`` lies in the span of ``[H, 1, X]``: the missing units are affine on the
      data (active on every sample), and only their sum is identified.

    Returns the note ("" when neither applies); ``diag`` receives
    ``rarely_active_rows`` or ``always_active_rank``.
    """
    if n_missing <= 0 or not np.isfinite(out.certificate):
        return ""
    n, d = X.shape
    rows = min(n, HIDDEN_ROWS)
    k = out.hidden.shape[1]
    diag = {} if diag is None else diag
    rng = np.random.default_rng(0) if rng is None else rng
    one = (np.ones(rows) if offset is None else offset[:rows])[:, None]
    H = np.hstack([hidden_rows(out, X, rows, bias_column), one])
    Yr = np.asarray(Y[:rows], dtype=float)
    scale = float(np.sqrt(np.mean(Yr**2)))
    if scale == 0:
        return ""
    best = rows
    for _ in range(8):  # rarely active missing units: an exact fit off a few rows
        sub = rng.choice(rows, min(rows, 4 * (k + 1) + 10), replace=False)
        W, *_ = np.linalg.lstsq(H[sub], Yr[sub], rcond=None)
        off = int(np.count_nonzero(np.abs(Yr - H @ W).max(axis=1) > 1e-9 * scale))
        best = min(best, off)
    if 0 < best <= n_missing * (d + 1) and rows == n:
        diag["rarely_active_rows"] = best
        return (f"{n_missing} unit(s) are active on only {best} of the {n} samples (at "
                f"most d + 1 = {d + 1} each, what an affine solve for a unit's (v, b) "
                "needs): they are not identifiable from these data and are left out "
                "(more samples, or inputs that reach them, would tell).")
    ones = np.ones(rows) if bias_column is None else bias_column[:rows]
    A = np.hstack([H, np.asarray(X[:rows], dtype=float), ones[:, None]])
    coef, *_ = np.linalg.lstsq(A, Yr, rcond=None)
    left = np.linalg.norm(Yr - A @ coef) / max(np.linalg.norm(Yr), 1e-300)
    if left <= 1e-9:
        lin = coef[k + 1:k + 1 + d]
        r = int(np.linalg.matrix_rank(lin, tol=1e-9 * max(np.abs(lin).max(), 1e-300)))
        diag["always_active_rank"] = r
        return (f"{n_missing} unit(s) are active on every sample: on these data they act "
                f"as an affine map (of rank {r}), and only their sum is identifiable, not "
                "the units; they are left out of the network (inputs on which they turn "
                "off would tell).")
    return ""
