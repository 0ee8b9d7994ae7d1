"""Filtered PCA: the subspace a deep ReLU network depends on (docs/algorithms.md 5.1-5.2).

``F(x) = W_{L+1} relu(W_L ... relu(W_1 x))`` depends on ``x`` only through its
projection on ``W = rowspan(W_1)``. Outside ``W`` a Gaussian ``x`` is independent of
``y``, so any statistic ``E[1{y in A} (x x^T - I)]`` lives in ``W`` [CKM]. Off ``W``
the empirical matrix is pure Wishart noise whose spectrum is known in closed form
(Marchenko-Pastur edges plus Tracy-Widom fluctuations): that is the noise floor
against which each eigen-direction is judged.

The steps of :func:`filtered_pca`: validate and rescale (:func:`_pca_options`,
``_scaling``), the label sets (:func:`_label_sets`), rounds of filters
(:func:`_search`: :func:`_round_filters` tests every filter of a round,
:func:`_add_directions` keeps what they show), then the pooled re-estimate
(:func:`_reestimate`). The moments are :mod:`relurecover.moments` kernels.
"""

from __future__ import annotations

import inspect
import math
import numbers
import time
from dataclasses import dataclass

import numpy as np

from .._validation import check_positive_int, check_time_limit
from ..metrics import principal_angles
from ..moments import DEFAULT_CHUNK, grouped_grams, slice_moments
from ._scaling import check_samples, scale_exponent, set_aside_outliers, standardize_inputs
from ._subspace import Subspace, scale_note

__all__ = ["filtered_pca", "DEFAULT_QUANTILES"]

#: quantiles of |y| whose upper tails (and the band below the first) are the filters.
DEFAULT_QUANTILES = (0.5, 0.7, 0.8, 0.9)
#: eigenpairs kept at each end of a filter's spectrum: no filter has shown more
#: directions above its floor in one round (the rest wait for the next round).
N_EXTREME = 6
#: above this dimension the extreme eigenpairs come from Lanczos (ARPACK, both
#: ends, relative tolerance ``LANCZOS_TOL``), where a dense ``eigh``'s ``O(d^3)``
#: reduction would dominate.
DENSE_EIGH_MAX_D = 400
LANCZOS_TOL = 1e-8
#: the default ``min_cell``: ``max(MIN_CELL_PER_DIM * d, MIN_CELL_ROWS)`` samples.
MIN_CELL_PER_DIM = 4
MIN_CELL_ROWS = 200
#: the pooled re-estimate: at most ``REESTIMATE_ITERS`` Gauss-Newton steps, stopped
#: when the correction's norm is below ``REESTIMATE_TOL``; ``REESTIMATE_RIDGE`` times
#: the trace regularises its normal equations.
REESTIMATE_ITERS = 10
REESTIMATE_TOL = 1e-10
REESTIMATE_RIDGE = 1e-12


# --------------------------------------------------------------------------- floors


def _wishart_floors(s: int, p: int, margin: float) -> tuple[float, float]:
    """Noise floors (above, below zero) of the eigenvalues of ``G / s - I``.

    ``G = sum of s outer products x x^T``, ``x ~ N(0, I_p)`` independent of the
    filter: Marchenko-Pastur edges ``(1 +- sqrt(p/s))^2 - 1`` plus ``margin``
    Tracy-Widom scales (Johnstone 2001; Ma 2012 for the lower edge).
    """
    rs, rp = np.sqrt(s), np.sqrt(p)
    c = p / s
    up = (1 + np.sqrt(c)) ** 2 - 1
    sig_up = (rs + rp) / s * (1 / rs + 1 / rp) ** (1 / 3)
    lo = 1 - (1 - np.sqrt(c)) ** 2
    sig_lo = abs(rs - rp) / s * abs(1 / rp - 1 / rs) ** (1 / 3)
    return float(up + margin * sig_up), float(lo + margin * sig_lo)


def _extreme_eigs(A, n_each: int):
    """Eigenpairs of symmetric ``A``: the ``n_each`` largest and ``n_each`` smallest."""
    d = A.shape[0]
    if d > DENSE_EIGH_MAX_D:
        from scipy.sparse.linalg import eigsh

        w, V = eigsh(A, k=2 * n_each, which="BE", tol=LANCZOS_TOL,
                     v0=np.ones(d) / np.sqrt(d))
        return w, V
    w, V = np.linalg.eigh(A)
    d = len(w)
    idx = np.unique(np.r_[np.arange(min(n_each, d)), np.arange(max(d - n_each, 0), d)])
    return w[idx], V[:, idx]


# --------------------------------------------------------------------------- re-estimate


def _pooled_reestimate(B, counts, C, mu, *, iters=REESTIMATE_ITERS, tol=REESTIMATE_TOL):
    """Re-estimate ``span(B)`` from all slices at once (docs/algorithms.md 5.2, last step).

    Every slice ``s`` of the labels has ``E[x x^T | s] - I = T L_s T^T`` and
    ``E[x | s] = T l_s`` with ``T`` a basis of the true span. Writing the true span
    as ``span(B + E)`` with ``E`` orthogonal to ``B``, the blocks off ``span(B)`` are
    ``P_perp C_s B = E D_s`` and ``P_perp mu_s = E (B^T mu_s)`` to first order, so
    ``E`` is a weighted least-squares fit over the slices (weights: the slice sizes,
    the inverse noise variances: entries of ``C_s`` off the diagonal and of ``mu_s``
    both have variance ``1 / count``), and ``B <- orth(B + E)`` is iterated. Unlike the
    eigenvectors of one filter, whose error is the noise over its *smallest*
    eigenvalue in the span, this pools the slices where each direction is strong.
    Returns the new basis and the number of iterations.
    """
    k = B.shape[1]
    it = 0
    for it in range(1, iters + 1):
        CB = np.einsum("sij,jk->sik", C, B)
        D = np.einsum("ji,sjk->sik", B, CB)
        Cp = CB - np.einsum("ij,sjk->sik", B, D)
        m2 = mu @ B
        mp = mu - m2 @ B.T
        num = np.einsum("s,sik,sjk->ij", counts, Cp, D) + np.einsum(
            "s,si,sj->ij", counts, mp, m2)
        den = np.einsum("s,sik,skj->ij", counts, D, D) + np.einsum(
            "s,si,sj->ij", counts, m2, m2)
        den += REESTIMATE_RIDGE * np.trace(den) * np.eye(k)
        E = np.linalg.solve(den, num.T).T
        B = np.linalg.qr(B + E)[0]
        if np.linalg.norm(E) < tol:
            break
    return B, it


def _reestimate(X, V, s_lab, n_slices, chunk_size):
    """The pooled re-estimate of ``span(V)`` from label slices, and its report."""
    cnt, Cs, mus = slice_moments(X, s_lab, n_slices, chunk_size=chunk_size)
    if cnt.size < 2:
        return V, None
    V_new, its = _pooled_reestimate(V, cnt, Cs, mus)
    return V_new, {"slices": int(cnt.size), "iterations": its,
                   "angle_moved": float(principal_angles(V, V_new).max())}


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class _Options:
    """The validated options of :func:`filtered_pca`."""

    n_dir: int | None
    quantiles: np.ndarray
    thresholds: np.ndarray | None
    margin: float
    max_rounds: int
    cell_dims: int
    min_cell: int
    reestimate: bool
    n_slices: int
    chunk_size: int
    dtype: str


def _check_margin(margin):
    if isinstance(margin, bool) or not (isinstance(margin, numbers.Real)
                                        and np.isfinite(margin) and margin >= 0):
        raise ValueError(f"`margin` must be a finite number >= 0 (Tracy-Widom scales, or "
                         f"standard deviations for plain PCA), got {margin!r}.")
    return float(margin)


def _check_n_directions(n_directions, d):
    n_dir = check_positive_int(n_directions, "n_directions", allow_none=True)
    if n_dir is not None and n_dir > d:
        raise ValueError(f"`n_directions` = {n_dir} exceeds d = {d}; pass at most d "
                         "(or None).")
    return n_dir


def _check_too_few(n, d):
    if n < 2 * d:
        raise ValueError(
            f"too few samples: n = {n} < 2 d = {2 * d}. The noise floor of a d x d "
            "second moment is of order sqrt(d / n); provide n >= 20 d (far more for "
            "weak directions)."
        )


def _pca_options(n, d, *, n_directions, quantiles, thresholds, margin, max_rounds,
                 cell_dims, min_cell, reestimate, n_slices, chunk_size, dtype) -> _Options:
    """Check every option of :func:`filtered_pca`; a ValueError names the bad one."""
    _check_too_few(n, d)
    n_dir = _check_n_directions(n_directions, d)
    if thresholds is not None:
        thr = np.atleast_1d(np.asarray(thresholds, dtype=float))
        if thr.ndim != 1 or thr.size == 0 or not np.all(np.isfinite(thr)) or np.any(thr < 0):
            raise ValueError(
                f"`thresholds` must be a non-empty list of finite numbers >= 0 (values "
                f"of |y|), got {thresholds!r}."
            )
        thresholds = np.unique(thr)
    q = np.atleast_1d(np.asarray(quantiles, dtype=float))
    if q.ndim != 1 or q.size == 0 or np.any(~(q > 0)) or np.any(~(q < 1)):
        raise ValueError(
            f"`quantiles` must be a non-empty list of numbers in (0, 1), got {quantiles!r}."
        )
    if isinstance(cell_dims, bool) or not isinstance(cell_dims, numbers.Integral) or cell_dims < 0:
        raise ValueError(f"`cell_dims` must be an integer >= 0, got {cell_dims!r}.")
    min_cell = check_positive_int(min_cell, "min_cell", allow_none=True)
    if dtype not in ("float32", "float64"):
        raise ValueError(f"`dtype` must be 'float32' or 'float64', got {dtype!r}.")
    n_slices = check_positive_int(n_slices, "n_slices")
    if n_slices < 2:
        raise ValueError(f"`n_slices` must be at least 2, got {n_slices}.")
    return _Options(
        n_dir=n_dir, quantiles=np.unique(q), thresholds=thresholds,
        margin=_check_margin(margin), max_rounds=check_positive_int(max_rounds, "max_rounds"),
        cell_dims=int(cell_dims),
        min_cell=max(MIN_CELL_PER_DIM * d, MIN_CELL_ROWS) if min_cell is None else min_cell,
        reestimate=bool(reestimate), n_slices=n_slices,
        chunk_size=check_positive_int(chunk_size, "chunk_size"), dtype=dtype)


# --------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class _Labels:
    """Rows grouped by label: ``label = sign * n_bands + band`` (band of ``|y|``)."""

    label: np.ndarray
    n_lab: int
    sets: list  # (name, label ids) per label set
    taus: np.ndarray  # thresholds on |y|, in the units of the given y


def _label_sets(Y, a, taus, unit) -> _Labels:
    """The label sets of docs/algorithms.md 5.1: the low band and the upper tails of
    ``|y|``, then (one output of both signs) the same restricted to ``y > 0`` and to
    ``y < 0`` (intervals of the signed label) and single bands (disjoint, so their
    noises are independent). ``unit`` maps thresholds back to the units of ``y``."""
    n = Y.shape[0]
    sign = (Y[:, 0] < 0).astype(np.int64) if Y.shape[1] == 1 else np.zeros(n, np.int64)
    band = np.searchsorted(taus, a, side="right")  # 0: |y| <= tau_0, j: tau_{j-1} < |y|
    n_bands = len(taus) + 1
    shown = np.ldexp(taus, unit)
    tails = [[0]] + [list(range(j, n_bands)) for j in range(1, n_bands)]
    tnames = [f"|y| <= {shown[0]:.3g}"] + [f"|y| > {t:.3g}" for t in shown]
    sets = [(nm, t + [n_bands + b for b in t]) for nm, t in zip(tnames, tails)]
    if Y.shape[1] == 1 and sign.any() and not sign.all():
        edges = [0.0, *shown, np.inf]
        for sg, sname in ((0, "y >= 0"), (1, "y < 0")):
            sets.append((sname, [sg * n_bands + b for b in range(n_bands)]))
            sets += [(f"{sname}, {nm}", [sg * n_bands + b for b in t])
                     for nm, t in zip(tnames[1:], tails[1:])]
            sets += [(f"{sname}, {edges[b]:.3g} < |y| <= {edges[b + 1]:.3g}",
                      [sg * n_bands + b]) for b in range(1, n_bands - 1)]
    return _Labels(label=sign * n_bands + band, n_lab=2 * n_bands, sets=sets, taus=shown)


def _labels(Y, ey, opts: _Options):
    """The label sets for ``Y`` (rescaled by ``2**-ey``), and ``|y|`` (``||y||``)."""
    a = np.sqrt((Y * Y).sum(axis=1)) if Y.shape[1] > 1 else np.abs(Y[:, 0])
    taus = (np.ldexp(opts.thresholds, -ey) if opts.thresholds is not None
            else np.unique(np.quantile(a, opts.quantiles)))
    return _label_sets(Y, a, taus, ey), a


# --------------------------------------------------------------------------- one round


@dataclass(frozen=True)
class _Filter:
    """One filter's test: its projected moment ``A`` against the Wishart floors."""

    best: float  # the largest evidence ratio among its extreme eigenvalues
    ratios: np.ndarray  # evidence ratio of each extreme eigenvalue
    samples: int
    floor_up: float
    floor_lo: float
    name: str
    A: np.ndarray


@dataclass(frozen=True)
class _Round:
    best: _Filter | None  # the filter with the strongest evidence
    hits: list  # filters with evidence above the floor
    n_tested: int
    cell_sizes: list


def _cells(X, V, c):
    """Cell of each row: the sign pattern of its first ``c`` coordinates in ``V``."""
    if not c:
        return np.zeros(X.shape[0], dtype=np.int64)
    Zc = np.asarray(X @ V[:, :c]) > 0
    return (Zc * (1 << np.arange(c))).sum(axis=1)


def _test_filter(Gsum, s, Pc, p, margin, name) -> _Filter:
    d = Pc.shape[0]
    A = Pc @ (Gsum / s - np.eye(d)) @ Pc
    w, _ = _extreme_eigs(A, N_EXTREME)
    f_up, f_lo = _wishart_floors(s, p, margin)
    ratio = np.where(w > 0, w / f_up, -w / f_lo)
    return _Filter(best=float(ratio.max()), ratios=ratio, samples=s, floor_up=f_up,
                   floor_lo=f_lo, name=name, A=A)


def _round_filters(G, counts, labels: _Labels, V, c, opts: _Options) -> _Round:
    """Test each (cell, label set) filter of a round in ``V^perp`` (docs/algorithms.md 5.2)."""
    d, r = V.shape
    p = d - r
    n_lab = labels.n_lab
    Pc = np.eye(d) - V @ V.T  # projector on V^perp
    hits, best, n_tested = [], None, 0
    sets = labels.sets + ([("all labels", list(range(n_lab)))] if c else [])
    for ci in range(1 << c):
        Gc = G[ci * n_lab:(ci + 1) * n_lab]
        cc = counts[ci * n_lab:(ci + 1) * n_lab]
        cname = "" if not c else "cell " + "".join(
            "+" if (ci >> b) & 1 else "-" for b in range(c)) + ", "
        for lname, idx in sets:
            s = int(cc[idx].sum())
            if s < max(opts.min_cell, 2 * p):
                continue
            f = _test_filter(Gc[idx].sum(axis=0), s, Pc, p, opts.margin, cname + lname)
            n_tested += 1
            if best is None or f.best > best.best:
                best = f
            if f.best > 1.0:
                hits.append(f)
    sizes = [int(counts[i * n_lab:(i + 1) * n_lab].sum()) for i in range(1 << c)]
    return _Round(best=best, hits=hits, n_tested=n_tested, cell_sizes=sizes)


def _add_directions(V, hits, n_new):
    """``V`` extended by the top ``n_new`` eigenvectors of ``sum_f (A_f / floor_f)^2``
    over the filters above the floor (which pools their evidence), orthonormalised."""
    d = V.shape[0]
    K = np.zeros((d, d))
    for h in hits:
        K += (h.A / h.floor_up) @ (h.A / h.floor_up)
    kw, kU = np.linalg.eigh(K)
    new = kU[:, np.argsort(-kw)[:n_new]]
    new = new - V @ (V.T @ new)
    return np.linalg.qr(np.hstack([V, new]))[0]


def _evidence(v, hits, n):
    """Per new direction ``v``: the filter with the largest Rayleigh ratio, as
    ``(eigenvalue, floor, filter)``, both in units of the whole sample."""
    ev = []
    for h in hits:
        lam = float(v @ h.A @ v)
        fl = h.floor_up if lam > 0 else h.floor_lo
        ev.append((lam / fl if lam > 0 else -lam / fl, lam, fl, h.samples, h.name))
    _, lam, fl, s, name = max(ev)
    return lam * s / n, fl * s / n, name


# --------------------------------------------------------------------------- the search


def _search(X, labels: _Labels, opts: _Options, timings, deadline=math.inf):
    """Rounds of filters (docs/algorithms.md 5.1-5.2) until nothing is above the floor.

    Returns the basis found, one ``(eigenvalue, floor, filter, round)`` per
    direction, the per-round diagnostics and the stopping message. Past
    ``deadline`` (``time.perf_counter()`` seconds) no further round starts.
    """
    n, d = X.shape
    V = np.zeros((d, 0))
    found, rounds_diag = [], []
    message = f"stopped after max_rounds = {opts.max_rounds} rounds."
    for rnd in range(opts.max_rounds):
        if rnd and time.perf_counter() > deadline:
            message = (f"stopped: time_limit reached after {rnd} round(s); more "
                       f"directions may be left.")
            break
        r = V.shape[1]
        if opts.n_dir is not None and r >= opts.n_dir:
            message = f"stopped: the {opts.n_dir} direction(s) asked for were found."
            break
        if d - r < 1:
            message = "stopped: the whole space was found."
            break
        c = min(opts.cell_dims, r)  # cells: sign patterns of the first c coordinates
        t1 = time.perf_counter()
        G, counts = grouped_grams(X, _cells(X, V, c) * labels.n_lab + labels.label,
                                  (1 << c) * labels.n_lab, chunk_size=opts.chunk_size,
                                  dtype=opts.dtype)
        timings["grams"] += time.perf_counter() - t1
        t1 = time.perf_counter()
        res = _round_filters(G, counts, labels, V, c, opts)
        timings["eigen"] += time.perf_counter() - t1
        if res.best is None:
            message = (f"stopped: no filter keeps min_cell = {opts.min_cell} samples; "
                       "provide more samples or lower `min_cell`.")
            break
        b = res.best
        rounds_diag.append({"round": rnd, "best_filter": b.name, "best_ratio": b.best,
                            "filters_tested": res.n_tested,
                            "filters_above_floor": len(res.hits), "samples": b.samples,
                            "cell_sizes": res.cell_sizes})
        if b.best <= 1.0:
            message = (f"stopped: nothing above the noise floor in round {rnd} (best "
                       f"evidence {b.best:.3g} x floor, filter {b.name!r}).")
            break
        # how many directions: the most that one filter shows above its floor (a
        # direction no single filter shows is left to the next round)
        n_new = max(1, min(max(int((h.ratios > 1.0).sum()) for h in res.hits), d - r))
        if opts.n_dir is not None:
            n_new = min(n_new, opts.n_dir - r)
        V = _add_directions(V, res.hits, n_new)
        found += [(*_evidence(V[:, j], res.hits, n), rnd) for j in range(r, r + n_new)]
    return V, found, rounds_diag, message


# --------------------------------------------------------------------------- public


def filtered_pca(
    X,
    y,
    *,
    n_directions: int | None = None,
    thresholds=None,
    quantiles=DEFAULT_QUANTILES,
    margin: float = 6.0,
    max_rounds: int = 10,
    cell_dims: int = 2,
    min_cell: int | None = None,
    reestimate: bool = True,
    n_slices: int = 20,
    chunk_size: int = DEFAULT_CHUNK,
    dtype: str = "float32",
    time_limit: float | None = None,
) -> Subspace:
    """Find ``span(W_1)`` of a deep ReLU network by filtered PCA [CKM] (docs/algorithms.md 5).

    Round 0 forms ``M_A = E[1{|y| in A} (x x^T - I)]`` for label sets ``A``: the
    upper tails ``|y| > tau`` (``tau`` the ``thresholds``, or the ``quantiles`` of
    ``|y|``) and the band below the smallest ``tau``. Each eigen-direction is ranked
    by ``|eigenvalue| / floor``, the floor being the edge of the spectrum that ``s``
    Gaussian samples independent of the filter would give (Marchenko-Pastur plus
    ``margin`` Tracy-Widom scales; ``s`` the samples the filter keeps). The filter
    with the strongest evidence contributes its directions above the floor. Later
    rounds condition on cells of the part ``V`` found so far (signs of its first
    ``cell_dims`` coordinates) crossed with the same label sets, in ``V^perp``,
    until no filter rises above its floor, ``n_directions`` are found, or
    ``max_rounds``. Last, the span is re-estimated from ``n_slices`` quantile slices
    of the label together (their first and second moments, a weighted least-squares
    fit of the part off the span): on depth-3 networks (widths 4, 4) at ``n = 2e5``
    it halves the largest principal angle (d = 50: 0.10 -> 0.05 rad).

    ``X`` is divided by its root mean square when that is not 1 (by a power of two,
    lossless, when that suffices) and ``y`` by a power of two: directions are scale-free.

    Parameters
    ----------
    X : array-like of shape (n_samples, d)
        Standard Gaussian inputs, one sample a row.
    y : array-like of shape (n_samples,) or (n_samples, m)
        Labels; with ``m > 1`` outputs the filters act on the row norms ``||y||``.
    n_directions : int, default=None
        Stop once this many directions are found (None: only when nothing is left
        above the floor).
    thresholds : sequence of float, default=None
        Thresholds ``tau`` on ``|y|``; None takes the ``quantiles`` of ``|y|``.
    quantiles : sequence of float, default=(0.5, 0.7, 0.8, 0.9)
        Quantiles of ``|y|`` used as thresholds when ``thresholds`` is None.
    margin : float, default=6.0
        Tracy-Widom scales added to the Marchenko-Pastur edge. Many filters are
        tested in each round; 6 keeps false directions rare.
    max_rounds : int, default=10
        Rounds of the iteration (round 0 included).
    cell_dims : int, default=2
        Coordinates of the part found whose signs define the cells (``2**cell_dims``
        cells); 0 conditions on labels only.
    min_cell : int, default=None
        Filters keeping fewer samples are skipped; None means ``max(4 d, 200)``.
    reestimate : bool, default=True
        Re-estimate the span found from all label slices at once; the number of
        directions is not changed.
    n_slices : int, default=20
        Quantile slices of the label (of ``||y||`` when ``m > 1``) for the
        re-estimate; slices with at most ``d`` samples are dropped.
    chunk_size : int, default=16384
        Rows per chunk when streaming over ``X``.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the Gram matrices (the floors are far above float32 rounding).
    time_limit : float, default=None
        Seconds after which no further round starts (round 0 always runs: each round
        is one pass over ``X``) and the re-estimate is skipped; the message says so.

    Returns
    -------
    Subspace
        ``.basis`` of shape ``(d, k_found)`` and, per direction, ``.eigenvalues``,
        ``.floors``, ``.filters`` and ``.rounds``; ``.message`` says why it stopped.

    Examples
    --------
    The alternating instance, where plain PCA is blind (docs/algorithms.md 5.1):

    >>> from relurecover import gaussian_inputs
    >>> from relurecover.deep import alternating_network, principal_angles
    >>> net = alternating_network(20, rng=0)
    >>> X = gaussian_inputs(60_000, 20, rng=1)
    >>> sub = filtered_pca(X, net.predict(X))
    >>> sub.n_found
    2
    >>> bool(principal_angles(sub.basis, net.weights[0].T).max() < 0.1)
    True
    """
    X, Y = check_samples(X, y, zero_y="there is no direction to find.")
    X, Y, outliers, input_note = set_aside_outliers(X, Y)  # 5.1: not Gaussian rows
    return checked_filtered_pca(
        X, Y, outliers=outliers, input_note=input_note, n_directions=n_directions,
        thresholds=thresholds, quantiles=quantiles, margin=margin, max_rounds=max_rounds,
        cell_dims=cell_dims, min_cell=min_cell, reestimate=reestimate, n_slices=n_slices,
        chunk_size=chunk_size, dtype=dtype, time_limit=time_limit)


def checked_filtered_pca(X, Y, *, outliers=None, input_note="", **options):
    """:func:`filtered_pca` on samples already checked (``X`` and ``Y`` 2-d float64,
    finite) and cleared of outlier rows (``outliers``, ``input_note``: what
    :func:`set_aside_outliers` said); :func:`learn_deep` calls it on its training
    rows, which it has checked once already. ``options`` are filtered_pca's keyword
    arguments; those not given take filtered_pca's defaults (its signature is the one
    place they are written). ``deadline`` (``time.perf_counter()`` seconds, the
    caller's) is used instead of ``time_limit`` when given."""
    t_start = time.perf_counter()
    deadline = options.pop("deadline", None)
    defaults = {name: p.default for name, p in
                inspect.signature(filtered_pca).parameters.items()
                if p.default is not inspect.Parameter.empty}
    merged = {**defaults, **options}
    time_limit = check_time_limit(merged.pop("time_limit"))
    if deadline is None:
        deadline = math.inf if time_limit is None else t_start + time_limit
    opts = _pca_options(*X.shape, **merged)
    t0 = time.perf_counter()
    X, x_scale = standardize_inputs(X, opts.chunk_size)
    ey = scale_exponent(Y, opts.chunk_size)
    Y = np.ldexp(Y, -ey) if ey else Y
    timings = {"scale": time.perf_counter() - t0}
    t0 = time.perf_counter()
    labels, a = _labels(Y, ey, opts)
    timings.update(labels=time.perf_counter() - t0, grams=0.0, eigen=0.0)
    V, found, rounds_diag, message = _search(X, labels, opts, timings, deadline)
    reest = None
    if opts.reestimate and 0 < V.shape[1] < X.shape[1] and time.perf_counter() > deadline:
        message += " The re-estimate was skipped (time_limit)."
    elif opts.reestimate and 0 < V.shape[1] < X.shape[1]:
        t1 = time.perf_counter()
        s_lab = Y[:, 0] if Y.shape[1] == 1 else a
        V, reest = _reestimate(X, V, s_lab, opts.n_slices, opts.chunk_size)
        timings["reestimate"] = time.perf_counter() - t1
    vals, floors, names, rounds = zip(*found) if found else ((), (), (), ())
    return Subspace(
        basis=V, eigenvalues=np.array(vals), floors=np.array(floors),
        filters=tuple(names), rounds=np.array(rounds, dtype=int), method="filtered",
        message=message + scale_note(x_scale) + (f" Note: {input_note}." if input_note
                                                  else ""), timings=timings,
        diagnostics={"thresholds": labels.taus, "rounds": rounds_diag, "n": X.shape[0],
                     "d": X.shape[1], "reestimate": reest, "input_scale": x_scale,
                     "outlier_rows": None if outliers is None else outliers.rows},
    )
