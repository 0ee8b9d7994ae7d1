"""Few outputs, ``rank(U) < k`` (e.g. one output), Gaussian inputs, ReLU [BJW] (docs/algorithms.md 3).

With fewer independent outputs than units the second-moment tensor of
docs/algorithms.md 1 has no usable output mode, so the path of ``_gaussian`` does not
apply. [BJW] show the problem is fixed-parameter tractable in ``k``; this module
implements the following design, step by step (numbers as in the functions'
docstrings):

1. Subspace: ``M2 = E[y (x x^T - I)] = c2 sum_i a_i vhat_i vhat_i^T`` with
   ``a_i = u_i ||v_i||`` and ``c2 = 1/sqrt(2 pi)``; its top-``k`` eigenvectors by
   ``|eigenvalue|`` span ``span(V)`` (:func:`second_moment`). When fewer than ``k``
   eigenvalues clear the noise floor, contractions ``T4(a, a, ., .)`` of the 4th
   Hermite moment add the missing directions.
2. Directions: in the ``k``-dim coordinates ``z = Q^T x``, contractions of the 4th
   Hermite moment ``E[y He4(z)] = c4 sum_i a_i p_i^{(x)4}`` (``c4 = -1/sqrt(2 pi)``,
   :func:`hermite4_contraction`) are decomposed by Jennrich. Before that, ``y``
   loses its projection on the Hermite polynomials of degree <= 2 in ``z``
   (same expectation, much smaller variance).
3. Weights and signs: ``Q^T M2 Q`` gives ``a_i``, the first moment
   ``E[y z] = (1/2) sum_i a_i s_i p_i`` the signs ``s_i``.
4. Exact finish: once the activation pattern of a sample is known, ``y`` is
   linear in ``w_i = u_i v_i``. The solve used here also carries a free linear
   term ``l . x``: because ``relu(-t) = relu(t) - t``, a unit whose direction is
   known only up to sign is still fitted exactly (its flip shows up as
   ``l = -w_i``), so step 3's signs are not needed for exactness. Rows drawn at
   random among those whose smallest margin ``min_i |e_i . x|`` exceeds a
   threshold (a multiple of the last step's change: their patterns are sure) are
   solved by least squares, the directions recomputed, and so on: an attractor,
   exact (residual at rounding level) once the patterns of the chosen rows are
   right. (Taking only the largest-margin rows made the solve rank deficient as
   ``n`` grew: those rows crowd one region of the space.)
5. Fallback search: fresh Jennrich contractions, perturbed and random starts in
   the ``k``-dim subspace, each followed by step 4, within ``max_starts`` and
   ``time_limit``.
6. Certificate: ``U`` by least squares on ``relu(X V^T)`` (all outputs), and
   ``exact`` only when all ``k`` units are there and the relative residual on
   all rows is at most ``tol``.

Cost: steps 1-3 read the data a constant number of times, ``O(n d^2 + n k^2)``
flops; one finish iteration is ``O(n k d + N (k d)^2)`` with ``N = O(k d)``
rows, so a start costs ``O(n k d + (k d)^3)`` per iteration. The moment start
succeeds with polynomially many samples; the random-start fallback is
exponential in ``k`` in the worst case (a random start lands in the basin of
the right pattern with a probability that falls with ``k``), polynomial in
``n`` and ``d``.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import scipy.linalg

from ..moments import iter_chunks
from ..networks import TwoLayerNetwork
from ..tensor import jennrich
from ._gaussian import hidden_and_output
from ._result import Recovery

__all__ = [
    "recover_few_outputs",
    "second_moment",
    "hermite4_contraction",
    "C2",
    "C4",
]

#: ``E[relu(g) He2(g)]`` for ``g ~ N(0, 1)``.
C2 = 1.0 / np.sqrt(2.0 * np.pi)
#: ``E[relu(g) He4(g)]`` for ``g ~ N(0, 1)``, ``He4 = g^4 - 6 g^2 + 3``.
C4 = -1.0 / np.sqrt(2.0 * np.pi)

#: noise floor = this many times the estimated spectral edge of the sampling noise.
FLOOR_FACTOR = 1.5
#: finish iterations per start (step 4).
MAX_FINISH_ITER = 40


# --------------------------------------------------------------------------
# step 1: subspace
# --------------------------------------------------------------------------
def second_moment(X, y, *, chunk_size: int = 16384):
    """``M2 = E[y (x x^T - I)]`` and its sampling-noise floor (step 1).

    ``y`` first loses its mean and its linear part ``b . x`` (``b = E[y x]``):
    neither changes the expectation (``E[x x^T - I] = 0``, odd moments vanish)
    but both add noise.

    Returns
    -------
    M2 : ndarray of shape (d, d)
    floor : float
        ``FLOOR_FACTOR`` times ``2 sqrt(d) sigma``, the spectral edge of a
        symmetric noise matrix whose entries have the estimated mean variance
        ``sigma^2`` of the entries of ``M2``: eigenvalues below it are noise.
    """
    n, d = X.shape
    mean = float(np.mean(y))
    b = np.zeros(d)
    for sl in iter_chunks(n, chunk_size):
        b += np.asarray(X[sl], dtype=float).T @ (y[sl] - mean)
    b /= n
    M = np.zeros((d, d))
    S = np.zeros((d, d))
    tot, tot2 = 0.0, 0.0
    q2 = np.zeros(d)
    q4 = np.zeros(d)
    for sl in iter_chunks(n, chunk_size):
        Xc = np.asarray(X[sl], dtype=float)
        r = y[sl] - mean - Xc @ b
        M += (Xc * r[:, None]).T @ Xc
        tot += r.sum()
        r2 = r * r
        X2 = Xc * Xc
        S += (X2 * r2[:, None]).T @ X2  # sum r^2 x_a^2 x_b^2
        tot2 += r2.sum()
        q2 += r2 @ X2
        q4 += r2 @ (X2 * X2)
    M = (M - tot * np.eye(d)) / n
    # diagonal entries: sum r^2 (x_a^2 - 1)^2 = sum r^2 x_a^4 - 2 r^2 x_a^2 + r^2
    S[np.diag_indices(d)] = q4 - 2 * q2 + tot2
    var = S / n**2 - (M**2) / n  # variance of the mean of each entry
    sigma = np.sqrt(max(float(np.mean(np.maximum(var, 0.0))), 0.0))
    return M, FLOOR_FACTOR * 2.0 * np.sqrt(d) * sigma


def _hermite4_full(X, r, a, *, chunk_size):
    """``E[r He4(x)(a, a, ., .)]`` in full dimension (step 1's fallback), shape (d, d)."""
    n, d = X.shape
    out = np.zeros((d, d))
    for sl in iter_chunks(n, chunk_size):
        out += hermite4_contraction(np.asarray(X[sl], dtype=float), r[sl], a, a) * (
            sl.stop - sl.start)
    return out / n


def _subspace(X, y, k, M2, floor, *, rng, chunk_size):
    """Orthonormal ``Q`` (d, k) of ``span(V)``, and ``k`` when not given (step 1).

    ``M2`` and its ``floor`` come from :func:`second_moment` (computed once per
    recovery, whatever ``k`` is tried).
    """
    d = X.shape[1]
    lam, vec = np.linalg.eigh(M2)
    order = np.argsort(-np.abs(lam))
    lam, vec = lam[order], vec[:, order]
    above = int(np.count_nonzero(np.abs(lam) > floor))
    info = {"second_moment_eigenvalues": lam, "noise_floor": floor,
            "eigenvalues_above_floor": above}
    notes = []
    if k is None:
        k = above
        notes.append(f"n_hidden was not given: inferred k = {k} from the eigenvalues of "
                     f"E[y (x x^T - I)] above the noise floor {floor:.2e}.")
        info["n_hidden_inferred"] = k
        return vec[:, :k], k, info, notes
    if above >= k:
        return vec[:, :k], k, info, notes
    # degenerate M2: the missing directions from 4th-moment contractions
    # T4(a, a, ., .) = c4 sum_i a_i (a . vhat_i)^2 vhat_i vhat_i^T, with the part
    # M2 already gave projected out on both sides
    n = X.shape[0]
    r = y - y.mean()
    found = vec[:, :above]
    Pperp = np.eye(d) - found @ found.T
    G = np.zeros((d, d))
    for _ in range(3):
        T = _hermite4_full(X, r, rng.standard_normal(d) / np.sqrt(d), chunk_size=chunk_size)
        T = Pperp @ T @ Pperp
        G += T @ T / max(np.linalg.norm(T, 2) ** 2, 1e-300)
    w, U = np.linalg.eigh(G)
    Q = np.hstack([found, U[:, np.argsort(-w)[: k - above]]])
    info["fourth_moment_subspace"] = True
    notes.append(f"E[y (x x^T - I)] had only {above} of {k} eigenvalues above the noise "
                 f"floor; 4th-moment contractions supplied the rest of the subspace "
                 f"(n = {n}).")
    return Q, k, info, notes


# --------------------------------------------------------------------------
# step 2: 4th Hermite moment and Jennrich
# --------------------------------------------------------------------------
def hermite4_contraction(Z, r, a, b):
    """``mean_j r_j H4(z_j)(a, b, ., .)`` for the multivariate Hermite tensor (step 2).

    ``H4(z)_{pqst} = z_p z_q z_s z_t - (6 terms delta z z) + (3 terms delta delta)``;
    contracted with ``a`` and ``b`` in the first two slots it is, per sample,

    ``(a.z)(b.z) z z^T - (a.b) z z^T - (b.z)(a z^T + z a^T) - (a.z)(b z^T + z b^T)
    - (a.z)(b.z) I + (a.b) I + a b^T + b a^T``,

    so the whole sum costs ``O(n p^2)``. For ``y = relu(v . z)``, ``|v| = 1``:
    ``E[y H4(z)(a, b)] = C4 (a.v)(b.v) v v^T``.

    Parameters
    ----------
    Z : ndarray of shape (n, p)
    r : ndarray of shape (n,)
    a, b : ndarray of shape (p,)

    Returns
    -------
    ndarray of shape (p, p), symmetric.
    """
    n, p = Z.shape
    za = Z @ a
    zb = Z @ b
    ab = float(a @ b)
    w1 = r * (za * zb - ab)
    M = (Z * w1[:, None]).T @ Z
    va = Z.T @ (r * za)
    vb = Z.T @ (r * zb)
    M -= np.outer(a, vb) + np.outer(vb, a) + np.outer(b, va) + np.outer(va, b)
    M -= w1.sum() * np.eye(p)
    M += r.sum() * (np.outer(a, b) + np.outer(b, a))
    return M / n


def _low_degree_residual(Z, y):
    """``y`` minus its least-squares fit on Hermite degree <= 2 in ``z`` (step 2)."""
    n, p = Z.shape
    iu = np.triu_indices(p)
    F = np.hstack([np.ones((n, 1)), Z, (Z[:, :, None] * Z[:, None, :])[:, iu[0], iu[1]]])
    coef = np.linalg.lstsq(F, y, rcond=None)[0]
    return y - F @ coef


def _moment_directions(Z, r, rng):
    """Directions ``p_i`` (columns, unit, up to sign) from two H4 contractions (step 2).

    Jennrich on the two contractions; a complex-conjugate pair of eigenvalues
    (sampling noise) gives the real and the imaginary part of its eigenvector, two
    distinct directions of the same invariant plane (``split_complex``).
    """
    p = Z.shape[1]
    a, b, c, e = rng.standard_normal((4, p))
    Ta = hermite4_contraction(Z, r, a, b)
    Tb = hermite4_contraction(Z, r, c, e)
    return jennrich(Ta, Tb, split_complex=True)


def _weights_and_signs(M2Q, m1, P):
    """``a_i = u_i ||v_i||`` from ``Q^T M2 Q`` and signs from ``E[y z]`` (step 3).

    ``Q^T M2 Q = c2 sum_i a_i p_i p_i^T`` (least squares over the ``a_i``) and
    ``E[y z] = (1/2) sum_i a_i s_i p_i``; ``s_i = sign(beta_i / a_i)``.
    """
    p = P.shape[1]
    A = np.stack([np.outer(P[:, i], P[:, i]).ravel() for i in range(p)], axis=1)
    alpha = np.linalg.lstsq(A, M2Q.ravel() / C2, rcond=None)[0]
    beta = 2.0 * np.linalg.lstsq(P, m1, rcond=None)[0]
    signs = np.where(beta * alpha < 0, -1.0, 1.0)
    return alpha, signs


# --------------------------------------------------------------------------
# step 4: the exact finish
# --------------------------------------------------------------------------
def _pattern_solve(Xs, ys, E):
    """Least squares ``y = sum_i 1[e_i . x > 0] (w_i . x) + l . x`` on rows ``Xs`` (step 4).

    Returns ``(W, l, relative residual on those rows, full_rank)``; without full
    column rank (e.g. rows where some unit is always on) the solution is not
    determined and must not be trusted, whatever its residual.
    """
    N, d = Xs.shape
    k = E.shape[0]
    act = (Xs @ E.T) > 0  # (N, k)
    D = np.empty((N, (k + 1) * d))
    for i in range(k):
        D[:, i * d:(i + 1) * d] = Xs * act[:, i:i + 1]
    D[:, k * d:] = Xs
    # normal equations + one refinement step (as in hidden_and_output): the
    # Gaussian design is well conditioned, and this is several times faster
    # than an SVD least squares (d = 50, k = 10: 15 s -> 5 s per recovery)
    try:
        c = scipy.linalg.cho_factor(D.T @ D, check_finite=False)
        sol = scipy.linalg.cho_solve(c, D.T @ ys, check_finite=False)
        sol += scipy.linalg.cho_solve(c, D.T @ (ys - D @ sol), check_finite=False)
        piv = np.abs(np.diag(c[0]))
        full = bool(piv.min() > 1e-6 * piv.max())  # a zero pivot: rank deficient
    except np.linalg.LinAlgError:
        sol = np.linalg.lstsq(D, ys, rcond=None)[0]
        full = False
    res = np.linalg.norm(ys - D @ sol) / max(np.linalg.norm(ys), 1e-300)
    return sol[: k * d].reshape(k, d), sol[k * d:], float(res), full


def _choose_rows(marg, n_rows, tau, rng):
    """``n_rows`` rows at random among those with margin ``> tau`` (step 4).

    At random, not the largest margins: for large n the rows of largest smallest
    margin crowd near the directions where the units' patterns are fixed (e.g.
    exactly one of two units on), which leaves the solve rank deficient. When
    fewer than ``n_rows`` rows clear ``tau`` (or ``tau`` is None), the pool is
    the ``max(n_rows, n / 4)`` rows of largest margin.
    """
    n = marg.size
    pool = np.flatnonzero(marg > tau) if tau is not None else np.empty(0, int)
    if pool.size < n_rows:
        size = min(n, max(n_rows, n // 4))
        pool = np.argpartition(-marg, size - 1)[:size]
    return rng.choice(pool, n_rows, replace=False) if pool.size > n_rows else pool


def _finish(X, y, E, n_rows, *, rng, exact_tol=1e-10):
    """Iterate step 4 from directions ``E`` (k, d, unit rows).

    Each iteration picks ``n_rows`` rows whose patterns are sure by the smallest
    margin ``min_i |e_i . x|``, solves the fixed-pattern least squares and takes
    the new directions ``e_i <- sign(w_i . e_i) w_i / ||w_i||``. A pattern is
    wrong only where ``|e_i . x| < |(e_i - vhat_i) . x|``; the last step's change
    of directions estimates that error, so rows must clear ``4 sqrt(d)`` times it
    (a safe margin: the change can underestimate the error). (Margins
    normalised by ``||x||`` were tried first: they prefer rows with a small
    component off ``span(V)`` and got worse as n grew; so did taking the rows of
    largest margin, see :func:`_choose_rows`.)

    Returns ``(E, W, l, converged, iterations, residual)``.
    """
    res = np.inf
    W = lvec = None
    best = np.inf
    stall = 0
    tau = None
    for it in range(1, MAX_FINISH_ITER + 1):
        marg = np.min(np.abs(X @ E.T), axis=1)
        rows = _choose_rows(marg, n_rows, tau, rng)
        W, lvec, res, full = _pattern_solve(X[rows], y[rows], E)
        nw = np.linalg.norm(W, axis=1)
        if np.any(nw <= 1e-12 * max(nw.max(), 1e-300)):
            return E, W, lvec, False, it, res  # a unit vanished
        E_new = W / nw[:, None]
        E_new *= np.where(np.einsum("ij,ij->i", E_new, E) < 0, -1.0, 1.0)[:, None]
        change = float(np.max(np.linalg.norm(E_new - E, axis=1)))
        E = E_new
        if full and res <= exact_tol and change <= 1e-9:
            return E, W, lvec, True, it, res
        tau = 4.0 * change * np.sqrt(X.shape[1]) if full else None
        if res < 0.5 * best:
            best, stall = res, 0
        else:
            stall += 1
            if stall >= 6:
                break
    return E, W, lvec, False, it, res


def _network_from_patterns(E, W, lvec):
    """Orient the units: ``l = -sum_{flipped} w_i`` gives which directions flip (step 4)."""
    c = np.linalg.lstsq(W.T, lvec, rcond=None)[0]  # ideally each c_i in {0, -1}
    flip = c < -0.5
    V = np.where(flip[:, None], -E, E)
    return V, c


def _duplicate(E, tol=0.999):
    G = np.abs(E @ E.T)
    np.fill_diagonal(G, 0.0)
    return bool(G.size and G.max() > tol)


# --------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------
def recover_few_outputs(
    X, Y, k, *, activation, rng, tol, max_starts, time_limit, chunk_size, diagnostics,
) -> Recovery:
    """Recover ``Y = relu(X V^T) U^T`` with ``rank(U) < k`` (e.g. m = 1) [BJW] (docs/algorithms.md 3).

    Steps 1-6 of the module docstring. Arguments are validated by
    :func:`relurecover.recover_two_layer`.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Inputs; standard Gaussian for the moment steps (1-3). The finish (4) and
        the certificate (6) do not assume it.
    Y : ndarray of shape (n, m)
        Labels; for ``m > 1`` a random combination ``y = Y g`` is recovered
        first (its units are those of ``Y``), then ``U`` from all of ``Y``.
    k : int or None
        Hidden units; None infers it from the eigenvalues of the second moment
        above its noise floor (the message says so). A unit with a small
        ``|u_i| ||v_i||`` can hide under that floor: when the inferred ``k``
        certifies nothing, ``k + 1`` and ``k + 2`` are tried (their subspaces
        completed from the 4th moment) and the first certified one is kept.
    activation : Activation
        Must be ReLU: the fixed-pattern solve of step 4 is linear only for ReLU.
    rng : numpy.random.Generator
        Every random step (contractions, output combination, starts).
    tol : float
        Certificate threshold on ``||Y - relu(X V^T) U^T|| / ||Y||``.
    max_starts : int or None
        Starts of the finish; None means ``max(30, 10 k)``.
    time_limit : float or None
        Seconds after which the search stops.
    chunk_size : int
        Rows per chunk for the moment passes.
    diagnostics : dict
        Merged into the result's diagnostics.

    Returns
    -------
    Recovery
        ``method="few-outputs"``; ``exact`` only when all ``k`` units were found
        and the relative residual on all rows is at most ``tol``.

    Notes
    -----
    Cost: ``O(n d^2)`` for the moments, then ``O(n k d + (k d)^3)`` per finish
    iteration (at most ``MAX_FINISH_ITER`` per start). The moment start needs
    polynomially many Gaussian samples; the random-start fallback may need a
    number of starts exponential in ``k`` (the problem is NP-hard for general
    inputs even for k = 2 [BJW]).
    """
    if not activation.is_relu:
        raise ValueError(
            f"method='few-outputs' supports only activation='relu' (got "
            f"{activation.name!r}): its exact finish solves for the weights with the "
            "activation pattern fixed, which is a linear least-squares problem only for "
            "ReLU (f(t) = t on the active side)."
        )
    t_all = time.perf_counter()
    diag = dict(diagnostics or {})
    m = Y.shape[1]
    if m == 1:
        y = Y[:, 0].astype(float)
    else:  # one random combination of the outputs, for every k tried
        g = rng.standard_normal(m)
        y = Y @ (g / np.linalg.norm(g))
        diag["output_combination"] = g
    M2, floor = second_moment(X, y, chunk_size=chunk_size)
    timings = {"second moment": time.perf_counter() - t_all}
    kw = dict(activation=activation, rng=rng, tol=tol, max_starts=max_starts,
              chunk_size=chunk_size, diagnostics=diag, y=y, M2=M2, floor=floor,
              timings=timings)
    res = _recover(X, Y, k, time_limit=time_limit, **kw)
    if k is not None or res.exact or res.n_hidden == 0:
        return res
    k0 = res.n_hidden
    for k_try in range(k0 + 1, min(k0 + 2, X.shape[1]) + 1):
        left = None if time_limit is None else time_limit - (time.perf_counter() - t_all)
        if left is not None and left <= 0:
            break
        res2 = _recover(X, Y, k_try, time_limit=left, **kw)
        if res2.exact:
            note = (f" n_hidden was not given: {k0} eigenvalues of E[y (x x^T - I)] were "
                    f"above the noise floor, but {k0} units certified nothing; k = "
                    f"{k_try} (subspace completed from the 4th moment) did.")
            diag = dict(res2.diagnostics, n_hidden_inferred=k_try,
                        n_hidden_from_floor=k0)
            return dataclasses.replace(res2, message=res2.message + note,
                                       diagnostics=diag)
    return res


def _recover(X, Y, k, *, activation, rng, tol, max_starts, time_limit, chunk_size,
             diagnostics, y, M2, floor, timings) -> Recovery:
    """Steps 1-6 for one ``k`` (None: inferred from the floor); see :func:`recover_few_outputs`.

    ``y`` is the scalar label (``Y`` itself or a combination of its outputs), ``M2``
    and ``floor`` its second moment; ``timings`` holds the stages shared by every
    ``k`` tried.
    """
    t_all = time.perf_counter()
    deadline = np.inf if time_limit is None else t_all + time_limit
    timings = dict(timings)
    diag: dict = dict(diagnostics)
    n, d = X.shape
    Xf = np.asarray(X, dtype=float)
    k_given = k

    # --- step 1 ----------------------------------------------------------------
    t0 = time.perf_counter()
    Q, k, info, notes = _subspace(Xf, y, k, M2, floor, rng=rng, chunk_size=chunk_size)
    diag.update(info)
    timings["subspace"] = time.perf_counter() - t0
    if k == 0:
        msg = ("not recovered: found 0 of 0 units (no eigenvalue of E[y (x x^T - I)] is "
               "above the noise floor, so k cannot be inferred; pass n_hidden). "
               + " ".join(notes))
        return Recovery(None, False, np.inf, msg, 0, 0, "few-outputs", timings, diag)
    if k > d:
        raise ValueError(f"k = {k} > d = {d}: the units must be linearly independent.")

    # --- steps 2-3 ------------------------------------------------------------
    t0 = time.perf_counter()
    Z = Xf @ Q
    r = _low_degree_residual(Z, y)
    m1 = Z.T @ (y - y.mean()) / n
    M2Q = Q.T @ M2 @ Q
    P = _moment_directions(Z, r, rng)
    alpha, signs = _weights_and_signs(M2Q, m1, P)
    E0 = (Q @ (P * signs)).T
    E0 /= np.linalg.norm(E0, axis=1, keepdims=True)
    diag.update(moment_weights=alpha, moment_signs=signs)
    timings["moments and tensor"] = time.perf_counter() - t0

    # --- steps 4-5 --------------------------------------------------------------
    t0 = time.perf_counter()
    if max_starts is None:
        max_starts = max(30, 10 * k)
    p_unknowns = (k + 1) * d
    n_rows = min(n, max(6 * p_unknowns, 1000))
    found = None
    starts = 0
    best_res = np.inf
    best = None
    stop_reason = ""
    kinds = []
    while starts < max_starts:
        if time.perf_counter() > deadline:
            stop_reason = f"the time limit of {time_limit} s was reached"
            break
        if starts == 0:
            E, kind = E0, "moment"
        elif starts % 4 in (1, 2):  # fresh random contractions of the 4th moment
            # (the best kind of start: 12 of 20 converged on Safran-Shamir, k = 10,
            # n = 5000, against 11 perturbed and 5 random)
            E, kind = (Q @ _moment_directions(Z, r, rng)).T, "jennrich"
        elif starts % 4 == 3:  # the moment start, perturbed
            E = E0 + 0.3 * rng.standard_normal(E0.shape) @ (Q @ Q.T) / np.sqrt(k)
            kind = "perturbed"
        else:  # random directions in the subspace (independent Gaussian: random
            # orthonormal frames were tried and converged far less often on
            # Safran-Shamir, 0 of 20 against 6 of 20 at k = 10)
            E, kind = (Q @ rng.standard_normal((k, k))).T, "random"
        E = E / np.linalg.norm(E, axis=1, keepdims=True)
        starts += 1
        kinds.append(kind)
        if _duplicate(E):
            continue
        E, W, lvec, conv, its, res = _finish(Xf, y, E, n_rows, rng=rng)
        if res < best_res:
            best_res, best = res, (E, W, lvec)
        if conv and not _duplicate(E):
            found = (E, W, lvec)
            diag["finish_iterations"] = its
            break
    else:
        stop_reason = f"the budget of max_starts={max_starts} starts was spent"
    diag.update(starts_used=starts, start_kinds=kinds, finish_residual=best_res)
    timings["finish"] = time.perf_counter() - t0

    # --- step 6 -------------------------------------------------------------
    t0 = time.perf_counter()
    cand = found if found is not None else best
    if cand is None:
        timings["output layer"] = time.perf_counter() - t0
        msg = (f"not recovered: found 0 of {k} units ({stop_reason or 'no start ran'}). "
               + " ".join(notes))
        return Recovery(None, False, np.inf, msg.strip(), 0, k, "few-outputs", timings, diag)
    V, c = _network_from_patterns(*cand)
    diag["flip_coefficients"] = c
    U, cert, rank_H = hidden_and_output(Xf, Y, V, activation, chunk_size=chunk_size)
    timings["output layer"] = time.perf_counter() - t0
    diag["rank_hidden"] = rank_H
    net = TwoLayerNetwork(U, V, activation=activation)
    n_found = k if found is not None else 0
    exact = bool(found is not None and rank_H == k and cert <= tol)
    if exact:
        msg = (f"exact: all {k} units found (fixed-pattern solve at residual "
               f"{best_res:.1e}); relative residual on all {n} rows {cert:.1e} <= "
               f"tol={tol:g}.")
    else:
        if found is None:
            why = (stop_reason or "no start converged") + (
                f"; the best start's fixed-pattern solve left relative residual "
                f"{best_res:.1e}, so its units are estimates, not certified")
        else:
            n_found = 0
            why = (f"the finish converged on its rows but the network does not reproduce "
                   f"the labels (relative residual {cert:.1e} > tol={tol:g}, rank of "
                   f"relu(X V^T) {rank_H} of {k}): more units than {k}, noise, or "
                   "labels of another model")
        msg = f"not exact: found {n_found} of {k} units ({why})."
    if k_given is None or notes:
        msg += " " + " ".join(notes)
    return Recovery(net, exact, cert, msg, n_found, k, "few-outputs", timings, diag)
