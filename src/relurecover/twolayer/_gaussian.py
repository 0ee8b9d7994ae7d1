"""Exact recovery of two-layer networks from Gaussian samples [BJW] (docs/algorithms.md 1).

Steps, as in ``docs/algorithms.md`` section 1:

1. first-moment subspace ``Q`` (``E[y x^T] = U V / 2``);
2. Jennrich on contractions of the projected second moment;
3. signs from the first moment;
4. the rounding step, exact, iterated from the moment starts (1.4-1.5);
5. deflated starts, then random starts, until all ``k`` units are certified (1.6);
6. ``U`` by least squares and the certificate ``||Y - U f(V X)|| / ||Y||``.

Labels of full numerical rank that no network certifies are noisy (section 2):
``recover_gaussian`` then hands them to ``_noisy`` (moment start, least-squares
refinement, noise level and standard errors).
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np
import scipy.linalg

from ..exceptions import AssumptionWarning
from ..moments import (
    contracted_second_moments,
    first_moment,
    iter_chunks,
    second_moment_weights,
)
from ..networks import TwoLayerNetwork
from ..tensor import deflated_jennrich, jennrich
from ._noisy import noisy_recovery, spectral_gap_rank
from ._result import Recovery
from ._rounding import UnitSearch

__all__ = ["recover_gaussian", "column_space", "hidden_and_output"]

#: relative singular-value threshold for the numerical rank of ``Y``.
RANK_RTOL = 1e-9


def column_space(Y: np.ndarray, rtol: float = RANK_RTOL):
    """Orthonormal basis of the column space of ``Y`` and its singular values.

    Returns ``(B, s, rank)``: ``B`` of shape ``(n, m)`` (all left singular vectors),
    ``s`` the singular values, and the numerical rank ``#{s_i > rtol * s_0}``.
    """
    B, s, _ = np.linalg.svd(Y, full_matrices=False)
    rank = int(np.count_nonzero(s > rtol * s[0])) if s.size and s[0] > 0 else 0
    return B, s, rank


def hidden_and_output(X, Y, V, activation, *, chunk_size=16384, return_hidden=False):
    """``U`` by least squares on ``H = f(X V^T)`` and the relative residual (step 6).

    Reads ``X`` once, in chunks. Returns ``(U, certificate, rank_H)``, and ``H``
    as a fourth element with ``return_hidden`` (for callers that inspect the
    hidden layer without reading ``X`` again).
    """
    n = X.shape[0]
    k = V.shape[0]
    H = np.empty((n, k))
    for sl in iter_chunks(n, chunk_size):
        H[sl] = activation(np.asarray(X[sl], dtype=float) @ V.T)
    rank_H = int(np.linalg.matrix_rank(H[: min(n, 20 * k + 1000)]))
    # normal equations + one refinement step: float64 accuracy for the well
    # conditioned H of a Gaussian design, 5x cheaper than an SVD least squares
    try:
        c = scipy.linalg.cho_factor(H.T @ H, check_finite=False)
        Ut = scipy.linalg.cho_solve(c, H.T @ Y, check_finite=False)
        res = Y - H @ Ut
        Ut += scipy.linalg.cho_solve(c, H.T @ res, check_finite=False)
    except np.linalg.LinAlgError:
        Ut = np.linalg.lstsq(H, Y, rcond=None)[0]
    res = Y - H @ Ut
    cert = float(np.linalg.norm(res) / max(np.linalg.norm(Y), 1e-300))
    if return_hidden:
        return Ut.T, cert, int(rank_H), H
    return Ut.T, cert, int(rank_H)


def _recover_exact(
    X, Y, k, *, activation, rng, tol, max_starts, time_limit, chunk_size, work_rows,
    infer_hidden=False,
) -> Recovery:
    """The Gaussian exact path; arguments are validated by ``recover_two_layer``."""
    timings: dict[str, float] = {}
    diag: dict = {}
    t_all = time.perf_counter()
    n, d = X.shape
    m = Y.shape[1]

    # --- working rows: the rounding needs only a sample of rows (1.6) ---------
    t0 = time.perf_counter()
    n_work = n if work_rows is None else min(n, work_rows)
    rows = np.sort(rng.choice(n, n_work, replace=False)) if n_work < n else None
    Xw = np.asarray(X if rows is None else X[rows], dtype=float)
    Yw = np.asarray(Y if rows is None else Y[rows], dtype=float)
    Bfull, s, rank = column_space(Yw)
    diag.update(rank_Y=rank, singular_values_Y=s, n_work=n_work)
    timings["column space"] = time.perf_counter() - t0

    full_rank = rank == min(m, n_work)
    if infer_hidden and full_rank and activation.is_relu:
        # noise lifts the zero tail of Y's spectrum to a flat floor (docs/algorithms.md 2)
        k_gap = spectral_gap_rank(s, n_work, strict=True)
        if k_gap is not None:
            k = diag["n_hidden_from_spectral_gap"] = min(k_gap, d)
    if full_rank and rank > k and activation.is_relu:
        # noisy labels: no exact answer exists, so skip the rounding (docs/algorithms.md 2)
        reason = (f"the labels look noisy (Y has full numerical rank {rank} > "
                  f"n_hidden = {k}: no network with {k} units fits them exactly).")
        return noisy_recovery(X, Y, k, rng=rng, chunk_size=chunk_size,
                              work_rows=work_rows or n, reason=reason, timings=timings,
                              diagnostics=diag, stacklevel=4, time_limit=time_limit)

    if rank < k:
        msg = (
            f"Y has numerical rank {rank} < k = {k}: the labels do not determine {k} "
            "units by this method (it needs rank(U) = k and enough samples). For fewer "
            "independent outputs than units [BJW] give a fixed-parameter-tractable method (method='few-outputs', planned, not in this version)."
        )
        warnings.warn(msg, AssumptionWarning, stacklevel=3)
        return Recovery(None, False, np.inf, msg, 0, k, "gaussian", timings, diag)
    if rank > k:
        msg = (
            f"Y has numerical rank {rank} > n_hidden = {k}: no network with {k} hidden "
            "units (and rank(U) = k) produces these labels exactly; the labels are "
            "noisy or the network is wider."
        )
    else:
        msg = ""
    r = rank
    B = Bfull[:, :r]

    # --- step 1: the first-moment subspace ----------------------------------
    t0 = time.perf_counter()
    M1 = first_moment(X, Y, chunk_size=chunk_size)
    _, sm, Vt = np.linalg.svd(M1, full_matrices=False)
    Q = Vt[: min(r, d)].T  # (d, r)
    diag["first_moment_singular_values"] = sm
    timings["first moment"] = time.perf_counter() - t0

    # --- step 2-3: projected second moment, Jennrich, signs ------------------
    t0 = time.perf_counter()
    Zw = Xw @ Q
    Acon = rng.standard_normal((m, 3))
    T = contracted_second_moments(Zw, Yw, Acon, chunk_size=chunk_size)
    P = jennrich(T[0], T[1])
    Wsec = second_moment_weights(Zw, Yw, P, chunk_size=chunk_size)  # (m, p)
    C = (M1 @ Q) @ np.linalg.pinv(P).T  # first moment in the same basis
    signs = np.where(np.einsum("mi,mi->i", C, Wsec) < 0, -1.0, 1.0)
    P = P * signs
    timings["moments and tensor"] = time.perf_counter() - t0

    # --- steps 4-5: rounding from moment, deflated and random starts ----------
    t0 = time.perf_counter()
    projected = n_work >= 10 * d and Q.shape[1] == r
    F = Zw if projected else Xw
    search = UnitSearch(
        F=F, B=B, X=Xw, activation=activation, n_null=min(2 * r + 5, n_work // 4)
    )

    def to_F(Pk):  # directions given in Q-coordinates -> F-coordinates
        return Pk if projected else Q @ Pk

    deadline = np.inf if time_limit is None else t_all + time_limit
    search.run(to_F(P))
    rounds = 0
    stalled = 0
    stop_reason = ""
    while search.n_found < r:
        if search.starts_used >= max_starts:
            stop_reason = f"the budget of max_starts={max_starts} starts was spent"
            break
        if time.perf_counter() > deadline:
            stop_reason = f"the time limit of {time_limit} s was reached"
            break
        if projected and stalled >= 3 and n < 40 * d:
            # starts keep landing on units already found: with n < 40 d the
            # first-moment subspace can be too crude to rank the samples (1.6), so
            # iterate in full dimension instead
            projected = False
            search.F = Xw
            diag["switched_to_full_dimension_after_starts"] = search.starts_used
        rounds += 1
        missing = r - search.n_found
        if rounds % 2 == 1 and search.n_found > 0:
            Vf = np.asarray(search.found_V)
            Pf = Q.T @ (Vf / np.linalg.norm(Vf, axis=1, keepdims=True)).T
            # fresh random contractions each round: their different sampling
            # errors surface different missing units (1.6)
            if rounds > 1:
                T = contracted_second_moments(Zw, Yw, rng.standard_normal((m, 3)),
                                              chunk_size=chunk_size)
            starts = deflated_jennrich(T[0], T[1], T[2], Pf)
            starts = to_F(np.hstack([starts, -starts]))
        else:
            starts = to_F(rng.standard_normal((Q.shape[1], max(missing, 8))))
            if not projected:  # half of them off the estimated span
                half = starts.shape[1] // 2
                starts[:, :half] = rng.standard_normal((d, half))
        budget = max_starts - search.starts_used
        before = search.n_found
        search.run(starts[:, :budget])
        stalled = 0 if search.n_found > before else stalled + 1
    timings["rounding"] = time.perf_counter() - t0
    if search.last_reject_reason and search.n_found < r:
        stop_reason += (
            f"; candidate units were found but rejected: {search.last_reject_reason}"
        )
    diag.update(
        starts_used=search.starts_used,
        rounding_iterations=search.rounding_iterations,
        rejected_candidates=search.rejected,
        polished_units=search.polished,
        projected_rounding=projected,
        unit_errors=np.asarray(search.found_err),
    )

    # --- step 6: U and the certificate on all the data -----------------------
    t0 = time.perf_counter()
    n_found = search.n_found
    if n_found == 0:
        timings["output layer"] = time.perf_counter() - t0
        reason = stop_reason or "no start converged to a certified unit"
        text = f"not recovered: found 0 of {k} units ({reason})."
        if msg:
            text += " " + msg
        return Recovery(None, False, np.inf, text, 0, k, "gaussian", timings, diag)
    V = np.asarray(search.found_V)
    if n_found > k:  # only possible when rank(Y) > k: keep the first k
        V = V[:k]
    U, cert, rank_H = hidden_and_output(X, Y, V, activation, chunk_size=chunk_size)
    timings["output layer"] = time.perf_counter() - t0
    net = TwoLayerNetwork(U, V, activation=activation)
    diag["rank_hidden"] = rank_H
    exact = bool(
        V.shape[0] == k == r and rank_H == k and cert <= tol and not msg
    )
    if exact:
        text = f"exact: all {k} units certified; relative residual {cert:.1e} <= tol={tol:g}."
    else:
        parts = [f"not exact: found {min(n_found, k)} of {k} units"]
        if stop_reason:
            parts.append(f"({stop_reason})")
        parts.append(f"with relative residual {cert:.1e}")
        if cert > tol and n_found >= k:
            parts.append(f"> tol={tol:g}")
        text = " ".join(parts) + "." + (" " + msg if msg else "")
    return Recovery(net, exact, cert, text, min(n_found, k), k, "gaussian", timings, diag)


def recover_gaussian(
    X, Y, k, *, activation, rng, tol, max_starts, time_limit, chunk_size, work_rows,
    infer_hidden=False,
) -> Recovery:
    """Exact path first (docs/algorithms.md 1); noisy labels get a refined estimate (2).

    Labels look noisy when ``Y`` has full numerical rank: then, if the exact path
    certifies nothing, the least-squares refinement of ``_noisy`` runs (ReLU
    only). With ``infer_hidden`` the number of units comes from a spectral gap of
    ``Y``; without one the message asks for ``n_hidden``.
    """
    res = _recover_exact(
        X, Y, k, activation=activation, rng=rng, tol=tol, max_starts=max_starts,
        time_limit=time_limit, chunk_size=chunk_size, work_rows=work_rows,
        infer_hidden=infer_hidden,
    )
    if res.exact or res.noise_level is not None or not activation.is_relu:
        return res
    diag = res.diagnostics
    rank, n_work, m = diag["rank_Y"], diag["n_work"], Y.shape[1]
    if rank < res.n_hidden or rank < min(m, n_work):
        return res  # an exact zero tail: not noisy labels
    k = res.n_hidden
    if infer_hidden:
        k_gap = spectral_gap_rank(diag["singular_values_Y"], n_work, strict=False)
        if k_gap is None:
            note = (
                f"Y has full numerical rank {rank} (noisy labels?) and its singular "
                "values show no spectral gap, so the number of hidden units cannot be "
                "inferred: pass n_hidden."
            )
            warnings.warn(note, AssumptionWarning, stacklevel=3)
            return dataclasses.replace(res, message=res.message + " " + note)
        k = diag["n_hidden_from_spectral_gap"] = min(k_gap, X.shape[1])
    reason = (
        f"the labels look noisy (Y has full numerical rank {rank}) and the exact "
        f"path certified no network ({res.message})."
    )
    return noisy_recovery(X, Y, k, rng=rng, chunk_size=chunk_size,
                          work_rows=work_rows or X.shape[0], reason=reason,
                          timings=res.timings, diagnostics=diag, stacklevel=3,
                          time_limit=time_limit)
