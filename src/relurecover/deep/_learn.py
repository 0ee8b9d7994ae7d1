"""Learning a deep ReLU network in the subspace, then in full dimension (docs/algorithms.md 5.3-5.4).

1. :func:`filtered_pca` gives an orthonormal basis ``P`` (``d x r``) of the span of
   ``W_1`` (5.1-5.2).
2. A small ReLU network is fitted to ``(X P, y)`` from several random restarts by
   full-batch L-BFGS; the restart with the smallest held-out square loss is kept
   (5.3). Cost: ``r``-dimensional, independent of ``d``.
3. The best fits are lifted, ``W_1 <- W_1' P^T``, screened, and the chosen one is
   refined (5.4): Levenberg-Marquardt attempts, L-BFGS in segments between them, a
   polish on all training rows where the refinement's rows left a gap. The subspace
   is only approximate (angles of order ``sqrt(d / n)``), which alone caps the
   accuracy of step 2, while the lifted start lies in the basin of the truth.

The fits run on the base install (numpy and SciPy) or, when asked for, on PyTorch
(:mod:`._engine`).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import time
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .._linalg import safe_norm
from .._progress import check_progress, report, reporting
from .._validation import check_positive_int, check_random_state
from ..exceptions import AssumptionWarning, ConvergenceWarning
from ..networks import DeepNetwork
from ._engine import ROW_BLOCK, engine as make_engine, resolve_engine
from ._filtered_pca import _check_n_directions, checked_filtered_pca, filtered_pca
from ._prune import prune_network
from ._scaling import OutlierRows, check_samples, scale_exponent, set_aside_outliers
from ._subspace import Subspace

__all__ = ["DeepFit", "learn_deep", "MissingDependencyError", "import_torch"]

#: what :func:`learn_deep` raises, before any work, when PyTorch is not installed.
TORCH_HINT = "learn_deep(engine='torch') needs PyTorch: pip install 'relurecover[torch]'"
#: the default ``success_tol``: a held-out relative square error at most this is a
#: success (the CLI's ``--tol`` default too).
DEFAULT_SUCCESS_TOL = 1e-3
#: the architecture search (``widths=None``) doubles the width up to this, and goes on
#: while the best held-out error of a level is below SEARCH_GAIN times the last one's
SEARCH_MAX_WIDTH = 64
SEARCH_GAIN = 0.5
#: ... and only while that error is above this (the subspace of filtered PCA is
#: approximate, so even the right architecture fits it only to about its angle squared)
SEARCH_GROW_ABOVE = 1e-2
#: at most this many rows are held out, whatever the fraction ``heldout``.
MAX_HELDOUT_ROWS = 50_000
#: the default ``refine_rows``: ``max(REFINE_ROWS_MIN, REFINE_ROWS_PER_PARAM * n_parameters)``.
REFINE_ROWS_MIN = 20_000
REFINE_ROWS_PER_PARAM = 20
#: pruning (5.5) is kept when the held-out error after is at most PRUNE_SLACK times
#: the one before plus PRUNE_FLOOR (a relative square error at float64 rounding level).
PRUNE_SLACK = 1.01
PRUNE_FLOOR = 1e-14
#: pruning looks at this many training rows, and polishes the pruned network with at
#: most PRUNE_LM_ITER Levenberg-Marquardt steps.
PRUNE_ROWS = 50_000
PRUNE_LM_ITER = 20
#: dead units (docs/algorithms.md 5.3): a redrawn unit must fire on a fraction in
#: ``REVIVE_ACTIVE`` of ``REVIVE_PROBE_ROWS`` rows (at most ``REVIVE_TRIES`` draws);
#: its outgoing weights start at ``REVIVE_OUT_SCALE`` times a Gaussian.
REVIVE_ACTIVE = (0.05, 0.95)
REVIVE_PROBE_ROWS = 2000
REVIVE_TRIES = 20
REVIVE_OUT_SCALE = 1e-2
#: the screen (5.4) runs on ``max(SCREEN_ROWS, 5 n_params)`` training rows (``n_params``
#: the weights of the subspace network).
SCREEN_ROWS = 5_000
#: Levenberg-Marquardt (5.4) runs on ``max(LM_ROWS, LM_ROWS_PER_WEIGHT n_full)`` training
#: rows (``n_full`` the weights of the lifted network: its ``J^T J`` costs ``rows
#: n_full^2``); it goes on (to ``lm_iter`` steps) while every LM_PROBE_ITER steps cut the
#: loss to at most LM_PROBE_GAIN of where they began. In a wrong basin the loss stalls
#: within a few steps and the attempt ends cheaply; in the truth's basin it falls
#: steadily (a quarter per step at d = 200, where 100 L-BFGS iterations on the
#: refinement's rows cut it by a third at four times the cost), then quadratically.
#: After an attempt that did not cut the held-out error to REFINE_GAIN of where it
#: began, the refinement's later attempts are short: LM_PROBE_ITER steps, and on (by
#: the rule above) only where they cut the loss to LM_FAST_GAIN (a network with more
#: weights than its rows pin down lowers the loss on them while the held-out error
#: stays: 16 steps of 0.7 s each, attempt after attempt, at d = 200 with widths
#: (10, 10)).
#: Its target is LM_TOL, near float64 rounding of a relative square error, not ``tol``.
LM_ROWS = 3_000
LM_ROWS_PER_WEIGHT = 3
LM_PROBE_ITER = 4
LM_PROBE_GAIN = 0.7
LM_FAST_GAIN = 1e-2
LM_TOL = 1e-28
#: a screened fit (5.4) whose held-out error is at most this is in the truth's basin
#: (in the benchmark's wrong basins the error stalls at 1e-5 and above) and ends the
#: screen.
SCREEN_ENOUGH = 1e-6
#: the refinement of the chosen fit runs L-BFGS in segments of REFINE_SEGMENT iterations
#: (up to ``max_iter``), each followed by a Levenberg-Marquardt attempt; it goes on while
#: a segment cuts the held-out error to REFINE_GAIN of the one before (a wrong basin
#: plateaus, and the next round starts in the refined span instead).
REFINE_SEGMENT = 100
REFINE_GAIN = 0.7
#: in the last round (no round follows to restart from) it goes on while a segment
#: cuts the held-out error to PATIENT_GAIN of the one before.
PATIENT_GAIN = 0.95
#: the polish on all training rows runs only where the held-out error is above
#: POLISH_GAP times the error on the refinement's rows (too few rows pinned the
#: network down; in a wrong basin the two are alike and more rows change nothing).
POLISH_GAP = 10.0
#: round 2 spans the right singular vectors of the refined ``W_1`` whose singular
#: value is at least this fraction of the largest.
SPAN_SV_RTOL = 1e-2
#: ``X`` with root mean square below ``2**-MAX_SCALE_EXPONENT`` (``y`` above
#: ``2**MAX_SCALE_EXPONENT``) is refused: the network mapped back to its units would
#: overflow float64 (whose largest power of two is ``2**1023``).
MAX_SCALE_EXPONENT = 1000


class MissingDependencyError(ImportError):
    """An optional dependency (an extra of ``pip install 'relurecover[...]'``) is missing."""


def import_torch():
    """Return the ``torch`` module, or raise :class:`MissingDependencyError` at once.

    Returns
    -------
    module
        ``torch``.

    Raises
    ------
    MissingDependencyError
        With the one-line hint ``TORCH_HINT`` when PyTorch cannot be imported.
    """
    try:
        import torch
    except ImportError as exc:  # not installed, or blocked (sys.modules["torch"] = None)
        raise MissingDependencyError(TORCH_HINT) from exc
    return torch


@dataclass(frozen=True, kw_only=True)
class DeepFit:
    """What :func:`learn_deep` learned, and the verdict.

    Every error is a relative square error ``||y - F(x)||^2 / ||y||^2`` (summed
    over the rows and outputs it is computed on).

    Attributes
    ----------
    network : DeepNetwork
        The network in the original coordinates and units (``W_1`` of shape
        ``(w_1, d)``).
    heldout_error : float
        The relative square error on the held-out rows (never used for fitting;
        used only to choose among restarts and rounds).
    train_error : float
        The same on the training rows after refinement.
    success : bool
        ``heldout_error <= success_tol``.
    success_tol : float
        The tolerance of the verdict.
    message : str
        The verdict and the steps in words.
    subspace : Subspace
        The subspace found by :func:`filtered_pca` (or the one given).
    widths : tuple of int
        Hidden widths of :attr:`network`.
    restart_errors : tuple of float
        Held-out relative error of each subspace fit (step 2), before lifting.
    timings : dict of str to float
        Seconds per stage (``subspace``, ``fit``, ``refine``, ``lm``, ``polish``,
        ``total``).
    diagnostics : dict
        Rows used per stage, iterations, the chosen restart and architecture, the
        power-of-two exponents the data were rescaled by, the engine (``"numpy"`` or
        ``"torch"``), ``"pruning"``, ``"fitted_widths"``, and ``"outliers"``: None, or
        the rows set aside as far outside a Gaussian's range (not fitted; their
        indices, ``log10`` of the largest norm ratio and the network's largest
        relative error on them, docs/algorithms.md 5.1).
    """

    network: DeepNetwork
    heldout_error: float
    train_error: float
    success: bool
    success_tol: float
    message: str
    subspace: Subspace
    widths: tuple
    restart_errors: tuple
    timings: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"DeepFit(success={self.success}, heldout_error={self.heldout_error:.3g}, "
            f"train_error={self.train_error:.3g}, subspace dim={self.subspace.n_found}, "
            f"network={self.network!r}, time={self.timings.get('total', 0.0):.3g}s)\n"
            f"  message: {self.message}"
        )


# --------------------------------------------------------------------------- fits


def _constant_units(mats):
    """Make the last unit of every hidden layer the constant 1 (biases, 5.6).

    The inputs end with a constant column 1; the last unit of layer 1 reads only it,
    the last unit of each later layer only the constant unit before: ``relu(1) = 1``
    all the way, so every other unit's weight on it is its bias.
    """
    for W in mats[:-1]:
        W[-1] = 0.0
        W[-1, -1] = 1.0


def _revive_dead_units(mats, X, Y, *, fit_iter, tol, eng, dead=0.005, max_rounds=3):
    """Re-draw hidden units that never fire and fit again (docs/algorithms.md 5.3).

    A unit of layer 2 or deeper takes non-negative inputs, so without biases a fit
    can push it to be inactive everywhere: it then gets no gradient and the fit
    stalls short of the truth (a depth-3 instance whose true unit fires on 8% of
    the inputs stalled at relative error 6e-3 in every restart). Each dead unit
    gets fresh incoming weights that fire on 5-95% of the rows and small outgoing
    ones, and L-BFGS goes on; the result is kept only if the loss falls.
    Returns the weights and the number of revivals kept.
    """
    kept = 0
    for _ in range(max_rounds):
        act = eng.activity(mats, X)
        targets = [(li, j) for li in range(1, len(act)) for j in np.flatnonzero(act[li] < dead)]
        if not targets:
            break
        before = eng.relative_error(mats, X, Y)
        trial = [W.copy() for W in mats]
        for li, j in targets:
            fan_in = trial[li].shape[1]
            for _try in range(REVIVE_TRIES):
                trial[li][j] = eng.randn((fan_in,)) * math.sqrt(2.0 / fan_in)
                frac = eng.activity(trial, X[:REVIVE_PROBE_ROWS])[li][j]
                if REVIVE_ACTIVE[0] <= frac <= REVIVE_ACTIVE[1]:
                    break
            trial[li + 1][:, j] = REVIVE_OUT_SCALE * eng.randn((trial[li + 1].shape[0],))
        trial = eng.lbfgs(trial, X, Y, max_iter=fit_iter, tol=tol, deadline=math.inf)[0]
        if eng.relative_error(trial, X, Y) < before:
            kept += 1
            mats = trial
        else:
            break
    return mats, kept


def _mlp_residual_jacobian(mats, X, Y, out=None):
    """Residual ``F(X) - Y`` (flattened, row-major over ``(n, m)``) and its Jacobian.

    For ``F(x) = W_{L+1} relu(W_L ... relu(W_1 x))`` the derivative of output ``o``
    in ``W_l[a, b]`` is ``delta_l[a] h_{l-1}[b]`` with ``h_0 = x``, ``h_l`` the
    activations and ``delta_{L+1} = e_o``, ``delta_l = (delta_{l+1} W_{l+1}) *
    1{pre_l > 0}`` (backpropagation written out per sample). Columns follow the
    layers, each flattened row-major like ``W.ravel()``. ``out``, an array of shape
    ``(n m, n_weights)``, receives the Jacobian (written in place, no temporaries of
    its size: a fresh one per step cost more than its ``J^T J``).
    """
    n = X.shape[0]
    hs, masks = [X], []
    for W in mats[:-1]:
        pre = hs[-1] @ W.T
        masks.append(pre > 0)
        hs.append(np.maximum(pre, 0.0))
    out_y = hs[-1] @ mats[-1].T
    m = out_y.shape[1]
    sizes = [W.size for W in mats]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    J = np.empty((n * m, offsets[-1])) if out is None else out
    J3 = J.reshape(n, m, offsets[-1])
    for o in range(m):
        delta = np.zeros((n, m))
        delta[:, o] = 1.0
        for l in range(len(mats) - 1, -1, -1):
            a, b = mats[l].shape
            block = J3[:, o, offsets[l]:offsets[l + 1]].reshape(n, a, b)
            np.multiply(delta[:, :, None], hs[l][:, None, :], out=block)
            if l:
                delta = (delta @ mats[l]) * masks[l - 1]
    return (out_y - Y).ravel(), J


def _levenberg_marquardt(mats, X, Y, *, max_iter, tol, deadline, probe=0, patient=True):
    """Levenberg-Marquardt on the square loss, in float64 (docs/algorithms.md 5.4).

    Near the truth the activation patterns of almost all samples are right and
    the loss is a smooth sum of squares in the weights, where Gauss-Newton steps
    converge quadratically; L-BFGS, which stalls at the kinks, cannot get there.
    The solver is the package's one, :func:`relurecover.optimize.levenberg_marquardt`
    (Nielsen's damping), on the explicit Jacobian of :func:`_mlp_residual_jacobian`.
    With ``probe`` it goes on only while every ``probe`` steps cut the loss to
    ``LM_PROBE_GAIN`` of where they began (converging, not stuck in a wrong basin);
    not ``patient``, its first ``probe`` steps must cut the loss to ``LM_FAST_GAIN``
    of its start (quadratic convergence, not a steady descent), the later ones as
    before.
    Returns the new matrices, the relative loss ``||r||^2 / ||Y||^2`` on these rows
    and the accepted steps; it stops once that loss is at most ``tol``.
    """
    from ..optimize import Evaluation, levenberg_marquardt

    sizes = [W.shape for W in mats]
    splits = np.cumsum([a * b for a, b in sizes])[:-1]

    def unpack(theta):
        return [t.reshape(sh) for t, sh in zip(np.split(theta, splits), sizes)]

    den = max(float((Y**2).sum()), 1e-300)
    theta = np.concatenate([W.ravel() for W in mats])
    buffer = np.empty((Y.size, theta.size))

    def evaluate(theta):
        r, J = _mlp_residual_jacobian(unpack(theta), X, Y, out=buffer)
        return Evaluation(cost=0.5 * float(r @ r), gradient=J.T @ r,
                          gauss_newton=lambda: J.T @ J)

    target = 0.5 * tol * den
    if not probe or patient:
        res = levenberg_marquardt(evaluate, theta, max_iter=max_iter, cost_target=target,
                                  deadline=deadline,
                                  progress=(probe, LM_PROBE_GAIN) if probe else None)
        return unpack(res.x), 2.0 * res.cost / den, res.n_iter
    res = levenberg_marquardt(evaluate, theta, max_iter=min(probe, max_iter),
                              cost_target=target, deadline=deadline)
    n_iter = res.n_iter
    if (max_iter > probe and res.status == "max_iter"
            and res.cost <= LM_FAST_GAIN * res.history[0]):  # converging: go on
        res = levenberg_marquardt(evaluate, res.x, max_iter=max_iter - probe,
                                  cost_target=target, deadline=deadline,
                                  progress=(probe, LM_PROBE_GAIN))
        n_iter += res.n_iter
    return unpack(res.x), 2.0 * res.cost / den, n_iter


def _lm_rows(n_rows, n_weights) -> int:
    """Rows for Levenberg-Marquardt: ``max(LM_ROWS, LM_ROWS_PER_WEIGHT n_weights)``,
    at most the ``n_rows`` there are."""
    return min(n_rows, max(LM_ROWS, LM_ROWS_PER_WEIGHT * n_weights))


def _lm_if_lower(Ws, X, Y, *, max_iter, deadline, eng, probe=0, patient=True):
    """:func:`_levenberg_marquardt` to ``LM_TOL`` on ``(X, Y)``, kept only if it lowers
    the loss there. Returns the weights, whether they are new and the steps taken."""
    before = eng.relative_error(Ws, X, Y)
    mats, after, steps = _levenberg_marquardt(Ws, X, Y, max_iter=max_iter, tol=LM_TOL,
                                              deadline=deadline, probe=probe,
                                              patient=patient)
    return (mats, True, steps) if after < before else (Ws, False, steps)


def _n_params(sizes) -> int:
    """Weights of a bias-free MLP with layer sizes ``sizes``."""
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def _ladder(widths, r_in):
    """The architectures to fit (5.5): the given widths, or levels that start at
    ``(2r,)`` and ``(2r, 2r)`` and double the width (depth 1 to 3) up to
    ``SEARCH_MAX_WIDTH``."""
    if widths is not None:
        return [[tuple(widths)]]
    w0 = max(2 * r_in, 2)
    ladder, w = [], w0
    while w <= max(SEARCH_MAX_WIDTH, w0):
        ladder.append([(w,), (w, w)] + ([(w, w, w)] if w > w0 else []))
        w *= 2
    return ladder


def _subspace_fits(Z_fit, Y_fit, Z_ho, Y_ho, *, widths, restarts, fit_iter, tol,
                   deadline, eng, biases):
    """Step 5.3 (and the search of 5.5): fits in the subspace from random restarts.

    A level of the ladder is tried only while the best held-out error of the level
    before fell to ``SEARCH_GAIN`` of the one before it and is above
    ``SEARCH_GROW_ABOVE``; with biases the inputs carry a constant last column and
    every hidden layer one more unit that starts as the constant (5.6). Returns the
    fits of the chosen architecture, best first, as ``(error, index, arch, weights)``,
    and a record of the search.
    """
    r, m = Z_fit.shape[1], Y_fit.shape[1]
    r_in = r - 1 if biases else r
    ladder = _ladder(widths, r_in)
    candidates, architectures, fits, restart_errors = [], [], [], []
    revived = 0
    n_fits = restarts * len(ladder[0])
    report("fit", 0.0)
    best_before = math.inf
    for level, archs in enumerate(ladder):
        if level and time.perf_counter() > deadline:
            break
        level_best = math.inf
        for arch in archs:
            candidates.append(arch)
            sizes = [r, *(w + 1 if biases else w for w in arch), m]
            arch_best = math.inf
            # (the wider levels of the search take a quarter of the restarts)
            for _ in range(restarts if level == 0 else max(4, restarts // 4)):
                if fits and time.perf_counter() > deadline:
                    break  # time_limit: the fits so far go on
                Ws = eng.init_weights(sizes)
                if biases:
                    _constant_units(Ws)
                Ws = eng.lbfgs(Ws, Z_fit, Y_fit, max_iter=fit_iter, tol=tol,
                               deadline=math.inf)[0]
                Ws, n_rev = _revive_dead_units(Ws, Z_fit, Y_fit, fit_iter=fit_iter,
                                               tol=tol, eng=eng)
                revived += n_rev
                err = eng.relative_error(Ws, Z_ho, Y_ho)
                restart_errors.append(err)
                arch_best = min(arch_best, err)
                fits.append((err, len(fits), arch, Ws))
                report("fit", min(1.0, len(fits) / n_fits))
            architectures.append({"widths": list(arch), "heldout": float(arch_best)})
            level_best = min(level_best, arch_best)
        if not level_best < SEARCH_GAIN * best_before:
            break  # no clear gain over the narrower level: stop growing
        best_before = level_best
        if level_best <= SEARCH_GROW_ABOVE:
            break  # as good as the approximate subspace allows: no wider level
    if len(architectures) > 1:
        # the smallest architecture within a factor 2 of the best held-out error goes on
        # (a wider one that fits as well only costs more to refine)
        top = min(a["heldout"] for a in architectures)
        fit_ok = [tuple(a["widths"]) for a in architectures if a["heldout"] <= 2.0 * top]
        chosen_arch = min(fit_ok, key=lambda a: (_n_params([r_in, *a, m]), len(a)))
        fits = [f for f in fits if f[2] == chosen_arch]
    fits.sort(key=lambda f: f[:2])
    return fits, {"restart_errors": restart_errors, "candidates": candidates,
                  "architectures": architectures, "revived_units": revived}


def _screen(fits, P, X, Y, X_ho, Y_ho, *, n_screen, screen_iter, tol, deadline, eng):
    """Step 5.4, first part: lift ``W_1 <- W_1' P^T`` and screen on the rows ``(X, Y)``.

    Fits of similar subspace error can lie in different basins, which the subspace
    (only approximate) cannot tell apart: the best ``n_screen`` are lifted, run
    ``screen_iter`` L-BFGS iterations each on few rows (the screen only ranks them:
    from the truth's basin the error falls fast, elsewhere it stalls), and ranked
    by their held-out error; one at ``SCREEN_ENOUGH`` or below ends the screen.
    Returns the screened fits, best first, as ``(heldout,
    index, arch, weights)``, and the iterations.
    """
    screened, it_screen = [], 0
    n_lift = min(len(fits), max(1, n_screen))
    report("refine", 0.0)
    for err, idx, arch_i, Ws_i in fits[:n_lift]:
        Ws = [W.copy() for W in Ws_i]
        Ws[0] = Ws[0] @ P.T
        if n_screen > 1:
            Ws, _, it, _ = eng.lbfgs(Ws, X, Y, max_iter=screen_iter, tol=tol,
                                     deadline=deadline)
            it_screen += it
        screened.append((eng.relative_error(Ws, X_ho, Y_ho), idx, arch_i, Ws))
        report("refine", 0.5 * len(screened) / n_lift)
        if screened[-1][0] <= SCREEN_ENOUGH:
            break  # in the truth's basin: the others need not be screened
    screened.sort(key=lambda f: f[:2])
    return screened, it_screen


def _lm_attempt(Ws, X, Y, X_ho, Y_ho, heldout, *, lm_iter, lm_max_params, deadline, eng,
                patient=True):
    """Levenberg-Marquardt where L-BFGS stalls (5.4), on the rows ``(X, Y)``.

    It probes (``LM_PROBE_ITER`` steps) and goes on to ``lm_iter`` only while it
    converges (``patient``: see :func:`_levenberg_marquardt`); skipped when the
    network ``Ws`` has more than ``lm_max_params`` weights (its dense ``J^T J``
    would cost more than the rest of the fit). Kept
    only when it lowers the loss on these rows and the held-out error (``heldout``,
    that of ``Ws``). Returns the weights, their held-out error, the steps and
    whether it was kept.
    """
    n_full = sum(W.size for W in Ws)
    if not (lm_iter and n_full <= lm_max_params and time.perf_counter() < deadline):
        return Ws, heldout, 0, False
    mats, lower, it_lm = _lm_if_lower(Ws, X, Y, max_iter=lm_iter, deadline=deadline,
                                      eng=eng, probe=LM_PROBE_ITER, patient=patient)
    if not lower:
        return Ws, heldout, it_lm, False
    ho = eng.relative_error(mats, X_ho, Y_ho)
    return (mats, ho, it_lm, True) if ho <= heldout else (Ws, heldout, it_lm, False)


def _refine(Ws, heldout, X, Y, X_lm, Y_lm, X_ho, Y_ho, *, max_iter, lm_iter,
            lm_max_params, tol, deadline, eng, patient=False):
    """Step 5.4, second part: refine a lifted, screened fit (``heldout``: its error).

    Levenberg-Marquardt first (:func:`_lm_attempt` on the rows ``X_lm``): from a
    start in the truth's basin it converges in a few steps to rounding level. Where
    it does not, L-BFGS on the rows ``(X, Y)`` in segments of ``REFINE_SEGMENT``
    iterations, each followed by another attempt, up to ``max_iter`` iterations in
    all, while a segment cuts the held-out error to ``REFINE_GAIN`` of the one before
    (a plateau is a wrong basin, or a near miss: the next round restarts in the
    refined span), or to ``PATIENT_GAIN`` in the last round (``patient``: no round
    follows). Returns the weights, their held-out error, the L-BFGS iterations and LM
    steps taken, whether an attempt was kept and the seconds spent in the attempts.
    """
    it_lbfgs = it_lm = 0
    lm_kept, lm_seconds, lm_patient = False, 0.0, True

    def attempt(Ws, heldout):
        nonlocal it_lm, lm_kept, lm_seconds, lm_patient
        t0 = time.perf_counter()
        before = heldout
        Ws, heldout, it, kept = _lm_attempt(Ws, X_lm, Y_lm, X_ho, Y_ho, heldout,
                                            lm_iter=lm_iter, lm_max_params=lm_max_params,
                                            deadline=deadline, eng=eng, patient=lm_patient)
        it_lm, lm_kept = it_lm + it, lm_kept or kept
        # an attempt that did not pay: the later ones are short (LM_FAST_GAIN)
        lm_patient = lm_patient and heldout <= REFINE_GAIN * before
        lm_seconds += time.perf_counter() - t0
        return Ws, heldout

    while True:
        Ws, heldout = attempt(Ws, heldout)
        report("refine", 0.5 + 0.5 * min(1.0, it_lbfgs / max_iter))
        if heldout <= LM_TOL or it_lbfgs >= max_iter or time.perf_counter() > deadline:
            break
        seg = min(REFINE_SEGMENT, max_iter - it_lbfgs)
        new, loss, it, _ = eng.lbfgs(Ws, X, Y, max_iter=seg, tol=tol, deadline=deadline)
        it_lbfgs += it
        new_ho = eng.relative_error(new, X_ho, Y_ho)
        gained = new_ho <= (PATIENT_GAIN if patient else REFINE_GAIN) * heldout
        if new_ho <= heldout:
            Ws, heldout = new, new_ho
        if not gained or loss <= tol:
            if loss <= tol:  # L-BFGS is done; one more attempt from there
                Ws, heldout = attempt(Ws, heldout)
            break
    report("refine", 1.0)
    return Ws, heldout, it_lbfgs, it_lm, lm_kept, lm_seconds


def _fit_round(P, data, *, widths, restarts, fit_rows, fit_iter, n_screen, screen_iter,
               refine_rows, max_iter, lm_iter, lm_max_params, polish_iter, tol, deadline,
               n_threads, eng, biases=False, last_round=True):
    """Steps 5.3-5.4 once: fits in ``span(P)`` from restarts, lift, refine, polish
    (``last_round``: no round follows, the refinement is patient)."""
    timings = {}
    X_tr, Y_tr = data["X_tr"], data["Y_tr"]
    X_ho, Y_ho = data["X_ho"], data["Y_ho"]
    n_tr = X_tr.shape[0]

    t0 = time.perf_counter()
    rows = min(fit_rows, n_tr)
    with eng.threads(1):
        fits, search = _subspace_fits(
            np.ascontiguousarray(X_tr[:rows] @ P), np.ascontiguousarray(Y_tr[:rows]),
            np.ascontiguousarray(X_ho @ P), Y_ho, widths=widths, restarts=restarts,
            fit_iter=fit_iter, tol=tol, deadline=deadline, eng=eng, biases=biases)
    timings["fit"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    n_params = sum(W.size for W in fits[0][3])
    if refine_rows is None:
        refine_rows = max(REFINE_ROWS_MIN, REFINE_ROWS_PER_PARAM * n_params)
    refine_rows = min(refine_rows, n_tr)
    screen_rows = min(n_tr, max(SCREEN_ROWS, 5 * n_params))
    # Levenberg-Marquardt's rows: a few per weight of the lifted network
    n_full = n_params + (P.shape[0] - P.shape[1]) * fits[0][3][0].shape[0]
    lm_rows = _lm_rows(n_tr, n_full)
    X_lm, Y_lm = X_tr[:lm_rows], Y_tr[:lm_rows]
    with eng.threads(n_threads):
        screened, it_screen = _screen(fits, P, X_tr[:screen_rows], Y_tr[:screen_rows],
                                      X_ho, Y_ho, n_screen=n_screen,
                                      screen_iter=screen_iter, tol=tol, deadline=deadline,
                                      eng=eng)
        heldout, chosen, arch, Ws = screened[0]
        Ws, heldout, it_refine, it_lm, lm_used, lm_seconds = _refine(
            Ws, heldout, X_tr[:refine_rows], Y_tr[:refine_rows], X_lm, Y_lm, X_ho, Y_ho,
            max_iter=max_iter, lm_iter=lm_iter, lm_max_params=lm_max_params, tol=tol,
            deadline=deadline, eng=eng, patient=last_round)
    timings["refine"] = time.perf_counter() - t0 - lm_seconds
    timings["lm"] = lm_seconds
    report("lm", 1.0)

    # polish on all training rows, where the refinement's rows left a gap
    t0 = time.perf_counter()
    it_polish = 0
    if (polish_iter and refine_rows < n_tr and heldout > LM_TOL
            and time.perf_counter() < deadline
            and heldout > POLISH_GAP * eng.relative_error(Ws, X_tr[:refine_rows],
                                                          Y_tr[:refine_rows])):
        with eng.threads(n_threads):
            Ws, _, it_polish, _ = eng.lbfgs(Ws, X_tr, Y_tr, max_iter=polish_iter, tol=tol,
                                            deadline=deadline, chunk=ROW_BLOCK)
    timings["polish"] = time.perf_counter() - t0
    report("polish", 1.0)
    screened_errors = [float(f[0]) for f in screened]
    errors = search["restart_errors"]
    return {"Ws": Ws, "arch": arch, "heldout": eng.relative_error(Ws, X_ho, Y_ho),
            "restart_errors": errors, "best_fit_error": fits[0][0],
            "subspace_fit_error": errors[chosen], "chosen_restart": chosen,
            "screened_errors": screened_errors, "n_screened": len(screened),
            "refine_rows": refine_rows, "screen_rows": screen_rows, "lm_rows": lm_rows,
            "screen_iterations": it_screen, "refine_iterations": it_refine,
            "lm_iterations": it_lm, "lm_used": lm_used, "polish_iterations": it_polish,
            "fit_rows": rows, "candidates": search["candidates"],
            "architectures": search["architectures"], "n_parameters": n_params,
            "revived_units": search["revived_units"], "timings": timings}


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class _Config:
    """The validated options of :func:`learn_deep`."""

    basis: np.ndarray | None  # the given subspace's basis; None: run filtered PCA
    n_directions: int | None
    pca_options: dict
    n_ho: int
    rounds: int
    success_tol: float
    exponents: tuple  # (ex, ey): X and Y are rescaled by 2**-ex and 2**-ey
    biases: bool  # fit biases in every layer (a constant input and constant units)
    engine: str  # "numpy" or "torch" (resolved from "auto")
    prune: bool  # remove dead and duplicated hidden units at the end (5.5)
    fit: dict  # keyword arguments of _fit_round (but deadline and eng)
    outliers: OutlierRows | None = None  # rows set aside (5.1): scored, not fitted
    input_note: str = ""  # what the outlier check said of the inputs


def _check_count(value, name):
    """An integer >= 0 (0 skips the step), or a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"`{name}` must be an integer >= 0 (0 skips the step), "
                         f"got {value!r}.")
    return int(value)


def _check_widths(widths):
    if widths is None:
        return None
    if isinstance(widths, numbers.Integral):
        widths = [widths]
    try:
        widths = tuple(check_positive_int(w, "widths[i]") for w in widths)
    except TypeError:
        raise ValueError(f"`widths` must be a sequence of positive integers, got "
                         f"{widths!r}.") from None
    if not widths:
        raise ValueError("`widths` must hold at least one hidden width, e.g. [4, 4].")
    return widths


def _check_subspace(subspace, d):
    """The basis of a given subspace: finite, shape (d, r), 1 <= r <= d, full rank."""
    if subspace is None:
        return None
    try:
        basis = (subspace.basis if isinstance(subspace, Subspace)
                 else np.asarray(subspace, dtype=float))
    except (TypeError, ValueError):
        raise ValueError(f"`subspace` must be a Subspace or an array of shape (d, r) = "
                         f"({d}, r), got {type(subspace).__name__}.") from None
    if basis.ndim != 2 or basis.shape[0] != d:
        raise ValueError(f"`subspace` must be a Subspace or an array of shape (d, r) = "
                         f"({d}, r), got shape {basis.shape}.")
    r = basis.shape[1]
    if not 1 <= r <= d:
        raise ValueError(f"`subspace` must have 1 <= r <= d = {d} columns, got r = {r}; "
                         "pass subspace=None to let filtered_pca find it.")
    if not np.all(np.isfinite(basis)):
        raise ValueError("`subspace` contains NaN or infinite values; pass a finite "
                         "basis of shape (d, r).")
    if np.linalg.matrix_rank(basis) < r:
        raise ValueError(f"`subspace`'s {r} columns are linearly dependent; pass r "
                         "independent columns.")
    return basis


def _check_exponents(X, Y):
    """The powers of two that rescale ``X`` and ``Y``; refused where the network,
    mapped back (``W_1 2**-ex``, ``W_{L+1} 2**ey``), would overflow float64."""
    ex, ey = scale_exponent(X), scale_exponent(Y)
    if ex < -MAX_SCALE_EXPONENT:
        raise ValueError(f"`X` is too small: its root mean square is about 2**{ex}, and the "
                         "learned first layer (which scales like 1 / X) would overflow "
                         "float64; multiply X by a constant (e.g. 1 / X.std()).")
    if ey > MAX_SCALE_EXPONENT:
        raise ValueError(f"`y` is too large: its root mean square is about 2**{ey}, and the "
                         "learned last layer would overflow float64; divide y by a "
                         "constant (e.g. y.std()).")
    return ex, ey


def _check_pca_options(pca_options):
    opts = dict(pca_options or {})
    known = set(inspect.signature(filtered_pca).parameters) - {"X", "y"}
    unknown = sorted(set(opts) - known)
    if unknown:
        raise ValueError(f"`pca_options` has unknown key(s) {unknown}; filtered_pca "
                         f"takes {sorted(known)}.")
    return opts


def check_deep_sample_size(n, d, heldout=0.1):
    """Refuse the sample sizes :func:`learn_deep` refuses, before any data exist.

    Shared by :func:`learn_deep` and the command line's ``generate --widths``
    (which must not write a data set that ``fit --deep`` refuses).

    Parameters
    ----------
    n, d : int
        Samples and inputs.
    heldout : float, default=0.1
        The fraction of rows held out (``learn_deep``'s ``heldout``).

    Returns
    -------
    int
        The number of held-out rows.

    Raises
    ------
    ValueError
        When fewer than ``2 d`` training rows would be left, or ``heldout`` is
        not a fraction in (0, 0.5).
    """
    if not (isinstance(heldout, numbers.Real) and 0 < heldout < 0.5):
        raise ValueError(f"`heldout` must be a fraction in (0, 0.5), got {heldout!r}.")
    n_ho = max(1, min(int(round(heldout * n)), MAX_HELDOUT_ROWS))
    if n - n_ho < 2 * d:
        raise ValueError(
            f"too few samples: n = {n} leaves {n - n_ho} training rows for d = {d}; "
            "provide n >= 20 d (filtered PCA needs far more for weak directions)."
        )
    return n_ho


def _learn_deep_iv(X, y, *, widths, subspace, n_directions, restarts, heldout, fit_rows,
                   refine_rows, fit_iter, n_screen, screen_iter, max_iter, polish_iter,
                   lm_iter, lm_max_params, rounds, tol, success_tol, time_limit,
                   n_threads, pca_options, biases=False, engine="auto", prune=True):
    """Check every argument of :func:`learn_deep` before any work."""
    engine = resolve_engine(engine)
    for name, flag in (("biases", biases), ("prune", prune)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"`{name}` must be True or False, got {flag!r}.")
    X, Y = check_samples(X, y, zero_y="there is nothing to learn.")
    # a few rows far outside a Gaussian's range are not fitted, only scored (5.1)
    X, Y, outliers, input_note = set_aside_outliers(X, Y)
    n, d = X.shape
    basis = _check_subspace(subspace, d)
    n_ho = check_deep_sample_size(n, d, heldout)
    if not (isinstance(tol, numbers.Real) and 0 < tol < 1):
        raise ValueError(f"`tol` must be a number in (0, 1), got {tol!r}.")
    if isinstance(success_tol, bool) or not (isinstance(success_tol, numbers.Real)
                                             and 0 < success_tol < math.inf):
        raise ValueError(f"`success_tol` must be a positive number (a held-out relative "
                         f"square error), got {success_tol!r}.")
    if time_limit is not None and not (isinstance(time_limit, numbers.Real)
                                       and time_limit > 0):
        raise ValueError(
            f"`time_limit` must be a positive number of seconds, got {time_limit!r}.")
    fit = dict(widths=_check_widths(widths), restarts=check_positive_int(restarts, "restarts"),
               fit_rows=check_positive_int(fit_rows, "fit_rows"),
               fit_iter=check_positive_int(fit_iter, "fit_iter"),
               n_screen=check_positive_int(n_screen, "n_screen"),
               screen_iter=check_positive_int(screen_iter, "screen_iter"),
               refine_rows=check_positive_int(refine_rows, "refine_rows", allow_none=True),
               max_iter=check_positive_int(max_iter, "max_iter"),
               lm_iter=_check_count(lm_iter, "lm_iter"),
               lm_max_params=check_positive_int(lm_max_params, "lm_max_params"),
               polish_iter=_check_count(polish_iter, "polish_iter"), tol=float(tol),
               n_threads=check_positive_int(n_threads, "n_threads", allow_none=True))
    return X, Y, _Config(basis=basis, n_directions=_check_n_directions(n_directions, d),
                         pca_options=_check_pca_options(pca_options), n_ho=n_ho,
                         rounds=check_positive_int(rounds, "rounds"),
                         success_tol=float(success_tol), exponents=_check_exponents(X, Y),
                         biases=bool(biases), engine=engine, prune=bool(prune), fit=fit,
                         outliers=outliers, input_note=input_note)


# --------------------------------------------------------------------------- steps


#: rows per block where :func:`_take_rows` copies the training rows
TAKE_BLOCK = 2048


def _take_rows(A, idx):
    """``A[idx]`` (rows ``idx`` of a 2-d array), copied block by block into one array.

    The same values as ``A[idx]``; at n = 2e5, d = 200 the one fancy-indexing copy took
    0.64 s on its first call in a process, block by block 0.07 s (docs/algorithms.md 5.7).
    """
    out = np.empty((idx.size,) + A.shape[1:], dtype=A.dtype)
    for s in range(0, idx.size, TAKE_BLOCK):
        out[s:s + TAKE_BLOCK] = A[idx[s:s + TAKE_BLOCK]]
    return out


def _split(X, Y, cfg: _Config, rng):
    """Held-out split, in units where ``X`` and ``Y`` have root mean square near 1.

    ``X`` is multiplied by ``2**-ex`` and ``Y`` by ``2**-ey`` (exact), then ``Y`` by
    ``1 / sy`` (its training root mean square). Returns the data and the scales
    ``(ex, ey, sy)`` that map the learned network back.
    """
    ex, ey = cfg.exponents
    perm = rng.permutation(X.shape[0])
    ho, tr = np.sort(perm[:cfg.n_ho]), np.sort(perm[cfg.n_ho:])
    X_tr, Y_tr, X_ho, Y_ho = _take_rows(X, tr), Y[tr], X[ho], Y[ho]
    for A, e in ((X_tr, ex), (X_ho, ex), (Y_tr, ey), (Y_ho, ey)):
        if e:
            np.ldexp(A, -e, out=A)
    sy = float(np.sqrt(np.mean(Y_tr**2))) or 1.0
    data = dict(X_tr=X_tr, Y_tr=Y_tr / sy, X_ho=X_ho, Y_ho=Y_ho / sy, Y_tr_raw=Y_tr)
    return data, (ex, ey, sy)


def _subspace_step(data, subspace, cfg: _Config, timings, deadline=math.inf):
    """Step 1 (docs/algorithms.md 5.1-5.2): the subspace, found or given.

    Returns the :class:`Subspace`, the basis ``P`` to fit in and notes for the
    message (when nothing is found, ``P`` is the identity, with a warning). Past
    ``deadline``, filtered PCA starts no further round.
    """
    t0 = time.perf_counter()
    report("subspace", 0.0)
    if cfg.basis is None:
        opts = dict(cfg.pca_options)
        opts.setdefault("n_directions", cfg.n_directions)
        if "time_limit" not in opts:
            opts["deadline"] = deadline
        # the rows were checked and cleared of outliers on the way in (5.1)
        sub = checked_filtered_pca(data["X_tr"], data["Y_tr_raw"], **opts)
    elif isinstance(subspace, Subspace):
        sub = subspace
    else:
        basis = np.linalg.qr(cfg.basis)[0]
        r = basis.shape[1]
        sub = Subspace(basis=basis, eigenvalues=np.full(r, np.nan),
                       floors=np.full(r, np.nan), filters=tuple("given" for _ in range(r)),
                       rounds=np.zeros(r, dtype=int), method="given",
                       message="subspace given by the caller.")
    timings["subspace"] = time.perf_counter() - t0
    report("subspace", 1.0)
    if sub.n_found:
        return sub, sub.basis, []
    warnings.warn(
        "filtered PCA found no direction above the noise floor; fitting from random "
        "starts in full dimension instead (no guarantee). Provide more samples.",
        AssumptionWarning, stacklevel=3)
    d = data["X_tr"].shape[1]
    return sub, np.eye(d), ["no subspace found: fitted in full dimension from random starts"]


def _rounds(P, r, data, cfg: _Config, timings, **kw):
    """Rounds of steps 2-4; the best round by held-out error, and every round's report.

    A later round restarts the subspace fits in the span of the refined first
    layer, far closer to the truth than filtered PCA's, where the held-out errors
    of the fits tell good basins from bad ones.
    """
    rounds_out, best = [], None
    for rnd in range(cfg.rounds):
        if rnd and (best["heldout"] <= cfg.fit["tol"]
                    or time.perf_counter() > kw["deadline"]):
            break
        if rnd:
            # the span of the refined first layer: at least the r directions found,
            # more when the refinement grew one that filtered PCA missed
            W1 = best["Ws"][0]
            if kw.get("biases"):
                W1 = W1[:, :-1]  # the span of the first layer, not its biases
            _, sv, Vt = np.linalg.svd(W1, full_matrices=False)
            P = Vt[:max(r, int((sv > SPAN_SV_RTOL * sv[0]).sum()))].T
            if kw.get("biases"):
                P = _with_constant(P)
        out = _fit_round(P, data, **cfg.fit, **kw, last_round=rnd == cfg.rounds - 1)
        rounds_out.append({k: v for k, v in out.items() if k not in ("Ws", "timings")})
        for key, sec in out["timings"].items():
            timings[key] = timings.get(key, 0.0) + sec
        if best is None or out["heldout"] < best["heldout"]:
            best = dict(out, round=rnd)
    return best, rounds_out


def _with_constant(P):
    """``[[P, 0], [0, 1]]``: the basis with the constant input column kept as it is."""
    d, r = P.shape
    out = np.zeros((d + 1, r + 1))
    out[:d, :r] = P
    out[d, r] = 1.0
    return out


def _add_constant_column(data):
    """The inputs with a constant last column 1 (biases, 5.6)."""
    for key in ("X_tr", "X_ho"):
        A = data[key]
        data[key] = np.concatenate([A, np.ones((A.shape[0], 1))], axis=1)


def _check_deadline(deadline, time_limit, notes):
    """A note and a ConvergenceWarning when ``time_limit`` cut the run short."""
    if time.perf_counter() > deadline:
        notes.append(f"time_limit = {time_limit}s reached (each stage stopped where it "
                     f"was: filtered PCA's rounds, the subspace fits' restarts, the "
                     f"refinement)")
        warnings.warn(f"learn_deep stopped at time_limit = {time_limit}s before the "
                      "refinement converged; increase `time_limit`.",
                      ConvergenceWarning, stacklevel=3)


def _verdict(heldout_error, success_tol, sub, rounds_out, best, notes):
    """The message of :class:`DeepFit`: the verdict first, then the steps."""
    ok = heldout_error <= success_tol
    first = rounds_out[0]
    message = (f"Success: held-out error {heldout_error:.3g} <= success_tol = "
               f"{success_tol:g}. " if ok else
               f"Not a success: held-out error {heldout_error:.3g} > success_tol = "
               f"{success_tol:g} (more samples, restarts or other widths may help). ")
    message += (f"Subspace of dimension {sub.n_found} ({sub.method}); "
                f"{len(first['restart_errors'])} subspace fits (best held-out error "
                f"{first['best_fit_error']:.3g}), {first['n_screened']} screened in full "
                f"dimension; after refinement: held-out error {first['heldout']:.3g}")
    if len(rounds_out) > 1:
        message += (f"; round 2 in the span of the refined first layer: held-out "
                    f"error {rounds_out[1]['heldout']:.3g} (subspace fits down to "
                    f"{rounds_out[1]['best_fit_error']:.3g})")
    message += f". Kept round {best['round'] + 1}: held-out error {heldout_error:.3g}."
    if notes:
        message += " Note: " + "; ".join(notes) + "."
    return ok, message


def _pruned(Ws, heldout, data, eng, prune, lm_max_params, biases=False):
    """The weights with dead and duplicated hidden units removed (5.5), when that
    leaves the held-out error within ``PRUNE_SLACK`` (and ``PRUNE_FLOOR``) of
    ``heldout``, the error of ``Ws`` there.

    Works on the fitted matrices (inputs in scaled units, with the constant column
    and constant units of 5.6 when fitting biases: there every hidden layer keeps at
    least two units, the one counted as carrying the biases and one more, so that the
    widths reported, one fewer, are never 0). Returns the weights, their held-out
    error and a report.
    """
    widths = [W.shape[0] for W in Ws[:-1]]
    report = {"pruned": False, "widths_before": widths, "widths_after": widths}
    if not prune:
        return Ws, heldout, report
    net, how = prune_network(DeepNetwork(Ws), data["X_tr"][:PRUNE_ROWS])
    if how["widths_after"] == widths or (biases and min(how["widths_after"]) < 2):
        return Ws, heldout, report
    mats = [np.ascontiguousarray(W) for W in net.weights]
    # the tolerances leave the pruned network near the fit, not at it: polish it
    n_weights = sum(W.size for W in mats)
    if n_weights <= lm_max_params:
        rows = _lm_rows(data["X_tr"].shape[0], n_weights)
        mats = _lm_if_lower(mats, data["X_tr"][:rows], data["Y_tr"][:rows],
                            max_iter=PRUNE_LM_ITER, deadline=math.inf, eng=eng)[0]
    after = eng.relative_error(mats, data["X_ho"], data["Y_ho"])
    report.update(how, heldout_before=float(heldout), heldout_after=float(after))
    if after <= PRUNE_SLACK * heldout + PRUNE_FLOOR:
        report["pruned"] = True
        return mats, after, report
    report["widths_after"] = widths
    return Ws, heldout, report


def _result(best, rounds_out, sub, data, scales, notes, cfg: _Config, timings, eng):
    """The :class:`DeepFit`: the network (pruned, 5.5) mapped back to the original units."""
    Ws, heldout_error, pruning = _pruned(best["Ws"], best["heldout"], data, eng, cfg.prune,
                                         cfg.fit["lm_max_params"], biases=cfg.biases)
    train_error = eng.relative_error(Ws, data["X_tr"], data["Y_tr"])
    heldout_error = float(heldout_error)
    ex, ey, sy = scales
    mats = [W.copy() for W in Ws]
    # positively homogeneous: F(x 2^-ex) / sy 2^-ey is the network with W_1 2^-ex
    # and W_{L+1} sy 2^ey applied to x (powers of two: exact)
    b1 = None
    if cfg.biases:
        mats[0], b1 = mats[0][:, :-1].copy(), mats[0][:, -1].copy()
    mats[0] = np.ldexp(mats[0], -ex)
    mats[-1] = np.ldexp(mats[-1] * sy, ey)
    if b1 is not None:
        b1 = b1.copy()
    if not all(np.all(np.isfinite(M)) for M in mats):
        raise ValueError("the learned network overflows float64 in the units of X and y; "
                         "multiply X (or y) by a constant closer to 1.")
    ok, message = _verdict(heldout_error, cfg.success_tol, sub, rounds_out, best, notes)
    network = DeepNetwork(mats, None if b1 is None
                          else [b1] + [np.zeros(M.shape[0]) for M in mats[1:]])
    outliers = _score_outliers(network, cfg.outliers)
    if outliers is not None:
        message += (f" On the {len(outliers['rows'])} row(s) set aside the largest relative "
                    f"error is {outliers['max_relative_error']:.3g}.")
    keys = ("fit_rows", "refine_rows", "refine_iterations", "polish_iterations",
            "lm_iterations", "lm_used", "subspace_fit_error", "chosen_restart",
            "screened_errors", "candidates", "n_parameters")
    return DeepFit(
        network=network, heldout_error=heldout_error,
        train_error=float(train_error), success=bool(ok), success_tol=cfg.success_tol,
        message=message, subspace=sub,
        widths=tuple(w - 1 for w in pruning["widths_after"]) if cfg.biases
        else tuple(pruning["widths_after"]),
        restart_errors=tuple(float(e) for e in rounds_out[0]["restart_errors"]),
        timings=timings,
        diagnostics={"n_train": data["X_tr"].shape[0], "n_heldout": cfg.n_ho,
                     "kept_round": best["round"], "rounds": rounds_out,
                     "scale_exponents": (ex, ey), "engine": eng.name,
                     "fitted_widths": tuple(best["arch"]), "pruning": pruning,
                     "outliers": outliers, **{k: best[k] for k in keys}},
    )


def _score_outliers(network: DeepNetwork, outliers: OutlierRows | None) -> dict | None:
    """The network's error on the rows set aside (5.1): they are real data, not fitted.

    Returns None when none were, else their indices, ``log10`` of the largest norm
    ratio and the largest per-row relative error ``||F(x_i) - y_i|| / ||y_i||``
    (``inf`` where ``F`` overflows at such a row).
    """
    if outliers is None:
        return None
    with np.errstate(all="ignore"):
        R = network.predict(outliers.X).reshape(outliers.Y.shape) - outliers.Y
        num = np.array([safe_norm(r) for r in R])
        den = np.array([max(safe_norm(y), 1e-300) for y in outliers.Y])
        rel = np.where(np.isfinite(num), num / den, np.inf)
    return {"rows": [int(i) for i in outliers.rows],
            "log10_norm_ratio": outliers.log10_norm_ratio,
            "max_relative_error": float(rel.max())}


# --------------------------------------------------------------------------- public


def learn_deep(
    X, y, widths: Sequence[int] | int | None = None, *, rng=None, subspace=None,
    n_directions: int | None = None, restarts: int = 24, heldout: float = 0.1,
    fit_rows: int = 5_000, refine_rows: int | None = None, fit_iter: int = 150,
    n_screen: int = 4, screen_iter: int = 150, max_iter: int = 2000,
    polish_iter: int = 40, lm_iter: int = 60, lm_max_params: int = 3000, rounds: int = 2,
    tol: float = 1e-14, success_tol: float = DEFAULT_SUCCESS_TOL,
    time_limit: float | None = None, n_threads: int | None = 1,
    pca_options: dict | None = None, progress=None, biases: bool = False,
    engine: str = "auto", prune: bool = True,
) -> DeepFit:
    """Learn ``F(x) = W_{L+1} relu(W_L ... relu(W_1 x))`` from Gaussian samples [CKM].

    Filtered PCA finds the span of ``W_1``; a network with hidden ``widths`` is fitted
    on the projected inputs from ``restarts`` random starts (kept: smallest held-out
    error), lifted to full dimension and refined by L-BFGS and Levenberg-Marquardt
    (docs/algorithms.md 5). Errors are relative square errors
    ``||y - F(x)||^2 / ||y||^2``. ``X`` and ``y`` are rescaled by powers of two
    (exact) and the network is mapped back. Runs on the base install (numpy and
    SciPy); PyTorch only with ``engine="torch"``.

    Parameters
    ----------
    X : array-like of shape (n_samples, d)
        Standard Gaussian inputs, one sample a row.
    y : array-like of shape (n_samples,) or (n_samples, m)
        Labels.
    widths : sequence of int, or int, default=None
        Hidden widths ``(w_1, ..., w_L)``. None searches (docs/algorithms.md 5.5):
        ``(2r,)`` and ``(2r, 2r)`` first (``r`` the subspace dimension, at least 2),
        then, while the best held-out error of the subspace fits is above
        ``SEARCH_GROW_ABOVE`` (1e-2), the width doubled with depth 1 to 3 (a quarter of
        the restarts each), as long as that error falls to half of the narrower
        level's (up to width ``SEARCH_MAX_WIDTH``); the smallest architecture
        within a factor 2 of the best goes on to the refinement. Every architecture
        tried and its held-out error is in ``diagnostics["rounds"][i]["architectures"]``.
    rng : None, int or numpy.random.Generator, default=None
        Seeds the held-out split and the restarts (same seed, same bits for a fixed
        number of threads).
    subspace : Subspace or array-like of shape (d, r), default=None
        A basis (finite, ``1 <= r <= d`` independent columns) to use instead of
        running :func:`filtered_pca`.
    n_directions : int, default=None
        Passed to :func:`filtered_pca` (None: search until nothing is above the floor).
    restarts : int, default=24
        Random starts of the subspace fit.
    heldout : float, default=0.1
        Fraction of rows held out (at most 50,000) for model selection and the verdict.
    fit_rows : int, default=5000
        Training rows used by the subspace fits.
    refine_rows : int, default=None
        Rows of the full-dimensional refinement; None takes ``max(20000, 20 *
        n_parameters)``, ``n_parameters`` the weights of the network fitted in the
        subspace (``diagnostics["n_parameters"]``). It is then polished on all
        training rows where the held-out error is above 10 times the error on these.
        Levenberg-Marquardt runs on ``max(3000, 3 p_full)`` rows, ``p_full`` the
        weights of the lifted network.
    fit_iter : int, default=150
        L-BFGS iterations per subspace fit.
    n_screen : int, default=4
        The best subspace fits lifted and refined for ``screen_iter`` iterations
        each; the best of them then goes on (fits of equal error can lie in
        different basins).
    screen_iter : int, default=150
        L-BFGS iterations of each screened fit (on ``max(5000, 5 n_parameters)``
        rows; one at held-out error 1e-6 or below ends the screen).
    max_iter : int, default=2000
        L-BFGS iterations of the full-dimensional refinement at most (in segments of
        100, each followed by a Levenberg-Marquardt attempt; a round stops early where
        a segment does not cut the held-out error to 0.7 of the one before, 0.95 in
        the last round, docs/algorithms.md 5.4).
    polish_iter : int, default=40
        L-BFGS iterations on all training rows at the end (0: skip), run only where
        the held-out error is above 10 times the error on the refinement's rows.
    lm_iter : int, default=60
        Levenberg-Marquardt steps per attempt at most (0: skip): in the truth's
        basin they cut the loss steadily, then quadratically, to float64 rounding,
        where L-BFGS stalls at the kinks; an attempt ends at the first 4 steps that
        cut the loss by less than 30% (a wrong basin stalls within a few steps).
    lm_max_params : int, default=3000
        Skip Levenberg-Marquardt for networks with more weights in full dimension
        (``d w_1 + ...``; its dense ``J^T J`` grows as their square).
    rounds : int, default=2
        Rounds of steps 2-4; later rounds (while the held-out error is above
        ``tol``) restart the subspace fits in the span of the refined first layer.
        The round with the smallest held-out error is kept.
    tol : float, default=1e-14
        Stop when the relative training error is below this.
    success_tol : float, default=1e-3
        The verdict: :attr:`DeepFit.success` is ``heldout_error <= success_tol``.
    time_limit : float, default=None
        Seconds after which every stage stops where it is: filtered PCA starts no
        further round (each is a pass over the data), the subspace fits no further
        restart (one at least runs), the refinement no further iteration.
    n_threads : int, default=1
        Threads of the full-dimensional refinement (torch's, or BLAS's with the numpy
        engine; None: as they are).
    pca_options : dict, default=None
        Keyword arguments for :func:`filtered_pca`.
    progress : callable, default=None
        Called as ``progress(stage, fraction)`` while the call runs: ``stage`` a
        name as in ``DeepFit.timings`` (``"subspace"``, ``"fit"``, ``"refine"``,
        ``"lm"``, ``"polish"``, again for a later round; ``"done"`` last) and
        ``fraction`` in ``[0, 1]`` (``"fit"``: restarts done of all), 1 when the
        stage is done. For progress bars; None (the default) reports nothing and
        changes nothing. An exception it raises stops the call.
    biases : bool, default=False
        Fit biases in every layer (docs/algorithms.md 5.6): the fits see a constant
        input besides the subspace, and every hidden layer one more unit that starts
        as the constant 1, whose outgoing weights are the next layer's biases; the
        network returned has ``biases[0]`` and one more unit per hidden layer than
        ``widths`` says.
    engine : {"auto", "numpy", "torch"}, default="auto"
        Who does the arithmetic of the fits (:mod:`relurecover.deep._engine`):
        ``"numpy"`` (analytic gradients, SciPy's L-BFGS-B), ``"torch"`` (autograd,
        ``torch.optim.LBFGS``; ``MissingDependencyError``, an ImportError, at once
        without PyTorch) or ``"auto"``: numpy, the faster of the two on the
        benchmark's fits. The two give fits of the same kind, not the same bits.
    prune : bool, default=True
        At the end, remove hidden units that send (almost) nothing on the training
        rows and fold units that are positive multiples of another
        (docs/algorithms.md 5.5), polish (Levenberg-Marquardt), and keep that only when the held-out error stays within ``PRUNE_SLACK`` (1.01 times,
        plus ``PRUNE_FLOOR`` = 1e-14); ``widths`` and ``network`` are then the
        pruned ones, ``diagnostics["pruning"]`` says what went and
        ``diagnostics["fitted_widths"]`` what was fitted.

    Returns
    -------
    DeepFit
        ``.network`` (a :class:`DeepNetwork` in the original coordinates), the
        verdict ``.success`` and ``.message``, ``.heldout_error``, ``.subspace``,
        ``.timings`` and ``.diagnostics``.

    Examples
    --------
    >>> from relurecover import DeepNetwork, gaussian_inputs
    >>> truth = DeepNetwork.random(12, [3, 2], rng=0)
    >>> X = gaussian_inputs(30_000, 12, rng=1)
    >>> fit = learn_deep(X, truth.predict(X), [3, 2], rng=2)
    >>> fit.subspace.n_found, fit.success, bool(fit.heldout_error < 1e-6)
    (3, True, True)
    """
    t_start = time.perf_counter()
    progress = check_progress(progress)
    X, Y, cfg = _learn_deep_iv(
        X, y, widths=widths, subspace=subspace, n_directions=n_directions,
        restarts=restarts, heldout=heldout, fit_rows=fit_rows, refine_rows=refine_rows,
        fit_iter=fit_iter, n_screen=n_screen, screen_iter=screen_iter, max_iter=max_iter,
        polish_iter=polish_iter, lm_iter=lm_iter, lm_max_params=lm_max_params,
        rounds=rounds, tol=tol, success_tol=success_tol, time_limit=time_limit,
        n_threads=n_threads, pca_options=pca_options, biases=biases, engine=engine,
        prune=prune)
    rng = check_random_state(rng)
    deadline = t_start + time_limit if time_limit is not None else math.inf
    with reporting(progress):
        data, scales = _split(X, Y, cfg, rng)
        timings = {}
        sub, P, notes = _subspace_step(data, subspace, cfg, timings, deadline)
        if cfg.input_note:
            notes.insert(0, cfg.input_note)
        r = P.shape[1]
        if cfg.biases:
            # filtered PCA is unchanged (y depends on x through W_1 x + b_1 only); the
            # fits see a constant input column besides the subspace (5.6)
            _add_constant_column(data)
            P = _with_constant(P)
        eng = make_engine(cfg.engine, int(rng.integers(2**63 - 1)))
        kw = {"biases": True} if cfg.biases else {}
        best, rounds_out = _rounds(P, r, data, cfg, timings, deadline=deadline,
                                   eng=eng, **kw)
        _check_deadline(deadline, time_limit, notes)
        fit = _result(best, rounds_out, sub, data, scales, notes, cfg, timings, eng)
        timings["total"] = time.perf_counter() - t_start
        report("done", 1.0)
    return fit
