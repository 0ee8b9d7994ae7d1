"""The gradient-descent baseline: Adam on minibatches, in PyTorch.

Every benchmark of relurecover compares the exact algorithms with this: the
network ``nn.Linear(d, w_1, bias=False) -> ReLU -> ... -> nn.Linear(w_L, m,
bias=False)`` trained by Adam on random minibatches of the square loss, with a
cosine learning-rate schedule, the learning rate tuned on a short run from a
small grid, and several random restarts of which the best (by training loss)
is kept. It is what a practitioner would do, tuned fairly, and nothing more;
full-batch second-order methods (L-BFGS) are *not* this baseline.

It is not an algorithm of the papers behind relurecover (docs/algorithms.md
describes those): it is the comparison point of the benchmarks (``bench/``; see
docs/algorithms.md, section 5.4, on the deep networks [CKM] prove hard for
gradient methods). The weights are compared with the truth after the alignment of
docs/algorithms.md, section 0.2 (:func:`relurecover.metrics.compare`).

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
from .deep._engine import forward as _mlp_forward
from .networks import DeepNetwork, TwoLayerNetwork

__all__ = ["BaselineResult", "fit_adam", "relative_loss"]

#: the learning rates tried when ``lr=None``.
DEFAULT_LR_GRID = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
_SCHEDULES = ("cosine", "constant")
_DTYPES = ("float64", "float32")
#: rows per chunk of a full pass over the data (``X`` may be a memory map).
_CHUNK_ROWS = 16384
#: floor of ``||Y||_F^2`` in the relative loss (all-zero labels give the raw loss).
_TINY = 1e-300
#: rows of ``X`` from which its root-mean-square scale is estimated.
_SCALE_ROWS = 100_000
#: rows on which each learning rate of the grid is scored after its tuning run.
_TUNE_ROWS = 50_000
#: default tuning run, ``max(_TUNE_STEPS_MIN, min(steps // _TUNE_DIVISOR,
#: _TUNE_STEPS_MAX))`` steps: a tenth of a restart, within 100 .. 2000 steps.
_TUNE_STEPS_MIN = 100
_TUNE_STEPS_MAX = 2000
_TUNE_DIVISOR = 10
#: seeds of the ``torch.Generator`` are drawn from ``[0, _SEED_BOUND)`` (int64).
_SEED_BOUND = 2**63 - 1


@dataclass(frozen=True, kw_only=True)
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


def relative_loss(network, X, Y, *, chunk_size: int = _CHUNK_ROWS) -> float:
    """Relative square loss ``||Y - F(X)||_F^2 / ||Y||_F^2`` of a numpy network.

    Parameters
    ----------
    network : TwoLayerNetwork or DeepNetwork
        Anything with ``predict(X)`` returning an array of the shape of ``Y``.
    X : array-like of shape (n_samples, d)
        Inputs.
    Y : array-like of shape (n_samples, m)
        Labels.
    chunk_size : int, default=16384
        Rows per chunk (``X`` may be a memory map).

    Returns
    -------
    float
        The relative loss (0 for a perfect fit; ``||Y||`` is floored at ``1e-300``).

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
    return num / max(den, _TINY)


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



@dataclass(frozen=True, kw_only=True)
class _FitArgs:
    """The arguments of :func:`fit_adam`, validated and normalised.

    Attributes
    ----------
    X, Y : ndarray of shape (n_samples, d) and (n_samples, m)
        Inputs and labels (``Y`` a column when given 1-D).
    widths : tuple of int
        Hidden-layer widths, at least one.
    lr : float or None
        Peak learning rate; None tunes it on :attr:`lr_grid`.
    lr_grid : tuple of float
        Learning rates to tune on (empty when ``lr`` is given).
    steps, tune_steps : int
        Adam steps per restart and per tuning run.
    batch_size : int
        Rows per minibatch (at most ``n_samples``).
    restarts : int
        Random initialisations.
    schedule, dtype : str
        One of ``_SCHEDULES`` and of ``_DTYPES``.
    time_limit : float or None
        Seconds for the whole fit.
    eval_fn : callable or None
        ``eval_fn(network) -> float``.
    eval_every : int
        Steps between calls of ``eval_fn``.
    target : float or None
        Bound on ``eval_fn``'s value (only with ``eval_fn``).
    stop_at_target : bool
        Stop the fit when the target is reached.
    n_threads : int or None
        PyTorch threads during the fit (None keeps the setting).
    """

    X: np.ndarray
    Y: np.ndarray
    widths: tuple
    lr: float | None
    lr_grid: tuple
    steps: int
    tune_steps: int
    batch_size: int
    restarts: int
    schedule: str
    dtype: str
    time_limit: float | None
    eval_fn: Callable | None
    eval_every: int
    target: float | None
    stop_at_target: bool
    n_threads: int | None

    @property
    def deadline(self) -> float:
        """The time limit, infinite when there is none."""
        return math.inf if self.time_limit is None else self.time_limit


def _positive(v, name) -> float:
    """``v`` as a float when it is a finite positive real number; ValueError otherwise."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (0 < v < math.inf):
        raise ValueError(f"`{name}` must be a positive number, got {v!r}.")
    return float(v)


def _check_widths(widths) -> tuple:
    """Hidden-layer widths as a non-empty tuple of positive ints (an int is ``[k]``)."""
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
    return tuple(check_positive_int(w, "widths[i]") for w in widths)


def _fit_adam_iv(*, X, Y, widths, lr, steps, batch_size, restarts, schedule, time_limit,
                 eval_fn, eval_every, target, stop_at_target, lr_grid, tune_steps, dtype,
                 n_threads) -> _FitArgs:
    """Validate and normalise the arguments of :func:`fit_adam` (same names and meaning).

    Returns
    -------
    _FitArgs
        The arguments, checked; raises ValueError naming the first bad one.
    """
    X = as_2d_float(X, "X")
    Y = as_2d_float(Y, "Y", allow_1d_column=True)
    if Y.shape[0] != X.shape[0]:
        raise ValueError(
            f"`X` and `Y` must have the same number of rows (samples); got "
            f"{X.shape[0]} and {Y.shape[0]}."
        )
    widths = _check_widths(widths)
    if lr is not None:
        lr, lr_grid = _positive(lr, "lr"), ()
    else:
        lr_grid = tuple(_positive(v, "lr_grid[i]") for v in lr_grid)
        if not lr_grid:
            raise ValueError("`lr_grid` must hold at least one learning rate.")
    steps = check_positive_int(steps, "steps")
    batch_size = min(check_positive_int(batch_size, "batch_size"), X.shape[0])
    restarts = check_positive_int(restarts, "restarts")
    if schedule not in _SCHEDULES:
        raise ValueError(f"`schedule` must be one of {_SCHEDULES}, got {schedule!r}.")
    if time_limit is not None:
        time_limit = _positive(time_limit, "time_limit")
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
        tune_steps = max(_TUNE_STEPS_MIN, min(steps // _TUNE_DIVISOR, _TUNE_STEPS_MAX))
    tune_steps = check_positive_int(tune_steps, "tune_steps")
    if dtype not in _DTYPES:
        raise ValueError(f"`dtype` must be one of {_DTYPES}, got {dtype!r}.")
    if n_threads is not None:
        n_threads = check_positive_int(n_threads, "n_threads")
    return _FitArgs(
        X=X, Y=Y, widths=widths, lr=lr, lr_grid=lr_grid, steps=steps,
        tune_steps=tune_steps, batch_size=batch_size, restarts=restarts,
        schedule=schedule, dtype=dtype, time_limit=time_limit, eval_fn=eval_fn,
        eval_every=eval_every, target=target, stop_at_target=stop_at_target,
        n_threads=n_threads,
    )


class _Trainer:
    """Shared state of one :func:`fit_adam` call (data, scales, clock, history).

    Parameters
    ----------
    args : _FitArgs
        The validated arguments.
    generator : torch.Generator
        Source of every initialisation and minibatch.
    clock : _Clock
        The fit's clock (paused during ``eval_fn``).
    """

    def __init__(self, args: _FitArgs, *, generator, clock):
        import torch

        X, Y = args.X, args.Y
        self.torch = torch
        self.dtype = getattr(torch, args.dtype)
        # scale inputs and labels to unit root mean square; ReLU is positively
        # homogeneous, so the scales fold back into the first and last layers
        self.sx = float(np.sqrt(np.mean(X[: min(len(X), _SCALE_ROWS)] ** 2))) or 1.0
        self.sy = float(np.sqrt(np.mean(Y**2))) or 1.0
        self.X = torch.from_numpy(X)  # shares memory; batches are cast on the fly
        self.Y = torch.from_numpy(Y)
        self.n = X.shape[0]
        self.sizes = [X.shape[1], *args.widths, Y.shape[1]]
        self.batch_size = args.batch_size
        self.schedule = args.schedule
        self.gen = generator
        self.clock = clock
        self.eval_fn = args.eval_fn
        self.eval_every = args.eval_every
        self.target = args.target
        self.stop_at_target = args.stop_at_target
        self.deadline = args.deadline
        self.two_layer = len(args.widths) == 1
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

    #: the bias-free ReLU network of weights ``Ws`` on the rows of ``Xb`` (the
    #: package's one MLP forward, for numpy and torch alike)
    forward = staticmethod(_mlp_forward)

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
            for s in range(0, n, _CHUNK_ROWS):
                e = min(s + _CHUNK_ROWS, n)
                Xb = self.X[s:e].to(self.dtype) / self.sx
                Yb = self.Y[s:e].to(self.dtype) / self.sy
                num += float(((self.forward(Ws, Xb) - Yb) ** 2).sum())
                den += float((Yb**2).sum())
        return num / max(den, _TINY)

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


@dataclass(frozen=True, kw_only=True)
class _Restarts:
    """What the restarts of :func:`_run_restarts` left.

    Attributes
    ----------
    weights : list of torch.Tensor
        The best restart's weights (in the scaled units of :class:`_Trainer`).
    loss : float
        Its relative training loss (inf when not finite).
    best : int
        Its index.
    losses : list of float
        The final relative training loss of each restart run.
    """

    weights: list
    loss: float
    best: int
    losses: list


def _tune_lr(trainer: _Trainer, args: _FitArgs) -> dict:
    """Learning-rate tuning: a short run per value of ``args.lr_grid``.

    Every candidate starts from the same state of the generator (the same
    initialisation and minibatches) and runs ``args.tune_steps`` steps without
    ``eval_fn``; it is scored by the relative training loss on the first
    ``_TUNE_ROWS`` rows (inf when not finite). Stops early at the deadline.

    Parameters
    ----------
    trainer : _Trainer
        The fit's state.
    args : _FitArgs
        The validated arguments.

    Returns
    -------
    dict of float to float
        Learning rate -> loss, for the candidates run (at least one).
    """
    gen, tuning = trainer.gen, {}
    state = gen.get_state()
    for cand in args.lr_grid:
        gen.set_state(state)  # same init and batches for every candidate
        Ws, _ = trainer.run(cand, args.tune_steps, evaluate=False)
        value = trainer.loss(Ws, rows=_TUNE_ROWS)
        tuning[cand] = value if math.isfinite(value) else math.inf
        if trainer.clock() > trainer.deadline:
            break
    return tuning


def _run_restarts(trainer: _Trainer, args: _FitArgs, lr: float) -> _Restarts:
    """The restarts: ``args.restarts`` Adam runs from fresh initialisations.

    With a time limit each restart's budget is an equal share of the time left.
    Stops after a restart that hit the deadline or the target.

    Parameters
    ----------
    trainer : _Trainer
        The fit's state.
    args : _FitArgs
        The validated arguments.
    lr : float
        The peak learning rate.

    Returns
    -------
    _Restarts
        The best restart (by relative training loss) and every restart's loss.
    """
    best_W, best_loss, best_r = None, math.inf, 0
    losses = []
    for r in range(args.restarts):
        budget = None
        if args.time_limit is not None:
            budget = max(trainer.deadline - trainer.clock(), 0.0) / (args.restarts - r)
        Ws, stop = trainer.run(lr, args.steps, budget=budget)
        value = trainer.loss(Ws)
        value = value if math.isfinite(value) else math.inf
        losses.append(value)
        if best_W is None or value < best_loss:
            best_W, best_loss, best_r = Ws, value, r
        if stop:
            break
    return _Restarts(weights=best_W, loss=best_loss, best=best_r, losses=losses)


def _assemble_result(trainer: _Trainer, args: _FitArgs, *, lr: float, tuning: dict,
                     tuning_time: float, restarts: _Restarts, total: float
                     ) -> BaselineResult:
    """Result assembly: the :class:`BaselineResult` of a finished fit, with its message.

    Parameters
    ----------
    trainer : _Trainer
        The fit's state (steps, history, time to target).
    args : _FitArgs
        The validated arguments.
    lr : float
        The learning rate of the restarts.
    tuning : dict of float to float
        Learning-rate tuning losses (empty when ``lr`` was given).
    tuning_time : float
        Seconds spent tuning.
    restarts : _Restarts
        What the restarts left.
    total : float
        Seconds of the whole fit (tuning included).

    Returns
    -------
    BaselineResult
        The best restart's network in the original scales, and the record.
    """
    reached = trainer.time_to_target is not None
    parts = [f"best of {len(restarts.losses)} restart(s): relative training loss "
             f"{restarts.loss:.2e}"]
    if args.target is not None:
        parts.append(
            f"target {args.target:g} reached after {trainer.time_to_target:.3g} s"
            if reached else f"target {args.target:g} not reached"
        )
    if args.time_limit is not None and total >= args.time_limit:
        parts.append(f"stopped at the time limit of {args.time_limit:g} s")
    return BaselineResult(
        network=trainer.network(restarts.weights), loss=restarts.loss, time=total,
        steps=trainer.steps, restarts=len(restarts.losses), best_restart=restarts.best,
        lr=lr, history=trainer.history, time_to_target=trainer.time_to_target,
        reached_target=reached, restart_losses=restarts.losses, tuning=tuning,
        tuning_time=tuning_time, message="; ".join(parts) + ".",
    )


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
    Not an algorithm of docs/algorithms.md: the benchmarks' baseline, Adam on the
    square loss in PyTorch (steps: :func:`_tune_lr`, :func:`_run_restarts`,
    :func:`_assemble_result`).

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
    >>> import pytest; _ = pytest.importorskip("torch")  # skipped on a base install
    >>> from relurecover import TwoLayerNetwork, gaussian_inputs
    >>> truth = TwoLayerNetwork.random(5, 2, 3, rng=0)
    >>> X = gaussian_inputs(500, 5, rng=1)
    >>> res = fit_adam(X, truth.predict(X), [2], lr=1e-2, steps=300, restarts=2, rng=0)
    >>> res.network
    TwoLayerNetwork(d=5, k=2, m=3, activation='relu')
    >>> res.loss < 0.5
    True
    """
    args = _fit_adam_iv(
        X=X, Y=Y, widths=widths, lr=lr, steps=steps, batch_size=batch_size,
        restarts=restarts, schedule=schedule, time_limit=time_limit, eval_fn=eval_fn,
        eval_every=eval_every, target=target, stop_at_target=stop_at_target,
        lr_grid=lr_grid, tune_steps=tune_steps, dtype=dtype, n_threads=n_threads,
    )
    import torch

    seed = int(check_random_state(rng).integers(_SEED_BOUND))
    gen = torch.Generator().manual_seed(seed)
    clock = _Clock()
    trainer = _Trainer(args, generator=gen, clock=clock)
    with _torch_threads(args.n_threads):
        tuning = {} if args.lr is not None else _tune_lr(trainer, args)
        lr = args.lr if args.lr is not None else min(tuning, key=tuning.get)
        tuning_time = clock()
        outcome = _run_restarts(trainer, args, lr)
        total = clock()
    return _assemble_result(trainer, args, lr=lr, tuning=tuning, tuning_time=tuning_time,
                            restarts=outcome, total=total)
