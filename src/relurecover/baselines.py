"""The gradient-descent baseline: Adam on minibatches, in PyTorch.

Every benchmark of relurecover compares the exact algorithms with this: the
network ``nn.Linear(d, w_1, bias=False) -> ReLU -> ... -> nn.Linear(w_L, m,
bias=False)`` trained by Adam on random minibatches of the square loss, with a
cosine learning-rate schedule, the learning rate tuned on a short run from a
small grid, and several random restarts of which the best (by training loss)
is kept. It is what a practitioner would do, tuned fairly, and nothing more;
full-batch second-order methods (L-BFGS) are *not* this baseline.

Numpy goes in and out; the computation runs in float64 by default, on the
CPU. Every random choice (initial weights, minibatches) comes from one
``torch.Generator`` seeded from ``rng``, so a seed reproduces the bits (for a
fixed number of threads).

Requires PyTorch (``pip install 'relurecover[torch]'``).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ._validation import as_2d_float, check_positive_int, check_random_state
from .networks import DeepNetwork, TwoLayerNetwork

__all__ = ["BaselineResult", "fit_adam", "relative_loss"]

#: the learning rates tried when ``lr=None``.
DEFAULT_LR_GRID = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
_SCHEDULES = ("cosine", "constant")
_DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class BaselineResult:
    """What :func:`fit_adam` trained.

    Attributes
    ----------
    network : TwoLayerNetwork or DeepNetwork
        The best restart's network (a ``TwoLayerNetwork`` when one hidden layer).
    loss : float
        Its relative training loss ``||Y - F(X)||_F^2 / ||Y||_F^2`` on all rows.
    time : float
        Seconds spent training, learning-rate tuning included and calls of
        ``eval_fn`` excluded.
    steps : int
        Adam steps taken in all, tuning runs included.
    restarts : int
        Restarts run (fewer than asked when the target or the time limit stopped
        the fit early).
    best_restart : int
        Index of the restart kept.
    lr : float
        The (peak) learning rate used by the restarts.
    history : list of (float, int, float)
        ``(seconds, steps, eval_fn(network))`` at every evaluation, on the same
        clock as :attr:`time`; empty without ``eval_fn``.
    time_to_target : float or None
        Seconds until ``eval_fn`` first returned a value ``<= target`` (None if never).
    reached_target : bool
        Whether that happened.
    restart_losses : list of float
        Final relative training loss of each restart.
    tuning : dict of float to float
        Learning rate -> relative training loss after the short tuning run
        (empty when ``lr`` was given).
    tuning_time : float
        Seconds of :attr:`time` spent tuning the learning rate.
    message : str
        The verdict in words.
    """

    network: TwoLayerNetwork | DeepNetwork
    loss: float
    time: float
    steps: int
    restarts: int
    best_restart: int
    lr: float
    history: list = field(default_factory=list)
    time_to_target: float | None = None
    reached_target: bool = False
    restart_losses: list = field(default_factory=list)
    tuning: dict = field(default_factory=dict)
    tuning_time: float = 0.0
    message: str = ""

    def __repr__(self) -> str:
        target = ""
        if self.history:
            target = (
                f", target reached after {self.time_to_target:.3g}s"
                if self.reached_target else ", target not reached"
            )
        return (
            f"BaselineResult(loss={self.loss:.3g}{target}, lr={self.lr:g}, "
            f"steps={self.steps}, restarts={self.restarts}, time={self.time:.3g}s, "
            f"network={self.network!r})"
        )


def relative_loss(network, X, Y, *, chunk_size: int = 16384) -> float:
    """Relative square loss ``||Y - F(X)||_F^2 / ||Y||_F^2`` of a numpy network.

    Examples
    --------
    >>> from relurecover import TwoLayerNetwork, gaussian_inputs
    >>> net = TwoLayerNetwork.random(4, 2, 3, rng=0)
    >>> X = gaussian_inputs(50, 4, rng=1)
    >>> relative_loss(net, X, net.predict(X))
    0.0
    """
    num = den = 0.0
    for s in range(0, X.shape[0], chunk_size):
        Yc = np.asarray(Y[s:s + chunk_size], dtype=float)
        num += float(np.sum((network.predict(X[s:s + chunk_size]) - Yc) ** 2))
        den += float(np.sum(Yc**2))
    return num / max(den, 1e-300)


class _Clock:
    """Wall clock that can be paused (so evaluation does not count as training)."""

    def __init__(self):
        self._start = time.perf_counter()
        self._paused = 0.0

    def __call__(self) -> float:
        return time.perf_counter() - self._start - self._paused

    @contextlib.contextmanager
    def paused(self):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._paused += time.perf_counter() - t0


@contextlib.contextmanager
def _torch_threads(n_threads):
    import torch

    old = torch.get_num_threads()
    if n_threads is not None:
        torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _fit_adam_iv(X, Y, widths, lr, steps, batch_size, restarts, schedule, time_limit,
                 eval_fn, eval_every, target, lr_grid, tune_steps, dtype, n_threads):
    """Validate and normalise the arguments of :func:`fit_adam`."""
    X = as_2d_float(X, "X")
    Y = as_2d_float(Y, "Y", allow_1d_column=True)
    if Y.shape[0] != X.shape[0]:
        raise ValueError(
            f"`X` and `Y` must have the same number of rows (samples); got "
            f"{X.shape[0]} and {Y.shape[0]}."
        )
    if isinstance(widths, numbers.Integral) and not isinstance(widths, bool):
        widths = [widths]
    try:
        widths = list(widths)
    except TypeError:
        raise ValueError(
            f"`widths` must be a sequence of hidden-layer widths such as [k], got {widths!r}."
        ) from None
    if not widths:
        raise ValueError("`widths` must name at least one hidden layer, e.g. [k].")
    widths = [check_positive_int(w, "widths[i]") for w in widths]

    def positive(v, name):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (
            0 < v < math.inf
        ):
            raise ValueError(f"`{name}` must be a positive number, got {v!r}.")
        return float(v)

    if lr is not None:
        lr = positive(lr, "lr")
    else:
        lr_grid = tuple(positive(v, "lr_grid[i]") for v in lr_grid)
        if not lr_grid:
            raise ValueError("`lr_grid` must hold at least one learning rate.")
    steps = check_positive_int(steps, "steps")
    batch_size = min(check_positive_int(batch_size, "batch_size"), X.shape[0])
    restarts = check_positive_int(restarts, "restarts")
    if schedule not in _SCHEDULES:
        raise ValueError(f"`schedule` must be one of {_SCHEDULES}, got {schedule!r}.")
    if time_limit is not None:
        time_limit = positive(time_limit, "time_limit")
    if eval_fn is not None and not callable(eval_fn):
        raise ValueError("`eval_fn` must be callable as eval_fn(network) -> float.")
    eval_every = check_positive_int(eval_every, "eval_every")
    if target is not None:
        if eval_fn is None:
            raise ValueError("`target` needs `eval_fn`: it is a bound on eval_fn's value.")
        if isinstance(target, bool) or not isinstance(target, numbers.Real):
            raise ValueError(f"`target` must be a number, got {target!r}.")
        target = float(target)
    if tune_steps is None:
        tune_steps = max(100, min(steps // 10, 2000))
    tune_steps = check_positive_int(tune_steps, "tune_steps")
    if dtype not in _DTYPES:
        raise ValueError(f"`dtype` must be one of {_DTYPES}, got {dtype!r}.")
    if n_threads is not None:
        n_threads = check_positive_int(n_threads, "n_threads")
    return (X, Y, widths, lr, steps, batch_size, restarts, time_limit, eval_every,
            target, lr_grid, tune_steps, n_threads)


class _Trainer:
    """Shared state of one :func:`fit_adam` call (data, scales, clock, history)."""

    def __init__(self, X, Y, widths, *, batch_size, schedule, dtype, generator, clock,
                 eval_fn, eval_every, target, stop_at_target, deadline, two_layer):
        import torch

        self.torch = torch
        self.dtype = getattr(torch, dtype)
        # scale inputs and labels to unit root mean square; ReLU is positively
        # homogeneous, so the scales fold back into the first and last layers
        self.sx = float(np.sqrt(np.mean(X[: min(len(X), 100_000)] ** 2))) or 1.0
        self.sy = float(np.sqrt(np.mean(Y**2))) or 1.0
        self.X = torch.from_numpy(X)  # shares memory; batches are cast on the fly
        self.Y = torch.from_numpy(Y)
        self.X_np, self.Y_np = X, Y
        self.n = X.shape[0]
        self.sizes = [X.shape[1], *widths, Y.shape[1]]
        self.batch_size = batch_size
        self.schedule = schedule
        self.gen = generator
        self.clock = clock
        self.eval_fn = eval_fn
        self.eval_every = eval_every
        self.target = target
        self.stop_at_target = stop_at_target
        self.deadline = deadline
        self.two_layer = two_layer
        self.steps = 0
        self.history: list = []
        self.time_to_target = None

    def init_weights(self):
        """PyTorch's default ``nn.Linear`` init, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
        torch = self.torch
        Ws = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            W = (torch.rand((fan_out, fan_in), generator=self.gen, dtype=self.dtype)
                 * 2 - 1) * bound
            Ws.append(W.requires_grad_(True))
        return Ws

    @staticmethod
    def forward(Ws, Xb):
        H = Xb
        for W in Ws[:-1]:
            H = (H @ W.T).clamp_min(0.0)
        return H @ Ws[-1].T

    def network(self, Ws):
        """The numpy network of the current weights, in the original scales."""
        mats = [W.detach().to(self.torch.float64).numpy().copy() for W in Ws]
        mats[0] = mats[0] / self.sx
        mats[-1] = mats[-1] * self.sy
        if self.two_layer:
            return TwoLayerNetwork(mats[1], mats[0])
        return DeepNetwork(mats)

    def loss(self, Ws, rows=None) -> float:
        """Relative training loss on all rows (or the first ``rows``), in float64."""
        torch = self.torch
        n = self.n if rows is None else min(rows, self.n)
        num = den = 0.0
        with torch.no_grad():
            for s in range(0, n, 16384):
                e = min(s + 16384, n)
                Xb = self.X[s:e].to(self.dtype) / self.sx
                Yb = self.Y[s:e].to(self.dtype) / self.sy
                num += float(((self.forward(Ws, Xb) - Yb) ** 2).sum())
                den += float((Yb**2).sum())
        return num / max(den, 1e-300)

    def evaluate(self, Ws) -> bool:
        """Call ``eval_fn`` (clock paused); True when the fit should stop."""
        if self.eval_fn is None:
            return False
        t = self.clock()
        with self.clock.paused():
            value = float(self.eval_fn(self.network(Ws)))
        self.history.append((t, self.steps, value))
        if self.target is not None and value <= self.target:
            if self.time_to_target is None:
                self.time_to_target = t
            return self.stop_at_target
        return False

    def run(self, lr, steps, *, budget=None, evaluate=True):
        """One Adam run from a fresh init; returns ``(weights, stop_everything)``.

        With ``budget`` seconds the cosine schedule runs on whichever of steps or
        time is spent first, so a time-limited run still anneals to zero.
        """
        torch = self.torch
        Ws = self.init_weights()
        opt = torch.optim.Adam(Ws, lr=lr)
        t_start = self.clock()
        progress = 0.0
        step = 0
        while progress < 1.0:
            if self.schedule == "cosine":
                for g in opt.param_groups:
                    g["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * progress))
            idx = torch.randint(self.n, (self.batch_size,), generator=self.gen)
            Xb = self.X[idx].to(self.dtype) / self.sx
            Yb = self.Y[idx].to(self.dtype) / self.sy
            loss = ((self.forward(Ws, Xb) - Yb) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            self.steps += 1
            now = self.clock()
            if evaluate and step % self.eval_every == 0 and self.evaluate(Ws):
                return Ws, True
            if now > self.deadline:
                return Ws, True
            progress = step / steps
            if budget is not None:
                progress = max(progress, (now - t_start) / budget)
            if not math.isfinite(loss.item()):
                break  # diverged: this learning rate is too large
        if evaluate and step % self.eval_every != 0 and self.evaluate(Ws):
            return Ws, True
        return Ws, False


def fit_adam(
    X,
    Y,
    widths: Sequence[int] | int,
    *,
    lr: float | None = None,
    steps: int = 10_000,
    batch_size: int = 256,
    restarts: int = 5,
    schedule: str = "cosine",
    rng=None,
    time_limit: float | None = None,
    eval_fn: Callable | None = None,
    eval_every: int = 500,
    target: float | None = None,
    stop_at_target: bool = True,
    lr_grid: Sequence[float] = DEFAULT_LR_GRID,
    tune_steps: int | None = None,
    dtype: str = "float64",
    n_threads: int | None = 1,
) -> BaselineResult:
    """Train a bias-free ReLU network on ``(X, Y)`` with minibatch Adam.

    The model is ``nn.Linear(d, w_1, bias=False) -> ReLU -> ... -> nn.Linear(w_L,
    m, bias=False)`` with PyTorch's default initialisation; the loss is the mean
    square error on random minibatches (drawn with replacement) after ``X`` and
    ``Y`` are scaled to unit root mean square (the scales are folded back into
    the returned weights). Each of ``restarts`` random initialisations is trained
    for ``steps`` steps, and the restart with the smallest training loss is kept.

    Parameters
    ----------
    X : array-like of shape (n_samples, d)
        Inputs, one sample a row.
    Y : array-like of shape (n_samples, m) or (n_samples,)
        Labels.
    widths : sequence of int, or int
        Hidden-layer widths: ``[k]`` (or ``k``) is the two-layer network
        ``y = U relu(V x)``; more widths give a deep network.
    lr : float, default=None
        Peak learning rate. None tunes it: one short run (``tune_steps`` steps,
        same schedule) per value of ``lr_grid`` from the same initialisation,
        keeping the one with the smallest training loss.
    steps : int, default=10000
        Adam steps per restart (the length of the cosine schedule).
    batch_size : int, default=256
        Rows per minibatch.
    restarts : int, default=5
        Random initialisations; the best by training loss is returned.
    schedule : {"cosine", "constant"}, default="cosine"
        Learning-rate schedule over each restart: cosine decay from ``lr`` to 0,
        or constant.
    rng : None, int or numpy.random.Generator, default=None
        Seeds the ``torch.Generator`` behind every initialisation and minibatch.
    time_limit : float, default=None
        Wall-clock seconds for the whole fit (tuning included). Each restart gets
        an equal share of what is left after tuning, and its cosine schedule is
        stretched over whichever of its steps or its seconds runs out first.
    eval_fn : callable, default=None
        ``eval_fn(network) -> float``, e.g. the aligned error against a planted
        truth; called every ``eval_every`` steps and at the end of each restart,
        with the clock paused. Not called during learning-rate tuning.
    eval_every : int, default=500
        Steps between calls of ``eval_fn``.
    target : float, default=None
        Record the time at which ``eval_fn`` first returns a value ``<= target``.
    stop_at_target : bool, default=True
        Stop the whole fit as soon as the target is reached.
    lr_grid : sequence of float, default=(3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
        Learning rates tried when ``lr`` is None.
    tune_steps : int, default=None
        Steps of each tuning run; None means ``max(100, min(steps // 10, 2000))``.
    dtype : {"float64", "float32"}, default="float64"
        Precision of training (``X`` is never copied whole; minibatches are cast).
    n_threads : int, default=1
        ``torch.set_num_threads`` during the fit (restored after); None keeps
        PyTorch's setting. Minibatch steps are too small to gain from threads
        (on a busy 2-core machine two threads made each step 20 times slower).

    Returns
    -------
    BaselineResult
        ``.network``, ``.loss``, ``.time``, ``.history``, ``.time_to_target`` ...

    Examples
    --------
    >>> from relurecover import TwoLayerNetwork, gaussian_inputs
    >>> truth = TwoLayerNetwork.random(5, 2, 3, rng=0)
    >>> X = gaussian_inputs(500, 5, rng=1)
    >>> res = fit_adam(X, truth.predict(X), [2], lr=1e-2, steps=300, restarts=2, rng=0)
    >>> res.network
    TwoLayerNetwork(d=5, k=2, m=3, activation='relu')
    >>> res.loss < 0.5
    True
    """
    (X, Y, widths, lr, steps, batch_size, restarts, time_limit, eval_every, target,
     lr_grid, tune_steps, n_threads) = _fit_adam_iv(
        X, Y, widths, lr, steps, batch_size, restarts, schedule, time_limit, eval_fn,
        eval_every, target, lr_grid, tune_steps, dtype, n_threads)
    import torch

    seed = int(check_random_state(rng).integers(2**63 - 1))
    gen = torch.Generator().manual_seed(seed)
    clock = _Clock()
    deadline = math.inf if time_limit is None else time_limit
    trainer = _Trainer(
        X, Y, widths, batch_size=batch_size, schedule=schedule, dtype=dtype,
        generator=gen, clock=clock, eval_fn=eval_fn, eval_every=eval_every,
        target=target, stop_at_target=stop_at_target, deadline=deadline,
        two_layer=len(widths) == 1,
    )
    with _torch_threads(n_threads):
        tuning: dict = {}
        if lr is None:
            state = gen.get_state()
            for cand in lr_grid:
                gen.set_state(state)  # same init and batches for every candidate
                Ws, _ = trainer.run(cand, tune_steps, evaluate=False)
                value = trainer.loss(Ws, rows=50_000)
                tuning[cand] = value if math.isfinite(value) else math.inf
                if clock() > deadline:
                    break
            lr = min(tuning, key=tuning.get)
        tuning_time = clock()

        best_W, best_loss, best_r = None, math.inf, 0
        losses = []
        for r in range(restarts):
            budget = None
            if time_limit is not None:
                budget = max(deadline - clock(), 0.0) / (restarts - r)
            Ws, stop = trainer.run(lr, steps, budget=budget)
            value = trainer.loss(Ws)
            value = value if math.isfinite(value) else math.inf
            losses.append(value)
            if best_W is None or value < best_loss:
                best_W, best_loss, best_r = Ws, value, r
            if stop:
                break
        total = clock()

    reached = trainer.time_to_target is not None
    parts = [f"best of {len(losses)} restart(s): relative training loss {best_loss:.2e}"]
    if target is not None:
        parts.append(
            f"target {target:g} reached after {trainer.time_to_target:.3g} s"
            if reached else f"target {target:g} not reached"
        )
    if time_limit is not None and total >= time_limit:
        parts.append(f"stopped at the time limit of {time_limit:g} s")
    return BaselineResult(
        network=trainer.network(best_W), loss=best_loss, time=total,
        steps=trainer.steps, restarts=len(losses), best_restart=best_r, lr=lr,
        history=trainer.history, time_to_target=trainer.time_to_target,
        reached_target=reached, restart_losses=losses, tuning=tuning,
        tuning_time=tuning_time, message="; ".join(parts) + ".",
    )
