"""Filtered PCA: the subspace a deep ReLU network depends on (docs/algorithms.md 5.1-5.2).

``F(x) = W_{L+1} relu(W_L ... relu(W_1 x))`` depends on ``x`` only through its
projection on ``W = rowspan(W_1)``. Outside ``W`` a Gaussian ``x`` is independent of
``y``, so any statistic ``E[1{y in A} (x x^T - I)]`` lives in ``W`` [CKM]. Off ``W``
the empirical matrix is pure Wishart noise whose spectrum is known in closed form
(Marchenko-Pastur edges plus Tracy-Widom fluctuations): that is the noise floor
against which each eigen-direction is judged.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import blas

from .._validation import as_2d_float, check_positive_int, check_random_state
from ..moments import iter_chunks

__all__ = ["Subspace", "filtered_pca", "plain_pca", "principal_angles"]

#: quantiles of |y| whose upper tails (and the band below the first) are the filters.
DEFAULT_QUANTILES = (0.5, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class Subspace:
    """An orthonormal basis found by (filtered) PCA, with the evidence for each direction.

    Attributes
    ----------
    basis : ndarray of shape (d, k_found)
        Orthonormal columns, in the order found (strongest evidence first per round).
    eigenvalues : ndarray of shape (k_found,)
        Eigenvalue of the moment matrix ``E[1{filter} (x x^T - I)]`` (or
        ``E[y (x x^T - I)]`` for plain PCA) along each direction.
    floors : ndarray of shape (k_found,)
        The noise floor that eigenvalue was compared with (same units, same sign side).
    filters : tuple of str
        Which filter found each direction (label interval, cell of the part found before).
    rounds : ndarray of shape (k_found,)
        The round of the iteration (0 = no conditioning on cells) that found it.
    method : str
        ``"filtered"`` or ``"plain"``.
    message : str
        Why the search stopped.
    timings : dict of str to float
        Seconds per stage.
    diagnostics : dict
        Per round: the best filter tried and its evidence ratio, sizes of the cells.
    """

    basis: np.ndarray
    eigenvalues: np.ndarray
    floors: np.ndarray
    filters: tuple
    rounds: np.ndarray
    method: str
    message: str
    timings: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)

    @property
    def n_found(self) -> int:
        """Number of directions found (columns of :attr:`basis`)."""
        return int(self.basis.shape[1])

    @property
    def evidence(self) -> np.ndarray:
        """``|eigenvalue| / floor`` per direction (> 1: above the noise floor)."""
        return np.abs(self.eigenvalues) / np.maximum(self.floors, 1e-300)

    def __repr__(self) -> str:
        ev = ", ".join(f"{e:.3g}" for e in self.evidence)
        total = sum(self.timings.values())
        return (
            f"Subspace({self.method}: found {self.n_found} direction(s) in d="
            f"{self.basis.shape[0]}, evidence/floor=[{ev}], time={total:.3g}s)\n"
            f"  message: {self.message}"
        )


def principal_angles(A, B) -> np.ndarray:
    """Principal angles (radians, descending) between ``span(A)`` and ``span(B)``.

    ``A`` and ``B`` have shape ``(d, p)`` and ``(d, q)`` (columns span the subspaces;
    rows of ``W_1`` are passed as ``W_1.T``). When ``p != q`` the ``|p - q|`` missing
    directions count as angles of ``pi / 2``, so the largest angle is small only
    when the two subspaces are close *and* of the same dimension.

    Examples
    --------
    >>> e = np.eye(3)
    >>> principal_angles(e[:, :2], e[:, [1, 0]]).round(12).tolist()
    [0.0, 0.0]
    >>> float(principal_angles(e[:, :1], e[:, :2])[0].round(6))
    1.570796
    """
    from scipy.linalg import subspace_angles

    A = np.asarray(A, dtype=float)
    B = np.asarray(B, dtype=float)
    if A.shape[1] == 0 or B.shape[1] == 0:
        return np.full(max(A.shape[1], B.shape[1]), np.pi / 2)
    ang = np.sort(subspace_angles(A, B))[::-1]
    missing = abs(np.linalg.matrix_rank(A) - np.linalg.matrix_rank(B))
    return np.concatenate([np.full(missing, np.pi / 2), ang])


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


# --------------------------------------------------------------------------- Grams


def _group_grams(X, groups, n_groups, *, chunk_size, dtype):
    """``G[g] = sum_{i in group g} x_i x_i^T`` and the group sizes, in one pass.

    Rows are sorted by group within each chunk so every Gram is a single SYRK
    on a contiguous block (float32 by default: the floors are far above its
    rounding, and it halves the pass).
    """
    n, d = X.shape
    G = np.zeros((n_groups, d, d))
    counts = np.bincount(groups, minlength=n_groups)
    syrk = blas.ssyrk if dtype == "float32" else blas.dsyrk
    for sl in iter_chunks(n, chunk_size):
        g = groups[sl]
        order = np.argsort(g, kind="stable")
        Xc = np.asarray(X[sl], dtype=dtype)[order]
        bounds = np.searchsorted(g[order], np.arange(n_groups + 1))
        for j in range(n_groups):
            a, b = bounds[j], bounds[j + 1]
            if b > a:
                # C-ordered (rows, d) is Fortran (d, rows): syrk gives X^T X (upper)
                G[j] += syrk(1.0, Xc[a:b].T, trans=0)
    iu = np.triu_indices(d, 1)
    for j in range(n_groups):
        G[j][(iu[1], iu[0])] = G[j][iu]
    return G, counts


def _extreme_eigs(A, n_each: int):
    """Eigenpairs of symmetric ``A``: the ``n_each`` largest and ``n_each`` smallest.

    Dense ``eigh`` up to ``d = 400``; Lanczos (ARPACK, both ends) beyond, where the
    ``O(d^3)`` reduction would dominate.
    """
    d = A.shape[0]
    if d > 400:
        from scipy.sparse.linalg import eigsh

        w, V = eigsh(A, k=2 * n_each, which="BE", tol=1e-8,
                     v0=np.ones(d) / np.sqrt(d))
        return w, V
    w, V = np.linalg.eigh(A)
    d = len(w)
    idx = np.unique(np.r_[np.arange(min(n_each, d)), np.arange(max(d - n_each, 0), d)])
    return w[idx], V[:, idx]


# --------------------------------------------------------------------------- re-estimate


def _slice_moments(X, s, n_slices, *, chunk_size):
    """Per slice of the scalar label ``s`` (equal-count quantile slices): the count,
    ``E[x x^T | slice] - I`` and ``E[x | slice]``, in one pass over ``X``."""
    n, d = X.shape
    edges = np.quantile(s, np.linspace(0, 1, n_slices + 1)[1:-1])
    sl_id = np.searchsorted(edges, s, side="right")
    G, counts = _group_grams(X, sl_id, n_slices, chunk_size=chunk_size, dtype="float64")
    sums = np.zeros((n_slices, d))
    for sl in iter_chunks(n, chunk_size):
        g = sl_id[sl]
        order = np.argsort(g, kind="stable")
        present = np.unique(g)
        starts = np.searchsorted(g[order], present)
        sums[present] += np.add.reduceat(np.asarray(X[sl], dtype=np.float64)[order], starts)
    keep = counts > d
    c = counts[keep].astype(float)
    return c, G[keep] / c[:, None, None] - np.eye(d), sums[keep] / c[:, None]


def _pooled_reestimate(B, counts, C, mu, *, iters=10, tol=1e-10):
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
        den += 1e-12 * np.trace(den) * np.eye(k)
        E = np.linalg.solve(den, num.T).T
        B = np.linalg.qr(B + E)[0]
        if np.linalg.norm(E) < tol:
            break
    return B, it


# --------------------------------------------------------------------------- validation


def _pca_iv(X, y, n_directions, quantiles, thresholds, margin, max_rounds, cell_dims,
            min_cell):
    X = as_2d_float(X, "X")
    Y = as_2d_float(y, "y", allow_1d_column=True)
    n, d = X.shape
    if Y.shape[0] != n:
        raise ValueError(
            f"`X` and `y` must have the same number of rows (samples); got {n} and "
            f"{Y.shape[0]}."
        )
    if n < 2 * d:
        raise ValueError(
            f"too few samples: n = {n} < 2 d = {2 * d}. The noise floor of a d x d "
            "second moment is of order sqrt(d / n); provide n >= 20 d (far more for "
            "weak directions)."
        )
    if not np.any(Y):
        raise ValueError("`y` is identically zero: there is no direction to find.")
    n_directions = check_positive_int(n_directions, "n_directions", allow_none=True)
    if n_directions is not None and n_directions > d:
        raise ValueError(f"`n_directions` = {n_directions} exceeds d = {d}.")
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
    if not (isinstance(margin, numbers.Real) and margin >= 0):
        raise ValueError(f"`margin` must be a number >= 0 (Tracy-Widom scales), got {margin!r}.")
    max_rounds = check_positive_int(max_rounds, "max_rounds")
    if isinstance(cell_dims, bool) or not isinstance(cell_dims, numbers.Integral) or cell_dims < 0:
        raise ValueError(f"`cell_dims` must be an integer >= 0, got {cell_dims!r}.")
    min_cell = check_positive_int(min_cell, "min_cell", allow_none=True)
    return X, Y, n_directions, np.unique(q), thresholds, float(margin), max_rounds, \
        int(cell_dims), min_cell


# --------------------------------------------------------------------------- filtered


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
    rng=None,
    chunk_size: int = 16384,
    dtype: str = "float32",
) -> Subspace:
    """Find ``span(W_1)`` of a deep ReLU network by filtered PCA [CKM] (docs/algorithms.md 5).

    Round 0 forms ``M_A = E[1{|y| in A} (x x^T - I)]`` for label sets ``A``: the
    upper tails ``|y| > tau`` (``tau`` the given ``thresholds``, or the
    ``quantiles`` of ``|y|``) and the band below the smallest ``tau``. Each
    eigen-direction is ranked by ``|eigenvalue| / floor``, the floor being the edge
    of the spectrum that ``s`` Gaussian samples independent of the filter would
    give (Marchenko-Pastur plus ``margin`` Tracy-Widom scales; ``s`` is the number
    of samples the filter keeps). The filter with the strongest evidence
    contributes its directions above the floor.

    Later rounds condition on cells of the part ``V`` found so far (signs of the
    first ``cell_dims`` coordinates ``V^T x``) crossed with the same label sets, and
    redo the analysis in ``V^perp``. The search stops when no filter rises above
    its floor, when ``n_directions`` are found, or after ``max_rounds`` rounds.

    Last, the span found is re-estimated from ``n_slices`` quantile slices of the
    label together (their second *and* first moments, a weighted least-squares fit
    of the part off the span, iterated): each eigenvector of one filter is only as
    good as that filter's weakest direction, the pooled fit uses every slice where
    a direction is strong. On depth-3 networks (widths 4, 4) at ``n = 2e5`` it
    halves the largest principal angle (d = 50: 0.10 -> 0.05 rad).

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
        Re-estimate the span found from all label slices at once (see above); the
        number of directions is not changed.
    n_slices : int, default=20
        Quantile slices of the label (of ``||y||`` when ``m > 1``) for the
        re-estimate; slices with fewer than ``d`` samples are dropped.
    rng : None, int or numpy.random.Generator, default=None
        Unused by the deterministic filters; accepted for a uniform signature.
    chunk_size : int, default=16384
        Rows per chunk when streaming over ``X``.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the Gram matrices.

    Returns
    -------
    Subspace
        ``.basis`` of shape ``(d, k_found)`` and, per direction, ``.eigenvalues``,
        ``.floors``, ``.filters`` and ``.rounds``.

    Examples
    --------
    The alternating instance, where plain PCA is blind (docs/algorithms.md 5.1):

    >>> from relurecover import gaussian_inputs
    >>> from relurecover.deep import alternating_network
    >>> net = alternating_network(20, rng=0)
    >>> X = gaussian_inputs(60_000, 20, rng=1)
    >>> sub = filtered_pca(X, net.predict(X))
    >>> sub.n_found
    2
    >>> bool(principal_angles(sub.basis, net.weights[0].T).max() < 0.1)
    True
    """
    X, Y, n_dir, q, thresholds, margin, max_rounds, cell_dims, min_cell = _pca_iv(
        X, y, n_directions, quantiles, thresholds, margin, max_rounds, cell_dims, min_cell
    )
    if dtype not in ("float32", "float64"):
        raise ValueError(f"`dtype` must be 'float32' or 'float64', got {dtype!r}.")
    n_slices = check_positive_int(n_slices, "n_slices")
    if n_slices < 2:
        raise ValueError(f"`n_slices` must be at least 2, got {n_slices}.")
    check_random_state(rng)
    n, d = X.shape
    if min_cell is None:
        min_cell = max(4 * d, 200)
    t0 = time.perf_counter()
    a = np.sqrt((Y * Y).sum(axis=1)) if Y.shape[1] > 1 else np.abs(Y[:, 0])
    sign = (Y[:, 0] < 0).astype(np.int64) if Y.shape[1] == 1 else np.zeros(n, np.int64)
    taus = thresholds if thresholds is not None else np.unique(np.quantile(a, q))
    band = np.searchsorted(taus, a, side="right")  # 0: |y| <= tau_0, j: tau_{j-1} < |y|
    n_bands = len(taus) + 1
    n_lab = 2 * n_bands  # label groups: (sign of y, band of |y|)
    label = sign * n_bands + band
    # label sets (5.1): the low band and the upper tails of |y|, then the same
    # restricted to y > 0 and to y < 0 (intervals of the signed label)
    tails = [[0]] + [list(range(j, n_bands)) for j in range(1, n_bands)]
    tnames = [f"|y| <= {taus[0]:.3g}"] + [f"|y| > {t:.3g}" for t in taus]
    label_sets = [(nm, t + [n_bands + b for b in t]) for nm, t in zip(tnames, tails)]
    if Y.shape[1] == 1 and sign.any() and not sign.all():
        for sg, sname in ((0, "y >= 0"), (1, "y < 0")):
            label_sets.append((sname, [sg * n_bands + b for b in range(n_bands)]))
            label_sets += [(f"{sname}, {nm}", [sg * n_bands + b for b in t])
                           for nm, t in zip(tnames[1:], tails[1:])]
            # single bands: disjoint sets, so their noises are independent
            edges = [0.0, *taus, np.inf]
            label_sets += [(f"{sname}, {edges[b]:.3g} < |y| <= {edges[b + 1]:.3g}",
                            [sg * n_bands + b]) for b in range(1, n_bands - 1)]
    timings = {"labels": time.perf_counter() - t0, "grams": 0.0, "eigen": 0.0}

    V = np.zeros((d, 0))
    found_vals, found_floors, found_filters, found_rounds = [], [], [], []
    rounds_diag = []
    message = ""
    for rnd in range(max_rounds):
        r = V.shape[1]
        p = d - r
        if n_dir is not None and r >= n_dir:
            message = f"stopped: the {n_dir} direction(s) asked for were found."
            break
        if p < 1:
            message = "stopped: the whole space was found."
            break
        # cells: sign patterns of the first cell_dims coordinates found (5.2)
        c = min(cell_dims, r)
        t1 = time.perf_counter()
        if c:
            Zc = np.asarray(X @ V[:, :c]) > 0
            cell = (Zc * (1 << np.arange(c))).sum(axis=1)
        else:
            cell = np.zeros(n, dtype=np.int64)
        n_cells = 1 << c
        G, counts = _group_grams(X, cell * n_lab + label, n_cells * n_lab,
                                 chunk_size=chunk_size, dtype=dtype)
        timings["grams"] += time.perf_counter() - t1
        t1 = time.perf_counter()
        Pc = np.eye(d) - V @ V.T  # projector on V^perp
        hits = []  # filters with evidence above the floor
        best = None
        n_tested = 0
        for ci in range(n_cells):
            Gc = G[ci * n_lab:(ci + 1) * n_lab]
            cc = counts[ci * n_lab:(ci + 1) * n_lab]
            sets = label_sets + ([("all labels", list(range(n_lab)))] if c else [])
            cname = "" if not c else "cell " + "".join(
                "+" if (ci >> b) & 1 else "-" for b in range(c)) + ", "
            for lname, idx in sets:
                s = int(cc[idx].sum())
                if s < max(min_cell, 2 * p):
                    continue
                A = Pc @ (Gc[idx].sum(axis=0) / s - np.eye(d)) @ Pc
                w, U = _extreme_eigs(A, 6)
                f_up, f_lo = _wishart_floors(s, p, margin)
                ratio = np.where(w > 0, w / f_up, -w / f_lo)
                n_tested += 1
                j = int(np.argmax(ratio))
                entry = (float(ratio[j]), w, U, ratio, s, f_up, f_lo, cname + lname)
                if best is None or ratio[j] > best[0]:
                    best = entry
                if ratio[j] > 1.0:
                    hits.append(entry + (A,))
        timings["eigen"] += time.perf_counter() - t1
        if best is None:
            message = (f"stopped: no filter keeps min_cell = {min_cell} samples; "
                       "provide more samples or lower `min_cell`.")
            break
        bratio, w, U, ratio, s, f_up, f_lo, fname = best
        rounds_diag.append({"round": rnd, "best_filter": fname, "best_ratio": bratio,
                            "filters_tested": n_tested, "filters_above_floor": len(hits),
                            "samples": s,
                            "cell_sizes": [int(counts[i * n_lab:(i + 1) * n_lab].sum())
                                           for i in range(n_cells)]})
        if bratio <= 1.0:
            message = (f"stopped: nothing above the noise floor in round {rnd} (best "
                       f"evidence {bratio:.3g} x floor, filter {fname!r}).")
            break
        # how many directions: the most that one filter shows above its floor (a
        # direction no single filter shows is left to the next round); which
        # directions: the top eigenvectors of sum_f (A_f / floor_f)^2 over the
        # filters above the floor, which pools their evidence
        K = np.zeros((d, d))
        for h in hits:
            K += (h[8] / h[5]) @ (h[8] / h[5])
        n_new = max(int((h[3] > 1.0).sum()) for h in hits)
        n_new = max(1, min(n_new, p))
        if n_dir is not None:
            n_new = min(n_new, n_dir - r)
        kw, kU = np.linalg.eigh(K)
        new = kU[:, np.argsort(-kw)[:n_new]]
        new = new - V @ (V.T @ new)
        V = np.linalg.qr(np.hstack([V, new]))[0]
        # evidence per new direction: the filter with the largest Rayleigh ratio
        for j in range(r, r + n_new):
            v = V[:, j]
            ev = []
            for _, w_, U_, ratio_, s_, fu, fl, nm, A_ in hits:
                lam = float(v @ A_ @ v)
                ev.append((lam / fu if lam > 0 else -lam / fl, lam, fu if lam > 0 else fl,
                           s_, nm))
            _, lam, fl_, s_, nm = max(ev)
            found_vals.append(lam * s_ / n)
            found_floors.append(fl_ * s_ / n)
            found_filters.append(nm)
            found_rounds.append(rnd)
    else:
        message = f"stopped after max_rounds = {max_rounds} rounds."
    reest = None
    if reestimate and 0 < V.shape[1] < d:
        t1 = time.perf_counter()
        s_lab = Y[:, 0] if Y.shape[1] == 1 else a
        cnt, Cs, mus = _slice_moments(X, s_lab, n_slices, chunk_size=chunk_size)
        if cnt.size >= 2:
            V_new, its = _pooled_reestimate(V, cnt, Cs, mus)
            reest = {"slices": int(cnt.size), "iterations": its,
                     "angle_moved": float(principal_angles(V, V_new).max())}
            V = V_new
        timings["reestimate"] = time.perf_counter() - t1
    return Subspace(
        basis=V, eigenvalues=np.array(found_vals), floors=np.array(found_floors),
        filters=tuple(found_filters), rounds=np.array(found_rounds, dtype=int),
        method="filtered", message=message, timings=timings,
        diagnostics={"thresholds": taus, "rounds": rounds_diag, "n": n, "d": d,
                     "reestimate": reest},
    )


# --------------------------------------------------------------------------- plain


def plain_pca(
    X,
    y,
    *,
    n_directions: int | None = None,
    n_batches: int = 20,
    margin: float = 6.0,
    rng=None,
    chunk_size: int = 16384,
) -> Subspace:
    """Plain PCA ``M = E[y (x x^T - I)]``, the unfiltered moment, for comparison.

    Directions are kept when ``|eigenvalue|`` exceeds a floor computed from the
    data's own sampling noise: the rows are dealt at random into ``n_batches``
    batches, and ``E_b = (M_b - M) / sqrt(B - 1)`` (``M_b`` the moment of batch
    ``b``) has the covariance of the estimation error of ``M``; the floor is the
    mean of ``||E_b||_2`` plus ``margin`` standard deviations of it. Unlike a
    permutation floor (which tests whether ``y`` is independent of ``x``), this
    tests ``M != 0`` with the heteroscedastic noise of a ``y`` that depends on
    ``x``: where ``M = 0`` exactly while ``y`` depends on ``x`` (the alternating
    instance), a permutation floor is too low inside the span and reports noise as
    directions. With ``m > 1`` outputs the first output is used.

    Parameters
    ----------
    X : array-like of shape (n_samples, d)
    y : array-like of shape (n_samples,) or (n_samples, m)
    n_directions : int, default=None
        Keep at most this many directions.
    n_batches : int, default=20
        Batches for the noise floor (at least 3).
    margin : float, default=6.0
        Standard deviations of the batch noise norms added to their mean.
    rng : None, int or numpy.random.Generator, default=None
        Seeds the assignment of rows to batches.
    chunk_size : int, default=16384

    Returns
    -------
    Subspace
        With ``method="plain"``.

    Examples
    --------
    >>> from relurecover import gaussian_inputs
    >>> from relurecover.deep import alternating_network
    >>> net = alternating_network(20, rng=0)
    >>> X = gaussian_inputs(60_000, 20, rng=1)
    >>> plain_pca(X, net.predict(X), rng=0).n_found  # blind: E[y (x x^T - I)] = 0
    0
    """
    X, Y, n_dir, _, _, _, _, _, _ = _pca_iv(X, y, n_directions, DEFAULT_QUANTILES, None,
                                            0.0, 1, 0, None)
    n_batches = check_positive_int(n_batches, "n_batches")
    if n_batches < 3:
        raise ValueError(
            f"`n_batches` must be at least 3 (the floor needs a spread), got {n_batches}.")
    if not (isinstance(margin, numbers.Real) and margin >= 0):
        raise ValueError(f"`margin` must be a number >= 0, got {margin!r}.")
    rng = check_random_state(rng)
    n, d = X.shape
    if n < n_batches * d:
        raise ValueError(f"plain_pca needs n >= n_batches * d = {n_batches * d} samples "
                         f"for its noise floor, got n = {n}.")
    t0 = time.perf_counter()
    w0 = Y[:, 0]
    batch = rng.integers(0, n_batches, size=n)
    G = np.zeros((n_batches, d, d))
    for sl in iter_chunks(n, chunk_size):
        Xc = np.asarray(X[sl], dtype=np.float64)
        Xw = Xc * w0[sl, None]
        bc = batch[sl]
        for b in range(n_batches):
            rows = bc == b
            G[b] += Xw[rows].T @ Xc[rows]
    cnt = np.bincount(batch, minlength=n_batches).astype(float)
    wsum = np.bincount(batch, weights=w0, minlength=n_batches)
    M = G.sum(axis=0) / n - (wsum.sum() / n) * np.eye(d)
    Mb = G / cnt[:, None, None] - (wsum / cnt)[:, None, None] * np.eye(d)
    t1 = time.perf_counter()
    noise = np.array([np.linalg.norm(Mb[b] - M, 2) for b in range(n_batches)])
    noise /= np.sqrt(n_batches - 1)
    floor = float(noise.mean() + margin * noise.std(ddof=1))
    w, U = np.linalg.eigh(M)
    order = np.argsort(-np.abs(w))
    order = order[np.abs(w[order]) > floor]
    if n_dir is not None:
        order = order[:n_dir]
    best = float(np.abs(w).max() / floor)
    message = (f"{len(order)} direction(s) above the batch noise floor {floor:.3g} "
               f"(best evidence {best:.3g} x floor).")
    return Subspace(
        basis=U[:, order], eigenvalues=w[order], floors=np.full(len(order), floor),
        filters=tuple("plain E[y (x x^T - I)]" for _ in order),
        rounds=np.zeros(len(order), dtype=int), method="plain", message=message,
        timings={"moments": t1 - t0, "eigen": time.perf_counter() - t1},
        diagnostics={"floor": floor, "best_ratio": best,
                     "top_eigenvalues": w[np.argsort(-np.abs(w))[:8]]},
    )
