"""Exact recovery for any input distribution, rank(U) = k (docs/algorithms.md 1.5, 3).

``method="general"`` drops the moment method's Gaussian assumption and keeps only
the rounding step, which needs ``rank(U) = k`` and nothing about the inputs:

1. the row span of ``X`` (orthonormal basis ``Q`` from a QR/SVD of ``X``): when
   the rows span ``r < d`` dimensions ``V`` is identifiable only on that span, so
   the work happens in ``X Q`` and ``V`` is mapped back inside the span;
2. the column space ``B`` of ``Y`` (rank ``k``);
3. the rounding step (:class:`~._rounding.UnitSearch`, full dimension) iterated
   from diverse starts -- directions from a first-moment estimate, random
   directions, rows of the (whitened) data and differences of rows -- with
   de-duplication, until ``k`` units are certified or the budget
   (``max_starts``, ``time_limit``) is spent;
4. ``U`` by least squares and the certificate on the original ``X``.

The problem is NP-hard for arbitrary inputs (docs/algorithms.md 3), so the search may
give up: the result then says "found j of k units" and why, with ``exact`` False.
A unit is stored only after its own certificate ``||f(X v) - z|| / ||z|| <= 1e-8``,
so a unit reported as found is a unit of the network (when the network is
identifiable on ``X``).
"""

from __future__ import annotations

import time

import numpy as np

from ..moments import iter_chunks
from ..networks import TwoLayerNetwork
from ._gaussian import column_space, hidden_and_output
from ._result import Recovery
from ._rounding import UnitSearch

__all__ = ["recover_general", "data_span", "general_starts"]

#: relative singular-value threshold for the rank of ``X``.
SPAN_RTOL = 1e-10
#: the kinds of starts, in the order they take turns.
START_KINDS = ("moment", "random", "rows", "row-differences")


def data_span(X: np.ndarray, *, chunk_size: int = 16384, rtol: float = SPAN_RTOL):
    """Orthonormal basis of the row span of ``X`` (step 1).

    A streaming QR (the ``R`` factors of the chunks stacked and factored again)
    has the singular values of ``X`` to float64 accuracy; ``X`` is read once.

    Returns
    -------
    Q : ndarray of shape (d, r)
        Orthonormal basis of the span (right singular vectors of ``X``).
    s : ndarray of shape (d,)
        Singular values of ``X``.
    r : int
        ``#{s_i > rtol * s_0}``.
    """
    n, d = X.shape
    Rs = []
    for sl in iter_chunks(n, chunk_size):
        Rs.append(np.linalg.qr(np.asarray(X[sl], dtype=float), mode="r"))
        if len(Rs) > 8:
            Rs = [np.linalg.qr(np.vstack(Rs), mode="r")]
    R = np.linalg.qr(np.vstack(Rs), mode="r") if len(Rs) > 1 else Rs[0]
    _, s, Vt = np.linalg.svd(R, full_matrices=False)
    r = int(np.count_nonzero(s > rtol * s[0])) if s.size and s[0] > 0 else 0
    return Vt[:r].T, s, r


def _whitener(F: np.ndarray) -> np.ndarray:
    """``M^{-1/2}`` of the uncentred second moment ``M = F^T F / n``.

    Uncentred, so scores stay linear (``F W`` with ``W = M^{-1/2} w``): the
    rounding's steering fits ``z`` by a linear function of the rows (1.4).
    """
    M = F.T @ F / F.shape[0]
    w, E = np.linalg.eigh(M)
    w = np.maximum(w, w[-1] * 1e-14)
    return (E / np.sqrt(w)) @ E.T


def general_starts(kind: str, b: int, *, G: np.ndarray, Qm: np.ndarray, rng) -> np.ndarray:
    """``b`` start directions of one kind, in whitened coordinates, shape ``(p, b)`` (step 3).

    ``G`` holds the whitened rows ``F M^{-1/2}``; ``Qm`` an orthonormal basis of the
    first-moment estimate ``G^T Y`` (its columns span ``span(V)`` exactly for
    spherically symmetric inputs, approximately otherwise).

    - ``"moment"``: random combinations of ``Qm`` (plus a little noise);
    - ``"random"``: standard normal directions;
    - ``"rows"``: rows of ``G`` (the samples least like a given sample go first);
    - ``"row-differences"``: differences of two rows of ``G``.
    """
    n, p = G.shape
    if kind == "moment":
        W = Qm @ rng.standard_normal((Qm.shape[1], b))
        W /= np.linalg.norm(W, axis=0)
        return W + 0.05 * rng.standard_normal((p, b)) / np.sqrt(p)
    if kind == "random":
        return rng.standard_normal((p, b))
    if kind == "rows":
        return G[rng.choice(n, b, replace=b > n)].T.copy()
    if kind == "row-differences":
        i = rng.choice(n, b)
        j = rng.choice(n, b)
        return (G[i] - G[j]).T
    raise ValueError(f"unknown kind of start {kind!r}; choose one of {START_KINDS}.")


def _span_note(r: int, d: int) -> str:
    return (
        f"V is identifiable only on the {r}-dimensional span of the inputs (their rows "
        f"span {r} < d = {d} dimensions); the returned V is its projection onto that span."
    )


def recover_general(
    X, Y, k, *, activation, rng, tol, max_starts, time_limit, chunk_size,
    diagnostics=None,
) -> Recovery:
    """The general path (docs/algorithms.md 1.5, 3): rounding from diverse starts, any inputs.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Inputs (validated by ``recover_two_layer``).
    Y : ndarray of shape (n, m)
        Labels.
    k : int or None
        Hidden units; None takes the numerical rank of ``Y``.
    activation : Activation
        Rectified activation.
    rng : numpy.random.Generator
        Seeds the starts.
    tol : float
        ``exact`` needs the relative residual on all of ``X`` to be ``<= tol``.
    max_starts : int or None
        Budget of rounding starts; None means ``max(400, 50 k)``.
    time_limit : float or None
        Seconds after which no new batch of starts begins.
    chunk_size : int
        Rows per chunk when streaming over ``X``.
    diagnostics : dict or None
        Diagnostics from the ``auto`` step, merged into the result's.

    Returns
    -------
    Recovery
        ``method="general"``. ``exact`` only when all ``k`` units are certified and
        the network reproduces ``Y`` to ``tol``; otherwise ``network`` holds the
        units found (``U`` by least squares) and ``message`` says "found j of k"
        and why the search stopped.
    """
    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    diag: dict = dict(diagnostics or {})
    n, d = X.shape
    m = Y.shape[1]
    infer_k = k is None

    # --- step 1: the row span of X --------------------------------------------
    t0 = time.perf_counter()
    Qx, sx, r_x = data_span(X, chunk_size=chunk_size)
    diag["data_rank"] = r_x
    diag["singular_values_X"] = sx
    notes = []
    if r_x < d:
        notes.append(_span_note(r_x, d))
        diag["data_span_note"] = notes[0]
        Xp = X @ Qx
    else:
        Xp, Qx = X, None
    timings["data span"] = time.perf_counter() - t0

    # --- step 2: the column space of Y ------------------------------------------
    # Rows where Y vanishes (every unit inactive) are zero rows of B: they cannot
    # tell units apart, and taken into S they leave the null space of B_S too
    # wide (non-centred inputs have many of them), so the rounding skips them;
    # the certificate on all of X still checks them.
    t0 = time.perf_counter()
    norms = np.linalg.norm(Y, axis=1)
    keep = norms > 1e-13 * norms.max()
    n_keep = int(np.count_nonzero(keep))
    diag["rows_all_inactive"] = n - n_keep
    if n_keep < n:
        Xp, Yk = Xp[keep], Y[keep]
    else:
        Yk = Y
    Bfull, sy, rank = column_space(Yk)
    diag.update(rank_Y=rank, singular_values_Y=sy)
    if k is None:
        k = min(rank, r_x)
        diag["n_hidden_from_rank_Y"] = k
    if max_starts is None:
        max_starts = max(400, 50 * k)
    timings["column space"] = time.perf_counter() - t0

    def result(net, exact, cert, text, n_found):
        if notes:
            text += " " + " ".join(notes)
        return Recovery(net, exact, cert, text, n_found, k, "general", timings, diag)

    problems = []
    if k > r_x:
        problems.append(
            f"n_hidden = {k} > {r_x}, the dimension spanned by the inputs: at most "
            f"{r_x} units are identifiable from these X"
        )
    if rank < k:
        return result(None, False, np.inf, (
            f"not recovered: Y has numerical rank {rank} < n_hidden = {k}, and the "
            "general method needs rank(U) = k (at least k independent outputs). "
            "Use method='few-outputs' for fewer independent outputs than units."
        ), 0)
    if rank > k:
        problems.append(
            f"Y has numerical rank {rank} > n_hidden = {k}: no network with {k} units "
            "produces these labels exactly (noisy labels, or a wider network); the "
            f"search looked for the units of a {rank}-unit network"
        )
    r = rank
    B = Bfull[:, :r]

    # --- step 3: rounding from diverse starts ----------------------------------
    t0 = time.perf_counter()
    p = Xp.shape[1]
    Wh = _whitener(Xp)
    G = Xp @ Wh  # whitened rows: directions w score the rows as Xp (Wh w)
    Qm = np.linalg.svd(G.T @ B, full_matrices=False)[0]
    search = UnitSearch(
        F=Xp, B=B, X=Xp, activation=activation, n_null=min(2 * r + 5, n_keep // 4),
        null_tol=1e-7, active_tol=1e-6, min_active_rank=p, split_degenerate=True,
    )
    deadline = np.inf if time_limit is None else t_all + time_limit
    found_by = {kind: 0 for kind in START_KINDS}
    starts_by = {kind: 0 for kind in START_KINDS}
    stop_reason = ""
    turn = stalled = 0
    while search.n_found < r:
        budget = max_starts - search.starts_used
        if budget <= 0:
            stop_reason = f"the budget of max_starts={max_starts} starts was spent"
            break
        if time.perf_counter() > deadline:
            stop_reason = f"the time limit of {time_limit} s was reached"
            break
        kind = START_KINDS[turn % len(START_KINDS)]
        turn += 1
        b = min(budget, max(8, 2 * (r - search.n_found)))
        W = Wh @ general_starts(kind, b, G=G, Qm=Qm, rng=rng)
        starts_by[kind] += b
        new = search.run(W)
        found_by[kind] += new
        stalled = 0 if new else stalled + 1
        if stalled >= 2 * len(START_KINDS) and search.n_null > r + 1:
            # no unit in a while: a unit may be inactive on only a few of the
            # informative rows, fewer than |S|; a smaller S (at least r + 1 rows,
            # so the null space can still be one-dimensional) can fit inside them
            search.n_null = max(r + 1, search.n_null // 2)
            stalled = 0
    timings["rounding"] = time.perf_counter() - t0
    if search.last_reject_reason and search.n_found < r:
        stop_reason += (
            f"; candidate units were found but rejected: {search.last_reject_reason}"
        )
    diag.update(
        starts_used=search.starts_used, starts_by_kind=starts_by,
        units_by_start_kind=found_by, rounding_iterations=search.rounding_iterations,
        rejected_candidates=search.rejected, polished_units=search.polished,
        degenerate_splits=search.split, n_null=search.n_null,
        unit_errors=np.asarray(search.found_err),
    )

    # --- step 4: U and the certificate on the original X ----------------------
    t0 = time.perf_counter()
    n_found = search.n_found
    noisy_hint = (f" Y has full numerical rank {m}: if the labels are noisy no network "
                  "fits them exactly (for Gaussian inputs method='gaussian' refines a "
                  "noisy estimate).") if infer_k and rank == m else ""
    if n_found == 0:
        timings["output layer"] = time.perf_counter() - t0
        why = stop_reason or "no start converged to a certified unit"
        text = f"not recovered: found 0 of {k} units ({why})."
        if problems:
            text += " " + "; ".join(problems) + "."
        if noisy_hint:
            text += noisy_hint
        return result(None, False, np.inf, text, 0)
    V = np.asarray(search.found_V)
    if Qx is not None:
        V = V @ Qx.T  # back to R^d, inside the span of the inputs
    U, cert, rank_H, H = hidden_and_output(X, Y, V, activation, chunk_size=chunk_size,
                                           return_hidden=True)
    timings["output layer"] = time.perf_counter() - t0
    always = int(np.count_nonzero((H > 0).all(axis=0)))
    diag.update(rank_hidden=rank_H, units_active_on_all_rows=always)
    if always >= 2:
        problems.append(
            f"{always} units are active on every sample: on these inputs they act as "
            "linear functions, and only their sum is identifiable"
        )
    net = TwoLayerNetwork(U, V, activation=activation)
    exact = bool(n_found == k == r and rank_H == k and cert <= tol and not problems)
    if exact:
        text = (f"exact: all {k} units certified (general path, {search.starts_used} "
                f"starts); relative residual {cert:.1e} <= tol={tol:g}.")
    else:
        text = f"not exact: found {n_found} of {r if r > k else k} units"
        if stop_reason:
            text += f" ({stop_reason})"
        text += f" with relative residual {cert:.1e}"
        if cert > tol and n_found >= k:
            text += f" > tol={tol:g}"
        text += "."
        if problems:
            text += " " + "; ".join(problems) + "."
        if noisy_hint and n_found < r:
            text += noisy_hint
        if n_found < r:
            text += (" Note: without biases, a unit whose sign is constant on the data "
                     "(active on every sample) is not identifiable and is never found; "
                     "a larger max_starts or time_limit may find the others.")
    return result(net, exact, cert, text, n_found)
