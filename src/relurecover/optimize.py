"""One Levenberg-Marquardt for every least-squares refinement of the package.

Callers: the noisy-label refinement of two-layer networks (docs/algorithms.md 2)
and the deep path's final polish (docs/algorithms.md 5.4). Both minimise a cost
``F(x) = ||r(x)||^2 / 2`` whose Gauss-Newton matrix ``H = J^T J`` they assemble
themselves (the noisy path from a subsample of rows, with its gauge directions
penalised), so the solver works on the normal equations: at ``x`` the caller
returns the cost, the gradient ``g = J^T r`` and, lazily, ``H``.

Step: ``h = -(H + lam D)^{-1} g`` with Marquardt's scaling ``D = diag(H)``
(floored at ``DIAG_FLOOR * max diag(H)``: a weight with no curvature gets no step).

Damping: Nielsen's schedule [Nie99]_ (as in Madsen, Nielsen and Tingleff,
"Methods for non-linear least squares problems", 2004, section 3.2). With the gain
ratio ``rho = (F(x) - F(x + h)) / (L(0) - L(h))``, ``L`` the quadratic model
(``L(0) - L(h) = h^T (lam D h - g) / 2``):

- ``rho > 0``: the step is taken, ``lam <- lam max(1/3, 1 - (2 rho - 1)^3)`` and
  ``nu <- 2``;
- otherwise ``lam <- lam nu`` and ``nu <- 2 nu`` (so a run of rejections grows
  ``lam`` like ``2^(t^2 / 2)``, and gives up past ``LAMBDA_MAX``).

.. [Nie99] H. B. Nielsen, "Damping parameter in Marquardt's method", IMM-REP-1999-05,
   Technical University of Denmark, 1999.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import scipy.linalg

__all__ = ["Evaluation", "LMResult", "levenberg_marquardt"]

#: the first damping (relative to ``diag(H)``: one thousandth of the curvature).
LAMBDA_START = 1e-3
#: damping is never lowered below this (the step is then Gauss-Newton's to rounding).
LAMBDA_MIN = 1e-12
#: past this damping no step has lowered the cost: stop (``status="no_decrease"``).
LAMBDA_MAX = 1e12
#: the small-step test of ``decrease_tol`` applies only at a damping at most this,
#: where the step is close to the Gauss-Newton step (a heavily damped step is short
#: because of the damping, not because the minimum is near).
LAMBDA_CONVERGED = 1e-2
#: entries of ``diag(H)`` are floored at this times its largest entry.
DIAG_FLOOR = 1e-14
#: the predicted decrease is at rounding level when below this times ``g . g``
#: (with ``D = diag(H)`` of order one: the absolute floor of the small-step test).
ROUNDING_DECREASE = 1e-28
#: Nielsen's bound on the factor by which one accepted step lowers the damping.
NIELSEN_MIN_FACTOR = 1.0 / 3.0
#: guards divisions by a zero predicted decrease.
_TINY = 1e-300


@dataclass(frozen=True)
class Evaluation:
    """What the caller's ``evaluate(x)`` returns.

    Attributes
    ----------
    cost : float
        ``F(x) = ||r(x)||^2 / 2``.
    gradient : ndarray of shape (p,)
        ``J^T r`` at ``x``.
    gauss_newton : callable
        ``gauss_newton()`` returns the ``(p, p)`` Gauss-Newton matrix ``J^T J`` at
        ``x`` (or the approximation the caller wants to step with); called only at
        the points the solver steps from, so trial points that are rejected never
        pay for it. None: it could not be formed in time (status ``"deadline"``).
    aux : object, default=None
        Anything the caller wants back with the final point
        (:attr:`LMResult.evaluation`).
    """

    cost: float
    gradient: np.ndarray
    gauss_newton: Callable[[], np.ndarray]
    aux: Any = None


@dataclass(frozen=True)
class LMResult:
    """The outcome of :func:`levenberg_marquardt`.

    Attributes
    ----------
    x : ndarray of shape (p,)
        The last accepted point.
    cost : float
        ``F(x)``.
    n_iter : int
        Accepted steps.
    success : bool
        True when it stopped at a minimum (``status`` ``"cost_target"``,
        ``"small_step"`` or ``"no_decrease"``), False at a budget (``"max_iter"``,
        ``"deadline"``) or where progress was slow (``"slow"``).
    status : str
        Why it stopped: ``"cost_target"`` (``F <= cost_target``), ``"small_step"``
        (the predicted decrease of an undamped step is at most ``decrease_tol F``),
        ``"no_decrease"`` (no step lowered ``F`` up to ``LAMBDA_MAX``: a minimum to
        rounding, or a kink), ``"slow"`` (the rule of ``progress``), ``"max_iter"``
        or ``"deadline"``.
    message : str
        The same in words.
    history : tuple of float
        ``F`` at the start and after each accepted step.
    evaluation : Evaluation
        The caller's evaluation at ``x`` (its ``aux`` included).
    """

    x: np.ndarray
    cost: float
    n_iter: int
    success: bool
    status: str
    message: str
    history: tuple
    evaluation: Evaluation


def _damped_step(H, g, lam):
    """``-(H + lam D)^{-1} g`` with ``D = diag(H)`` floored, or None if not factorable."""
    dg = np.diag(H).copy()
    top = float(dg.max()) if dg.size else 0.0
    dg = np.maximum(dg, DIAG_FLOOR * top if top > 0 else 1.0)
    try:
        c = scipy.linalg.cho_factor(H + lam * np.diag(dg), check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return None, dg
    step = -scipy.linalg.cho_solve(c, g, check_finite=False)
    if not np.all(np.isfinite(step)):
        return None, dg
    return step, dg


def levenberg_marquardt(
    evaluate: Callable[[np.ndarray], Evaluation],
    x0,
    *,
    max_iter: int,
    decrease_tol: float = 0.0,
    cost_target: float = 0.0,
    deadline: float = math.inf,
    retract: Callable[[np.ndarray], np.ndarray] | None = None,
    stall_steps: int = 0,
    progress: tuple[int, float] | None = None,
) -> LMResult:
    """Minimise ``F(x) = ||r(x)||^2 / 2`` by Levenberg-Marquardt (Nielsen's damping).

    Used by the noisy-label refinement (docs/algorithms.md 2) and the deep polish
    (docs/algorithms.md 5.4); the schedule is in the module docstring.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(x)`` returns an :class:`Evaluation` at ``x``: the cost, the
        gradient ``J^T r`` and a callable giving the Gauss-Newton matrix.
    x0 : array-like of shape (p,)
        The start.
    max_iter : int
        Accepted steps at most.
    decrease_tol : float, default=0.0
        Stop (``"small_step"``) when, at a damping at most ``LAMBDA_CONVERGED``,
        the predicted decrease ``-g . h`` of the next step is at most
        ``decrease_tol * F`` (or at rounding level, ``ROUNDING_DECREASE * g . g``).
        The test costs no evaluation. For a square loss with noise variance
        ``2 F / dof``, ``decrease_tol = 2 t / dof`` stops when the step is below
        ``sqrt(t)`` standard errors (the noisy path's ``stat_tol``).
    cost_target : float, default=0.0
        Stop (``"cost_target"``) as soon as ``F <= cost_target``.
    deadline : float, default=inf
        A ``time.perf_counter()`` value after which no further step is tried.
    retract : callable, default=None
        ``retract(x + h)`` maps a trial point back to the caller's chart (e.g. unit
        norms of the hidden units) before it is evaluated; ``F`` must be invariant
        under it.
    stall_steps : int, default=0
        Also stop (``"small_step"``) after this many consecutive accepted steps
        whose actual decrease of ``F`` was at most ``decrease_tol * F`` (0: never).
        With an approximate Gauss-Newton matrix the damping can stay above
        ``LAMBDA_CONVERGED`` while the steps no longer matter.
    progress : (int, float), default=None
        ``(steps, gain)``: after every ``steps`` accepted steps, stop (``"slow"``)
        unless they cut ``F`` to at most ``gain`` times its value before them (None:
        never). For a start that may lie in a wrong basin (the deep refinement,
        docs/algorithms.md 5.4): there the cost stalls within a few steps, while
        in the truth's basin it keeps falling.

    Returns
    -------
    LMResult
        ``x``, ``cost``, ``n_iter``, ``success``, ``status``, ``message``,
        ``history`` and the last ``evaluation``.

    Examples
    --------
    >>> A = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    >>> b = np.array([1.0, 2.0, 3.0])
    >>> def evaluate(x):
    ...     r = A @ x - b
    ...     return Evaluation(0.5 * float(r @ r), A.T @ r, lambda: A.T @ A)
    >>> res = levenberg_marquardt(evaluate, np.zeros(2), max_iter=50, decrease_tol=1e-12)
    >>> res.success, bool(np.allclose(res.x, np.linalg.lstsq(A, b, rcond=None)[0]))
    (True, True)
    """
    steps, gain = (0, 1.0) if progress is None else progress
    if progress is not None:
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"`progress` must be (steps, gain) with steps a positive "
                             f"integer, got steps={steps!r}.")
        if not (isinstance(gain, (int, float, np.floating)) and 0 < gain <= 1):
            raise ValueError(f"`progress` must be (steps, gain) with 0 < gain <= 1, got "
                             f"gain={gain!r}.")
    x = np.array(x0, dtype=float)
    cur = evaluate(x)
    lam, nu = LAMBDA_START, 2.0
    history = [cur.cost]
    n_iter = 0
    stalled = 0
    status = "max_iter"
    while status == "max_iter" and n_iter < max_iter:
        if cur.cost <= cost_target:
            status = "cost_target"
            break
        if time.perf_counter() > deadline:
            status = "deadline"
            break
        H = cur.gauss_newton()
        if H is None:  # (the matrix could not be formed before the deadline)
            status = "deadline"
            break
        g = cur.gradient
        floor = max(decrease_tol * cur.cost, ROUNDING_DECREASE * float(g @ g), _TINY)
        while True:  # until a step is taken or the search stops
            if lam > LAMBDA_MAX:
                status = "no_decrease"
                break
            step, dg = _damped_step(H, g, lam)
            if step is None:
                lam, nu = lam * nu, 2.0 * nu
                continue
            pred = -float(g @ step)
            if pred <= floor and lam <= LAMBDA_CONVERGED:
                status = "small_step"
                break
            trial_x = x + step
            if retract is not None:
                trial_x = retract(trial_x)
            trial = evaluate(trial_x)
            model = 0.5 * float(step @ (lam * dg * step - g))
            if trial.cost < cur.cost:
                rho = (cur.cost - trial.cost) / max(model, _TINY)
                lam = max(lam * max(NIELSEN_MIN_FACTOR, 1.0 - (2.0 * rho - 1.0) ** 3),
                          LAMBDA_MIN)
                nu = 2.0
                stalled = stalled + 1 if cur.cost - trial.cost <= decrease_tol * cur.cost \
                    else 0
                x, cur = trial_x, trial
                n_iter += 1
                history.append(cur.cost)
                if stall_steps and stalled >= stall_steps:
                    status = "small_step"
                elif steps and n_iter % steps == 0 and cur.cost > gain * history[-1 - steps]:
                    status = "slow"
                break
            lam, nu = lam * nu, 2.0 * nu
    if status == "max_iter" and cur.cost <= cost_target:
        status = "cost_target"
    messages = {
        "cost_target": f"reached the cost target after {n_iter} steps",
        "small_step": "converged: the predicted decrease of the next step is below "
                      "the tolerance",
        "no_decrease": "converged: no step decreases the cost further",
        "max_iter": f"stopped after max_iter={max_iter} steps",
        "slow": f"stopped after {n_iter} steps: the last {steps} cut the cost by less "
                f"than the factor {gain}",
        "deadline": f"stopped at the time limit after {n_iter} steps",
    }
    return LMResult(
        x=x, cost=float(cur.cost), n_iter=n_iter,
        success=status in ("cost_target", "small_step", "no_decrease"), status=status,
        message=messages[status], history=tuple(history), evaluation=cur,
    )
