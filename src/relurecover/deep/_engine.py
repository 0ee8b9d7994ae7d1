"""The arithmetic of :func:`learn_deep`'s fits: one MLP loss, two engines (docs/algorithms.md 5.3-5.4).

Every fit of steps 5.3-5.4 minimises the mean square loss of a bias-free ReLU MLP
``F(x) = W_{L+1} relu(W_L ... relu(W_1 x))`` by L-BFGS. Two engines do that
arithmetic, with the same interface, on the weights as a list of float64 numpy
arrays:

- :class:`NumpyEngine` (the base install): the loss and its gradient written out
  (backpropagation, :func:`loss_and_gradient`) and SciPy's L-BFGS-B
  (``scipy.optimize.minimize``), its random draws from a ``numpy.random.Generator``;
- :class:`TorchEngine` (``pip install 'relurecover[torch]'``): autograd and
  ``torch.optim.LBFGS`` with a strong-Wolfe line search, its random draws from a
  ``torch.Generator``.

Both restart L-BFGS with a fresh history when it stalls (its line search fails at the
kinks of a ReLU network), until :data:`LBFGS_STALLS` restarts in a row gain little.
:func:`engine` picks one (:func:`resolve_engine`: ``"auto"`` is numpy, the faster
of the two on the benchmark's fits; PyTorch only when asked for); :func:`forward` is the network, for both.
"""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np

from .._linalg import blas_threads

__all__ = ["ENGINES", "NumpyEngine", "TorchEngine", "engine", "forward",
           "loss_and_gradient", "resolve_engine"]

#: the values of ``learn_deep(engine=...)``.
ENGINES = ("auto", "numpy", "torch")
#: rows per block where a pass over the training rows is chunked (memory: one
#: block of activations at a time).
ROW_BLOCK = 65536
#: L-BFGS: iterations per ``step`` call (torch) and history length; a run that stops
#: short of its iterations stalled (at a kink) and restarts the history, until
#: ``LBFGS_STALLS`` restarts in a row each leave more than ``LBFGS_STALL_GAIN`` of the
#: loss before.
LBFGS_STEP_ITERS = 25
LBFGS_HISTORY = 50
LBFGS_STALLS = 2
LBFGS_STALL_GAIN = 0.5
#: the optimisers' own stopping tests, set far below float64 resolution of the loss so
#: that only ``max_iter``, ``tol`` and the stall rule stop L-BFGS.
LBFGS_TOL_GRAD = 1e-14
LBFGS_TOL_CHANGE = 1e-18
#: the numpy engine evaluates its loss over row blocks whose widest activation array
#: holds at most this many entries (128 KiB of float64): larger temporaries are
#: allocated and freed by ``mmap`` on every call, which made a 5,000-row fit of a
#: width-8 network 2.5 times slower than the same fit in blocks of 2,048 rows.
CACHE_ENTRIES = 16384
#: ... and whose block of inputs holds at most this many (512 KiB of float64, about
#: a core's L2 cache): the gradient then reads the block the forward pass just read
#: from cache, not from memory. At d = 200 (blocks of 256 rows instead of 4,096) the
#: full-dimensional refinement ran 25-30% faster (docs/algorithms.md 5.7).
INPUT_BLOCK_ENTRIES = 65536


def forward(mats, X):
    """``F(X)`` for the weights ``mats``, one row per sample: numpy arrays or torch
    tensors alike (``clip(min=0)`` is ``relu`` for both; autograd goes through it)."""
    H = X
    for W in mats[:-1]:
        H = (H @ W.T).clip(min=0.0)
    return H @ mats[-1].T


def loss_and_gradient(mats, X, Y, *, scale):
    """``scale * ||F(X) - Y||^2`` and its gradient in every matrix (backpropagation).

    With ``h_0 = x``, ``p_l = W_l h_{l-1}``, ``h_l = relu(p_l)``: the output residual
    ``r = F(x) - y`` gives ``dW_{L+1} = 2 r h_L^T`` and, going down, ``delta = (delta_{l+1}
    W_{l+1}) * 1{p_l > 0}``, ``dW_l = delta_l h_{l-1}^T``, summed over the rows.
    Returns ``(loss, [dW_1, ..., dW_{L+1}])``.
    """
    hs = [X]
    for W in mats[:-1]:
        hs.append(np.maximum(hs[-1] @ W.T, 0.0))
    R = hs[-1] @ mats[-1].T - Y
    loss = scale * float(np.einsum("ij,ij->", R, R))
    delta = (2.0 * scale) * R
    grads = [None] * len(mats)
    for l in range(len(mats) - 1, -1, -1):
        grads[l] = delta.T @ hs[l]
        if l:
            delta = (delta @ mats[l]) * (hs[l] > 0)
    return loss, grads


def _blocks(n, chunk):
    chunk = n if chunk is None or chunk >= n else chunk
    return [(s, min(s + chunk, n)) for s in range(0, n, chunk)]


def cache_rows(mats) -> int:
    """Rows per block of the numpy engine's loss: a power of two, at least 256, with
    ``rows * widest hidden layer <= CACHE_ENTRIES`` and ``rows * inputs <=
    INPUT_BLOCK_ENTRIES``."""
    widest = max(W.shape[0] for W in mats[:-1]) if len(mats) > 1 else 1
    d_in = mats[0].shape[1]
    rows = 256
    while (2 * rows * widest <= CACHE_ENTRIES
           and 2 * rows * d_in <= INPUT_BLOCK_ENTRIES):
        rows *= 2
    return rows


class _Engine:
    """What both engines share: errors and activity over row blocks."""

    name = ""

    def relative_error(self, mats, X, Y, chunk=ROW_BLOCK) -> float:
        """``||F(X) - Y||^2 / ||Y||^2``, over row blocks."""
        num = den = 0.0
        for s, e in _blocks(X.shape[0], chunk):
            R = self.forward(mats, X[s:e]) - Y[s:e]
            num += float(np.einsum("ij,ij->", R, R))
            den += float(np.einsum("ij,ij->", Y[s:e], Y[s:e]))
        return num / max(den, 1e-300)

    @staticmethod
    def activity(mats, X):
        """Fraction of rows on which each hidden unit is active, one array per layer."""
        out, H = [], X
        for W in mats[:-1]:
            H = np.maximum(H @ W.T, 0.0)
            out.append((H > 0).mean(axis=0))
        return out

    def init_weights(self, sizes):
        """He-scaled Gaussian layers (``std = sqrt(2 / fan_in)``; ``1/sqrt(fan_in)`` last)."""
        mats = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            std = math.sqrt((1.0 if i == len(sizes) - 2 else 2.0) / a)
            mats.append(self.randn((b, a)) * std)
        return mats


class NumpyEngine(_Engine):
    """Analytic gradients and SciPy's L-BFGS-B; random draws from ``numpy``.

    Parameters
    ----------
    seed : int
        Seeds the engine's ``numpy.random.Generator`` (initial weights, revived units).
    """

    name = "numpy"

    def __init__(self, seed):
        self._rng = np.random.default_rng(seed)

    def randn(self, shape):
        """Standard Gaussian draws of ``shape``."""
        return self._rng.standard_normal(shape)

    forward = staticmethod(forward)  # numpy in, numpy out

    threads = staticmethod(blas_threads)  # BLAS on n threads (None: as they are)

    def lbfgs(self, mats, X, Y, *, max_iter, tol, deadline, chunk=None):
        """L-BFGS-B on the mean square loss, restarted when it stalls.

        Returns ``(mats, loss, iterations, converged)``; ``loss`` is the mean square
        error on ``(X, Y)`` (``Y`` is in units of unit root mean square, so it is the
        relative error up to that scale).
        """
        from scipy.optimize import minimize

        n = X.shape[0]
        shapes = [W.shape for W in mats]
        splits = np.cumsum([W.size for W in mats])[:-1]
        rows = cache_rows(mats)
        # one block when the rows are few; else blocks of cache size (or ``chunk``)
        blocks = _blocks(n, None if n <= rows * 5 // 4 else min(rows, chunk or rows))

        def unpack(theta):
            return [t.reshape(sh) for t, sh in zip(np.split(theta, splits), shapes)]

        def fun(theta):
            Ws = unpack(theta)
            total, grad = 0.0, None
            for s, e in blocks:
                loss, gs = loss_and_gradient(Ws, X[s:e], Y[s:e], scale=1.0 / n)
                flat = np.concatenate([g.ravel() for g in gs])
                total, grad = total + loss, flat if grad is None else grad + flat
            return total, grad

        def callback(intermediate_result):
            if intermediate_result.fun <= tol or time.perf_counter() > deadline:
                raise StopIteration

        theta = np.concatenate([W.ravel() for W in mats])
        it, loss = 0, math.inf
        last_restart_loss, stalls = math.inf, 0
        while it < max_iter:
            res = minimize(fun, theta, jac=True, method="L-BFGS-B", callback=callback,
                           options={"maxiter": max_iter - it, "maxcor": LBFGS_HISTORY,
                                    "ftol": 0.0, "gtol": 0.0, "maxfun": 4 * max_iter})
            done = int(res.nit)
            if np.isfinite(res.fun) and res.fun <= loss:
                theta, loss = res.x, float(res.fun)
            it += max(done, 1)
            if loss <= tol or time.perf_counter() > deadline or it >= max_iter:
                break
            # stopped short of its iterations: the line search failed (a kink)
            stalls = stalls + 1 if loss > LBFGS_STALL_GAIN * last_restart_loss else 0
            if stalls >= LBFGS_STALLS:
                break
            last_restart_loss = loss
        mats = [W.copy() for W in unpack(theta)]
        loss = self.relative_error(mats, X, Y) * float(np.mean(Y**2))
        return mats, loss, it, loss <= tol


class TorchEngine(_Engine):
    """Autograd and ``torch.optim.LBFGS`` (strong Wolfe); random draws from ``torch``.

    Parameters
    ----------
    torch : module
        The imported ``torch``.
    seed : int
        Seeds the engine's ``torch.Generator``.
    """

    name = "torch"

    def __init__(self, torch, seed):
        self.torch = torch
        self._gen = torch.Generator().manual_seed(seed)

    def randn(self, shape):
        """Standard Gaussian draws of ``shape`` (as numpy)."""
        return self.torch.randn(shape, generator=self._gen, dtype=self.torch.float64).numpy()

    def _t(self, A):
        return self.torch.from_numpy(np.ascontiguousarray(A))

    def forward(self, mats, X):
        """``F(X)``, computed by torch, returned as numpy."""
        with self.torch.no_grad():
            return forward([self._t(W) for W in mats], self._t(X)).numpy()

    @contextlib.contextmanager
    def threads(self, n):
        """A context in which torch runs on ``n`` threads (None: unchanged)."""
        old = self.torch.get_num_threads()
        if n is not None:
            self.torch.set_num_threads(n)
        try:
            yield
        finally:
            self.torch.set_num_threads(old)

    def lbfgs(self, mats, X, Y, *, max_iter, tol, deadline, chunk=None):
        """Full-batch ``torch.optim.LBFGS``, restarted when it stalls.

        Returns ``(mats, loss, iterations, converged)`` as :meth:`NumpyEngine.lbfgs`.
        With ``chunk`` the loss and gradient are accumulated over row blocks.
        """
        torch = self.torch
        Ws = [torch.from_numpy(W.copy()).requires_grad_(True) for W in mats]
        Xt, Yt = self._t(X), self._t(Y)
        n = X.shape[0]

        def make(step):
            return torch.optim.LBFGS(Ws, lr=1.0, max_iter=step,
                                     history_size=LBFGS_HISTORY,
                                     line_search_fn="strong_wolfe",
                                     tolerance_grad=LBFGS_TOL_GRAD,
                                     tolerance_change=LBFGS_TOL_CHANGE)

        step = min(LBFGS_STEP_ITERS, max_iter)
        opt = make(step)

        def closure():
            opt.zero_grad(set_to_none=False)
            total = 0.0
            for s, e in _blocks(n, chunk):
                part = ((forward(Ws, Xt[s:e]) - Yt[s:e]) ** 2).sum() / n
                part.backward()
                total += float(part.detach())
            return torch.tensor(total, dtype=torch.float64)

        it = 0
        last_restart_loss = float("inf")
        stalls = 0
        while it < max_iter:
            before = opt.state[opt._params[0]].get("n_iter", 0)
            loss = float(opt.step(closure))
            done = opt.state[opt._params[0]].get("n_iter", 0) - before
            it += max(done, 1)
            if loss <= tol or time.perf_counter() > deadline:
                break
            if it >= max_iter:
                break
            if done < step:  # stalled: restart with a fresh history
                stalls = stalls + 1 if loss > LBFGS_STALL_GAIN * last_restart_loss else 0
                if stalls >= LBFGS_STALLS:
                    break
                last_restart_loss = loss
                opt = make(min(LBFGS_STEP_ITERS, max_iter - it))
            elif max_iter - it < step:  # the last step: only the iterations left
                step = max_iter - it
                opt.param_groups[0]["max_iter"] = step
        mats = [W.detach().numpy().copy() for W in Ws]
        loss = self.relative_error(mats, X, Y) * float(np.mean(Y**2))
        return mats, loss, it, loss <= tol


def resolve_engine(name):
    """The engine ``name`` names, checked, with ``"auto"`` resolved.

    Parameters
    ----------
    name : {"auto", "numpy", "torch"}
        ``"auto"`` is numpy: on the benchmark's fits it was faster than PyTorch at
        every size measured (``bench/deep.py --part engines``), and needs no extra.

    Returns
    -------
    str
        ``"numpy"`` or ``"torch"``.

    Raises
    ------
    ValueError
        Any other name.
    MissingDependencyError
        ``"torch"`` without PyTorch installed.
    """
    from ._learn import import_torch

    if not isinstance(name, str) or name not in ENGINES:
        raise ValueError(f"`engine` must be one of {', '.join(map(repr, ENGINES))}, "
                         f"got {name!r}.")
    if name in ("auto", "numpy"):
        return "numpy"
    import_torch()  # MissingDependencyError at once without PyTorch
    return "torch"


def engine(name, seed):
    """The engine ``name`` (one of :data:`ENGINES`, see :func:`resolve_engine`)
    seeded with ``seed``.

    Parameters
    ----------
    name : {"auto", "numpy", "torch"}
        The engine.
    seed : int
        Seeds the engine's random draws.

    Returns
    -------
    NumpyEngine or TorchEngine
    """
    from ._learn import import_torch

    if resolve_engine(name) == "numpy":
        return NumpyEngine(seed)
    return TorchEngine(import_torch(), seed)
