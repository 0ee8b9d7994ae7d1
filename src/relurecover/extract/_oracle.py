"""The oracle behind black-box extraction: counted, budgeted queries (docs/algorithms.md 7).

Extraction reads nothing of a model but its answers. :class:`QueryOracle` wraps any
callable from an ``(q, d)`` float64 array to ``(q,)`` or ``(q, m)`` outputs, checks
each answer (shape, finiteness), counts the queries per stage, and refuses a batch
that would take the total past ``max_queries`` or run past ``time_limit``, so that no
stage can exceed the budget or loop without a bound.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["QueryOracle", "BudgetExhausted", "NotAnOracle"]


class BudgetExhausted(RuntimeError):
    """The next batch of queries would exceed ``max_queries`` or ``time_limit``."""


class NotAnOracle(ValueError):
    """The callable does not answer like a model: wrong shape, NaN, inconsistent width."""


class QueryOracle:
    """Count, budget and check the queries sent to a black-box model.

    Parameters
    ----------
    fn : callable
        ``fn(Q)`` with ``Q`` an ``(q, d)`` float64 array returns ``(q,)`` or ``(q, m)``
        numbers (anything ``np.asarray`` reads: numpy, lists; a torch tensor is
        handled by :func:`relurecover.extract.as_oracle`).
    d : int
        Input dimension.
    max_queries : int or None, default=None
        At most this many rows are ever sent to ``fn``; None: no limit.
    time_limit : float or None, default=None
        Seconds from construction after which no further batch is sent.

    Attributes
    ----------
    n_queries : int
        Rows sent so far.
    per_stage : dict of str to int
        Rows sent per stage (see :meth:`stage`).
    m : int or None
        Output width, known after the first answer.
    out_scale : float
        A power of two the answers are divided by (1 unless their first batch lies
        outside ``2^-16 .. 2^16``); the network found is scaled back by it.
    precision : float
        Unit roundoff of the answers' dtype (``2^-53`` for float64, ``2^-24`` for
        float32); raised by :meth:`note_noise` when the answers are noisier.
    """

    def __init__(self, fn, d: int, *, max_queries=None, time_limit=None):
        if not callable(fn):
            raise TypeError(f"the oracle must be callable, got {type(fn).__name__}.")
        self.fn = fn
        self.d = int(d)
        self.max_queries = None if max_queries is None else int(max_queries)
        self.time_limit = None if time_limit is None else float(time_limit)
        self._start = time.perf_counter()
        self.n_queries = 0
        self.per_stage: dict[str, int] = {}
        self._stage = "probe"
        self.m = None
        self.dtype = None
        self.precision = float(np.finfo(np.float64).eps) / 2
        self.out_scale = 1.0

    # -- budget ------------------------------------------------------------------
    def stage(self, name: str) -> None:
        """Attribute the following queries to stage ``name``."""
        self._stage = name

    @property
    def elapsed(self) -> float:
        """Seconds since the oracle was wrapped."""
        return time.perf_counter() - self._start

    @property
    def remaining(self) -> float:
        """Queries left in the budget (inf without one)."""
        if self.max_queries is None:
            return float("inf")
        return self.max_queries - self.n_queries

    @property
    def low_precision(self) -> bool:
        """Whether the answers are float32 or coarser (``precision > 1e-12``): such an
        oracle takes the low-precision route of docs/algorithms.md 7.7."""
        return self.precision > 1e-12

    def check_time(self) -> None:
        """Raise :class:`BudgetExhausted` once ``time_limit`` has passed."""
        if self.time_limit is not None and self.elapsed > self.time_limit:
            raise BudgetExhausted(f"time limit of {self.time_limit:g} s reached")

    # -- queries -----------------------------------------------------------------
    def __call__(self, Q) -> np.ndarray:
        """Answer the rows of ``Q`` as an ``(q, m)`` float64 array (divided by ``out_scale``).

        Raises
        ------
        BudgetExhausted
            When the batch would exceed ``max_queries`` or the time limit has passed;
            nothing is sent then.
        NotAnOracle
            When the answer has the wrong shape, is not finite, or changes width.
        """
        Q = np.ascontiguousarray(Q, dtype=np.float64)
        if Q.ndim == 1:
            Q = Q[None, :]
        q = Q.shape[0]
        if q == 0:
            return np.zeros((0, self.m or 0))
        if self.max_queries is not None and self.n_queries + q > self.max_queries:
            raise BudgetExhausted(
                f"the query budget of {self.max_queries} would be exceeded "
                f"({self.n_queries} used, {q} more needed)")
        self.check_time()
        if not np.all(np.isfinite(Q)):  # pragma: no cover - internal invariant
            raise FloatingPointError("extraction built a non-finite query")
        out = self.fn(Q)
        self.n_queries += q
        self.per_stage[self._stage] = self.per_stage.get(self._stage, 0) + q
        raw_dtype = getattr(out, "dtype", None)
        try:
            Y = np.asarray(out, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise NotAnOracle(f"the oracle's answer is not numeric ({exc}).") from None
        if Y.ndim == 1 and Y.shape[0] == q:
            Y = Y[:, None]
        elif not (Y.ndim == 2 and Y.shape[0] == q):
            raise NotAnOracle(
                f"the oracle answered {q} queries with an array of shape {Y.shape}; "
                f"expected ({q},) or ({q}, m).")
        if self.m is None:
            self.m = Y.shape[1]
            top = float(np.max(np.abs(Y))) if np.all(np.isfinite(Y)) else 1.0
            if top > 0 and not 2.0**-16 <= top <= 2.0**16:
                # answers far from unit scale (1e-300, 1e300) are divided by a power of
                # two: exact, and no norm of a Jacobian under- or overflows
                self.out_scale = float(2.0 ** np.round(np.log2(top)))
            if raw_dtype is not None and np.dtype(raw_dtype).kind == "f":
                self.dtype = np.dtype(raw_dtype)
                self.precision = max(self.precision, float(np.finfo(self.dtype).eps) / 2)
        elif Y.shape[1] != self.m:
            raise NotAnOracle(f"the oracle changed its output width from {self.m} to "
                              f"{Y.shape[1]}.")
        if not np.all(np.isfinite(Y)):
            bad = int(np.flatnonzero(~np.all(np.isfinite(Y), axis=1))[0])
            raise NotAnOracle(f"the oracle answered a non-finite value (query {bad} of "
                              f"a batch of {q}).")
        return Y / self.out_scale if self.out_scale != 1.0 else Y

    def note_noise(self, relative: float) -> None:
        """Raise :attr:`precision` to a measured relative noise level."""
        if np.isfinite(relative):
            self.precision = max(self.precision, float(relative))
