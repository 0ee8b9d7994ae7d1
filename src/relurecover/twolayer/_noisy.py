"""Noisy labels: moment estimate, then Gauss-Newton on the square loss (docs/algorithms.md 2, 6).

With ``Y = relu(X V^T + b) U^T + c + E`` and ``E`` mean-zero and independent of
``X`` the moments are unbiased, so steps 1-3 of section 1 still give a
consistent start (the biases from the ratio of first to second moment weights,
:func:`moment_estimate`); the exact rounding does not apply (no exact zero
pattern). From that start the square loss
``L = ||Y - relu(X V^T + b) U^T - c||_F^2 / 2`` is minimised by
Levenberg-Marquardt (the package's one, :func:`relurecover.optimize.levenberg_marquardt`,
Nielsen's damping) over all ``k (d + 1) + m k + m`` weights. The biases are
always fitted (the labels decide whether they are zero); a hidden bias is the
weight of a constant input, so the rows are ``[x, 1]`` and a unit is ``[v, b]``:

- the gradient is taken on all rows (one pass per evaluation, in chunks);
- the Gauss-Newton matrix ``J^T J`` is assembled on a fixed subsample of rows
  (``curvature_rows``) and scaled to ``n``: an inexact Newton step whose rate
  is about ``sqrt(p / curvature_rows)``, while the fixed point is the exact
  least-squares minimiser on all rows. Its costly part, the Gram of the
  pattern-masked rows, is updated only where activation patterns flipped
  (:class:`_Curvature`), so near the minimiser a step costs about one pass over
  the data;
- the first steps run on a random subset of rows (``warm_rows``), the last
  ones on all rows;
- ReLU is positively homogeneous, so ``(a [v_i, b_i], u_i / a)`` leaves ``L``
  unchanged: ``J^T J`` has the ``k`` null vectors ``([v_i, b_i], -u_i, 0)``.
  They are penalised in the step, and units are renormalised
  (``||[v_i, b_i]|| = 1``) after each step.

Everything ``J^T J`` needs comes from one matrix ``G = Z^T Z`` with
``Z[:, (i, a)] = 1{x . v_i > 0} x_a`` (:func:`relurecover.moments.relu_pattern_gram`):
``H = relu(X V^T)`` has ``H_i = Z_i v_i``, and the constant input gives the sums
the output bias needs. Every pass over the rows uses
:func:`relurecover.moments.iter_blocks`.

The noise level is ``sigma^2 = ||R||^2 / (n m - p_eff)``
(``p_eff = k (d + 1) + m k - k + m``) and the covariance of the normalised
weights is ``sigma^2 Pi (J^T J)^+ Pi^T`` (``Pi`` the Jacobian of the
normalisation), from which come per-unit standard errors and an estimate of the
aligned error. A mean offset of the noise is indistinguishable from an output
bias: it is reported as ``c``.

Private helpers trust their input; validation happens in ``recover_two_layer``.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.stats

from .._linalg import blas_threads
from .._progress import report
from ..moments import (
    contracted_second_moments,
    iter_blocks,
    relu_pattern_gram,
    second_moment_weights,
)
from ..optimize import Evaluation, LMResult, levenberg_marquardt
from ..tensor import jennrich

__all__ = [
    "NoisyFit",
    "noisy_recovery",
    "moment_estimate",
    "refine_least_squares",
    "spectral_gap_rank",
    "WARN_ERROR",
]

#: estimated aligned error above which the fit warns "too few samples" (after
#: trying up to NOISY_STARTS moment starts).
WARN_ERROR = 0.1
NOISY_STARTS = 3
#: a fit whose residual variance is above this times the labels' noise floor
#: (the variance in the directions of ``Y`` no unit reaches) is started again.
RESTART_NOISE_RATIO = 1.5
#: the aligned error for which that warning says how many samples would do.
TARGET_ERROR = 0.01
#: :func:`spectral_gap_rank`: a rank needs ``s_k / s_{k+1}`` at least this ...
GAP_MIN_RATIO = 1.5
#: ... and ``log gap >= GAP_SPREAD_POWER log spread`` (spread of the tail) ...
GAP_SPREAD_POWER = 10.0
#: ... and, when strict, a tail flat to within ``1 + FLAT_TAIL_FACTOR sqrt(t / n)``.
FLAT_TAIL_FACTOR = 4.0
#: rows per chunk of the refinement's passes (its products are small: larger
#: chunks than the moments' amortise the Python loop).
REFINE_CHUNK = 65536
#: the refinement first converges on a random subset of ``max(WARM_ROWS,
#: WARM_ROWS_PER_PARAM p)`` rows (``p`` weights) when ``n`` is at least twice that,
#: then finishes on all rows in a few passes.
WARM_ROWS = 100_000
#: the refinement stops after this many consecutive steps that lowered the loss
#: by less than ``stat_tol`` noise variances (the optimiser's ``stall_steps``).
STALL_STEPS = 2
WARM_ROWS_PER_PARAM = 8
#: the ``stat_tol`` of the steps on the warm-up rows.
WARM_STAT_TOL = 1e-2
#: the curvature's pattern Gram is recomputed, not updated, when more than this
#: fraction of the activation patterns on its rows flipped (:class:`_Curvature`;
#: an update costs about ``2 / k`` of a recomputation per flipped pattern).
REGRAM_FRACTION = 0.3
#: guards divisions by a zero norm or loss.
_TINY = 1e-300


def spectral_gap_rank(s: np.ndarray, n_rows: int, *, strict: bool):
    """Number of units from the singular values ``s`` of noisy labels, or None.

    Additive noise that is independent across outputs lifts the zero tail of
    the spectrum of ``Y`` to a *flat* floor (Marchenko-Pastur: relative spread
    about ``2 sqrt(t / n_rows)`` for ``t`` tail values). A rank ``k`` is accepted
    when ``s_k / s_{k+1} >= 1.5`` and the gap is much larger than the spread of
    the tail (``log gap >= 10 log spread``); the tail must have at least two
    values. ``strict`` also asks the tail to be flat to within
    ``1 + 4 sqrt(t / n_rows)``: the signature of i.i.d. noise, not of an
    ill-conditioned ``U`` (docs/algorithms.md 2; the thresholds are
    ``GAP_MIN_RATIO``, ``GAP_SPREAD_POWER`` and ``FLAT_TAIL_FACTOR``).

    Parameters
    ----------
    s : array-like of shape (m,)
        Singular values of ``Y``, in decreasing order.
    n_rows : int
        Rows of ``Y``.
    strict : bool
        Also require a flat tail.

    Returns
    -------
    int or None
        The rank with the largest accepted gap, or None when no rank qualifies.
    """
    s = np.asarray(s, dtype=float)
    m = s.size
    best, best_gap = None, 1.0
    for k in range(1, m):
        tail = s[k:]
        if tail[-1] <= 0:
            continue
        gap = s[k - 1] / s[k]
        spread = tail[0] / tail[-1]
        if gap < GAP_MIN_RATIO or np.log(gap) < GAP_SPREAD_POWER * np.log(spread):
            continue
        if tail.size < 2:  # one value is always "flat": no evidence of a floor
            continue
        if strict and spread > 1 + FLAT_TAIL_FACTOR * np.sqrt(tail.size / n_rows):
            continue
        if gap > best_gap:
            best, best_gap = k, gap
    return best


def _relu(t):
    return np.maximum(t, 0.0)


def _beta_from_ratio(rho: np.ndarray) -> np.ndarray:
    """Solve ``Phi(beta) / phi(beta) = rho`` (increasing in ``beta``) for each unit.

    The first and second Hermite coefficients of ``relu(t + beta)`` are
    ``Phi(beta)`` and ``phi(beta)`` (docs/algorithms.md 6), so the ratio of a
    unit's first-moment to its second-moment weight is ``Phi / phi``: it gives the
    bias of the unit with ``||v|| = 1``. Ratios out of reach (noise) are clipped to
    ``|beta| <= 3``.
    """
    grid = np.linspace(-3.0, 3.0, 601)
    ratio = scipy.stats.norm.cdf(grid) / scipy.stats.norm.pdf(grid)
    return np.interp(np.asarray(rho, dtype=float), ratio, grid)


def moment_estimate(X, Y, k, *, M1, Xw, Yw, rng, chunk_size, n_tries=3):
    """A start ``(U0, V0, b0, c0)`` from the moments (docs/algorithms.md 1, steps 1-3; 6).

    ``Q`` spans the top ``k`` right singular vectors of the (centred) first moment
    ``M1``; Jennrich on contractions of the projected second moment gives the
    directions, and the first moment their signs. Of ``n_tries`` random pairs of
    contractions the best conditioned set of directions is kept (noise can make
    Jennrich return nearly equal directions). With unit directions, the ratio
    of a unit's first- to second-moment weights is ``Phi(beta) / phi(beta)``,
    which gives its bias ``b0``. ``U0`` and ``c0`` are fitted by least squares on
    the working rows ``(Xw, Yw)``. With mean-zero noise independent of ``X`` the
    moments stay unbiased, so this start is consistent (docs/algorithms.md 2).

    Parameters
    ----------
    X : array-like of shape (n, d)
        Inputs (only their shape is read here).
    Y : array-like of shape (n, m)
        Labels.
    k : int
        Hidden units.
    M1 : ndarray of shape (m, d)
        The centred first moment ``E[(y - ybar) x^T]`` on all rows.
    Xw, Yw : ndarray of shape (n_work, d) and (n_work, m)
        The working rows for the second moment and the fit of ``U0``.
    rng : numpy.random.Generator
        Draws the contractions.
    chunk_size : int
        Rows per chunk of the moment passes.
    n_tries : int, default=3
        Pairs of random contractions tried.

    Returns
    -------
    U0 : ndarray of shape (m, k)
    V0 : ndarray of shape (k, d)
        Unit rows.
    b0 : ndarray of shape (k,)
    c0 : ndarray of shape (m,)
    """
    m = Y.shape[1]
    _, _, Vt = np.linalg.svd(M1, full_matrices=False)
    Q = Vt[:k].T  # (d, k)
    Zw = Xw @ Q
    Yc = Yw - Yw.mean(axis=0)
    A = rng.standard_normal((m, 2 * n_tries))
    T = contracted_second_moments(Zw, Yc, A, chunk_size=chunk_size)
    best, best_cond = None, -1.0
    for t in range(n_tries):
        P = np.real(jennrich(T[2 * t], T[2 * t + 1]))
        smin = np.linalg.svd(P, compute_uv=False)[-1]
        if smin > best_cond:
            best, best_cond = P, smin
    P = best / np.linalg.norm(best, axis=0)
    Wsec = second_moment_weights(Zw, Yc, P, chunk_size=chunk_size)
    C = (M1 @ Q) @ np.linalg.pinv(P).T
    proj = np.einsum("mi,mi->i", C, Wsec)
    signs = np.where(proj < 0, -1.0, 1.0)
    rho = np.abs(proj) / np.maximum(np.einsum("mi,mi->i", Wsec, Wsec), _TINY)
    b0 = _beta_from_ratio(rho)
    V0 = (Q @ (P * signs)).T
    V0 /= np.linalg.norm(V0, axis=1, keepdims=True)
    H = np.hstack([_relu(Xw @ V0.T + b0), np.ones((Xw.shape[0], 1))])
    sol = np.linalg.lstsq(H, Yw, rcond=None)[0]
    return sol[:k].T, V0, b0, sol[k]


@dataclass(frozen=True)
class NoisyFit:
    """The least-squares refinement and its statistics.

    Attributes
    ----------
    U : ndarray of shape (m, k)
        Output weights (unit norms of ``[V, b]``'s rows pushed in).
    V : ndarray of shape (k, d)
        Hidden weights; the rows of ``[V, b]`` have unit norm.
    b : ndarray of shape (k,)
        Hidden biases.
    c : ndarray of shape (m,)
        Output biases.
    loss : float
        ``||Y - relu(X V^T + b) U^T - c||_F^2 / 2`` on all rows.
    relative_residual : float
        ``||R||_F / ||Y||_F``.
    noise_level : float
        Estimated standard deviation of the noise (degrees-of-freedom corrected).
    noise_level_per_output : ndarray of shape (m,)
    se_V, se_U, se_b, se_c : ndarray
        Standard errors of the normalised weights (Gauss-Newton covariance),
        shapes (k, d), (m, k), (k,), (m,).
    estimated_error : float
        ``max`` of ``sqrt(sum se^2) / ||.||_F`` over ``[V, b]`` and ``U``: the
        expected relative Frobenius error after alignment (as ``compare().error``).
    n_iter, converged, message
        Levenberg-Marquardt iterations, whether it met its tolerance, and why it stopped.
    """

    U: np.ndarray
    V: np.ndarray
    b: np.ndarray
    c: np.ndarray
    loss: float
    relative_residual: float
    noise_level: float
    noise_level_per_output: np.ndarray
    se_V: np.ndarray
    se_U: np.ndarray
    se_b: np.ndarray
    se_c: np.ndarray
    estimated_error: float
    n_iter: int
    converged: bool
    message: str
    history: list = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class _LossPass:
    """One pass over the rows at ``(U, V, c)``: the loss and its gradient."""

    loss: float
    gU: np.ndarray
    gV: np.ndarray
    gc: np.ndarray
    rsq: np.ndarray


# In what follows ``X`` holds the augmented rows ``[x, 1]`` and ``V`` the
# augmented units ``[v, b]`` (k, d + 1): a hidden bias is the weight of the
# constant input, and ``c`` is a parameter of its own (docs/algorithms.md 6).
def _loss_grad(X, Y, U, V, c, chunk_size) -> _LossPass:
    """``L``, ``dL/dU``, ``dL/dV``, ``dL/dc`` and ``sum R^2`` per output, in one pass."""
    m, k = U.shape
    gU = np.zeros((m, k))
    gV = np.zeros_like(V)
    gc = np.zeros(m)
    rsq = np.zeros(m)
    for _, (Xc, Yc) in iter_blocks(X, Y, chunk_size=chunk_size):
        S = Xc @ V.T
        H = np.maximum(S, 0.0)
        R = Yc - H @ U.T - c
        rsq += np.einsum("ij,ij->j", R, R)
        gc -= R.sum(axis=0)
        gU -= R.T @ H
        RU = R @ U
        RU[S <= 0] = 0.0
        gV -= RU.T @ Xc
    return _LossPass(0.5 * float(rsq.sum()), gU, gV, gc, rsq)


def _gauss_newton_matrix(G, U, V, n):
    """``J^T J`` for parameters ``(vec V, vec U, c)`` (row-major), from ``G = Z^T Z``.

    The last input is the constant 1, so ``G`` also holds the sums the ``c``
    block needs: ``sum Z_(i, a) = G[(i, a), (i, last)]`` and
    ``sum H_i = (Z^T H)[(i, last), i]``; ``n`` is the number of rows ``G`` stands for.
    """
    k, d = V.shape
    m = U.shape[0]
    pv, pu = k * d, m * k
    M = np.empty((pv + pu + m, pv + pu + m))
    M[:pv, :pv] = G * np.kron(U.T @ U, np.ones((d, d)))
    # Z^T H: column l is G[:, block l] @ v_l; H^T H from it
    ZH = np.einsum("pla,la->pl", G.reshape(pv, k, d), V)  # (k d, k)
    ZH3 = ZH.reshape(k, d, k)  # [i, a, l]
    HH = np.einsum("ial,ia->il", ZH3, V)  # (k, k): v_i^T G_il v_l = H^T H
    M[pv:pv + pu, pv:pv + pu] = np.kron(np.eye(m), HH)
    # cross: [(i, a), (j, l)] = U[j, i] * ZH[(i, a), l]
    cross = np.einsum("ji,ial->iajl", U, ZH3).reshape(pv, pu)
    M[:pv, pv:pv + pu] = cross
    M[pv:pv + pu, :pv] = cross.T
    # the output bias: dR_j / dc_j = -1
    G4 = G.reshape(k, d, k, d)
    zsum = np.einsum("iai->ia", G4[:, :, :, d - 1])  # (k, d): sum of Z_(i, a)
    hsum = np.einsum("ii->i", ZH3[:, d - 1, :])  # (k,): sum of H_i
    vc = np.einsum("ji,ia->iaj", U, zsum).reshape(pv, m)
    M[:pv, pv + pu:] = vc
    M[pv + pu:, :pv] = vc.T
    uc = np.kron(np.eye(m), hsum[:, None])  # [(j, l), j'] = delta_jj' hsum_l
    M[pv:pv + pu, pv + pu:] = uc
    M[pv + pu:, pv:pv + pu] = uc.T
    M[pv + pu:, pv + pu:] = n * np.eye(m)
    return M


def _gauge_vectors(U, V):
    """The ``k`` null vectors ``(v_i, -u_i, 0)`` of ``J^T J``, as columns."""
    k, d = V.shape
    m = U.shape[0]
    N = np.zeros((k * d + m * k + m, k))
    for i in range(k):
        Vi = np.zeros_like(V)
        Vi[i] = V[i]
        Ui = np.zeros_like(U)
        Ui[:, i] = -U[:, i]
        N[:, i] = np.concatenate([Vi.ravel(), Ui.ravel(), np.zeros(m)])
    return N


def _penalised_gauss_newton(X, U, V, n, chunk_size, G=None):
    """``J^T J`` on the rows ``X``, scaled to ``n`` rows, its gauge directions penalised.

    ReLU is positively homogeneous: ``(a [v_i, b_i], u_i / a)`` leaves the loss
    unchanged, so ``J^T J`` has the null vectors ``(v_i, -u_i, 0)``; they get the
    mean diagonal curvature ``trace / p`` (the step has no gauge component, the
    covariance none of the gauge's infinite variance). ``G``, the pattern Gram of
    ``X`` scaled to ``n`` rows, is computed when not given (:class:`_Curvature`).
    """
    if G is None:
        G = relu_pattern_gram(X, V, chunk_size=chunk_size) * n
    M = _gauss_newton_matrix(G, U, V, n)
    Nv = _gauge_vectors(U, V)
    pen = np.trace(M) / M.shape[0]
    return M + pen * (Nv @ Nv.T) / max((Nv * Nv).sum(axis=0).mean(), _TINY)


class _Curvature:
    """``J^T J`` on the curvature rows, its pattern Gram updated where activation
    patterns changed (docs/algorithms.md 2).

    ``J^T J`` is a closed-form function of ``(U, V)`` given the Gram ``G`` with
    blocks ``G_il = mean_r s_i(r) s_l(r) x_r x_r^T`` (``s_i(r) = 1(v_i . x_r > 0)``;
    :func:`_gauss_newton_matrix`), and ``G`` depends on ``V`` only through the
    patterns ``s``. After a step, each flipped ``s_i(r)`` changes only the blocks
    of row and column ``i``, by ``(s_i' - s_i) s_l(r) x_r x_r^T`` (``s_i' - s_i``
    on the diagonal block), so the flips are applied one unit at a time: the same
    matrix as a fresh one at a cost proportional to the flips (few near the
    minimiser), recomputed whole when more than ``REGRAM_FRACTION`` of the
    patterns flipped.
    """

    def __init__(self, Xs, chunk_size, deadline=None):
        self.Xs, self.chunk_size, self.deadline = Xs, chunk_size, deadline
        self.G = self.signs = None  # the mean pattern Gram and its patterns
        self.n_grams = 0
        self.flips_applied = 0

    def _update(self, signs):
        flips = signs != self.signs
        S = self.signs.astype(np.float64)  # the patterns G currently holds
        r_all, D = self.Xs.shape
        k = S.shape[1]
        G4 = self.G.reshape(k, D, k, D)
        for i in np.flatnonzero(flips.any(axis=0)):
            rows = np.flatnonzero(flips[:, i])
            Xr = self.Xs[rows]
            delta = signs[rows, i] - S[rows, i]  # +1 or -1
            mask = S[rows].copy()
            mask[:, i] = 1.0  # the diagonal block changes by delta x x^T
            A = (mask[:, :, None] * Xr[:, None, :]).reshape(len(rows), k * D)
            B = ((Xr * delta[:, None]).T @ A / r_all).reshape(D, k, D)  # [b, l, a]
            G4[i] += B
            G4[:, :, i, :] += B.transpose(1, 2, 0)
            G4[i, :, i, :] -= B[:, i, :]  # added twice above
            S[rows, i] = signs[rows, i]
        self.flips_applied += int(flips.sum())

    def matrix(self, U, V, n):
        """``J^T J`` at ``(U, V)`` for ``n`` rows, gauge penalised; None when the
        deadline passed while its Gram was assembled."""
        signs = (self.Xs @ V.T) > 0
        if self.G is None or np.mean(signs != self.signs) > REGRAM_FRACTION:
            G = relu_pattern_gram(self.Xs, V, chunk_size=self.chunk_size,
                                  deadline=self.deadline)
            if G is None:
                return None
            self.G = G
            self.n_grams += 1
        elif not np.array_equal(signs, self.signs):
            self._update(signs)
        self.signs = signs
        return _penalised_gauss_newton(self.Xs, U, V, n, self.chunk_size, G=self.G * n)


def _normalisation_jacobian(U, V):
    """``Pi``: derivative of ``(U, V, c) -> (U diag|v|, diag(1/|v|) V, c)`` at ``|v_i| = 1``."""
    k, d = V.shape
    m = U.shape[0]
    pv, pu = k * d, m * k
    Pi = np.eye(pv + pu + m)
    for i in range(k):
        rows = slice(i * d, (i + 1) * d)
        Pi[rows, rows] = np.eye(d) - np.outer(V[i], V[i])
        ucols = pv + np.arange(m) * k + i  # entries U[:, i]
        Pi[np.ix_(ucols, np.arange(i * d, (i + 1) * d))] = np.outer(U[:, i], V[i])
    return Pi


def _normalize(U, V):
    norms = np.linalg.norm(V, axis=1)
    norms = np.where(norms > 0, norms, 1.0)
    return U * norms, V / norms[:, None]


def _pack(U, V, c):
    return np.concatenate([V.ravel(), U.ravel(), c])


def _unpack(theta, m, k, d):
    pv, pu = k * d, m * k
    return (theta[pv:pv + pu].reshape(m, k), theta[:pv].reshape(k, d),
            theta[pv + pu:])


def _refine_lm(X, Y, U, V, c, Xs, *, max_iter, stat_tol, chunk_size, deadline) -> LMResult:
    """Levenberg-Marquardt (:func:`relurecover.optimize.levenberg_marquardt`) from ``(U, V, c)``.

    The gradient is taken on all rows of ``(X, Y)``, ``J^T J`` on the rows ``Xs``
    (scaled to ``n``; ``Xs`` may be a :class:`_Curvature` shared between calls,
    which keeps its Gram while the patterns hold); after each step the units are renormalised
    (``||[v_i, b_i]|| = 1``). Stops when the predicted decrease ``g^T step`` is
    below ``stat_tol`` times the noise variance ``2 L / dof``: the squared
    distance to the minimiser in units of standard errors (summed over the
    weights) is then below ``stat_tol``. The final :class:`_LossPass` is
    ``result.evaluation.aux``.
    """
    n, d = X.shape
    m = Y.shape[1]
    k = V.shape[0]
    dof = max(n * m - (k * d + m * k - k + m), 1)
    curvature = Xs if isinstance(Xs, _Curvature) else _Curvature(Xs, chunk_size)

    def evaluate(theta):
        Ut, Vt, ct = _unpack(theta, m, k, d)
        lp = _loss_grad(X, Y, Ut, Vt, ct, chunk_size)

        def gauss_newton():
            return curvature.matrix(Ut, Vt, n)

        return Evaluation(cost=lp.loss, gradient=_pack(lp.gU, lp.gV, lp.gc),
                          gauss_newton=gauss_newton, aux=lp)

    def retract(theta):
        Ut, Vt, ct = _unpack(theta, m, k, d)
        return _pack(*_normalize(Ut, Vt), ct)

    return levenberg_marquardt(evaluate, _pack(U, V, c), max_iter=max_iter,
                               decrease_tol=2.0 * stat_tol / dof, deadline=deadline,
                               retract=retract, stall_steps=STALL_STEPS)


def _random_rows(A, count, rng):
    """``count`` rows of ``A`` drawn without replacement (all of them if fewer), sorted."""
    if count >= A.shape[0]:
        return np.asarray(A, dtype=float)
    return np.asarray(A[np.sort(rng.choice(A.shape[0], count, replace=False))], dtype=float)


#: the messages of the refinement for the optimiser's stopping statuses.
_STOP_MESSAGES = {
    "small_step": "converged: the next step is far below one standard error",
    "no_decrease": "converged: no step decreases the loss further",
}


def _fit_statistics(X, Y, U, V, lp, Mp, chunk_size):
    """Noise level and standard errors at the minimiser.

    ``lp`` is the :class:`_LossPass` at ``(U, V, c)``; the Gauss-Newton covariance
    is ``sigma^2 Pi Mp^+ Pi^T`` with ``Mp`` the penalised ``J^T J`` there (from
    the curvature rows; None: the standard errors are NaN). Returns the keyword arguments of :class:`NoisyFit` that
    they fill.
    """
    n, d = X.shape
    m = Y.shape[1]
    k = V.shape[0]
    pv, pu = k * d, m * k
    p_eff = pv + pu - k + m
    dof = max(n * m - p_eff, 1)
    sigma = float(np.sqrt(2 * lp.loss / dof))
    sigma_out = np.sqrt(lp.rsq / max(n - p_eff / m, 1))
    if Mp is None:  # (the time limit left no curvature: no standard errors)
        var = np.full(pv + pu + m, np.nan)
    else:
        Pi = _normalisation_jacobian(U, V)
        try:  # the penalised matrix is positive definite: a Cholesky solve (p^3 / 3)
            A = scipy.linalg.cho_solve(scipy.linalg.cho_factor(Mp, check_finite=False),
                                       Pi.T, check_finite=False)
        except np.linalg.LinAlgError:  # not numerically definite: the pseudo-inverse
            A = scipy.linalg.pinvh(Mp) @ Pi.T
        cov = sigma**2 * Pi @ A
        var = np.clip(np.diag(cov), 0.0, None)
    est = max(
        np.sqrt(var[:pv].sum()) / max(np.linalg.norm(V), _TINY),
        np.sqrt(var[pv:pv + pu].sum()) / max(np.linalg.norm(U), _TINY),
    )
    ynorm = np.sqrt(sum(float(np.einsum("ij,ij->", Yc, Yc))
                        for _, (Yc,) in iter_blocks(Y, chunk_size=chunk_size)))
    se_Va = np.sqrt(var[:pv]).reshape(k, d)
    return dict(
        loss=lp.loss, relative_residual=float(np.sqrt(2 * lp.loss) / max(ynorm, _TINY)),
        noise_level=sigma, noise_level_per_output=sigma_out,
        se_V=se_Va[:, :-1], se_b=se_Va[:, -1], se_U=np.sqrt(var[pv:pv + pu]).reshape(m, k),
        se_c=np.sqrt(var[pv + pu:]), estimated_error=float(est),
    )


def _augment(X):
    """``[X, 1]``: the rows with the constant input a hidden bias multiplies."""
    X = np.asarray(X, dtype=float)
    return np.hstack([X, np.ones((X.shape[0], 1))])


def refine_least_squares(
    X, Y, U0, V0, b0=None, c0=None, *, rng=None, max_iter: int = 100,
    stat_tol: float = 1e-4, curvature_rows: int = 30_000, warm_rows: int | None = None,
    chunk_size: int = REFINE_CHUNK, time_limit: float | None = None,
) -> NoisyFit:
    """Levenberg-Marquardt on the square loss of ``Y ~ relu(X V^T + b) U^T + c`` (docs/algorithms.md 2, 6).

    The solver is :func:`relurecover.optimize.levenberg_marquardt` (Nielsen's
    damping); its Gauss-Newton matrix is assembled on ``curvature_rows`` rows,
    its gradient on all rows, and the gauge of each unit is penalised and
    renormalised (module docstring). The biases ``b`` and ``c`` are always
    refined: the labels decide whether they are zero.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Inputs.
    Y : ndarray of shape (n, m)
        Noisy labels.
    U0 : ndarray of shape (m, k)
        Start of the output weights.
    V0 : ndarray of shape (k, d)
        Start of the hidden weights (e.g. :func:`moment_estimate`, or the truth for
        an oracle).
    b0 : ndarray of shape (k,), default=None
        Start of the hidden biases (None: zero).
    c0 : ndarray of shape (m,), default=None
        Start of the output biases (None: zero).
    rng : None, int or numpy.random.Generator
        Draws the rows on which ``J^T J`` is assembled (and the warm-up rows).
    max_iter : int, default=100
        Accepted steps at most (per phase).
    stat_tol : float, default=1e-4
        Stop when the next step moves the weights by less than ``sqrt(stat_tol)``
        standard errors (Mahalanobis norm), i.e. its predicted decrease of the loss
        is below ``stat_tol`` times the noise variance.
    curvature_rows : int, default=30000
        Rows on which ``J^T J`` and the covariance are assembled (all rows when
        ``n`` is smaller); the gradient always uses all rows, so the minimiser is
        that of all rows. Its pattern Gram is recomputed only when the activation
        patterns on these rows change (:class:`_Curvature`).
    warm_rows : int, default=None
        When ``n > 2 warm_rows``, first converge on ``warm_rows`` random rows,
        then finish on all rows (a few full passes instead of many). None:
        ``max(WARM_ROWS, WARM_ROWS_PER_PARAM p)`` for ``p`` weights.
    chunk_size : int, default=REFINE_CHUNK
        Rows per chunk of the passes over ``X``.
    time_limit : float, default=None
        Seconds after which no further step is taken (the statistics are still
        computed at the last accepted step, and ``converged`` is False).

    Returns
    -------
    NoisyFit
        The weights at the minimiser (unit rows of ``[V, b]``) and their statistics.
    """
    rng = np.random.default_rng(rng)
    deadline = np.inf if time_limit is None else time.perf_counter() + time_limit
    n = X.shape[0]
    V0 = np.array(V0, dtype=float)
    k = V0.shape[0]
    b0 = np.zeros(k) if b0 is None else np.asarray(b0, dtype=float)
    U, V = _normalize(np.array(U0, dtype=float), np.hstack([V0, b0[:, None]]))
    m, D = U.shape[0], V.shape[1]
    c = np.zeros(m) if c0 is None else np.array(c0, dtype=float)
    Xa = _augment(X)
    lm = dict(max_iter=max_iter, stat_tol=stat_tol, chunk_size=chunk_size,
              deadline=deadline)
    n_params = k * D + m * k + m
    if warm_rows is None:
        warm_rows = max(WARM_ROWS, WARM_ROWS_PER_PARAM * n_params)
    curvature = _Curvature(_random_rows(Xa, curvature_rows, rng), chunk_size,
                           deadline=deadline)
    n_warm = 0
    if n > 2 * warm_rows:
        idx = np.sort(rng.choice(n, warm_rows, replace=False))
        Xw, Yw = Xa[idx], np.asarray(Y[idx], dtype=float)
        # a start only: to a tenth of its own standard errors (sqrt(n / warm_rows)
        # times those of the final fit)
        warm = _refine_lm(Xw, Yw, U, V, c, curvature, **{**lm, "stat_tol": WARM_STAT_TOL})
        U, V, c = _unpack(warm.x, m, k, D)
        n_warm = warm.n_iter
        del Xw, Yw, warm
    res = _refine_lm(Xa, Y, U, V, c, curvature, **lm)
    U, V, c = _unpack(res.x, m, k, D)
    # the covariance from the curvature rows, at the minimiser's patterns (none past
    # the time limit: the standard errors are then NaN)
    Mp = curvature.matrix(U, V, n) if time.perf_counter() <= deadline else None
    stats = _fit_statistics(Xa, Y, U, V, res.evaluation.aux, Mp, chunk_size)
    return NoisyFit(
        U=U, V=V[:, :-1].copy(), b=V[:, -1].copy(), c=c, n_iter=res.n_iter + n_warm,
        converged=res.success, message=_STOP_MESSAGES.get(res.status, res.message),
        history=list(res.history), **stats,
    )


def _noise_floor(Yw, k):
    """The noise variance the labels show by themselves: the mean of the ``m - k``
    smallest eigenvalues of their covariance (directions no unit reaches), or None
    when ``m <= k``."""
    m = Yw.shape[1]
    if m <= k or Yw.shape[0] <= m:
        return None
    ev = np.linalg.eigvalsh(np.cov(Yw, rowvar=False))
    return float(np.mean(ev[: m - k]))


def _wrong_minimum(fit, floor) -> bool:
    """Whether a refined fit looks like a wrong minimum: its estimated error is
    above ``WARN_ERROR``, or its residual variance is above ``RESTART_NOISE_RATIO``
    times the noise floor of the labels (:func:`_noise_floor`)."""
    if fit.estimated_error > WARN_ERROR:
        return True
    return floor is not None and fit.noise_level**2 > RESTART_NOISE_RATIO * floor


def noisy_recovery(X, Y, k, *, rng, chunk_size, work_rows, reason, timings=None,
                   diagnostics=None, stacklevel=2, time_limit=None):
    """The noisy-label path (docs/algorithms.md 2): moment start, refinement, statistics.

    Warns (``AssumptionWarning``) when the estimate is too uncertain for the
    noise level or the residuals are not mean-zero, and (``ConvergenceWarning``)
    when the refinement stopped at its budget.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Gaussian inputs (a memmap is read in chunks).
    Y : array-like of shape (n, m)
        Noisy labels.
    k : int
        Hidden units.
    rng : numpy.random.Generator
        Every random draw (working rows, contractions, curvature rows).
    chunk_size : int
        Rows per chunk of the moment passes (the refinement uses at least
        ``REFINE_CHUNK``).
    work_rows : int
        Rows for the second moment of the start.
    reason : str
        Why the exact path did not apply; it opens the message.
    timings, diagnostics : dict, default=None
        Merged into the result's.
    stacklevel : int, default=2
        Of the warnings, as seen from the caller.
    time_limit : float, default=None
        Seconds for the refinement.

    Returns
    -------
    Recovery
        ``exact=False``, with ``noise_level`` and ``standard_errors``.
    """
    from ..exceptions import AssumptionWarning, ConvergenceWarning, warn
    from ..moments import first_moment
    from ..networks import TwoLayerNetwork
    from ._result import Recovery, StandardErrors

    timings = {} if timings is None else dict(timings)
    diag = {} if diagnostics is None else dict(diagnostics)
    n, d = X.shape
    m = Y.shape[1]

    t0 = time.perf_counter()
    M1 = first_moment(X, Y, center=True, chunk_size=chunk_size)
    n_work = min(n, work_rows)
    rows = np.sort(rng.choice(n, n_work, replace=False)) if n_work < n else slice(None)
    Xw = np.asarray(X[rows], dtype=float)
    Yw = np.asarray(Y[rows], dtype=float)
    floor = _noise_floor(Yw, k)
    t_start = t_refine = 0.0
    t_all = time.perf_counter()
    fit = start = None
    n_starts = 0
    for _ in range(NOISY_STARTS):
        # a refinement that ended in a wrong minimum (from a poor moment start) is
        # tried again from new random contractions; the fit with the smallest loss
        # is kept (docs/algorithms.md 2, restarts)
        left = None if time_limit is None else time_limit - (time.perf_counter() - t_all)
        if left is not None and left <= 0 and fit is not None:
            break
        t0 = time.perf_counter()
        U0, V0, b0, c0 = moment_estimate(X, Y, k, M1=M1, Xw=Xw, Yw=Yw, rng=rng,
                                         chunk_size=chunk_size)
        t_start += time.perf_counter() - t0
        report("noisy: moment start", 1.0)
        t0 = time.perf_counter()
        with blas_threads(1):
            trial = refine_least_squares(X, Y, U0, V0, b0, c0, rng=rng, time_limit=left,
                                         chunk_size=max(chunk_size, REFINE_CHUNK))
        t_refine += time.perf_counter() - t0
        n_starts += 1
        report("noisy: refinement", 1.0)
        if fit is None or trial.loss < fit.loss:
            fit, start = trial, (U0, V0, b0, c0)
        if not _wrong_minimum(fit, floor):
            break
    U0, V0, b0, c0 = start
    del Xw, Yw
    timings["noisy: moment start"] = t_start
    timings["noisy: refinement"] = t_refine
    diag["noisy_starts"] = n_starts

    net = TwoLayerNetwork(fit.U, fit.V, activation="relu", b=fit.b, c=fit.c)
    se = StandardErrors(V=fit.se_V, U=fit.se_U, b=fit.se_b, c=fit.se_c,
                        estimated_error=fit.estimated_error)
    diag["refinement"] = {
        "iterations": fit.n_iter,
        "converged": fit.converged,
        "stop": fit.message,
        "loss_history": np.asarray(fit.history),
        "noise_level_per_output": fit.noise_level_per_output,
        "estimated_error": fit.estimated_error,
        "moment_start": TwoLayerNetwork(U0, V0, b=b0, c=c0),
    }
    est = (f"{fit.estimated_error:.2e}" if np.isfinite(fit.estimated_error)
           else "not estimated (the time limit came first)")
    text = (
        f"not exact: {reason} Least-squares estimate refined from the moments: "
        f"noise level {fit.noise_level:.3g}, relative residual "
        f"{fit.relative_residual:.2e}, estimated aligned error "
        f"{est} ({fit.message}, {fit.n_iter} steps)."
    )
    if "n_hidden_from_spectral_gap" in diag:
        text += (f" n_hidden = {k} was inferred from a spectral gap of Y's singular "
                 "values; pass n_hidden to override.")
    if fit.estimated_error > WARN_ERROR:
        n_need = int(np.ceil(n * (fit.estimated_error / TARGET_ERROR) ** 2))
        note = (
            f"Too few samples for this noise level: the estimated aligned error is "
            f"{fit.estimated_error:.2g} (n = {n}, noise level {fit.noise_level:.3g}); "
            f"do not trust this network. The error falls like 1/sqrt(n): about "
            f"n = {n_need:.2g} samples would bring it to {TARGET_ERROR:g}."
        )
        text += " " + note
        warn(note, AssumptionWarning)
    if not fit.converged:
        note = (
            f"The least-squares refinement did not converge ({fit.message}); the "
            "estimate and its standard errors are approximate."
        )
        text += " " + note
        warn(note, ConvergenceWarning)
    return Recovery(
        network=net, exact=False, certificate=fit.relative_residual, message=text,
        n_found=k, n_hidden=k, method="gaussian", timings=timings, diagnostics=diag,
        noise_level=fit.noise_level, standard_errors=se,
    )
