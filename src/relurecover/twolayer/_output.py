"""The output layer and the certificate, shared by every two-layer path (docs/algorithms.md 1.6).

Given the hidden units ``(V, b)``, the labels are linear in ``(U, c)``:
``Y = f(X V^T + b) U^T + c`` (docs/algorithms.md 6). :func:`fit_output_layer` reads
``X`` once, fits ``U`` and ``c`` by least squares and measures the certificate, the relative residual on all the data
(:func:`relurecover._linalg.relative_residual`: no row can dominate it, and it
neither underflows nor overflows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .._linalg import matrix_rank, relative_residual
from ..activations import canonical_units
from ..moments import iter_chunks

__all__ = ["OutputFit", "fit_output_layer", "missing_units_note"]

#: rows of the hidden layer on which its rank is counted (enough to see k
#: independent columns of a generic design many times over).
RANK_ROWS_BASE = 1000
#: a bias at most this fraction of its unit's typical pre-activation (hidden) or
#: of its output's typical (median) size (output) is rounding error: set to 0.
BIAS_SNAP = 1e-12
#: rows on which the pre-activations' scale is measured for that test.
SNAP_ROWS = 2000


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
    hidden : ndarray of shape (n, k)
        The hidden layer ``f(X V^T + b)``.
    """

    U: np.ndarray
    c: np.ndarray
    V: np.ndarray
    b: np.ndarray
    certificate: float
    rank_hidden: int
    hidden: np.ndarray


def fit_output_layer(X, Y, V, activation, *, b=None, bias_column=None, offset=None,
                     chunk_size: int = 16384) -> OutputFit:
    """``U``, ``c`` by least squares on ``[f(X V^T + b), 1]`` and the certificate
    (docs/algorithms.md 1.6, 6).

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
        ``U``, ``c``, the certificate, the rank of ``H`` and ``H`` itself.
    """
    n = X.shape[0]
    k = V.shape[0]
    m = Y.shape[1]
    b = np.zeros(k) if b is None else np.asarray(b, dtype=float)
    _, V, b, _ = canonical_units(None, V, b, None, activation)
    b = _snap_biases(X, V, b, bias_column)
    H = np.empty((n, k + 1))
    with np.errstate(over="ignore", invalid="ignore"):
        for sl in iter_chunks(n, chunk_size):
            S = np.asarray(X[sl], dtype=float) @ V.T
            if np.any(b):
                S += (b if bias_column is None else np.outer(bias_column[sl], b))
            H[sl, :k] = activation(S)
    H[:, k] = 1.0 if offset is None else offset
    if not np.isfinite(H).all():
        return OutputFit(U=np.zeros((m, k)), c=np.zeros(m), V=V, b=b, certificate=np.inf,
                         rank_hidden=0, hidden=H[:, :k])
    rows = min(n, 20 * k + RANK_ROWS_BASE)
    # rank of H modulo the constant: the constant column scaled like H's columns
    Hr = H[:rows].copy()
    Hr[:, k] *= max(float(np.abs(Hr[:, :k]).max(initial=0.0)), 1e-300) / max(
        float(np.abs(Hr[:, k]).max()), 1e-300)
    rank_H = matrix_rank(Hr) - 1
    G = H.T @ H
    Ut = _least_squares(H, Y, G, H.T @ Y)
    # an output bias at rounding level of its output is zero: refit without it
    if Ut is not None:
        Ya = np.abs(Y[:rows])
        typical = np.array([np.median(col[col > 0]) if np.any(col > 0) else 0.0
                            for col in Ya.T])  # ReLU outputs are often exactly 0
        snap = np.flatnonzero(np.abs(Ut[k]) <= BIAS_SNAP * typical)
        if snap.size:
            Ys = Y[:, snap]
            Us = _least_squares(H, Ys, G[:k, :k], (H.T @ Ys)[:k], cols=k)
            if Us is not None:
                Ut[:k, snap] = Us
                Ut[k, snap] = 0.0
    if Ut is None:
        Ut = np.linalg.lstsq(H, Y, rcond=None)[0]
    cert = relative_residual(Y, H @ Ut)
    return OutputFit(U=Ut[:k].T, c=Ut[k].copy(), V=V, b=b, certificate=cert,
                     rank_hidden=int(rank_H), hidden=H[:, :k])


def _least_squares(H, Y, G, HtY, cols=None):
    """``Y ~ H[:, :cols] W`` by the normal equations ``G W = H^T Y`` and one
    refinement step, or None.

    Float64 accuracy for the well conditioned ``H`` of a Gaussian design, 5x
    cheaper than an SVD least squares; ``G`` and ``H^T Y`` (of the first ``cols``
    columns) are passed in, so a fit on the first columns reuses the blocks of the
    full one, and ``H`` is used whole (a column slice would be a strided copy).
    None when ``G`` is singular.
    """
    p = H.shape[1] if cols is None else cols
    try:
        cf = scipy.linalg.cho_factor(G, check_finite=False)
        W = scipy.linalg.cho_solve(cf, HtY, check_finite=False)
        Wf = W if p == H.shape[1] else np.vstack([W, np.zeros((H.shape[1] - p, W.shape[1]))])
        W += scipy.linalg.cho_solve(cf, (H.T @ (Y - H @ Wf))[:p], check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return None
    return W if np.isfinite(W).all() else None


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
    rows = min(n, 200_000)
    k = out.hidden.shape[1]
    diag = {} if diag is None else diag
    rng = np.random.default_rng(0) if rng is None else rng
    one = (np.ones(rows) if offset is None else offset[:rows])[:, None]
    H = np.hstack([out.hidden[:rows], one])
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
