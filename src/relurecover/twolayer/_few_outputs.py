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

from .._progress import report
from ..moments import C2, hermite4_contraction, hermite4_moment, second_moment
from ..networks import TwoLayerNetwork
from ..tensor import jennrich
from ._output import fit_output_layer
from ._result import Recovery, unit_verdict

# The moment estimators of steps 1-2 (``second_moment``, ``hermite4_contraction``,
# ``hermite4_moment``) and the constants ``C2``, ``C4`` live in ``relurecover.moments``.
__all__ = ["recover_few_outputs"]

#: finish iterations per start (step 4), and iterations without halving the
#: residual after which a start is given up.
MAX_FINISH_ITER = 40
FINISH_STALL = 6


# --------------------------------------------------------------------------
# step 1: subspace
# --------------------------------------------------------------------------
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
        T = hermite4_moment(X, r, rng.standard_normal(d) / np.sqrt(d), chunk_size=chunk_size)
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
    # normal equations + one refinement step (as in _output.fit_output_layer): the
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


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Finish:
    """What one run of the finish (step 4) ended with.

    ``E`` the directions (k, d), ``W``/``lvec`` the last fixed-pattern solve (its
    unit weights and free linear term), ``converged`` whether it reached the
    exact tolerance, ``iterations`` and ``residual`` (relative, on its rows).
    """

    E: np.ndarray
    W: np.ndarray | None
    lvec: np.ndarray | None
    converged: bool
    iterations: int
    residual: float


def _finish(X, y, E, n_rows, *, rng, exact_tol=1e-10) -> _Finish:
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
        if np.any(nw <= 1e-12 * max(nw.max(), 1e-300)):  # a unit vanished
            return _Finish(E=E, W=W, lvec=lvec, converged=False, iterations=it,
                           residual=res)
        E_new = W / nw[:, None]
        E_new *= np.where(np.einsum("ij,ij->i", E_new, E) < 0, -1.0, 1.0)[:, None]
        change = float(np.max(np.linalg.norm(E_new - E, axis=1)))
        E = E_new
        if full and res <= exact_tol and change <= 1e-9:
            return _Finish(E=E, W=W, lvec=lvec, converged=True, iterations=it,
                           residual=res)
        tau = 4.0 * change * np.sqrt(X.shape[1]) if full else None
        if res < 0.5 * best:
            best, stall = res, 0
        else:
            stall += 1
            if stall >= FINISH_STALL:
                break
    return _Finish(E=E, W=W, lvec=lvec, converged=False, iterations=it, residual=res)


def _network_from_patterns(E, W, lvec, d=None):
    """Orient the units: ``l = -sum_{flipped} w_i`` gives which directions flip (step 4).

    With rows ``[x, 1]`` the free term's constant also holds the output bias, so
    only its first ``d`` coordinates are matched (``d`` None: all of them).
    """
    d = W.shape[1] if d is None else d
    c = np.linalg.lstsq(W[:, :d].T, lvec[:d], rcond=None)[0]  # ideally each c_i in {0, -1}
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
    bias_column=None, offset=None,
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
    bias_column, offset : ndarray of shape (n,) or None
        Accepted for a common signature: this path has no hidden biases
        (``bias_column`` unused); the output bias ``c`` is fitted with ``U``
        (``offset``: what it multiplies on each row, None for ones).

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
              timings=timings, offset=offset)
    res = _recover(X, Y, k, time_limit=time_limit, **kw)
    if k is not None or res.exact or res.n_hidden == 0:
        return res
    k0 = res.n_hidden
    # every attempt's stages count: the failed ones under "k = j: <stage>"
    spent = {f"k = {k0}: {name}": t for name, t in res.timings.items()
             if name not in timings}
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
                                       diagnostics=diag,
                                       timings={**spent, **res2.timings})
        spent.update({f"k = {k_try}: {name}": t for name, t in res2.timings.items()
                      if name not in timings})
    own = {name: t for name, t in res.timings.items() if name in timings}
    return dataclasses.replace(res, timings={**own, **spent})


def _recover(X, Y, k, *, activation, rng, tol, max_starts, time_limit, chunk_size,
             diagnostics, y, M2, floor, timings, offset=None) -> Recovery:
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
        return Recovery(network=None, exact=False, certificate=np.inf, message=msg,
                        n_found=0, n_hidden=0, method="few-outputs", timings=timings,
                        diagnostics=diag)
    if k > d:
        raise ValueError(f"k = {k} > d = {d}: the units must be linearly independent.")

    # --- steps 2-3 ------------------------------------------------------------
    t0 = time.perf_counter()
    Z = Xf @ Q
    r = _low_degree_residual(Z, y)
    m1 = Z.T @ (y - y.mean()) / n
    P = _moment_directions(Z, r, rng)
    alpha, signs = _weights_and_signs(Q.T @ M2 @ Q, m1, P)
    E0 = (Q @ (P * signs)).T
    E0 /= np.linalg.norm(E0, axis=1, keepdims=True)
    diag.update(moment_weights=alpha, moment_signs=signs)
    timings["moments and tensor"] = time.perf_counter() - t0

    # --- steps 4-5 --------------------------------------------------------------
    # on rows [x, 1]: a unit is (v, b), and the free affine term of the pattern
    # solve carries the output bias (docs/algorithms.md 6)
    t0 = time.perf_counter()
    Xa = np.hstack([Xf, np.ones((n, 1))])
    E0 = np.hstack([E0, np.zeros((k, 1))])
    found, best, stop_reason = _search(Xa, y, E0, Q, Z, r, k, rng=rng,
                                       max_starts=max_starts, deadline=deadline,
                                       time_limit=time_limit, diag=diag)
    timings["finish"] = time.perf_counter() - t0
    return _certify(Xf, Y, k, found, best, stop_reason, notes, k_given is None,
                    activation=activation, tol=tol, chunk_size=chunk_size, diag=diag,
                    timings=timings, offset=offset)


def _start(i, E0, Q, Z, r, k, rng):
    """The ``i``-th start of step 5 and its kind: the moment start first, then
    fresh random contractions of the 4th moment (two turns in four: the best
    kind, 12 of 20 converged on Safran-Shamir, k = 10, n = 5000, against 11
    perturbed and 5 random), the moment start perturbed, and random directions
    in the subspace (independent Gaussian: random orthonormal frames converged
    far less often on Safran-Shamir, 0 of 20 against 6 of 20 at k = 10)."""
    if i == 0:
        return E0, "moment"
    if i % 4 in (1, 2):
        return (Q @ _moment_directions(Z, r, rng)).T, "jennrich"
    if i % 4 == 3:
        return E0 + 0.3 * rng.standard_normal(E0.shape) @ (Q @ Q.T) / np.sqrt(k), "perturbed"
    return (Q @ rng.standard_normal((k, k))).T, "random"


def _search(Xf, y, E0, Q, Z, r, k, *, rng, max_starts, deadline, time_limit, diag):
    """Steps 4-5: the finish from the moment start, then from fallback starts.

    Returns ``(found, best, stop_reason)``: the converged :class:`_Finish` (or
    None) and the one of smallest residual.
    """
    n, d = Xf.shape
    if max_starts is None:
        max_starts = max(30, 10 * k)
    n_rows = min(n, max(6 * (k + 1) * d, 1000))  # 6 rows per unknown of step 4
    found = best = None
    starts = 0
    stop_reason = ""
    kinds = []
    while starts < max_starts:
        if time.perf_counter() > deadline:
            stop_reason = f"the time limit of {time_limit} s was reached"
            break
        E, kind = _start(starts, E0[:, : Q.shape[0]], Q, Z, r, k, rng)
        if E.shape[1] < d:  # rows [x, 1]: the start's bias is 0
            E = np.hstack([E, np.zeros((E.shape[0], d - E.shape[1]))])
        E = E / np.linalg.norm(E, axis=1, keepdims=True)
        starts += 1
        report("rounding", starts / max_starts)
        kinds.append(kind)
        if _duplicate(E):
            continue
        fin = _finish(Xf, y, E, n_rows, rng=rng)
        if best is None or fin.residual < best.residual:
            best = fin
        if fin.converged and not _duplicate(fin.E):
            found = fin
            diag["finish_iterations"] = fin.iterations
            break
    else:
        stop_reason = f"the budget of max_starts={max_starts} starts was spent"
    report("rounding", 1.0)
    report("output layer", 0.0)
    diag.update(starts_used=starts, start_kinds=kinds,
                finish_residual=np.inf if best is None else best.residual)
    return found, best, stop_reason


def _certify(Xf, Y, k, found, best, stop_reason, notes, k_inferred, *, activation, tol,
             chunk_size, diag, timings, offset=None) -> Recovery:
    """Step 6: the network from the patterns, ``U`` and the certificate on all rows."""
    t0 = time.perf_counter()
    n = Xf.shape[0]

    def result(**kw):
        timings["output layer"] = time.perf_counter() - t0
        report("output layer", 1.0)
        return Recovery(n_hidden=k, method="few-outputs", timings=timings,
                        diagnostics=diag, **kw)

    cand = found if found is not None else best
    if cand is None:
        msg = (f"not recovered: found 0 of {k} units ({stop_reason or 'no start ran'}). "
               + " ".join(notes))
        return result(network=None, exact=False, certificate=np.inf, message=msg.strip(),
                      n_found=0)
    d = Xf.shape[1]
    Va, c = _network_from_patterns(cand.E, cand.W, cand.lvec, d)
    diag["flip_coefficients"] = c
    V, b = Va[:, :d], (Va[:, d] if Va.shape[1] > d else np.zeros(len(Va)))
    out = fit_output_layer(Xf, Y, V, activation, b=b, offset=offset, chunk_size=chunk_size)
    diag["rank_hidden"] = out.rank_hidden
    net = TwoLayerNetwork(out.U, out.V, activation=activation, b=out.b, c=out.c)
    exact = bool(found is not None and out.rank_hidden == k and out.certificate <= tol)
    n_found = k if exact else 0
    if exact:
        msg = unit_verdict(exact=True, k=k, n_found=k, certificate=out.certificate, tol=tol,
                           detail=f"fixed-pattern solve at residual {cand.residual:.1e}, "
                                  f"certificate on all {n} rows")
    elif found is None:
        msg = unit_verdict(exact=False, k=k, n_found=0, certificate=out.certificate,
                           tol=tol, stop_reason=(stop_reason or "no start converged") + (
                               f"; the best start's fixed-pattern solve left relative "
                               f"residual {best.residual:.1e}, so its units are "
                               "estimates, not certified"))
    else:
        msg = unit_verdict(exact=False, k=k, n_found=0, certificate=out.certificate,
                           tol=tol, stop_reason=(
                               f"the finish converged on its rows but the network does "
                               f"not reproduce the labels (rank of relu(X V^T) "
                               f"{out.rank_hidden} of {k}): more units than {k}, noise, "
                               "or labels of another model"))
    if k_inferred or notes:
        msg += " " + " ".join(notes)
    return result(network=net, exact=exact, certificate=out.certificate, message=msg,
                  n_found=n_found)
