"""Streaming Hermite-moment estimators (docs/algorithms.md sections 1-3).

Every estimator reads the data in row chunks of one iterator (:func:`iter_chunks`,
or :func:`iter_blocks` for the float64 blocks), so ``X`` may be a
``numpy.memmap`` or a :class:`relurecover.data.ChunkedArray` (Zarr, Dask, shards)
larger than memory; each chunk is converted to float64 on the fly. The passes
over all the data (the first moment, the output layer and its certificate) are
sums of a kernel over chunks, :func:`map_reduce`: a loop in this process, or a
Dask reduction computed where the chunks live when the data are a Dask array
(docs/algorithms.md 8).

For ``x ~ N(0, I_d)`` and a two-layer ReLU network ``y = U relu(V x)``:

- first moment: ``E[y x^T] = U V / 2`` (its row space is ``span(V)``);
- second moment: ``E[y (x) (x x^T - I)] = sum_i w_i (x) vhat_i (x) vhat_i`` with
  ``w_i = ||v_i|| U[:, i] / sqrt(2 pi)`` (section 1); for one output,
  ``E[y (x x^T - I)] = C2 sum_i a_i vhat_i vhat_i^T`` with its noise floor
  (:func:`second_moment`, section 3.2 step 1);
- fourth Hermite moment: ``E[y He4(x)(a, b, ., .)] = C4 sum_i a_i (a . vhat_i)
  (b . vhat_i) vhat_i vhat_i^T`` (:func:`hermite4_contraction`, section 3.2 step 2);
- the Gauss-Newton Gram matrix of the noisy refinement,
  ``E[1{x . v_i > 0} 1{x . v_j > 0} x x^T]`` (:func:`relu_pattern_gram`, section 2).
"""

from __future__ import annotations

import time

import numpy as np

from ._linalg import blas_threads
from ._progress import report
from .data import DEFAULT_CHUNK, ChunkedArray, ordered_map

__all__ = [
    "DEFAULT_CHUNK",
    "map_reduce",
    "C2",
    "C4",
    "SECOND_MOMENT_FLOOR_FACTOR",
    "iter_chunks",
    "iter_blocks",
    "first_moment",
    "contracted_second_moments",
    "second_moment_weights",
    "second_moment",
    "hermite4_contraction",
    "hermite4_moment",
    "relu_pattern_gram",
    "grouped_grams",
    "grouped_sums",
    "slice_moments",
    "grouped_second_moments",
]

#: ``E[relu(g) He2(g)]`` for ``g ~ N(0, 1)``: the ReLU's second Hermite coefficient.
C2 = 1.0 / np.sqrt(2.0 * np.pi)
#: ``E[relu(g) He4(g)]`` for ``g ~ N(0, 1)``, ``He4 = g^4 - 6 g^2 + 3``.
C4 = -1.0 / np.sqrt(2.0 * np.pi)
#: :func:`second_moment`'s noise floor is this many times the estimated spectral
#: edge of the sampling noise.
SECOND_MOMENT_FLOOR_FACTOR = 1.5


def iter_chunks(n: int, chunk_size: int = DEFAULT_CHUNK):
    """Yield ``slice`` objects that cover ``range(n)`` in blocks of ``chunk_size`` rows.

    Parameters
    ----------
    n : int
        Rows to cover.
    chunk_size : int, default=DEFAULT_CHUNK
        Rows per block (the last may be shorter).

    Yields
    ------
    slice
    """
    for start in range(0, n, chunk_size):
        yield slice(start, min(start + chunk_size, n))


def _rows(A, sl):
    return np.asarray(A[sl], dtype=np.float64)


def iter_blocks(*arrays, chunk_size: int = DEFAULT_CHUNK):
    """Yield ``(slice, blocks)``: the same rows of every array, as float64.

    The one chunk loop of the package's passes over the data (:func:`iter_chunks`
    on the rows of the first array).

    Parameters
    ----------
    *arrays : array-like, each with the same number of rows
        e.g. ``X`` (possibly a memmap) and ``Y``; 1-D arrays give 1-D blocks.
    chunk_size : int, default=DEFAULT_CHUNK
        Rows per block.

    Yields
    ------
    sl : slice
        The rows of this block.
    blocks : tuple of ndarray
        ``np.asarray(A[sl], dtype=float64)`` for each array ``A``.
    """
    lead = next((A for A in arrays if isinstance(A, ChunkedArray)), None)
    if lead is not None:
        chunk_size = lead.aligned_chunk(chunk_size)
    for sl in iter_chunks(arrays[0].shape[0], chunk_size):
        yield sl, tuple(_rows(A, sl) for A in arrays)


def _add(total, part):
    if isinstance(part, tuple):
        return tuple(a + b for a, b in zip(total, part))
    return total + part


def _sum_tree(parts, combine=_add):
    """Pairwise ``combine`` of a list of Dask delayed parts (depth log2 of their number)."""
    import dask

    add = dask.delayed(combine, pure=True)
    while len(parts) > 1:
        parts = [add(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


def _dask_blocks(arrays):
    """The Dask delayed row blocks of each array, on the row chunks of the first
    Dask-backed one (numpy arrays are cut to the same chunks)."""
    import dask.array as da

    lead = next(a for a in arrays if isinstance(a, ChunkedArray) and a.is_dask)
    Xd = lead.to_dask()
    chunks = Xd.chunks[0]
    out = []
    for a in arrays:
        if a is lead:
            d = Xd
        elif isinstance(a, ChunkedArray):
            d = a.to_dask(row_chunks=chunks)
        else:
            a = np.asarray(a, dtype=np.float64)
            d = da.from_array(a, chunks=(chunks,) + (-1,) * (a.ndim - 1))
        out.append(d.to_delayed().ravel())
    return list(zip(*out))


def map_reduce(kernel, *arrays, combine=None, chunk_size: int = DEFAULT_CHUNK,
               stage: str | None = None):
    """``sum over row chunks of kernel(*blocks)``: the one pass over the data.

    docs/algorithms.md 8. ``kernel`` maps the float64 blocks of the same rows of
    every array to an ndarray or a tuple of ndarrays, summed over the chunks. In
    this process the chunks are read one at a time (:func:`iter_blocks`); when
    one of the arrays is a Dask-backed :class:`relurecover.data.ChunkedArray`, the
    kernel runs as a Dask task on each chunk and the parts are summed in a tree,
    on the active scheduler (a ``dask.distributed`` client when one is set up):
    only the small sums travel.

    Parameters
    ----------
    kernel : callable
        ``kernel(*blocks) -> ndarray or tuple of ndarray`` (picklable for a
        distributed scheduler).
    *arrays : array-like, each with the same number of rows
        ``X`` and ``Y`` (1-D arrays give 1-D blocks; a ChunkedArray gives 2-D).
    combine : callable, default=None
        ``combine(part, part) -> part``, associative (None: addition, of each
        member of a tuple); e.g. a QR of two stacked R factors (TSQR).
    chunk_size : int, default=DEFAULT_CHUNK
        Rows per chunk in this process (Dask arrays keep their own chunks).
    stage : str, default=None
        Report the fraction of rows done under this name after each chunk
        (:func:`relurecover._progress.report`: a progress bar).

    Returns
    -------
    ndarray or tuple of ndarray
        The sums.
    """
    combine = _add if combine is None else combine
    if any(isinstance(a, ChunkedArray) and a.is_dask for a in arrays):
        import dask

        parts = [dask.delayed(kernel, pure=True)(*b) for b in _dask_blocks(arrays)]
        (total,) = dask.compute(_sum_tree(parts, combine))
        return total
    n = arrays[0].shape[0]
    lead = next((A for A in arrays if isinstance(A, ChunkedArray)), None)
    # in memory BLAS has the cores: one chunk at a time; data read from where it
    # lives: reads overlap the work on THREADS threads
    step, threads = (chunk_size, 1) if lead is None else (lead.aligned_chunk(chunk_size), None)

    def part(sl):
        return sl, kernel(*(_rows(A, sl) for A in arrays))

    total = None
    for sl, p in ordered_map(part, iter_chunks(n, step), threads=threads):
        total = p if total is None else combine(total, p)
        if stage is not None:
            report(stage, sl.stop / max(n, 1))
    return total


def _first_moment_kernel(Xc, Yc):
    return Yc.T @ Xc, Xc.sum(axis=0), Yc.sum(axis=0)


def first_moment(X, Y, *, center: bool = False, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """Empirical ``E[y x^T] = Y^T X / n`` (docs/algorithms.md 1, step 1: the subspace).

    With ``center=True`` the empirical cross-covariance ``E[(y - ybar) x^T]`` in the
    same pass: its expectation is the same for centred inputs, but an output bias
    ``c`` no longer adds its sampling noise ``c xbar^T`` (docs/algorithms.md 6).

    Parameters
    ----------
    X : array-like of shape (n, d)
        Inputs (a memmap is read in chunks).
    Y : array-like of shape (n, m)
        Labels.
    center : bool, default=False
        Subtract ``ybar xbar^T`` (the labels' mean times the inputs' mean).
    chunk_size : int, default=DEFAULT_CHUNK
        Rows per chunk.

    Returns
    -------
    ndarray of shape (m, d)

    Examples
    --------
    >>> from relurecover import TwoLayerNetwork, gaussian_inputs
    >>> net = TwoLayerNetwork.random(4, 2, 3, rng=0)
    >>> X = gaussian_inputs(400_000, 4, rng=1)
    >>> M1 = first_moment(X, net.predict(X))
    >>> bool(np.abs(M1 - net.U @ net.V / 2).max() < 0.05)
    True
    """
    n = X.shape[0]
    M, sx, sy = map_reduce(_first_moment_kernel, X, Y, chunk_size=chunk_size,
                           stage="first moment")
    if center:
        M -= np.outer(sy, sx) / n
    return M / n


def contracted_second_moments(Z, Y, A, *, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """Contractions of the second-moment tensor along its output mode (docs/algorithms.md 1, step 2).

    ``T[c] = E[(y . A[:, c]) (z z^T - I)]`` for projected inputs ``z = Q^T x``
    (still standard Gaussian when ``Q`` is orthonormal). Contracting first costs
    ``n p^2`` per contraction instead of ``n m p^2`` for the whole tensor.

    Parameters
    ----------
    Z : array-like of shape (n, p)
        Inputs (or projected inputs).
    Y : array-like of shape (n, m)
        Labels.
    A : ndarray of shape (m, n_contractions)
        The contraction vectors, one a column.
    chunk_size : int, default=DEFAULT_CHUNK
        Rows per chunk.

    Returns
    -------
    ndarray of shape (n_contractions, p, p)
        Symmetric matrices ``T[c]``.
    """
    n, p = Z.shape
    c = A.shape[1]
    T = np.zeros((c, p, p))
    s = np.zeros(c)
    for _, (Zc, Yc) in iter_blocks(Z, Y, chunk_size=chunk_size):
        W = Yc @ A  # (rows, c)
        s += W.sum(axis=0)
        for j in range(c):
            T[j] += (Zc * W[:, j : j + 1]).T @ Zc
    T -= s[:, None, None] * np.eye(p)[None]
    return T / n


def second_moment_weights(Z, Y, P, *, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """The output-mode factors ``w_i`` of the second moment, given the directions ``P``.

    With ``T = sum_i w_i (x) p_i (x) p_i`` and ``R = P^{-1}`` (rows ``r_i``,
    ``r_i . p_j = delta_ij``), ``w_i = E[y ((r_i . z)^2 - ||r_i||^2)]``: one pass
    costing ``n p^2 + n m p`` instead of the whole ``m x p x p`` tensor
    (docs/algorithms.md 1, step 3).

    Parameters
    ----------
    Z : array-like of shape (n, p)
        Inputs (or projected inputs).
    Y : array-like of shape (n, m)
        Labels.
    P : ndarray of shape (p, p)
        The directions ``p_i``, one a column.
    chunk_size : int, default=DEFAULT_CHUNK
        Rows per chunk.

    Returns
    -------
    ndarray of shape (m, p)
        Column ``i`` is ``w_i``.
    """
    R = np.linalg.pinv(P)  # (p, p), rows are the dual basis
    rn = (R * R).sum(axis=1)
    W = np.zeros((Y.shape[1], P.shape[1]))
    for _, (Zc, Yc) in iter_blocks(Z, Y, chunk_size=chunk_size):
        Zr = Zc @ R.T
        W += Yc.T @ (Zr * Zr - rn)
    return W / Z.shape[0]


def second_moment(X, y, *, chunk_size: int = DEFAULT_CHUNK):
    """``M2 = E[y (x x^T - I)]`` of one output and its sampling-noise floor.

    docs/algorithms.md 3.2, step 1: for ``y = sum_i u_i relu(v_i . x)``,
    ``M2 = C2 sum_i a_i vhat_i vhat_i^T`` with ``a_i = u_i ||v_i||``. ``y`` first
    loses its mean and its linear part ``b . x`` (``b = E[y x]``): neither changes
    the expectation (``E[x x^T - I] = 0``, odd moments vanish) but both add noise.
    Two passes over the rows.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Standard Gaussian inputs.
    y : ndarray of shape (n,)
        One output (or one combination of the outputs).
    chunk_size : int, default=DEFAULT_CHUNK
        Rows per chunk.

    Returns
    -------
    M2 : ndarray of shape (d, d)
        The symmetric moment matrix.
    floor : float
        ``SECOND_MOMENT_FLOOR_FACTOR`` times ``2 sqrt(d) sigma``, the spectral edge
        of a symmetric noise matrix whose entries have the estimated mean variance
        ``sigma^2`` of the entries of ``M2``: eigenvalues below it are noise.
    """
    n, d = X.shape
    mean = float(np.mean(y))
    b = np.zeros(d)
    for _, (Xc, yc) in iter_blocks(X, y, chunk_size=chunk_size):
        b += Xc.T @ (yc - mean)
    b /= n
    M = np.zeros((d, d))
    S = np.zeros((d, d))
    tot, tot2 = 0.0, 0.0
    q2 = np.zeros(d)
    q4 = np.zeros(d)
    for _, (Xc, yc) in iter_blocks(X, y, chunk_size=chunk_size):
        r = yc - mean - Xc @ b
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
    return M, SECOND_MOMENT_FLOOR_FACTOR * 2.0 * np.sqrt(d) * sigma


def _hermite4_sum(Z, r, a, b):
    """``sum_j r_j He4(z_j)(a, b, ., .)`` over the rows of one block (see below)."""
    p = Z.shape[1]
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
    return M


def hermite4_contraction(Z, r, a, b):
    """``mean_j r_j He4(z_j)(a, b, ., .)`` for the multivariate Hermite tensor.

    docs/algorithms.md 3.2, step 2.
    ``He4(z)_{pqst} = z_p z_q z_s z_t - (6 terms delta z z) + (3 terms delta delta)``;
    contracted with ``a`` and ``b`` in the first two slots it is, per sample,

    ``(a.z)(b.z) z z^T - (a.b) z z^T - (b.z)(a z^T + z a^T) - (a.z)(b z^T + z b^T)
    - (a.z)(b.z) I + (a.b) I + a b^T + b a^T``,

    so the whole sum costs ``O(n p^2)``. For ``y = relu(v . z)``, ``|v| = 1``:
    ``E[y He4(z)(a, b)] = C4 (a.v)(b.v) v v^T``. One block in memory; for a
    chunked pass over a memmap see :func:`hermite4_moment`.

    Parameters
    ----------
    Z : ndarray of shape (n, p)
        Inputs (or projected inputs), standard Gaussian.
    r : ndarray of shape (n,)
        The label (or its residual after the low-degree part).
    a, b : ndarray of shape (p,)
        The contraction vectors.

    Returns
    -------
    ndarray of shape (p, p), symmetric.
    """
    return _hermite4_sum(np.asarray(Z, dtype=np.float64), r, a, b) / Z.shape[0]


def hermite4_moment(X, r, a, b=None, *, chunk_size: int = DEFAULT_CHUNK):
    """:func:`hermite4_contraction` in row chunks: ``E[r He4(x)(a, b, ., .)]``.

    docs/algorithms.md 3.2, step 1's fallback (full dimension, where ``M2`` leaves
    directions under its floor).

    Parameters
    ----------
    X : array-like of shape (n, d)
        Standard Gaussian inputs (a memmap is read in chunks).
    r : ndarray of shape (n,)
        The label, e.g. centred.
    a : ndarray of shape (d,)
        First contraction vector.
    b : ndarray of shape (d,), default=None
        Second contraction vector; None means ``a``.
    chunk_size : int, default=DEFAULT_CHUNK
        Rows per chunk.

    Returns
    -------
    ndarray of shape (d, d), symmetric.
    """
    b = a if b is None else b
    out = np.zeros((X.shape[1], X.shape[1]))
    for _, (Xc, rc) in iter_blocks(X, r, chunk_size=chunk_size):
        out += _hermite4_sum(Xc, rc, a, b)
    return out / X.shape[0]


#: with a deadline, :func:`relu_pattern_gram` checks the clock at least every this
#: many multiply-adds (about a second on one core)
GRAM_CHECK_FLOPS = 2e10


def relu_pattern_gram(X, V, *, chunk_size: int = DEFAULT_CHUNK, deadline=None):
    """``E[z z^T]`` with ``z[(i, a)] = 1{x . v_i > 0} x_a`` (docs/algorithms.md 2).

    The Gauss-Newton matrix of the square loss of ``relu(X V^T) U^T`` is assembled
    from it (the hidden layer is ``h_i = z_i . v_i``); block ``(i, j)`` is
    ``E[1{x . v_i > 0} 1{x . v_j > 0} x x^T]``.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Inputs.
    V : ndarray of shape (k, d)
        Hidden weights.
    chunk_size : int, default=DEFAULT_CHUNK
        Rows per chunk.
    deadline : float, optional
        ``time.perf_counter()`` seconds after which the assembly stops and None is
        returned. With a deadline, a chunk holds at most ``GRAM_CHECK_FLOPS / (k
        d)^2`` rows (at least 32), so that the clock is read often enough; without
        one, the chunks are ``chunk_size`` rows.

    Returns
    -------
    ndarray of shape (k d, k d), or None
        Symmetric; rows and columns ordered ``(i, a)`` row-major, like ``V.ravel()``.
        None when ``deadline`` passed first.
    """
    k, d = V.shape
    if deadline is not None and np.isfinite(deadline):
        chunk_size = int(min(chunk_size, max(32, GRAM_CHECK_FLOPS // (k * d) ** 2)))
    else:
        deadline = None
    G = np.zeros((k * d, k * d))
    for _, (Xc,) in iter_blocks(X, chunk_size=chunk_size):
        if deadline is not None and time.perf_counter() > deadline:
            return None
        act = (Xc @ V.T > 0).astype(np.float64)
        Z = (act[:, :, None] * Xc[:, None, :]).reshape(Xc.shape[0], k * d)
        G += Z.T @ Z
    return G / X.shape[0]


# --------------------------------------------------------------------------- grouped
# The moment kernels of filtered PCA (docs/algorithms.md 5.1-5.2): the rows are
# dealt into groups (label sets, cells, label slices, random batches) and each
# group's moment is accumulated in the same single pass over the chunks.


def grouped_grams(X, groups, n_groups: int, *, chunk_size: int = DEFAULT_CHUNK,
                  dtype: str = "float64"):
    """``G[g] = sum_{i in group g} x_i x_i^T`` and the group sizes, in one pass.

    Rows are sorted by group within each chunk so that every Gram is a single
    SYRK on a contiguous block (docs/algorithms.md 5.1), on one BLAS thread
    (:func:`relurecover._linalg.blas_threads`: these SYRKs on a few hundred rows
    each gain less from a second thread than its synchronisation costs).

    Parameters
    ----------
    X : array-like of shape (n, d)
        Inputs (a memmap is read in chunks).
    groups : ndarray of int of shape (n,)
        Group of each row, in ``[0, n_groups)``.
    n_groups : int
        Number of groups.
    chunk_size : int, default=DEFAULT_CHUNK
        Rows per chunk.
    dtype : {"float64", "float32"}, default="float64"
        Precision of the products (float32 halves the pass; the sums are float64).

    Returns
    -------
    G : ndarray of shape (n_groups, d, d)
        Symmetric Gram matrices (zero for an empty group).
    counts : ndarray of int of shape (n_groups,)
        Rows per group.
    """
    from scipy.linalg import blas

    n, d = X.shape
    G = np.zeros((n_groups, d, d))
    counts = np.bincount(groups, minlength=n_groups)
    syrk = blas.ssyrk if dtype == "float32" else blas.dsyrk
    with blas_threads(1):
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


def grouped_sums(X, groups, n_groups: int, *, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """``S[g] = sum_{i in group g} x_i`` in one pass (float64).

    Parameters
    ----------
    X : array-like of shape (n, d)
        Inputs.
    groups : ndarray of int of shape (n,)
        Group of each row, in ``[0, n_groups)``.
    n_groups : int
        Number of groups.
    chunk_size : int, default=DEFAULT_CHUNK
        Rows per chunk.

    Returns
    -------
    ndarray of shape (n_groups, d)
    """
    n, d = X.shape
    sums = np.zeros((n_groups, d))
    for sl in iter_chunks(n, chunk_size):
        g = groups[sl]
        order = np.argsort(g, kind="stable")
        present = np.unique(g)
        starts = np.searchsorted(g[order], present)
        sums[present] += np.add.reduceat(_rows(X, sl)[order], starts)
    return sums


def slice_moments(X, s, n_slices: int, *, chunk_size: int = DEFAULT_CHUNK):
    """Moments of ``x`` given equal-count quantile slices of a scalar label ``s``.

    Per slice: its size, ``E[x x^T | slice] - I`` and ``E[x | slice]``
    (docs/algorithms.md 5.2, the pooled re-estimate). Slices with at most ``d``
    rows are dropped.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Standard Gaussian inputs.
    s : ndarray of shape (n,)
        The scalar label that is sliced.
    n_slices : int
        Number of quantile slices.
    chunk_size : int, default=DEFAULT_CHUNK
        Rows per chunk.

    Returns
    -------
    counts : ndarray of float of shape (n_kept,)
        Rows per kept slice.
    C : ndarray of shape (n_kept, d, d)
        ``E[x x^T | slice] - I``.
    mu : ndarray of shape (n_kept, d)
        ``E[x | slice]``.
    """
    d = X.shape[1]
    edges = np.quantile(s, np.linspace(0, 1, n_slices + 1)[1:-1])
    sl_id = np.searchsorted(edges, s, side="right")
    G, counts = grouped_grams(X, sl_id, n_slices, chunk_size=chunk_size, dtype="float64")
    sums = grouped_sums(X, sl_id, n_slices, chunk_size=chunk_size)
    keep = counts > d
    c = counts[keep].astype(float)
    return c, G[keep] / c[:, None, None] - np.eye(d), sums[keep] / c[:, None]


def grouped_second_moments(X, w, groups, n_groups: int, *,
                           chunk_size: int = DEFAULT_CHUNK):
    """``E[w (x x^T - I)]`` over all rows and over each group, in one pass.

    The plain second moment of docs/algorithms.md 5.1 (``w = y``), and the same
    per group: with rows dealt at random into groups, the spread of the group
    moments is the sampling noise of the pooled one (the floor of
    :func:`relurecover.deep.plain_pca`). Unlike :func:`second_moment`, ``w`` is
    used as it is (no mean or linear part removed).

    Parameters
    ----------
    X : array-like of shape (n, d)
        Standard Gaussian inputs.
    w : ndarray of shape (n,)
        Weight of each row (one output).
    groups : ndarray of int of shape (n,)
        Group of each row, in ``[0, n_groups)``.
    n_groups : int
        Number of groups.
    chunk_size : int, default=DEFAULT_CHUNK
        Rows per chunk.

    Returns
    -------
    M : ndarray of shape (d, d)
        ``E[w (x x^T - I)]`` over all rows.
    M_groups : ndarray of shape (n_groups, d, d)
        The same over the rows of each group (zero for an empty group).
    """
    n, d = X.shape
    G = np.zeros((n_groups, d, d))
    for sl in iter_chunks(n, chunk_size):
        Xc = _rows(X, sl)
        Xw = Xc * w[sl, None]
        gc = groups[sl]
        for b in range(n_groups):
            rows = gc == b
            G[b] += Xw[rows].T @ Xc[rows]
    cnt = np.maximum(np.bincount(groups, minlength=n_groups), 1).astype(float)
    wsum = np.bincount(groups, weights=w, minlength=n_groups)
    M = G.sum(axis=0) / n - (wsum.sum() / n) * np.eye(d)
    M_groups = G / cnt[:, None, None] - (wsum / cnt)[:, None, None] * np.eye(d)
    return M, M_groups
