"""Exact recovery for any input distribution, rank(U) = k (docs/algorithms.md 1.5, 3).

``method="general"`` drops the moment method's Gaussian assumption and keeps only
the rounding step, which needs ``rank(U) = k`` and nothing about the inputs:

1. the row span of ``[X, 1]`` (orthonormal basis ``Q`` from a QR/SVD): a unit is
   ``(v, b)`` acting on ``[x, 1]`` (docs/algorithms.md 6); when the inputs lie in
   an affine subspace of dimension ``r < d``, ``(V, b)`` is identifiable only as
   a function on it, so the work happens in ``[X, 1] Q`` and ``(V, b)`` is mapped
   back inside the span;
2. the column space ``B`` of ``[Y, 1]`` (rank ``k + 1``: an output bias adds the
   constant vector);
3. the rounding step (:class:`~._rounding.UnitSearch`, full dimension) iterated
   from diverse starts -- directions from a first-moment estimate, random
   directions, rows of the (whitened) data and differences of rows -- with
   de-duplication, until ``k`` units are certified or the budget
   (``max_starts``, ``time_limit``) is spent;
4. ``U`` by least squares and the certificate on the original ``X``.

Steps 1-3 work on at most ``GENERAL_WORK_ROWS`` rows drawn at random (every row
when there are fewer), gathered from where the data lives; step 4 reads all of
``X`` once, in chunks (docs/algorithms.md 8), so the certificate still checks
every row and ``X`` is never copied whole.

The problem is NP-hard for arbitrary inputs (docs/algorithms.md 3), so the search may
give up: the result then says "found j of k units" and why, with ``exact`` False.
A unit is stored only after its own certificate ``||f(X v) - z|| / ||z|| <= 1e-8``,
so a unit reported as found is a unit of the network (when the network is
identifiable on ``X``).
"""

from __future__ import annotations

import time

import numpy as np

from .._linalg import affine_column_space, inverse_sqrt, row_span
from ..data import sample_rows
from .._progress import report
from ..networks import TwoLayerNetwork
from ._output import fit_output_layer, missing_units_note
from ._result import Recovery, unit_verdict
from ._rounding import UnitSearch

__all__ = ["recover_general", "general_starts"]

#: the kinds of starts, in the order they take turns.
START_KINDS = ("moment", "random", "rows", "row-differences")
#: rows where ``Y`` is this small relative to a typical (median) non-zero row are
#: "all units inactive" (zero up to rounding of the labels).
ZERO_ROW_RTOL = 1e-13
#: eigenvalue floor of the whitening, relative to the largest.
WHITEN_FLOOR = 1e-14
#: the rounding on non-Gaussian inputs: ``||z_S||`` below NULL_TOL vanishes, and
#: the solve uses every row with ``z > ACTIVE_TOL max(z)`` (docs/algorithms.md 3).
NULL_TOL = 1e-7
ACTIVE_TOL = 1e-6
#: the rows steps 1-3 work on (a random sample when ``X`` has more): each unit is
#: still active and inactive on tens of thousands of them, and the certificate
#: of step 4 reads every row (docs/algorithms.md 8).
GENERAL_WORK_ROWS = 100_000


def _whitener(F: np.ndarray) -> np.ndarray:
    """``M^{-1/2}`` of the uncentred second moment ``M = F^T F / n``.

    Uncentred, so scores stay linear (``F W`` with ``W = M^{-1/2} w``): the
    rounding's steering fits ``z`` by a linear function of the rows (1.4).
    """
    return inverse_sqrt(F.T @ F / F.shape[0], floor=WHITEN_FLOOR)[0]


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


def recover_general(
    X, Y, k, *, activation, rng, tol, max_starts, time_limit, chunk_size,
    diagnostics=None, bias_column=None, offset=None,
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
    bias_column, offset : ndarray of shape (n,) or None
        What the hidden and output biases multiply on each row (None: ones;
        see :func:`~._output.fit_output_layer`).

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
    deadline = np.inf if time_limit is None else t_all + time_limit
    hidden_bias = activation.bias_identifiable
    if not hidden_bias:
        diag["hidden_biases"] = ("not fitted: for this activation a hidden bias is not "
                                 "identifiable (see Activation.bias_identifiable)")
    Xs, Ys, bc_s, off_s = _work_rows(X, Y, bias_column, offset, rng=rng, diag=diag,
                                     timings=timings)
    Xp, Qx, notes, bias_scale = _input_span(Xs, bc_s, hidden_bias,
                                            chunk_size=chunk_size, diag=diag,
                                            timings=timings)
    t0 = time.perf_counter()
    keep, B, rank = _informative_rows(Ys, off_s, diag)
    if k is None:
        k = diag["n_hidden_from_rank_Y"] = min(rank, Xp.shape[1])
    if max_starts is None:
        max_starts = max(400, 50 * k)
    timings["column space"] = time.perf_counter() - t0

    def result(**kw):
        kw["message"] = " ".join([kw["message"], *notes])
        return Recovery(method="general", timings=timings, diagnostics=diag, n_hidden=k,
                        **kw)

    problems = []
    if k > Xp.shape[1]:
        problems.append(
            f"n_hidden = {k} > {Xp.shape[1]}, the dimension spanned by the inputs: at "
            f"most {Xp.shape[1]} units are identifiable from these X")
    if rank < k:
        return result(network=None, exact=False, certificate=np.inf, n_found=0, message=(
            f"not recovered: Y has numerical rank {rank} < n_hidden = {k}, and the "
            "general method needs rank(U) = k (at least k independent outputs; a unit "
            "never active on these samples adds nothing to Y and is not identifiable). "
            "Use method='few-outputs' for fewer independent outputs than units."))
    if rank > k:
        problems.append(
            f"Y has numerical rank {rank} > n_hidden = {k}: no network with {k} units "
            "produces these labels exactly (noisy labels, or a wider network); the "
            f"search looked for the units of a {rank}-unit network")
    Xk = Xp if keep is None else Xp[keep]
    search, stop_reason = _search_units(Xk, B[:, : rank + 1], activation=activation, rng=rng,
                                        max_starts=max_starts, deadline=deadline,
                                        time_limit=time_limit, diag=diag,
                                        timings=timings)
    noisy_hint = (f" Y has full numerical rank {m}: if the labels are noisy no network "
                  "fits them exactly (for Gaussian inputs method='gaussian' refines a "
                  "noisy estimate).") if infer_k and rank == m else ""
    return _assemble(X, Y, k, rank, search, Qx, stop_reason, problems, noisy_hint,
                     activation=activation, tol=tol, chunk_size=chunk_size, diag=diag,
                     timings=timings, result=result, bias_column=bias_column,
                     offset=offset, bias_scale=bias_scale)


def _work_rows(X, Y, bias_column, offset, *, rng, diag, timings):
    """The rows steps 1-3 work on, in memory as float64: all of them when there
    are at most ``GENERAL_WORK_ROWS``, else that many drawn at random (sorted, so a
    file is read in order). The certificate (step 4) still reads every row."""
    t0 = time.perf_counter()
    n = X.shape[0]
    if n <= GENERAL_WORK_ROWS:
        rows = slice(None)
    else:
        rows = sample_rows(X, GENERAL_WORK_ROWS, rng)
        diag["n_work_general"] = GENERAL_WORK_ROWS
    Xs = np.asarray(X[rows], dtype=float)
    Ys = np.asarray(Y[rows], dtype=float)
    if Ys.ndim == 1:
        Ys = Ys[:, None]
    pick = (lambda a: None if a is None else np.asarray(a)[rows])
    timings["work rows"] = time.perf_counter() - t0
    return Xs, Ys, pick(bias_column), pick(offset)


def _input_span(X, bias_column=None, hidden_bias=True, *, chunk_size, diag, timings):
    """Step 1: the row span of ``[X, 1]``; inputs on an affine subspace of
    dimension ``r < d`` are worked on in the coordinates ``[X, 1] Q`` of that span
    (``(V, b)`` is identifiable only there).

    Returns ``(Xp, Q or None, notes, scale)``: ``Xp`` holds the augmented rows (the
    last column the bias column times ``scale`` when ``Q`` is None). ``scale`` is a
    power of two near a typical entry of ``X``, so the constant column weighs like
    the others in rank decisions (a unit's bias is ``scale`` times its last
    weight). Without ``hidden_bias`` the rows are not augmented (and the span is
    linear).
    """
    t0 = time.perf_counter()
    n, d = X.shape
    scale = 1.0
    if hidden_bias:
        ones = np.ones(n) if bias_column is None else bias_column
        typical = float(np.median(np.abs(np.asarray(X[: min(n, 4096)], dtype=float))))
        if typical > 0 and np.isfinite(typical):
            scale = float(np.exp2(np.round(np.log2(typical))))
        Xa = np.hstack([np.asarray(X, dtype=float), scale * ones[:, None]])
    else:
        Xa = X
    Qx, sx, r_a = row_span(Xa, chunk_size=chunk_size)
    r_a += 0 if hidden_bias else 1
    diag.update(data_rank=r_a - 1, singular_values_X=sx)
    notes = []
    if r_a < d + 1:
        notes.append(
            f"(V, b) is identifiable only on the {r_a - 1}-dimensional affine span of the "
            f"inputs (their rows lie in an affine subspace of dimension {r_a - 1} < d = "
            f"{d}); the returned (V, b) is its projection onto that span.")
        diag["data_span_note"] = notes[0]
        Xp = Xa @ Qx
    else:
        Xp, Qx = Xa, None
    timings["data span"] = time.perf_counter() - t0
    return Xp, Qx, notes, scale


def _rest_rows(Y, offset):
    """Rows where every unit is inactive: ``Y`` equals its resting value ``c``
    there (``c w^p`` on shortened rows; 0 without biases).

    The resting value is the most frequent row of ``Y / offset`` (to 10
    significant digits of a typical row); rows within ``ZERO_ROW_RTOL`` of a
    typical deviation from it are at rest. Returns a boolean mask, all False
    when no row value repeats.
    """
    n = Y.shape[0]
    Yn = Y if offset is None else Y / offset[:, None]
    top = np.abs(Yn).max(axis=1)
    scale = float(np.median(top[top > 0])) if np.any(top > 0) else 1.0
    keys = np.round(Yn / scale, 10)
    _, inv, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    j = int(np.argmax(counts))
    if counts[j] < 2:
        return np.zeros(n, dtype=bool)
    rest = Yn[np.flatnonzero(inv.ravel() == j)[0]]
    dev = np.abs(Yn - rest).max(axis=1)
    # relative to a typical non-resting row, not to the largest: one huge row
    # must not turn the others into resting rows
    typical = float(np.median(dev[dev > 0])) if np.any(dev > 0) else 1.0
    return dev <= ZERO_ROW_RTOL * typical


def _informative_rows(Y, offset, diag):
    """Step 2: the column space of ``[Y, 1]`` on the rows the rounding works on.

    Rows where every unit is inactive (``Y`` at its resting value ``c``,
    :func:`_rest_rows`) are rows of the basis that only the constant vector
    explains: they cannot tell units apart, and taken into ``S`` they leave the
    null space of ``B_S`` too wide (non-centred inputs have many of them), so the
    rounding skips them when the labels need two units or more; the certificate
    on all of ``X`` still checks them. With one unit they are exactly its
    inactive rows and are kept: its activation vector is what vanishes there.

    Returns ``(keep or None, B, rank)``: the rows kept (None: all), a basis of
    ``span{Y, offset}`` on them (the offset first) and the rank of ``Y`` modulo
    the offset.
    """
    n = Y.shape[0]
    keep = ~_rest_rows(Y, offset)
    n_keep = int(np.count_nonzero(keep))
    if n_keep < n:
        Bfull, sy, rank = affine_column_space(
            Y[keep], None if offset is None else offset[keep])
    if n_keep == n or n_keep < 4 or rank <= 1:
        Bfull, sy, rank = affine_column_space(Y, offset)  # one unit: keep its inactive rows
        keep, n_keep = None, n
    diag.update(rank_Y=rank, singular_values_Y=sy, rows_all_inactive=n - n_keep)
    return keep, Bfull, rank


def _search_units(Xk, B, *, activation, rng, max_starts, deadline, time_limit, diag,
                  timings):
    """Step 3 (docs/algorithms.md 1.5, 3): rounding from diverse starts.

    Returns the :class:`~._rounding.UnitSearch` and the reason it stopped short.
    """
    t0 = time.perf_counter()
    n_keep, p = Xk.shape
    r = B.shape[1] - 1  # units: B also holds the constant vector
    Wh = _whitener(Xk)
    G = Xk @ Wh  # whitened rows: directions w score the rows as Xk (Wh w)
    Qm = np.linalg.svd(G.T @ B, full_matrices=False)[0]
    search = UnitSearch(
        F=Xk, B=B, X=Xk, activation=activation, n_null=min(2 * r + 7, n_keep // 4),
        null_tol=NULL_TOL, active_tol=ACTIVE_TOL, min_active_rank=p,
        split_degenerate=True, deadline=deadline,
    )
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
        report("rounding", search.n_found / max(r, 1))
        found_by[kind] += new
        stalled = 0 if new else stalled + 1
        if stalled >= 2 * len(START_KINDS) and search.n_null > r + 2:
            # no unit in a while: a unit may be inactive on only a few of the
            # informative rows, fewer than |S|; a smaller S (at least r + 2 rows
            # for the r + 1 columns of B, so the null space can still be
            # one-dimensional) can fit inside them
            search.n_null = max(r + 2, search.n_null // 2)
            stalled = 0
    timings["rounding"] = time.perf_counter() - t0
    report("rounding", 1.0)
    report("output layer", 0.0)
    if search.last_reject_reason and search.n_found < r:
        stop_reason += (
            f"; candidate units were found but rejected: {search.last_reject_reason}")
    diag.update(
        starts_used=search.starts_used, starts_by_kind=starts_by,
        units_by_start_kind=found_by, rounding_iterations=search.rounding_iterations,
        rejected_candidates=search.rejected, polished_units=search.polished,
        degenerate_splits=search.split, n_null=search.n_null,
        unit_errors=np.asarray(search.found_err),
    )
    return search, stop_reason


def _assemble(X, Y, k, r, search, Qx, stop_reason, problems, noisy_hint, *, activation,
              tol, chunk_size, diag, timings, result, bias_column=None, offset=None,
              bias_scale=1.0):
    """Step 4: ``U``, ``c`` and the certificate on the original ``X``, and the verdict."""
    t0 = time.perf_counter()
    n_found = search.n_found
    d = X.shape[1]
    if n_found == 0:
        timings["output layer"] = time.perf_counter() - t0
        report("output layer", 1.0)
        text = unit_verdict(exact=False, k=k, n_found=0, certificate=np.inf, tol=tol,
                            stop_reason=stop_reason, problems=problems) + noisy_hint
        return result(network=None, exact=False, certificate=np.inf, message=text,
                      n_found=0)
    Va = np.asarray(search.found_V)
    if Qx is not None:
        Va = Va @ Qx.T  # back to R^(d+1), inside the span of the inputs
    V, b = Va[:, :d], (Va[:, d] * bias_scale if Va.shape[1] > d else np.zeros(len(Va)))
    out = fit_output_layer(X, Y, V, activation, b=b, bias_column=bias_column,
                           offset=offset, chunk_size=chunk_size)
    timings["output layer"] = time.perf_counter() - t0
    report("output layer", 1.0)
    always = int(np.count_nonzero(out.active_rows == X.shape[0]))
    diag.update(rank_hidden=out.rank_hidden, units_active_on_all_rows=always)
    if always >= 1:
        problems.append(
            f"{always} unit(s) are active on every sample: on these inputs they act as "
            "affine functions, and with the output bias only their sum is identifiable")
    net = TwoLayerNetwork(out.U, out.V, activation=activation, b=out.b, c=out.c)
    exact = bool(n_found == k == r and out.rank_hidden == k and out.certificate <= tol
                 and not problems)
    text = unit_verdict(exact=exact, k=max(r, k), n_found=n_found,
                        certificate=out.certificate, tol=tol, stop_reason=stop_reason,
                        problems=problems,
                        detail=f"general path, {search.starts_used} starts")
    note = missing_units_note(X, Y, out, max(r, k) - n_found, bias_column=bias_column,
                              offset=offset, diag=diag)
    if note:
        text += " " + note
    elif not exact and n_found < r:
        text += noisy_hint + (
            " Note: a unit active on every sample (affine on the data) or on fewer "
            "samples than d + 1 is not identifiable and is never found; a larger "
            "max_starts or time_limit may find the others.")
    return result(network=net, exact=exact, certificate=out.certificate, message=text,
                  n_found=n_found)
