"""Plain PCA of ``E[y (x x^T - I)]``, the unfiltered moment (docs/algorithms.md 5.1)."""

from __future__ import annotations

import time

import numpy as np

from .._validation import check_positive_int, check_random_state
from ..moments import DEFAULT_CHUNK, grouped_second_moments
from ._filtered_pca import _check_margin, _check_n_directions, _check_too_few
from ._scaling import check_samples, scale_exponent, standardize_inputs
from ._subspace import Subspace, scale_note

__all__ = ["plain_pca"]

#: eigenvalues listed in ``diagnostics["top_eigenvalues"]`` (largest in absolute value).
N_TOP_EIGENVALUES = 8


def plain_pca(
    X,
    y,
    *,
    n_directions: int | None = None,
    n_batches: int = 20,
    margin: float = 6.0,
    rng=None,
    chunk_size: int = DEFAULT_CHUNK,
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
    directions. With ``m > 1`` outputs the first output is used. ``X`` and ``y`` are
    rescaled as in :func:`filtered_pca`; eigenvalues and floors are reported in the
    units of ``y``.

    Parameters
    ----------
    X : array-like of shape (n_samples, d)
        Standard Gaussian inputs, one sample a row.
    y : array-like of shape (n_samples,) or (n_samples, m)
        Labels (the first output is used).
    n_directions : int, default=None
        Keep at most this many directions.
    n_batches : int, default=20
        Batches for the noise floor (at least 3).
    margin : float, default=6.0
        Standard deviations of the batch noise norms added to their mean.
    rng : None, int or numpy.random.Generator, default=None
        Seeds the assignment of rows to batches.
    chunk_size : int, default=16384
        Rows per chunk when streaming over ``X``.

    Returns
    -------
    Subspace
        With ``method="plain"``; ``diagnostics`` holds the floor, the best evidence
        ratio and the top eigenvalues.

    Examples
    --------
    >>> from relurecover import gaussian_inputs
    >>> from relurecover.deep import alternating_network
    >>> net = alternating_network(20, rng=0)
    >>> X = gaussian_inputs(60_000, 20, rng=1)
    >>> plain_pca(X, net.predict(X), rng=0).n_found  # blind: E[y (x x^T - I)] = 0
    0
    """
    X, Y = check_samples(X, y, zero_y="there is no direction to find.")
    n, d = X.shape
    _check_too_few(n, d)
    n_dir = _check_n_directions(n_directions, d)
    n_batches = check_positive_int(n_batches, "n_batches")
    if n_batches < 3:
        raise ValueError(
            f"`n_batches` must be at least 3 (the floor needs a spread), got {n_batches}.")
    margin = _check_margin(margin)
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    rng = check_random_state(rng)
    if n < n_batches * d:
        raise ValueError(f"plain_pca needs n >= n_batches * d = {n_batches * d} samples "
                         f"for its noise floor, got n = {n}; provide more samples or "
                         "lower `n_batches`.")
    if not np.any(Y[:, 0]):
        raise ValueError("the first output of `y` is identically zero: plain PCA uses "
                         "it; pass y[:, j] for an output that is not.")
    t0 = time.perf_counter()
    X, x_scale = standardize_inputs(X, chunk_size)
    ey = scale_exponent(Y[:, 0], chunk_size)
    w0 = np.ldexp(Y[:, 0], -ey)
    t_scale = time.perf_counter() - t0
    t0 = time.perf_counter()
    batch = rng.integers(0, n_batches, size=n)
    M, Mb = grouped_second_moments(X, w0, batch, n_batches, chunk_size=chunk_size)
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
    top = w[np.argsort(-np.abs(w))[:N_TOP_EIGENVALUES]]
    shown_floor = float(np.ldexp(floor, ey))
    message = (f"{len(order)} direction(s) above the batch noise floor {shown_floor:.3g} "
               f"(best evidence {best:.3g} x floor).")
    return Subspace(
        basis=U[:, order], eigenvalues=np.ldexp(w[order], ey),
        floors=np.full(len(order), shown_floor),
        filters=tuple("plain E[y (x x^T - I)]" for _ in order),
        rounds=np.zeros(len(order), dtype=int), method="plain",
        message=message + scale_note(x_scale),
        timings={"scale": t_scale, "moments": t1 - t0, "eigen": time.perf_counter() - t1},
        diagnostics={"floor": shown_floor, "best_ratio": best, "input_scale": x_scale,
                     "top_eigenvalues": np.ldexp(top, ey)},
    )
