"""Two-layer networks ``y = U f(V x)`` [BJW]: exact recovery and its extensions.

The public entry point is :func:`recover_two_layer`; the steps live in their own
modules (``_gaussian``: the moment pipeline; ``_rounding``: the exact rounding).
"""

from __future__ import annotations

import dataclasses
import numbers
import time

import numpy as np

from .._validation import as_2d_float, check_positive_int, check_random_state
from ..activations import get_activation
from ..networks import TwoLayerNetwork
from ._gaussian import recover_gaussian
from ._result import Recovery

__all__ = ["recover_two_layer", "Recovery"]

_METHODS = ("auto", "gaussian", "general", "few-outputs")


def _recover_two_layer_iv(X, Y, n_hidden, method, activation, tol, max_starts,
                          time_limit, work_rows):
    """Validate and normalise the arguments of :func:`recover_two_layer`."""
    X = as_2d_float(X, "X")
    Y = as_2d_float(Y, "Y", allow_1d_column=True)
    n, d = X.shape
    if Y.shape[0] != n:
        raise ValueError(
            f"`X` and `Y` must have the same number of rows (samples); got {n} and "
            f"{Y.shape[0]}."
        )
    if n < d:
        raise ValueError(
            f"too few samples: n = {n} < d = {d}. Each unit must be active on at "
            f"least d samples to be determined; provide n >= 2 d (4 d is safer)."
        )
    m = Y.shape[1]
    if not np.any(Y):
        raise ValueError("`Y` is identically zero: there is nothing to recover.")
    if method not in _METHODS:
        raise ValueError(f"`method` must be one of {_METHODS}, got {method!r}.")
    n_hidden = check_positive_int(n_hidden, "n_hidden", allow_none=True)
    if n_hidden is not None and n_hidden > d:
        raise ValueError(
            f"`n_hidden` = {n_hidden} > d = {d}: the units must be linearly independent "
            "(rank(V) = k), so there can be at most d of them."
        )
    if (n_hidden is not None and n_hidden > m
            and method in ("gaussian", "general")):
        raise ValueError(
            f"`n_hidden` = {n_hidden} > min(d, m) = min({d}, {m}): the Gaussian method "
            "needs rank(V) = k (so k <= d) and rank(U) = k (so k <= m, at least as "
            "many independent outputs as units). With fewer outputs than units the "
            "problem is fixed-parameter tractable only [BJW]: use method='few-outputs' "
            "(or 'auto')."
        )
    if not (isinstance(tol, numbers.Real) and 0 < tol < 1):
        raise ValueError(f"`tol` must be a number in (0, 1), got {tol!r}.")
    if max_starts is not None:
        max_starts = check_positive_int(max_starts, "max_starts")
    if time_limit is not None and not (
        isinstance(time_limit, numbers.Real) and time_limit > 0
    ):
        raise ValueError(f"`time_limit` must be a positive number of seconds, got {time_limit!r}.")
    if work_rows is not None:
        work_rows = check_positive_int(work_rows, "work_rows")
    return X, Y, n_hidden, get_activation(activation), max_starts, work_rows


def recover_two_layer(
    X,
    Y,
    *,
    n_hidden: int | None = None,
    method: str = "auto",
    activation="relu",
    rng=None,
    tol: float = 1e-9,
    max_starts: int | None = None,
    time_limit: float | None = None,
    work_rows: int | None = None,
    chunk_size: int = 16384,
) -> Recovery:
    """Recover ``U`` and ``V`` of ``Y = f(X V^T) U^T`` exactly [BJW] (docs/algorithms.md 1).

    Parameters
    ----------
    X : array-like of shape (n_samples, d)
        Inputs, one sample a row (the papers write ``d x n``). Standard Gaussian
        for the guarantee.
    Y : array-like of shape (n_samples, m) or (n_samples,)
        Labels of the network on ``X``.
    n_hidden : int, default=None
        Number of hidden units ``k``; None infers it as the numerical rank of ``Y``
        (with noisy labels, from a spectral gap of its singular values).
    method : {"auto", "gaussian", "general", "few-outputs"}, default="auto"
        Which path to run. ``"gaussian"``: moments, then exact rounding
        (docs/algorithms.md 1). ``"general"``: the rounding step from diverse starts,
        for any input distribution with rank(U) = k (docs/algorithms.md 1.5, 3); inputs
        whose rows span r < d dimensions are handled on that span (V is then
        identifiable only there: ``diagnostics["data_rank"]``). ``"few-outputs"``:
        rank(U) < k. ``"auto"`` checks whether the inputs look Gaussian (mean,
        covariance, kurtosis, skewness) and rank(Y) >= k, and says which path it
        took and why in ``diagnostics["auto"]``; Gaussian inputs with a covariance
        S != I run the Gaussian path on ``X S^-1/2`` and V is mapped back (the
        certificate is on the original X).
    activation : str or callable, default="relu"
        A rectified activation (see :mod:`relurecover.activations`).
    rng : None, int or numpy.random.Generator, default=None
        Seeds every random step (contractions, subsampling, random starts).
    tol : float, default=1e-9
        ``exact`` requires the relative residual on the data to be at most ``tol``.
    max_starts : int, default=None
        Budget of rounding starts; None means ``max(200, 20 k)`` (Gaussian path)
        or ``max(400, 50 k)`` (general path).
    time_limit : float, default=None
        Seconds after which the search for units stops (None: no limit).
    work_rows : int, default=None
        Rows used by the rounding iterations; None picks ``max(20000, 20 d)``.
        All rows are always used for the first moment and the certificate.
    chunk_size : int, default=16384
        Rows per chunk when streaming over ``X``.

    Returns
    -------
    Recovery
        ``.network``, ``.exact``, ``.certificate``, ``.message``, ``.timings``,
        ``.diagnostics``. With noisy labels (``Y`` of full numerical rank and no
        exact answer) the network is a least-squares estimate refined from the
        moments (docs/algorithms.md 2), with ``.noise_level`` and ``.standard_errors``.

    Examples
    --------
    >>> from relurecover import TwoLayerNetwork, gaussian_inputs, compare
    >>> truth = TwoLayerNetwork.random(10, 3, 4, rng=0)
    >>> X = gaussian_inputs(600, 10, rng=1)
    >>> res = recover_two_layer(X, truth.predict(X), rng=2)
    >>> res.exact, res.certificate < 1e-12
    (True, True)
    >>> compare(res.network, truth).max_error < 1e-10
    True
    """
    X, Y, k, act, max_starts, work_rows = _recover_two_layer_iv(
        X, Y, n_hidden, method, activation, tol, max_starts, time_limit, work_rows
    )
    rng = check_random_state(rng)
    t_start = time.perf_counter()
    n, d = X.shape
    diag_auto = {}
    method_in, max_starts_in = method, max_starts
    if method == "auto":
        # the auto path (docs/algorithms.md 1.5, 3): Gaussian-looking inputs with
        # rank(Y) >= k go the Gaussian way; others go "general" or "few-outputs"
        from ._auto import choose_method

        method, diag_auto = choose_method(X, Y, k, rng=rng)
    if method == "general":
        from ._general import recover_general

        return recover_general(
            X, Y, k, activation=act, rng=rng, tol=tol, max_starts=max_starts,
            time_limit=time_limit, chunk_size=chunk_size, diagnostics=diag_auto,
        )
    if method == "few-outputs":
        from ._few_outputs import recover_few_outputs

        return recover_few_outputs(
            X, Y, k, activation=act, rng=rng, tol=tol, max_starts=max_starts,
            time_limit=time_limit, chunk_size=chunk_size, diagnostics=diag_auto,
        )
    whitening = diag_auto.pop("whitening", None)
    if k is None:
        from ._gaussian import column_space

        sub = Y if n <= 50_000 else Y[rng.choice(n, 50_000, replace=False)]
        k = min(column_space(sub)[2], d)
    if max_starts is None:
        max_starts = max(200, 20 * k)
    if work_rows is None:
        work_rows = max(20_000, 20 * d)
    Xg = X if whitening is None else X @ whitening
    res = recover_gaussian(
        Xg, Y, k, activation=act, rng=rng, tol=tol, max_starts=max_starts,
        time_limit=time_limit, chunk_size=chunk_size, work_rows=work_rows,
        infer_hidden=n_hidden is None,
    )
    if whitening is not None:
        res = _unwhiten(res, X, Y, whitening, act, tol, chunk_size)
    if diag_auto:
        res = dataclasses.replace(res, diagnostics={**diag_auto, **res.diagnostics})
    if (method_in == "auto" and not res.exact and res.noise_level is None
            and res.diagnostics.get("rank_Y") == k < Y.shape[1]):
        # the Gaussian path fell short on labels that are noiseless (an exact zero
        # tail of Y's spectrum; with rank(Y) = m they may be noisy, and the noisy
        # path has spoken): the general path's starts do not rely on the moments
        # being accurate (docs/algorithms.md 1.5)
        from ._general import recover_general

        left = None if time_limit is None else time_limit - (time.perf_counter() - t_start)
        if left is not None and left <= 0:
            return res  # time_limit spent by the Gaussian path: its verdict stands
        diag = {**diag_auto, "auto": diag_auto.get("auto", "") + (
            f" The Gaussian path was not exact ({res.message}); fell back to the "
            "general path."), "gaussian_message": res.message}
        return recover_general(
            X, Y, k, activation=act, rng=rng, tol=tol, max_starts=max_starts_in,
            time_limit=left, chunk_size=chunk_size, diagnostics=diag,
        )
    return res


def _unwhiten(res: Recovery, X, Y, A, act, tol, chunk_size) -> Recovery:
    """Map a recovery on ``X A`` back to ``X`` (``auto`` whitening, docs/algorithms.md 1).

    ``(X A) v_w = X (A v_w)``, so ``V = V_w A^T`` reproduces the same hidden layer
    exactly; ``U`` and the certificate are recomputed on the original ``X``.
    Standard errors (noisy labels) refer to the whitened coordinates and are
    dropped.
    """
    from ._gaussian import hidden_and_output

    diag = {**res.diagnostics, "whitened": True}
    if res.network is None:
        return dataclasses.replace(res, diagnostics=diag)
    V = res.network.V @ A.T
    U, cert, rank_H = hidden_and_output(X, Y, V, act, chunk_size=chunk_size)
    net = TwoLayerNetwork(U, V, activation=act)
    diag["certificate_whitened"] = res.certificate
    exact = bool(res.exact and cert <= tol and rank_H == res.n_hidden)
    msg = res.message + (
        f" (Gaussian path on the whitened inputs X S^-1/2; V mapped back; relative "
        f"residual on the original X: {cert:.1e})"
    )
    if res.exact and not exact:
        msg += f"; not exact on the original X (residual > tol={tol:g})"
    return dataclasses.replace(res, network=net, exact=exact, certificate=cert, message=msg,
                               diagnostics=diag, standard_errors=None)
