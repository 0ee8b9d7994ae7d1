"""Learning a deep ReLU network in the subspace, then in full dimension (docs/algorithms.md 5.3-5.4).

1. :func:`filtered_pca` gives an orthonormal basis ``P`` (``d x r``) of the span of
   ``W_1`` (5.1-5.2).
2. A small ReLU network is fitted to ``(X P, y)`` from several random restarts by
   full-batch L-BFGS; the restart with the smallest held-out square loss is kept
   (5.3). Cost: ``r``-dimensional, independent of ``d``.
3. The fit is lifted, ``W_1 <- W_1' P^T``, and the whole network is refined by
   L-BFGS on the training rows (5.4): the subspace is only approximate (angles of
   order ``sqrt(d / n)``), which alone caps the accuracy of step 2, while the lifted
   start lies in the basin of the truth.

Requires PyTorch (``pip install 'relurecover[torch]'``).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import time
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .._validation import as_2d_float, check_positive_int, check_random_state
from ..exceptions import AssumptionWarning, ConvergenceWarning
from ..networks import DeepNetwork
from ._filtered_pca import Subspace, filtered_pca

__all__ = ["DeepFit", "learn_deep"]


@dataclass(frozen=True)
class DeepFit:
    """What :func:`learn_deep` learned.

    Attributes
    ----------
    network : DeepNetwork
        The network in the original coordinates (``W_1`` of shape ``(w_1, d)``).
    heldout_error : float
        Relative square error ``||y - F(x)||^2 / ||y||^2`` on the held-out rows
        (never used for fitting; used only to choose among restarts in step 2).
    train_error : float
        The same on the training rows after refinement.
    subspace : Subspace
        The subspace found by :func:`filtered_pca` (or the one given).
    widths : tuple of int
        Hidden widths of :attr:`network`.
    restart_errors : tuple of float
        Held-out relative error of each subspace fit (step 2), before lifting.
    message : str
        The verdict in words.
    timings : dict of str to float
        Seconds per stage (``subspace``, ``fit``, ``refine``, ``polish``, ``total``).
    diagnostics : dict
        Rows used per stage, L-BFGS iterations, the chosen restart and architecture.
    """

    network: DeepNetwork
    heldout_error: float
    train_error: float
    subspace: Subspace
    widths: tuple
    restart_errors: tuple
    message: str
    timings: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"DeepFit(heldout_error={self.heldout_error:.3g}, train_error="
            f"{self.train_error:.3g}, subspace dim={self.subspace.n_found}, "
            f"network={self.network!r}, time={self.timings.get('total', 0.0):.3g}s)\n"
            f"  message: {self.message}"
        )


# --------------------------------------------------------------------------- torch


def _forward(Ws, X):
    H = X
    for W in Ws[:-1]:
        H = (H @ W.T).clamp_min(0.0)
    return H @ Ws[-1].T


def _init_weights(sizes, gen, torch):
    """He-scaled Gaussian layers (``std = sqrt(2 / fan_in)``; ``1/sqrt(fan_in)`` last)."""
    Ws = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        std = math.sqrt((1.0 if i == len(sizes) - 2 else 2.0) / a)
        W = torch.randn((b, a), generator=gen, dtype=torch.float64) * std
        Ws.append(W.requires_grad_(True))
    return Ws


def _activity(Ws, X, torch):
    """Fraction of rows on which each hidden unit is active, one array per layer."""
    out = []
    with torch.no_grad():
        H = X
        for W in Ws[:-1]:
            H = (H @ W.T).clamp_min(0.0)
            out.append((H > 0).double().mean(dim=0).numpy())
    return out


def _revive_dead_units(Ws, X, Y, *, fit_iter, tol, gen, torch, dead=0.005,
                       max_rounds=3):
    """Re-draw hidden units that never fire and fit again (docs/algorithms.md 5.3).

    A unit of layer 2 or deeper takes non-negative inputs, so without biases a fit
    can push it to be inactive everywhere: it then gets no gradient and the fit
    stalls short of the truth (a depth-3 instance whose true unit fires on 8% of
    the inputs stalled at relative error 6e-3 in every restart). Each dead unit
    gets fresh incoming weights that fire on 5-95% of the rows and small outgoing
    ones, and L-BFGS goes on; the result is kept only if the loss falls.
    Returns the number of revivals kept.
    """
    kept = 0
    for _ in range(max_rounds):
        act = _activity(Ws, X, torch)
        targets = [(li, j) for li in range(1, len(act)) for j in np.flatnonzero(act[li] < dead)]
        if not targets:
            break
        before = _relative_error(Ws, X, Y, torch)
        saved = [W.detach().clone() for W in Ws]
        with torch.no_grad():
            for li, j in targets:
                fan_in = Ws[li].shape[1]
                for _try in range(20):
                    Ws[li][j] = torch.randn(fan_in, generator=gen, dtype=torch.float64) \
                        * math.sqrt(2.0 / fan_in)
                    frac = _activity(Ws, X[:2000], torch)[li][j]
                    if 0.05 <= frac <= 0.95:
                        break
                Ws[li + 1][:, j] = 1e-2 * torch.randn(Ws[li + 1].shape[0], generator=gen,
                                                      dtype=torch.float64)
        _lbfgs(Ws, X, Y, max_iter=fit_iter, tol=tol, deadline=math.inf, torch=torch)
        if _relative_error(Ws, X, Y, torch) < before:
            kept += 1
        else:
            with torch.no_grad():
                for W, W0 in zip(Ws, saved):
                    W.copy_(W0)
            break
    return kept


def _lbfgs(Ws, X, Y, *, max_iter, tol, deadline, torch, chunk=None):
    """Full-batch L-BFGS on the mean square loss (``Y`` scaled to unit rms).

    L-BFGS stalls at the kinks of ReLU networks (its line search fails); a stall
    restarts it with a fresh history, until two restarts in a row gain nothing.
    Returns ``(loss, iterations, converged)``. With ``chunk`` the loss and gradient
    are accumulated over row blocks (memory: one block of activations at a time).
    """
    n = X.shape[0]

    def make():
        return torch.optim.LBFGS(Ws, lr=1.0, max_iter=25, history_size=50,
                                 line_search_fn="strong_wolfe", tolerance_grad=1e-14,
                                 tolerance_change=1e-18)

    opt = make()

    def closure():
        opt.zero_grad(set_to_none=False)
        if chunk is None or chunk >= n:
            loss = ((_forward(Ws, X) - Y) ** 2).sum() / n
            loss.backward()
            return loss.detach()
        total = 0.0
        for s in range(0, n, chunk):
            part = ((_forward(Ws, X[s:s + chunk]) - Y[s:s + chunk]) ** 2).sum() / n
            part.backward()
            total += float(part.detach())
        return torch.tensor(total, dtype=torch.float64)

    it = 0
    loss = float("inf")
    last_restart_loss = float("inf")
    stalls = 0
    while it < max_iter:
        state = opt.state[opt._params[0]]
        before = state.get("n_iter", 0)
        loss = float(opt.step(closure))
        done = opt.state[opt._params[0]].get("n_iter", 0) - before
        it += max(done, 1)
        if loss <= tol or time.perf_counter() > deadline:
            break
        if done < 25:  # stalled: restart with a fresh history
            stalls = stalls + 1 if loss > 0.5 * last_restart_loss else 0
            if stalls >= 2:
                break
            last_restart_loss = loss
            opt = make()
    loss = _relative_error(Ws, X, Y, torch) * float((Y**2).mean())
    return loss, it, loss <= tol


def _mlp_residual_jacobian(mats, X, Y):
    """Residual ``F(X) - Y`` (flattened, row-major over ``(n, m)``) and its Jacobian.

    For ``F(x) = W_{L+1} relu(W_L ... relu(W_1 x))`` the derivative of output ``o``
    in ``W_l[a, b]`` is ``delta_l[a] h_{l-1}[b]`` with ``h_0 = x``, ``h_l`` the
    activations and ``delta_{L+1} = e_o``, ``delta_l = (delta_{l+1} W_{l+1}) *
    1{pre_l > 0}`` (backpropagation written out per sample). Columns follow the
    layers, each flattened row-major like ``W.ravel()``.
    """
    n = X.shape[0]
    hs, masks = [X], []
    for W in mats[:-1]:
        pre = hs[-1] @ W.T
        masks.append(pre > 0)
        hs.append(np.maximum(pre, 0.0))
    out = hs[-1] @ mats[-1].T
    m = out.shape[1]
    blocks_per_output = []
    for o in range(m):
        delta = np.zeros((n, m))
        delta[:, o] = 1.0
        blocks = [None] * len(mats)
        for l in range(len(mats) - 1, -1, -1):
            blocks[l] = (delta[:, :, None] * hs[l][:, None, :]).reshape(n, -1)
            if l:
                delta = (delta @ mats[l]) * masks[l - 1]
        blocks_per_output.append(np.hstack(blocks))
    J = np.stack(blocks_per_output, axis=1).reshape(n * m, -1)
    return (out - Y).ravel(), J


def _levenberg_marquardt(mats, X, Y, *, max_iter, tol, deadline):
    """Levenberg-Marquardt on the square loss, in float64 (docs/algorithms.md 5.4).

    Near the truth the activation patterns of almost all samples are right and
    the loss is a smooth sum of squares in the weights, where Gauss-Newton steps
    converge quadratically; L-BFGS, which stalls at the kinks, cannot get there.
    Returns the new matrices, the relative loss on these rows and the iterations.
    """
    sizes = [W.shape for W in mats]
    splits = np.cumsum([a * b for a, b in sizes])[:-1]

    def unpack(theta):
        return [t.reshape(sh) for t, sh in zip(np.split(theta, splits), sizes)]

    theta = np.concatenate([W.ravel() for W in mats])
    den = max(float((Y**2).sum()), 1e-300)
    r, J = _mlp_residual_jacobian(mats, X, Y)
    loss = float(r @ r)
    lam = 1e-3
    it = 0
    for it in range(1, max_iter + 1):
        if loss / den <= tol or time.perf_counter() > deadline:
            break
        JTJ = J.T @ J
        g = J.T @ r
        dg = np.diag(JTJ).copy()
        dg[dg <= 0] = 1.0
        improved = False
        for _ in range(12):
            A = JTJ + lam * np.diag(dg)
            try:
                step = -np.linalg.solve(A, g)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            trial = unpack(theta + step)
            r_new, J_new = _mlp_residual_jacobian(trial, X, Y)
            new = float(r_new @ r_new)
            if new < loss:
                theta, r, J, loss = theta + step, r_new, J_new, new
                lam = max(lam / 5.0, 1e-12)
                improved = True
                break
            lam *= 8.0
        if not improved:
            break
    return unpack(theta), loss / den, it


@contextlib.contextmanager
def _torch_threads(torch, n):
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _relative_error(Ws, X, Y, torch, chunk=65536) -> float:
    num = den = 0.0
    with torch.no_grad():
        for s in range(0, X.shape[0], chunk):
            Yc = Y[s:s + chunk]
            num += float(((_forward(Ws, X[s:s + chunk]) - Yc) ** 2).sum())
            den += float((Yc**2).sum())
    return num / max(den, 1e-300)


def _fit_round(P, data, *, widths, restarts, fit_rows, fit_iter, n_screen, screen_iter,
               refine_rows, max_iter, lm_iter, lm_max_params, polish_iter, tol, deadline,
               n_threads, gen, torch):
    """Steps 5.3-5.4 once: fits in ``span(P)`` from restarts, lift, refine, polish."""
    timings = {}
    X_tr, Y_tr = data["X_tr"], data["Y_tr"]
    X_t, Y_t, X_ho_t, Y_ho_t = data["X_t"], data["Y_t"], data["X_ho_t"], data["Y_ho_t"]
    n_tr, r, m = X_tr.shape[0], P.shape[1], Y_tr.shape[1]

    # step 2: fit in the subspace, several restarts, held-out selection (5.3)
    t0 = time.perf_counter()
    rows = min(fit_rows, n_tr)
    Z_fit = torch.from_numpy(np.ascontiguousarray(X_tr[:rows] @ P))
    Y_fit = torch.from_numpy(np.ascontiguousarray(Y_tr[:rows]))
    Z_ho = torch.from_numpy(np.ascontiguousarray(data["X_ho"] @ P))
    w0 = max(2 * r, 2)
    candidates = [widths] if widths is not None else [(w0,), (w0, w0)]
    fits = []
    restart_errors = []
    revived = 0
    with _torch_threads(torch, 1):
        for arch in candidates:
            sizes = [r, *arch, m]
            for _ in range(restarts):
                Ws = _init_weights(sizes, gen, torch)
                _lbfgs(Ws, Z_fit, Y_fit, max_iter=fit_iter, tol=tol, deadline=math.inf,
                       torch=torch)
                revived += _revive_dead_units(Ws, Z_fit, Y_fit, fit_iter=fit_iter, tol=tol,
                                              gen=gen, torch=torch)
                err = _relative_error(Ws, Z_ho, Y_ho_t, torch)
                restart_errors.append(err)
                fits.append((err, len(fits), arch, [W.detach().clone() for W in Ws]))
    fits.sort(key=lambda f: f[:2])
    timings["fit"] = time.perf_counter() - t0

    # step 3: lift W_1 <- W_1' P^T and refine on the training rows (5.4). Fits of
    # similar subspace error can lie in different basins: the best few are refined
    # for `screen_iter` iterations and the best on the held-out rows goes on.
    t0 = time.perf_counter()
    P_t = torch.from_numpy(np.ascontiguousarray(P.T))
    n_params = sum(W.numel() for W in fits[0][3])
    if refine_rows is None:
        refine_rows = max(20_000, 20 * n_params)
    refine_rows = min(refine_rows, n_tr)
    screened = []
    it_refine = 0
    with _torch_threads(torch, n_threads):
        for err, idx, arch_i, Ws_i in fits[:max(1, n_screen)]:
            Ws = [W.clone() for W in Ws_i]
            Ws[0] = Ws[0] @ P_t
            Ws = [W.requires_grad_(True) for W in Ws]
            if n_screen > 1:
                _, it, _ = _lbfgs(Ws, X_t[:refine_rows], Y_t[:refine_rows],
                                  max_iter=screen_iter, tol=tol, deadline=deadline,
                                  torch=torch)
                it_refine += it
            screened.append((_relative_error(Ws, X_ho_t, Y_ho_t, torch), idx, arch_i, Ws))
        screened.sort(key=lambda f: f[:2])
        _, chosen, arch, Ws = screened[0]
        _, it, _ = _lbfgs(Ws, X_t[:refine_rows], Y_t[:refine_rows], max_iter=max_iter,
                          tol=tol, deadline=deadline, torch=torch)
        it_refine += it
    timings["refine"] = time.perf_counter() - t0

    # Levenberg-Marquardt where L-BFGS stalls (5.4)
    t0 = time.perf_counter()
    it_lm, lm_used = 0, False
    if lm_iter and n_params <= lm_max_params and time.perf_counter() < deadline:
        rows_lm = min(n_tr, max(5_000, 5 * n_params))
        mats0 = [W.detach().numpy().copy() for W in Ws]
        before = _relative_error(Ws, X_t[:rows_lm], Y_t[:rows_lm], torch)
        mats1, after, it_lm = _levenberg_marquardt(mats0, X_tr[:rows_lm], Y_tr[:rows_lm],
                                                   max_iter=lm_iter, tol=tol,
                                                   deadline=deadline)
        if after < before:
            lm_used = True
            Ws = [torch.from_numpy(np.ascontiguousarray(M)).requires_grad_(True)
                  for M in mats1]
    timings["lm"] = time.perf_counter() - t0

    # polish on all training rows
    t0 = time.perf_counter()
    it_polish = 0
    if polish_iter and refine_rows < n_tr and time.perf_counter() < deadline:
        with _torch_threads(torch, n_threads):
            _, it_polish, _ = _lbfgs(Ws, X_t, Y_t, max_iter=polish_iter, tol=tol,
                                     deadline=deadline, torch=torch, chunk=65536)
    timings["polish"] = time.perf_counter() - t0
    return {"Ws": Ws, "arch": arch, "heldout": _relative_error(Ws, X_ho_t, Y_ho_t, torch),
            "restart_errors": restart_errors, "best_fit_error": fits[0][0],
            "subspace_fit_error": restart_errors[chosen], "chosen_restart": chosen,
            "screened_errors": [float(f[0]) for f in screened], "n_screened": len(screened),
            "refine_rows": refine_rows, "refine_iterations": it_refine,
            "lm_iterations": it_lm, "lm_used": lm_used, "polish_iterations": it_polish,
            "fit_rows": rows, "candidates": candidates, "n_parameters": n_params,
            "revived_units": revived,
            "timings": timings}


# --------------------------------------------------------------------------- validation


def _learn_deep_iv(X, y, widths, subspace, restarts, n_screen, screen_iter, heldout, fit_rows, refine_rows,
                   fit_iter, max_iter, polish_iter, tol, time_limit):
    X = as_2d_float(X, "X")
    Y = as_2d_float(y, "y", allow_1d_column=True)
    n, d = X.shape
    if Y.shape[0] != n:
        raise ValueError(
            f"`X` and `y` must have the same number of rows (samples); got {n} and "
            f"{Y.shape[0]}."
        )
    if not np.any(Y):
        raise ValueError("`y` is identically zero: there is nothing to learn.")
    if widths is not None:
        if isinstance(widths, numbers.Integral):
            widths = [widths]
        try:
            widths = tuple(check_positive_int(w, "widths[i]") for w in widths)
        except TypeError:
            raise ValueError(f"`widths` must be a sequence of positive integers, got "
                             f"{widths!r}.") from None
        if not widths:
            raise ValueError("`widths` must hold at least one hidden width.")
    if subspace is not None:
        basis = subspace.basis if isinstance(subspace, Subspace) else np.asarray(
            subspace, dtype=float)
        if basis.ndim != 2 or basis.shape[0] != d:
            raise ValueError(
                f"`subspace` must be a Subspace or an array of shape (d, r) = ({d}, r), "
                f"got shape {basis.shape}."
            )
    restarts = check_positive_int(restarts, "restarts")
    n_screen = check_positive_int(n_screen, "n_screen")
    screen_iter = check_positive_int(screen_iter, "screen_iter")
    if not (isinstance(heldout, numbers.Real) and 0 < heldout < 0.5):
        raise ValueError(f"`heldout` must be a fraction in (0, 0.5), got {heldout!r}.")
    n_ho = max(1, min(int(round(heldout * n)), 50_000))
    if n - n_ho < 2 * d:
        raise ValueError(
            f"too few samples: n = {n} leaves {n - n_ho} training rows for d = {d}; "
            "provide n >= 20 d (filtered PCA needs far more for weak directions)."
        )
    fit_rows = check_positive_int(fit_rows, "fit_rows")
    refine_rows = check_positive_int(refine_rows, "refine_rows", allow_none=True)
    fit_iter = check_positive_int(fit_iter, "fit_iter")
    max_iter = check_positive_int(max_iter, "max_iter")
    if isinstance(polish_iter, bool) or not isinstance(polish_iter, numbers.Integral) \
            or polish_iter < 0:
        raise ValueError(f"`polish_iter` must be an integer >= 0, got {polish_iter!r}.")
    if not (isinstance(tol, numbers.Real) and 0 < tol < 1):
        raise ValueError(f"`tol` must be a number in (0, 1), got {tol!r}.")
    if time_limit is not None and not (isinstance(time_limit, numbers.Real)
                                       and time_limit > 0):
        raise ValueError(
            f"`time_limit` must be a positive number of seconds, got {time_limit!r}.")
    return (X, Y, widths, restarts, n_screen, screen_iter, n_ho, fit_rows, refine_rows, fit_iter, max_iter,
            int(polish_iter))


# --------------------------------------------------------------------------- public


def learn_deep(
    X,
    y,
    widths: Sequence[int] | int | None = None,
    *,
    rng=None,
    subspace=None,
    n_directions: int | None = None,
    restarts: int = 24,
    heldout: float = 0.1,
    fit_rows: int = 5_000,
    refine_rows: int | None = None,
    fit_iter: int = 150,
    n_screen: int = 4,
    screen_iter: int = 200,
    max_iter: int = 2000,
    polish_iter: int = 40,
    lm_iter: int = 30,
    lm_max_params: int = 3000,
    rounds: int = 2,
    tol: float = 1e-14,
    time_limit: float | None = None,
    n_threads: int | None = 1,
    pca_options: dict | None = None,
) -> DeepFit:
    """Learn ``F(x) = W_{L+1} relu(W_L ... relu(W_1 x))`` from Gaussian samples [CKM].

    Filtered PCA finds the span of ``W_1``; a network with hidden ``widths`` is fitted
    on the projected inputs from ``restarts`` random starts (kept: smallest held-out
    error), lifted to full dimension and refined by L-BFGS (docs/algorithms.md 5).

    Parameters
    ----------
    X : array-like of shape (n_samples, d)
        Standard Gaussian inputs, one sample a row.
    y : array-like of shape (n_samples,) or (n_samples, m)
        Labels.
    widths : sequence of int, or int, default=None
        Hidden widths ``(w_1, ..., w_L)``. None tries ``(2r,)`` and ``(2r, 2r)``
        (``r`` the subspace dimension, at least 2) and keeps the better on the
        held-out rows.
    rng : None, int or numpy.random.Generator, default=None
        Seeds the held-out split and the restarts (the same seed gives the same bits
        for a fixed number of threads).
    subspace : Subspace or ndarray of shape (d, r), default=None
        A basis to use instead of running :func:`filtered_pca`.
    n_directions : int, default=None
        Passed to :func:`filtered_pca` (None: search until nothing is above the floor).
    restarts : int, default=24
        Random starts of the subspace fit.
    heldout : float, default=0.1
        Fraction of rows held out (at most 50,000 rows) for model selection and
        :attr:`DeepFit.heldout_error`.
    fit_rows : int, default=5000
        Training rows used by the subspace fits.
    refine_rows : int, default=None
        Rows of the full-dimensional L-BFGS refinement; None takes
        ``max(20000, 20 * n_parameters)`` (at most all training rows). It is then
        polished on all training rows.
    fit_iter : int, default=150
        L-BFGS iterations per subspace fit (its accuracy is capped by the
        subspace's anyway).
    n_screen : int, default=4
        The best subspace fits (by held-out error) lifted and refined for
        ``screen_iter`` iterations each; the best of them after that is refined to
        the end. Fits of equal error can lie in different basins.
    screen_iter : int, default=200
        L-BFGS iterations of each screened fit.
    max_iter : int, default=2000
        L-BFGS iterations of the full-dimensional refinement.
    polish_iter : int, default=40
        L-BFGS iterations on all training rows at the end (0: skip).
    lm_iter : int, default=30
        Levenberg-Marquardt iterations after the refinement (0: skip), on
        ``max(5000, 5 * n_parameters)`` training rows: near the truth they converge
        quadratically where L-BFGS stalls at the kinks of the ReLUs.
    rounds : int, default=2
        Rounds of steps 2-4. Later rounds (run only while the held-out error is
        above ``tol``) restart the subspace fits in the span of the refined first
        layer, which is far closer to the truth than filtered PCA's: there the fits'
        held-out errors tell the right basin from a wrong one (a second-layer unit
        left unused, say). The round with the smallest held-out error is kept.
    lm_max_params : int, default=3000
        Skip Levenberg-Marquardt for networks with more parameters (its normal
        equations cost ``rows * n_parameters**2`` per iteration).
    tol : float, default=1e-14
        Stop when the relative training loss is below this.
    time_limit : float, default=None
        Seconds after which the refinement stops where it is.
    n_threads : int, default=1
        Torch threads for the full-dimensional refinement (None: torch's setting).
        The small subspace fits always run on one thread.
    pca_options : dict, default=None
        Keyword arguments for :func:`filtered_pca`.

    Returns
    -------
    DeepFit
        ``.network`` (a :class:`DeepNetwork` in the original coordinates),
        ``.heldout_error``, ``.subspace``, ``.timings`` and ``.diagnostics``.

    Examples
    --------
    >>> from relurecover import DeepNetwork, gaussian_inputs
    >>> truth = DeepNetwork.random(12, [3, 2], rng=0)
    >>> X = gaussian_inputs(30_000, 12, rng=1)
    >>> fit = learn_deep(X, truth.predict(X), [3, 2], rng=2)
    >>> fit.subspace.n_found, bool(fit.heldout_error < 1e-6)
    (3, True)
    """
    import torch

    t_start = time.perf_counter()
    if isinstance(lm_iter, bool) or not isinstance(lm_iter, numbers.Integral) or lm_iter < 0:
        raise ValueError(f"`lm_iter` must be an integer >= 0, got {lm_iter!r}.")
    lm_max_params = check_positive_int(lm_max_params, "lm_max_params")
    rounds = check_positive_int(rounds, "rounds")
    (X, Y, widths, restarts, n_screen, screen_iter, n_ho, fit_rows, refine_rows, fit_iter,
     max_iter, polish_iter) = _learn_deep_iv(X, y, widths, subspace, restarts, n_screen,
                                             screen_iter, heldout, fit_rows,
                                   refine_rows, fit_iter, max_iter, polish_iter, tol,
                                   time_limit)
    rng = check_random_state(rng)
    deadline = t_start + time_limit if time_limit is not None else math.inf
    n, d = X.shape
    m = Y.shape[1]
    perm = rng.permutation(n)
    ho, tr = np.sort(perm[:n_ho]), np.sort(perm[n_ho:])
    X_tr, Y_tr = X[tr], Y[tr]
    X_ho, Y_ho = X[ho], Y[ho]
    n_tr = X_tr.shape[0]
    timings = {}

    # step 1: the subspace (5.1-5.2)
    t0 = time.perf_counter()
    if subspace is None:
        opts = dict(pca_options or {})
        opts.setdefault("n_directions", n_directions)
        sub = filtered_pca(X_tr, Y_tr, **opts)
    elif isinstance(subspace, Subspace):
        sub = subspace
    else:
        basis = np.linalg.qr(np.asarray(subspace, dtype=float))[0]
        sub = Subspace(basis=basis, eigenvalues=np.full(basis.shape[1], np.nan),
                       floors=np.full(basis.shape[1], np.nan),
                       filters=tuple("given" for _ in range(basis.shape[1])),
                       rounds=np.zeros(basis.shape[1], dtype=int), method="given",
                       message="subspace given by the caller.")
    timings["subspace"] = time.perf_counter() - t0
    P = sub.basis
    r = P.shape[1]
    notes = []
    if r == 0:
        warnings.warn(
            "filtered PCA found no direction above the noise floor; fitting from random "
            "starts in full dimension instead (no guarantee). Provide more samples.",
            AssumptionWarning, stacklevel=2)
        notes.append("no subspace found: fitted in full dimension from random starts")
        P = np.eye(d)
        r = d

    sy = float(np.sqrt(np.mean(Y_tr**2))) or 1.0
    gen = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
    data = dict(X_tr=X_tr, Y_tr=Y_tr / sy, X_ho=X_ho, Y_ho=Y_ho / sy,
                X_t=torch.from_numpy(X_tr), Y_t=torch.from_numpy(Y_tr / sy),
                X_ho_t=torch.from_numpy(X_ho), Y_ho_t=torch.from_numpy(Y_ho / sy))
    opts = dict(widths=widths, restarts=restarts, fit_rows=fit_rows, fit_iter=fit_iter,
                n_screen=n_screen, screen_iter=screen_iter, refine_rows=refine_rows,
                max_iter=max_iter, lm_iter=lm_iter, lm_max_params=lm_max_params,
                polish_iter=polish_iter, tol=tol, deadline=deadline, n_threads=n_threads,
                gen=gen, torch=torch)
    # rounds of steps 2-4; a second round restarts the subspace fits in the span of
    # the refined first layer, far closer to the truth than filtered PCA's, where the
    # held-out errors of the fits tell good basins from bad ones
    rounds_out = []
    best = None
    for rnd in range(max(1, rounds)):
        if rnd and (best["heldout"] <= tol or time.perf_counter() > deadline):
            break
        if rnd:
            # the span of the refined first layer: at least the r directions found,
            # more when the refinement grew one that filtered PCA missed
            _, sv, Vt = np.linalg.svd(best["Ws"][0].detach().numpy(), full_matrices=False)
            P = Vt[:max(r, int((sv > 1e-2 * sv[0]).sum()))].T
        out = _fit_round(P, data, **opts)
        rounds_out.append({k: v for k, v in out.items() if k not in ("Ws", "timings")})
        for key, sec in out["timings"].items():
            timings[key] = timings.get(key, 0.0) + sec
        if best is None or out["heldout"] < best["heldout"]:
            best = dict(out, round=rnd)
    Ws = best["Ws"]
    arch = best["arch"]
    restart_errors = rounds_out[0]["restart_errors"]
    X_t, Y_t, X_ho_t, Y_ho_t = data["X_t"], data["Y_t"], data["X_ho_t"], data["Y_ho_t"]
    train_error = _relative_error(Ws, X_t, Y_t, torch)
    heldout_error = _relative_error(Ws, X_ho_t, Y_ho_t, torch)
    mats = [W.detach().numpy().copy() for W in Ws]
    mats[-1] = mats[-1] * sy
    network = DeepNetwork(mats)
    timings["total"] = time.perf_counter() - t_start

    if time.perf_counter() > deadline:
        notes.append(f"time_limit = {time_limit}s reached during refinement")
        warnings.warn(f"learn_deep stopped at time_limit = {time_limit}s before the "
                      "refinement converged; increase `time_limit`.",
                      ConvergenceWarning, stacklevel=2)
    first = rounds_out[0]
    message = (f"subspace of dimension {r} ({sub.method}); {len(restart_errors)} subspace "
               f"fits (best held-out error {first['best_fit_error']:.3g}), "
               f"{first['n_screened']} screened in full dimension; after refinement: "
               f"held-out error {first['heldout']:.3g}")
    if len(rounds_out) > 1:
        message += (f"; round 2 in the span of the refined first layer: held-out "
                    f"error {rounds_out[1]['heldout']:.3g} (subspace fits down to "
                    f"{rounds_out[1]['best_fit_error']:.3g})")
    message += f". Kept round {best['round'] + 1}: held-out error {heldout_error:.3g}."
    if notes:
        message += " Note: " + "; ".join(notes) + "."
    return DeepFit(
        network=network, heldout_error=float(heldout_error),
        train_error=float(train_error), subspace=sub, widths=tuple(arch),
        restart_errors=tuple(float(e) for e in restart_errors), message=message,
        timings=timings,
        diagnostics={"n_train": n_tr, "n_heldout": n_ho, "kept_round": best["round"],
                     "rounds": rounds_out,
                     **{k: best[k] for k in ("fit_rows", "refine_rows", "refine_iterations",
                                             "polish_iterations", "lm_iterations",
                                             "lm_used", "subspace_fit_error",
                                             "chosen_restart", "screened_errors",
                                             "candidates", "n_parameters")}},
    )
