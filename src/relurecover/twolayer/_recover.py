"""The entry point of two-layer recovery: validation, units, dispatch, fallback.

:func:`recover_two_layer` validates its arguments once, brings the data to unit
scale (exact powers of two), runs the path that ``method`` names (``"auto"``
chooses one, ``twolayer._auto``), falls back from the Gaussian path to the general
one when noiseless labels were not certified, and maps the network back to the
units of the data as given (docs/algorithms.md 0, 1, 3).
"""

from __future__ import annotations

import dataclasses
import numbers
import time

import numpy as np

from .._linalg import (
    affine_rank,
    caps_from_norms,
    power_of_two_scale,
    relative_residual,
    scale_and_row_norms,
    streamed_relative_residual,
)
from .._progress import check_progress, report, reporting
from .._validation import (
    as_rows,
    check_chunk_size,
    check_positive_int,
    check_random_state,
    check_time_limit,
    child_generator,
)
from ..activations import get_activation
from ..data import ChunkedArray, as_chunked, is_chunked_source, open_rows, sample_rows
from ..moments import iter_blocks
from ..networks import TwoLayerNetwork
from ._gaussian import recover_gaussian
from ._output import fit_output_layer
from ._result import Recovery, StandardErrors

__all__ = ["recover_two_layer"]

_METHODS = ("auto", "gaussian", "general", "few-outputs")
#: rows of Y on which auto's k = rank(Y) is counted.
RANK_SUBSAMPLE = 50_000


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Args:
    """The validated arguments of :func:`recover_two_layer`."""

    X: np.ndarray
    Y: np.ndarray
    n_hidden: int | None
    activation: object
    max_starts: int | None
    work_rows: int | None
    chunk_size: int


def check_problem_size(n, d, m, n_hidden=None, method="auto"):
    """Refuse the sizes :func:`recover_two_layer` refuses, before any data exist.

    The one check of samples, inputs, outputs and units, shared by
    :func:`recover_two_layer` and the command line's ``generate`` (which must not
    write a data set that ``fit`` refuses).

    Parameters
    ----------
    n, d, m : int
        Samples, inputs and outputs.
    n_hidden : int, default=None
        Hidden units (None: inferred later from ``rank(Y)``).
    method : str, default="auto"
        The path asked for.

    Returns
    -------
    int or None
        ``n_hidden``, checked.

    Raises
    ------
    ValueError
        With the reason and what to change.
    """
    if n < d:
        raise ValueError(
            f"too few samples: `X` has n = {n} rows < d = {d} columns. Each unit must be active on at "
            f"least d samples to be determined; provide n >= 2 d (4 d is safer)."
        )
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
    return n_hidden


def constant_row(A):
    """The row that every row of ``A`` equals (a copy), or None; one pass over chunks."""
    first = None
    for _, (B,) in iter_blocks(A):
        B = B.reshape(B.shape[0], -1)
        if B.shape[0] == 0:
            continue
        if first is None:
            first = B[0].copy()
        if not np.array_equal(B, np.broadcast_to(first, B.shape)):
            return None
    return first


def _all_zero(A) -> bool:
    if isinstance(A, ChunkedArray):
        return A.max_abs == 0.0
    return not np.any(A)


def _sample_size(n: int, d: int, work_rows) -> int:
    """Rows gathered by the validating pass of data read in chunks: enough for
    the steps of the Gaussian path that work on a sample of rows (the auto checks,
    the rank of ``Y``, the work rows; docs/algorithms.md 8.3). 0 (no sample) when
    ``n`` is under 4 times that: gathering from all rows then costs little."""
    from ._auto import CHECK_ROWS, RANK_Y_ROWS

    wanted = work_rows if work_rows is not None else max(20_000, 20 * d)
    size = max(CHECK_ROWS, RANK_Y_ROWS, RANK_SUBSAMPLE, wanted)
    return size if n > 4 * size else 0


def _validate_rows(X, Y, rng, work_rows):
    """``X`` and ``Y`` validated; data read in chunks is validated in one pass
    that also gathers the sample of rows the later steps draw from (drawn with
    ``rng``) and measures the row norms (docs/algorithms.md 8.1, 8.3)."""
    if not is_chunked_source(X):
        return as_rows(X, "X"), as_rows(Y, "Y", allow_1d_column=True)
    Xo = open_rows(X, "X")
    n = Xo.shape[0]
    if work_rows is not None:
        work_rows = check_positive_int(work_rows, "work_rows")
    size = _sample_size(n, Xo.shape[1], work_rows) if len(Xo.source.shape) == 2 else 0
    sample = np.sort(rng.choice(n, size, replace=False)) if 0 < size < n else None
    X = as_chunked(Xo, "X", sample=sample, row_norms=True)
    if is_chunked_source(Y):
        Yo = open_rows(Y, "Y")
        Y = as_chunked(Yo, "Y", allow_1d_column=True, row_norms=True,
                       sample=sample if Yo.shape[0] == n else None)
    else:
        Y = as_rows(Y, "Y", allow_1d_column=True)
    return X, Y


def _recover_two_layer_iv(X, Y, n_hidden, method, activation, tol, max_starts,
                          time_limit, work_rows, chunk_size, rng=None):
    """Validate and normalise the arguments of :func:`recover_two_layer` (``rng``
    draws the sample of rows of data read in chunks)."""
    X, Y = _validate_rows(X, Y, check_random_state(rng), work_rows)
    if _all_zero(X):
        raise ValueError("`X` is identically zero: every unit is inactive on every "
                         "sample, so nothing can be recovered.")
    n, d = X.shape
    if Y.shape[0] != n:
        raise ValueError(
            f"`X` and `Y` must have the same number of rows (samples); got {n} and "
            f"{Y.shape[0]}."
        )
    m = Y.shape[1]
    n_hidden = check_problem_size(n, d, m, n_hidden, method)
    if _all_zero(Y):
        raise ValueError("`Y` is identically zero: there is nothing to recover.")
    row = constant_row(Y)
    if row is not None:
        raise ValueError(
            f"`Y` is constant (every row is {np.array2string(row, precision=6)}): no "
            f"hidden unit shapes it, so there is nothing to recover (it is the output "
            f"bias c alone).")
    chunk_size = check_chunk_size(chunk_size)
    if isinstance(tol, bool) or not (isinstance(tol, numbers.Real) and 0 < tol < 1):
        raise ValueError(f"`tol` must be a number in (0, 1), got {tol!r}.")
    if max_starts is not None:
        max_starts = check_positive_int(max_starts, "max_starts")
    check_time_limit(time_limit)
    if work_rows is not None:
        work_rows = check_positive_int(work_rows, "work_rows")
    return _Args(X=X, Y=Y, n_hidden=n_hidden, activation=get_activation(activation),
                 max_starts=max_starts, work_rows=work_rows, chunk_size=chunk_size)


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
    progress=None,
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
        An int must be non-negative.
    tol : float, default=1e-9
        ``exact`` requires the relative residual on the data to be at most ``tol``
        (in the form no single row can dominate; see ``Recovery.certificate``).
    max_starts : int, default=None
        Budget of rounding starts; None means ``max(200, 20 k)`` (Gaussian path),
        ``max(400, 50 k)`` (general path, also after ``auto``'s fallback) or
        ``max(30, 10 k)`` finishing starts (few-outputs path).
    time_limit : float, default=None
        Seconds after which the search for units stops (None: no limit).
    work_rows : int, default=None
        Rows used by the rounding iterations; None picks ``max(20000, 20 d)``.
        All rows are always used for the first moment and the certificate.
    chunk_size : int, default=16384
        Rows per chunk when streaming over ``X``.
    progress : callable, default=None
        Called as ``progress(stage, fraction)`` while the call runs: ``stage`` a
        name as in ``Recovery.timings`` (``"validation"``, ``"auto checks"``,
        ``"rounding"``, ``"noisy: refinement"``, ...; ``"done"`` last) and
        ``fraction`` in ``[0, 1]`` (rounding: units certified of those sought), 1
        when the stage is done. For progress bars; None (the default) reports
        nothing and changes nothing. An exception it raises stops the call.

    Notes
    -----
    Data far from unit scale (root-mean-square entry outside ``2**+-16``) is
    rescaled by exact powers of two, and with a positively homogeneous
    activation (ReLU, squared ReLU) rows of ``X`` longer than 16 median row norms
    are shortened by powers of two together with their labels (``f(c x) =
    c^p f(x)``): the network is the same and no digit changes, but neither huge
    nor tiny numbers nor a few huge rows can distort a rank or a residual
    (``diagnostics["rescaled"]``). The certificate is then measured again on the
    data as given.

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
    t_start = time.perf_counter()
    progress = check_progress(progress)
    with reporting(progress):
        res = _recover_two_layer(X, Y, n_hidden, method, activation, rng, tol, max_starts,
                                 time_limit, work_rows, chunk_size, t_start)
        report("done", 1.0)
    return res


def _recover_two_layer(X, Y, n_hidden, method, activation, rng, tol, max_starts,
                       time_limit, work_rows, chunk_size, t_start) -> Recovery:
    """The body of :func:`recover_two_layer`, inside its progress reporting."""
    rng = check_random_state(rng)
    a = _recover_two_layer_iv(X, Y, n_hidden, method, activation, tol, max_starts,
                              time_limit, work_rows, chunk_size, rng)
    units = _Units.of(a.X, a.Y, a.activation)
    X, Y = units.apply(a.X, a.Y)
    t_valid = time.perf_counter() - t_start
    report("validation", 1.0)
    try:
        res = _dispatch(X, Y, a.n_hidden, method, a.activation, rng=rng, tol=tol,
                        max_starts=a.max_starts, time_limit=time_limit,
                        work_rows=a.work_rows, chunk_size=a.chunk_size,
                        infer_hidden=a.n_hidden is None, t_start=t_start,
                        bias_column=units.bias_column, offset=units.offset)
    except np.linalg.LinAlgError as exc:  # never a traceback for a numerical failure
        res = Recovery(network=None, exact=False, certificate=np.inf, n_found=0,
                       n_hidden=a.n_hidden or 0, method=method, message=(
                           f"not recovered: a linear-algebra step failed ({exc}); "
                           "try another rng, or method='general'."))
    res = units.restore(res, a.X, a.Y, tol=tol)
    return dataclasses.replace(res, timings={"validation": t_valid, **res.timings})


def _time_left(time_limit, t_start):
    return None if time_limit is None else time_limit - (time.perf_counter() - t_start)


def _dispatch(X, Y, k, method, act, *, rng, tol, max_starts, time_limit, work_rows,
              chunk_size, infer_hidden, t_start, bias_column=None, offset=None) -> Recovery:
    """Run the path ``method`` names (``"auto"``: the one ``_auto`` chooses)."""
    n, d = X.shape
    diag_auto: dict = {}
    t_auto = 0.0
    method_in = method
    if method == "auto":
        from ._auto import choose_method

        t0 = time.perf_counter()
        report("auto checks", 0.0)
        # the checks draw from a child stream: the path chosen makes the same draws
        # as when it is named (auto and gaussian give the same network)
        method, diag_auto = choose_method(X, Y, k, rng=child_generator(rng))
        t_auto = time.perf_counter() - t0
        report("auto checks", 1.0)
    kw = dict(activation=act, rng=rng, tol=tol, max_starts=max_starts,
              time_limit=_time_left(time_limit, t_start), chunk_size=chunk_size,
              bias_column=bias_column, offset=offset)
    if method == "general":
        from ._general import recover_general

        res = recover_general(X, Y, k, diagnostics=diag_auto, **kw)
    elif method == "few-outputs":
        from ._few_outputs import recover_few_outputs

        res = recover_few_outputs(X, Y, k, diagnostics=diag_auto, **kw)
    else:
        res = _run_gaussian(X, Y, k, diag_auto, work_rows=work_rows,
                            infer_hidden=infer_hidden, **kw)
        if method_in == "auto" and _should_fall_back(res, k, Y.shape[1]):
            res = _fall_back(X, Y, res, diag_auto, t_start=t_start, time_limit=time_limit,
                             **{name: v for name, v in kw.items() if name != "time_limit"})
    if t_auto:
        res = dataclasses.replace(res, timings={"auto checks": t_auto, **res.timings})
    return res


def _run_gaussian(X, Y, k, diag_auto, *, activation, rng, tol, max_starts, time_limit,
                  chunk_size, work_rows, infer_hidden, bias_column=None,
                  offset=None) -> Recovery:
    """The Gaussian path (docs/algorithms.md 1), on whitened inputs when ``auto``
    found them Gaussian with a covariance ``S != I``."""
    t0 = time.perf_counter()
    n, d = X.shape
    whitening = diag_auto.pop("whitening", None)
    data_rank = diag_auto.get("auto_checks", {}).get("data_rank")
    if k is None:
        sub_rows = None if n <= RANK_SUBSAMPLE else sample_rows(Y, RANK_SUBSAMPLE, rng,
                                                                sort=False)
        sub = Y if sub_rows is None else Y[sub_rows]
        osub = None if offset is None or n <= RANK_SUBSAMPLE else offset[sub_rows]
        k = min(affine_rank(sub, offset if n <= RANK_SUBSAMPLE else osub), d)
    if max_starts is None:
        max_starts = max(200, 20 * k)
    if work_rows is None:
        work_rows = max(20_000, 20 * d)
    Xg = X if whitening is None else X @ whitening
    t_prep = time.perf_counter() - t0
    res = recover_gaussian(
        Xg, Y, k, activation=activation, rng=rng, tol=tol, max_starts=max_starts,
        time_limit=time_limit, chunk_size=chunk_size, work_rows=work_rows,
        infer_hidden=infer_hidden, data_rank=data_rank, bias_column=bias_column,
        offset=offset,
    )
    res = dataclasses.replace(res, timings={"preparation": t_prep, **res.timings})
    if whitening is not None:
        res = _unwhiten(res, X, Y, whitening, activation, tol, chunk_size,
                        bias_column=bias_column, offset=offset)
    if diag_auto:
        res = dataclasses.replace(res, diagnostics={**diag_auto, **res.diagnostics})
    return res


def _should_fall_back(res: Recovery, k, m: int) -> bool:
    """Whether ``auto`` retries a Gaussian-path result on the general path.

    Only for labels that are noiseless: an exact zero tail of ``Y``'s spectrum
    (``rank(Y) = k < m``), or at least one unit certified to rounding level (noisy
    labels have no exact zero pattern, so no unit of theirs passes the per-unit
    certificate). With ``rank(Y) = m`` and nothing certified the labels may be
    noisy, and the noisy path has spoken.
    """
    if res.exact or res.noise_level is not None:
        return False
    rank = res.diagnostics.get("rank_Y")
    return bool(rank == res.n_hidden and (rank < m or res.n_found > 0))


def _fall_back(X, Y, res, diag_auto, *, t_start, time_limit, **kw) -> Recovery:
    """The general path after an inexact Gaussian run (docs/algorithms.md 1.5): its
    starts do not rely on the moments being accurate. Gets what is left of
    ``time_limit``; the Gaussian run's timings are kept under their own names."""
    from ._general import recover_general

    left = _time_left(time_limit, t_start)
    if left is not None and left <= 0:
        return res  # time_limit spent by the Gaussian path: its verdict stands
    diag = {**diag_auto, "auto": diag_auto.get("auto", "") + (
        f" The Gaussian path was not exact ({res.message}); fell back to the "
        "general path."), "gaussian_message": res.message}
    diag.pop("whitening", None)
    try:
        out = recover_general(X, Y, res.n_hidden, diagnostics=diag,
                              **{**kw, "time_limit": left})
    except np.linalg.LinAlgError as exc:  # a numerical failure: the Gaussian verdict stands
        msg = res.message + f" (The general path, tried next, failed: {exc}.)"
        return dataclasses.replace(res, message=msg)
    timings = {f"gaussian: {name}": t for name, t in res.timings.items()}
    if not out.exact and res.n_found > out.n_found:
        # the general path did worse: the Gaussian path's units stand
        msg = res.message + (f" (The general path, tried next, found only {out.n_found} "
                             f"of {out.n_hidden} units.)")
        return dataclasses.replace(
            res, message=msg, diagnostics={**res.diagnostics, "general_message": out.message},
            timings={**timings, **{f"general: {name}": t for name, t in out.timings.items()}})
    return dataclasses.replace(out, timings={**timings, **out.timings})


def _unwhiten(res: Recovery, X, Y, A, act, tol, chunk_size, *, bias_column=None,
              offset=None) -> Recovery:
    """Map a recovery on ``X A`` back to ``X`` (``auto`` whitening, docs/algorithms.md 1).

    ``(X A) v_w = X (A v_w)``, so ``V = V_w A^T`` reproduces the same hidden layer
    exactly; ``U`` and the certificate are recomputed on the original ``X``.
    Standard errors (noisy labels) refer to the whitened coordinates and are
    dropped.
    """
    t0 = time.perf_counter()
    diag = {**res.diagnostics, "whitened": True}
    if res.network is None:
        return dataclasses.replace(res, diagnostics=diag)
    V = res.network.V @ A.T
    b = res.network.b
    out = fit_output_layer(X, Y, V, act, b=b, bias_column=bias_column, offset=offset,
                           chunk_size=chunk_size)
    net = TwoLayerNetwork(out.U, out.V, activation=act, b=out.b, c=out.c)
    diag["certificate_whitened"] = res.certificate
    exact = bool(res.exact and out.certificate <= tol and out.rank_hidden == res.n_hidden)
    msg = res.message + (
        f" (Gaussian path on the whitened inputs X S^-1/2; V mapped back; relative "
        f"residual on the original X: {out.certificate:.1e})"
    )
    if res.exact and not exact:
        msg += f"; not exact on the original X (residual > tol={tol:g})"
    timings = {**res.timings, "unwhitening": time.perf_counter() - t0}
    return dataclasses.replace(res, network=net, exact=exact, certificate=out.certificate,
                               message=msg, diagnostics=diag, standard_errors=None,
                               timings=timings)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Units:
    """The exact change of units under which the paths run (docs/algorithms.md 0).

    ``X' = diag(w) X 2^-ex`` and ``Y' = diag(w^p) Y 2^-ey``: powers of two, so the
    change is lossless. ``ex``, ``ey`` bring entries far from unit scale back to
    it; the row weights ``w`` (homogeneous activations of degree ``p`` only, as
    ``f(w t) = w^p f(t)``) shorten rows of ``X`` longer than ``ROW_CAP`` median
    norms. ``y = U f(V x)`` on the data as given is ``y' = U' f(V' x')`` with
    ``V' = V 2^ex`` and ``U' = U 2^-ey``.
    """

    ex: int = 0
    ey: int = 0
    row_exponents: np.ndarray | None = None
    degree: float | None = None

    @classmethod
    def of(cls, X, Y, act) -> "_Units":
        ex, norms = scale_and_row_norms(X)
        ey = power_of_two_scale(Y)
        rows = None
        if act.degree is not None:
            w = caps_from_norms(norms)
            if np.any(w < 1.0):
                rows = np.floor(np.log2(w)).astype(int)  # w' = 2^e <= w
        return cls(ex=ex, ey=ey, row_exponents=rows, degree=act.degree)

    @property
    def bias_column(self):
        """What a hidden bias multiplies on each row after :meth:`apply` (None: ones):
        ``[x, 1]`` shortened by ``w`` is ``[w x, w]``."""
        return None if self.row_exponents is None else np.exp2(self.row_exponents)

    @property
    def offset(self):
        """What an output bias multiplies on each row after :meth:`apply` (None:
        ones): ``w^p``, as the labels were multiplied by it."""
        return None if self.row_exponents is None else np.exp2(
            self.row_exponents * self.degree)

    @property
    def identity(self) -> bool:
        return self.ex == 0 and self.ey == 0 and self.row_exponents is None

    def apply(self, X, Y):
        if self.identity:
            return X, Y
        if isinstance(X, ChunkedArray) or isinstance(Y, ChunkedArray):
            f = None if self.row_exponents is None else np.exp2(self.row_exponents)
            fy = None if f is None else np.exp2(self.row_exponents * self.degree)
            return (ChunkedArray(X, name="X").with_units(self.ex, f),
                    ChunkedArray(Y, name="Y").with_units(self.ey, fy))
        X = np.ldexp(X, -self.ex)
        Y = np.ldexp(Y, -self.ey)
        if self.row_exponents is not None:
            e = self.row_exponents[:, None]
            X = np.ldexp(X, e)
            Y = Y * np.exp2(e * self.degree)
        return X, Y

    def restore(self, res: Recovery, X0, Y0, *, tol) -> Recovery:
        """The result in the units of the data as given, certified again on it."""
        if self.identity:
            return res
        t0 = time.perf_counter()
        diag = {**res.diagnostics, "rescaled": {
            "X_exponent": self.ex, "Y_exponent": self.ey,
            "rows_shortened": 0 if self.row_exponents is None
            else int(np.count_nonzero(self.row_exponents)),
            "certificate_rescaled": res.certificate}}
        if res.network is None:
            return dataclasses.replace(res, diagnostics=diag)
        net = res.network
        net = TwoLayerNetwork(np.ldexp(net.U, self.ey), np.ldexp(net.V, -self.ex),
                              activation=net.activation, b=net.b,
                              c=np.ldexp(net.c, self.ey))
        with np.errstate(over="ignore", invalid="ignore"):
            cert = relative_residual(Y0, net.predict(X0)) if not isinstance(
                X0, ChunkedArray) and not isinstance(Y0, ChunkedArray) else \
                streamed_relative_residual(X0, Y0, net.predict, exponent=self.ey)
        exact = bool(res.exact and cert <= tol)
        msg = res.message
        if res.exact and not exact:
            msg += (f" Not exact on the data as given: relative residual {cert:.1e} > "
                    f"tol={tol:g}.")
        se = res.standard_errors
        if se is not None:
            se = StandardErrors(V=np.ldexp(se.V, -self.ex), U=np.ldexp(se.U, self.ey),
                                b=se.b, c=None if se.c is None else np.ldexp(se.c, self.ey),
                                estimated_error=se.estimated_error)
        noise = None if res.noise_level is None else float(np.ldexp(res.noise_level,
                                                                     self.ey))
        timings = {**res.timings, "units": time.perf_counter() - t0}
        return dataclasses.replace(res, network=net, exact=exact, certificate=cert,
                                   message=msg, diagnostics=diag, standard_errors=se,
                                   noise_level=noise, timings=timings)
