"""Exact recovery of two-layer networks from Gaussian samples [BJW] (docs/algorithms.md 1).

Steps, as in ``docs/algorithms.md`` section 1:

1. first-moment subspace ``Q`` (``E[y x^T] = U V / 2``);
2. Jennrich on contractions of the projected second moment;
3. signs from the first moment;
4. the rounding step, exact, iterated from the moment starts (1.4-1.5);
5. deflated starts, then random starts, until all ``k`` units are certified (1.5);
6. ``U`` by least squares and the certificate (``_output.fit_output_layer``).

Labels of full numerical rank that no network certifies are noisy (section 2):
``recover_gaussian`` then hands them to ``_noisy`` (moment start, least-squares
refinement, noise level and standard errors).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from .._linalg import affine_column_space, row_span
from ..data import gather_rows, sample_rows
from .._progress import report
from ..exceptions import AssumptionWarning, warn
from ..moments import contracted_second_moments, first_moment, second_moment_weights
from ..networks import TwoLayerNetwork
from ..tensor import deflated_jennrich, jennrich
from ._noisy import noisy_recovery, spectral_gap_rank
from ._output import fit_output_layer, missing_units_note
from ._result import Recovery, unit_verdict
from ._rounding import (
    UnitSearch,
    complement_starts,
    exclude_rare_units,
    find_by_reflection,
    visible_units,
)

__all__ = ["recover_gaussian"]

#: rounding in the k-dim projection needs n >= PROJECTED_MIN_ROWS * d (1.6).
PROJECTED_MIN_ROWS = 10
#: with n < FULL_DIM_SWITCH_ROWS * d, rounding moves to full dimension after
#: STALL_ROUNDS rounds without a new unit: the subspace may be too crude (1.6).
FULL_DIM_SWITCH_ROWS = 40
STALL_ROUNDS = 3
#: contractions of the second moment drawn at a time (two for Jennrich, one for
#: the deflated starts).
N_CONTRACTIONS = 3
#: rows of the subsample on which the rank of X is checked (times d, plus 10).
SPAN_CHECK_ROWS = 2


@dataclass(frozen=True, kw_only=True)
class _Moments:
    """Steps 1-3: the subspace ``Q``, the signed directions ``P`` (in ``Q``
    coordinates), the contractions ``T`` and the projected working rows ``Zw``."""

    Q: np.ndarray
    P: np.ndarray
    T: np.ndarray
    Zw: np.ndarray


def _first_moment_subspace(X, Y, r, *, chunk_size, diag, timings):
    """Step 1 (docs/algorithms.md 1.1, 6): ``E[y x^T] = U diag(Phi(beta)) V``
    (``U V / 2`` without biases) spans ``span(V)``; centred, so that an output
    bias adds no sampling noise."""
    t0 = time.perf_counter()
    d = X.shape[1]
    M1 = first_moment(X, Y, center=True, chunk_size=chunk_size)
    _, sm, Vt = np.linalg.svd(M1, full_matrices=False)
    diag["first_moment_singular_values"] = sm
    timings["first moment"] = time.perf_counter() - t0
    return M1, Vt[: min(r, d)].T  # (d, r)


def _directions(M1, Q, Xw, Yw, *, rng, chunk_size, timings) -> _Moments:
    """Steps 2-3 (docs/algorithms.md 1.2-1.3): Jennrich on the projected second
    moment gives each direction up to sign; the first moment gives the sign.

    With biases the second moment's weights are ``||v_i|| phi(beta_i) U[:, i]``
    and the first moment's ``Phi(beta_i) U[:, i]``: both positive multiples of
    ``U[:, i]``, so the same steps apply (docs/algorithms.md 6); ``Yw`` comes
    centred."""
    t0 = time.perf_counter()
    m = Yw.shape[1]
    Zw = Xw @ Q
    T = contracted_second_moments(Zw, Yw, rng.standard_normal((m, N_CONTRACTIONS)),
                                  chunk_size=chunk_size)
    P = jennrich(T[0], T[1])
    Wsec = second_moment_weights(Zw, Yw, P, chunk_size=chunk_size)  # (m, p)
    C = (M1 @ Q) @ np.linalg.pinv(P).T  # first moment in the same basis
    signs = np.where(np.einsum("mi,mi->i", C, Wsec) < 0, -1.0, 1.0)
    timings["moments and tensor"] = time.perf_counter() - t0
    return _Moments(Q=Q, P=P * signs, T=T, Zw=Zw)


def _round_units(mo: _Moments, Xa, Yw, B, n, ones, *, activation, rng, max_starts,
                 deadline, time_limit, chunk_size, diag, timings, offset_w=None):
    """Steps 4-5 (docs/algorithms.md 1.4-1.5, 6): rounding from the moment starts,
    then deflated Jennrich starts and random starts, until ``r`` units are certified.

    Rows carry the bias column ``ones`` (``[x, 1]``), so a unit is ``(v, b)``
    and the column space ``B`` holds the constant vector: the rounding finds
    ``z_i = f(X v_i + b_i)`` as the vector of ``span{Y, 1}`` vanishing where unit
    ``i`` is inactive (docs/algorithms.md 6).

    Returns the :class:`~._rounding.UnitSearch` and the reason it stopped short
    ("" when it did not).
    """
    t0 = time.perf_counter()
    n_work, d = Xa.shape[0], Xa.shape[1] - (ones is not None)
    r = B.shape[1] - 1  # units; B also holds the constant vector
    m = Yw.shape[1]
    Q, T = mo.Q, mo.T
    projected = n_work >= PROJECTED_MIN_ROWS * d and Q.shape[1] == r
    if ones is None:  # no hidden biases (Activation.bias_identifiable)
        Za = mo.Zw
    else:
        Za = np.hstack([mo.Zw, ones[:, None]])
    search = UnitSearch(F=Za if projected else Xa, B=B, X=Xa, activation=activation,
                        n_null=min(2 * r + 7, n_work // 4), split_degenerate=True,
                        deadline=deadline)

    def to_F(Pk):  # directions given in Q-coordinates -> F-coordinates, bias 0
        P = Pk if projected else Q @ Pk
        return P if ones is None else np.vstack([P, np.zeros((1, P.shape[1]))])

    search.run(to_F(mo.P))
    report("rounding", search.n_found / max(r, 1))
    rounds = stalled = 0
    stop_reason = ""
    rows = np.arange(n_work)
    target = r  # units visible on the rows searched (fewer once rows are dropped)
    reflected = aimed = False
    while visible_units(search) < target:
        rows, rank_left = exclude_rare_units(search, Yw, offset_w, rows)
        if rank_left is not None:
            target = rank_left
            diag["rows_dropped"] = n_work - rows.size
            if visible_units(search) >= target:
                break
        if search.starts_used >= max_starts:
            stop_reason = f"the budget of max_starts={max_starts} starts was spent"
            break
        if time.perf_counter() > deadline:
            stop_reason = f"the time limit of {time_limit} s was reached"
            break
        if projected and stalled >= STALL_ROUNDS and n < FULL_DIM_SWITCH_ROWS * d:
            # starts keep landing on units already found: with few samples the
            # first-moment subspace can be too crude to rank the samples (1.6)
            projected = False
            search.F = Xa[rows]
            diag["switched_to_full_dimension_after_starts"] = search.starts_used
        if stalled >= STALL_ROUNDS and not aimed:
            # starts aimed at what the found units leave unexplained (1.5, 6)
            aimed = True
            W = complement_starts(search, rng)
            if W is not None:
                before = search.n_found
                search.run(W[:, : max(max_starts - search.starts_used, 0)])
                if search.n_found > before:
                    aimed = False  # worth another try for the next missing unit
                    stalled = 0
                    continue
        if stalled >= 2 * STALL_ROUNDS and not reflected and activation.is_relu:
            # units active on almost every row hide in every null space; their
            # reflections relu(-(v . x + b)) do not (docs/algorithms.md 6.4)
            reflected = True
            Pf = to_F(np.hstack([mo.P, rng.standard_normal((Q.shape[1], max(r, 8)))]))
            if find_by_reflection(search, Pf):
                diag["units_found_by_reflection"] = search.n_found
                stalled = 0
                continue
        if stalled >= 2 * STALL_ROUNDS and search.n_null > r + 2:
            # one may be inactive on fewer samples than |S| (a large bias,
            # docs/algorithms.md 6.4): a smaller S can fit inside them
            search.n_null = max(r + 2, search.n_null // 2)
            diag["n_null_shrunk_to"] = search.n_null
            stalled = STALL_ROUNDS
        rounds += 1
        missing = r - search.n_found
        if rounds % 2 == 1 and search.n_found > 0:
            Vf = np.asarray(search.found_V)[:, :d]
            Pf = Q.T @ (Vf / np.linalg.norm(Vf, axis=1, keepdims=True)).T
            # fresh random contractions each round: their different sampling
            # errors surface different missing units (1.5)
            if rounds > 1:
                T = contracted_second_moments(mo.Zw, Yw,
                                              rng.standard_normal((m, N_CONTRACTIONS)),
                                              chunk_size=chunk_size)
            starts = deflated_jennrich(T[0], T[1], T[2], Pf)
            starts = to_F(np.hstack([starts, -starts]))
        else:
            starts = to_F(rng.standard_normal((Q.shape[1], max(missing, 8))))
            if not projected:  # half of them off the estimated span
                half = starts.shape[1] // 2
                starts[:d, :half] = rng.standard_normal((d, half))
        before = search.n_found
        search.run(starts[:, : max_starts - search.starts_used])
        stalled = 0 if search.n_found > before else stalled + 1
        report("rounding", search.n_found / max(r, 1))
    timings["rounding"] = time.perf_counter() - t0
    report("rounding", 1.0)
    report("output layer", 0.0)
    if search.last_reject_reason and search.n_found < r:
        stop_reason = "; ".join(filter(None, [
            stop_reason, f"candidate units were found but rejected: {search.last_reject_reason}"]))
    diag.update(
        starts_used=search.starts_used, rounding_iterations=search.rounding_iterations,
        rejected_candidates=search.rejected, polished_units=search.polished,
        projected_rounding=projected, unit_errors=np.asarray(search.found_err),
    )
    return search, stop_reason


def _span_of_inputs(Xw, data_rank, diag):
    """The span of the inputs, when it is smaller than ``R^d`` (docs/algorithms.md 3).

    ``data_rank`` comes from the ``auto`` checks when they ran; otherwise the rank
    is counted on a subsample of ``SPAN_CHECK_ROWS * d + 10`` working rows. Returns
    an orthonormal basis ``(d, r)`` of the span, or None when it is all of ``R^d``.
    """
    n_work, d = Xw.shape
    if data_rank is not None and data_rank >= d:
        return None
    sub = Xw[: min(n_work, SPAN_CHECK_ROWS * d + 10)]
    Qx, _, r_x = row_span(sub)
    diag["data_rank"] = r_x
    return Qx if r_x < d else None


def _recover_exact(X, Y, k, *, activation, rng, tol, max_starts, time_limit, chunk_size,
                   work_rows, infer_hidden=False, data_rank=None, bias_column=None,
                   offset=None) -> Recovery:
    """The Gaussian exact path; arguments are validated by ``recover_two_layer``."""
    timings: dict[str, float] = {}
    diag: dict = {}
    deadline = np.inf if time_limit is None else time.perf_counter() + time_limit
    n, d = X.shape
    m = Y.shape[1]

    def result(**kw):
        return Recovery(method="gaussian", timings=timings, diagnostics=diag, **kw)

    # --- working rows: the rounding needs only a sample of rows (1.6) ---------
    t0 = time.perf_counter()
    n_work = n if work_rows is None else min(n, work_rows)
    rows = sample_rows(X, n_work, rng) if n_work < n else None
    Yw = np.asarray(Y if rows is None else Y[rows], dtype=float)
    ones = np.ones(n_work) if bias_column is None else (
        bias_column if rows is None else bias_column[rows])
    if not activation.bias_identifiable:
        ones = None
        diag["hidden_biases"] = ("not fitted: for this activation a hidden bias is not "
                                 "identifiable (see Activation.bias_identifiable)")
    # the rows [x, 1] of the rounding, gathered once; Xw is a view of them
    Xa = gather_rows(X, rows, last_column=ones)
    Xw = Xa if ones is None else Xa[:, :d]
    off_w = None if offset is None else (offset if rows is None else offset[rows])
    Bfull, s, rank = affine_column_space(Yw, off_w)
    diag.update(rank_Y=rank, singular_values_Y=s, n_work=n_work)
    Qx = _span_of_inputs(Xw, data_rank, diag)
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
                              diagnostics=diag, stacklevel=5, time_limit=time_limit)
    if rank < k:
        msg = (
            f"not recovered: Y has numerical rank {rank} < k = {k}: the labels do not "
            f"determine {k} units by this method (it needs rank(U) = k and enough "
            "samples; a unit never active on these samples, e.g. one with a large "
            "negative bias, adds nothing to Y and is not identifiable). For fewer "
            "independent outputs than units use method='few-outputs' (or 'auto')."
        )
        warn(msg, AssumptionWarning)
        return result(network=None, exact=False, certificate=np.inf, message=msg,
                      n_found=0, n_hidden=k)
    problems = []
    if rank > k:
        problems.append(
            f"Y has numerical rank {rank} > n_hidden = {k}: no network with {k} hidden "
            "units (and rank(U) = k) produces these labels exactly; the labels are "
            "noisy or the network is wider")
    B = Bfull[:, : rank + 1]

    M1, Q = _first_moment_subspace(X, Y, rank, chunk_size=chunk_size, diag=diag,
                                   timings=timings)
    Yc = Yw - Yw.mean(axis=0)  # centred once: the moments' labels (the span is the same)
    mo = _directions(M1, Q, Xw, Yc, rng=rng, chunk_size=chunk_size, timings=timings)
    search, stop_reason = _round_units(
        mo, Xa, Yc, B, n, ones, offset_w=off_w, activation=activation, rng=rng,
        max_starts=max_starts, deadline=deadline, time_limit=time_limit, chunk_size=chunk_size, diag=diag,
        timings=timings)
    return _output_layer(X, Y, k, rank, search, Qx, stop_reason, problems, activation=activation,
                         tol=tol, chunk_size=chunk_size, diag=diag, timings=timings,
                         bias_column=bias_column, offset=offset)


def _output_layer(X, Y, k, r, search, Qx, stop_reason, problems, *, activation, tol,
                  chunk_size, diag, timings, bias_column=None, offset=None) -> Recovery:
    """Step 6 (docs/algorithms.md 1.6, 6): ``U``, ``c`` and the certificate on all the data."""
    t0 = time.perf_counter()
    d = X.shape[1]
    n_found = min(search.n_found, k)

    def result(**kw):
        timings["output layer"] = time.perf_counter() - t0
        report("output layer", 1.0)
        return Recovery(method="gaussian", timings=timings, diagnostics=diag,
                        n_hidden=k, **kw)

    span_note = ""
    if Qx is not None:
        span_note = diag["data_span_note"] = (
            f"V is identifiable only on the {Qx.shape[1]}-dimensional span of the inputs "
            f"(their rows span {Qx.shape[1]} < d = {d} dimensions); the returned V is "
            "its projection onto that span.")
    if n_found == 0:
        text = unit_verdict(exact=False, k=k, n_found=0, certificate=np.inf, tol=tol,
                            stop_reason=stop_reason, problems=problems)
        return result(network=None, exact=False, certificate=np.inf,
                      message=f"{text} {span_note}".strip(), n_found=0)
    Va = np.asarray(search.found_V)[:k]  # more than k only when rank(Y) > k
    V, b = Va[:, :d], (Va[:, d] if Va.shape[1] > d else np.zeros(len(Va)))
    if Qx is not None:
        V = (V @ Qx) @ Qx.T
    out = fit_output_layer(X, Y, V, activation, b=b, bias_column=bias_column,
                           offset=offset, chunk_size=chunk_size)
    diag["rank_hidden"] = out.rank_hidden
    exact = bool(V.shape[0] == k == r and out.rank_hidden == k
                 and out.certificate <= tol and not problems)
    text = unit_verdict(exact=exact, k=k, n_found=n_found, certificate=out.certificate,
                        tol=tol, stop_reason=stop_reason, problems=problems)
    note = missing_units_note(X, Y, out, k - n_found, bias_column=bias_column,
                              offset=offset, diag=diag)
    if note:
        text += " " + note
    net = TwoLayerNetwork(out.U, out.V, activation=activation, b=out.b, c=out.c)
    return result(network=net, exact=exact,
                  certificate=out.certificate, message=f"{text} {span_note}".strip(),
                  n_found=n_found)


def recover_gaussian(X, Y, k, *, activation, rng, tol, max_starts, time_limit, chunk_size,
                     work_rows, infer_hidden=False, data_rank=None, bias_column=None,
                     offset=None) -> Recovery:
    """Exact path first (docs/algorithms.md 1); noisy labels get a refined estimate (2).

    Labels look noisy when ``Y`` has full numerical rank: then, if the exact path
    certifies nothing, the least-squares refinement of ``_noisy`` runs (ReLU
    only). With ``infer_hidden`` the number of units comes from a spectral gap of
    ``Y``; without one the message asks for ``n_hidden``. Arguments are validated
    by ``recover_two_layer``; ``data_rank`` is the rank of ``X`` when the ``auto``
    checks measured it (None: counted here on a subsample). ``time_limit`` bounds
    both paths together.
    """
    t_start = time.perf_counter()
    res = _recover_exact(
        X, Y, k, activation=activation, rng=rng, tol=tol, max_starts=max_starts,
        time_limit=time_limit, chunk_size=chunk_size, work_rows=work_rows,
        infer_hidden=infer_hidden, data_rank=data_rank, bias_column=bias_column,
        offset=offset,
    )
    if res.exact or res.noise_level is not None or not activation.is_relu:
        return res
    diag = res.diagnostics
    rank, n_work, m = diag["rank_Y"], diag["n_work"], Y.shape[1]
    if rank < res.n_hidden or rank < min(m, n_work) or res.n_found > 0:
        # an exact zero tail, or units certified to rounding level: not noisy labels
        return res
    k = res.n_hidden
    if infer_hidden:
        k_gap = spectral_gap_rank(diag["singular_values_Y"], n_work, strict=False)
        if k_gap is None:
            note = (
                f"Y has full numerical rank {rank} (noisy labels?) and its singular "
                "values show no spectral gap, so the number of hidden units cannot be "
                "inferred: pass n_hidden."
            )
            warn(note, AssumptionWarning)
            return dataclasses.replace(res, message=res.message + " " + note)
        k = diag["n_hidden_from_spectral_gap"] = min(k_gap, X.shape[1])
    reason = (
        f"the labels look noisy (Y has full numerical rank {rank}) and the exact "
        f"path certified no network ({res.message})."
    )
    left = None if time_limit is None else time_limit - (time.perf_counter() - t_start)
    return noisy_recovery(X, Y, k, rng=rng, chunk_size=chunk_size,
                          work_rows=work_rows or X.shape[0], reason=reason,
                          timings=res.timings, diagnostics=diag, stacklevel=3,
                          time_limit=left)
