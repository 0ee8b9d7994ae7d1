"""From an exact hidden-activation vector ``z`` to the unit's weights (docs/algorithms.md 1.4, 4).

The rounding step yields ``z = c f(X v_i)`` exactly, for an unknown scale ``c > 0``
(a vector of the column space of ``Y`` is known only up to scale). What is left
is to read ``v_i`` off ``z``:

- positively homogeneous ``f`` (ReLU, squared ReLU): ``f(a t) = a^p f(t)``, so the
  scale is free and ``X_R v = f^{-1}(z_R)`` on surely active rows gives a valid
  ``v`` (the rest of the scale goes into ``U``);
- saturating ``f`` (``min(relu(t), c0)``): the plateau ``z = c c0`` fixes ``c``, then
  only the unsaturated rows are inverted;
- any other invertible ``f`` (``log(1 + relu(t))``, ``relu(t) + 1{t > 0}``, a user's
  function): ``c`` is a single unknown; ``s = 1/c`` is found by a one-dimensional
  zero-residual least-squares problem, ``(I - P_R) f^{-1}(s z_R) = 0`` with ``P_R``
  the projection on the columns of ``X_R``, after a grid search for the basin.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.optimize

__all__ = ["exact_direction", "solve_rows", "solve_unit"]


def top_rows(z: np.ndarray, r: int) -> np.ndarray:
    """Indices of the ``r`` largest entries of ``z`` (unordered)."""
    return np.argpartition(-z, r - 1)[:r]


def solve_rows(XR: np.ndarray, tR: np.ndarray, *, max_refine: int = 8) -> np.ndarray:
    """Solve the consistent system ``XR v = tR`` to float64 precision.

    The normal equations are factored in float32 (half the cost of the
    ``O(r d^2)`` Gram product, the dominant cost of exact recovery) and the
    solution is brought to float64 precision by iterative refinement with float64
    residuals, which converges while ``cond(XR)^2 * 6e-8 < 1``; the float64 residual
    decides when to stop, and a float64 QR solve takes over if refinement stalls.
    Callers certify the result in any case.
    """
    X32 = XR.astype(np.float32)
    scale = max(float(np.abs(tR).max()), 1e-300)
    # LAPACK directly: cho_factor's checks and copies cost as much as the factorisation
    chol, info = scipy.linalg.lapack.spotrf(X32.T @ X32, lower=1, clean=0, overwrite_a=1)
    if info == 0:
        v = np.zeros(XR.shape[1])
        res = tR.copy()
        prev = np.inf
        err = np.inf
        for _ in range(max_refine):
            step, _ = scipy.linalg.lapack.spotrs(chol, (XR.T @ res).astype(np.float32),
                                                 lower=1)
            v += step
            res = tR - XR @ v
            err = float(np.abs(res).max()) / scale
            if err < 1e-14 or err > 0.5 * prev:
                break
            prev = err
        if err < 1e-12:
            return v
    return scipy.linalg.lstsq(XR, tR, lapack_driver="gelsy", check_finite=False)[0]


def exact_direction(X: np.ndarray, z: np.ndarray, n_rows: int) -> np.ndarray:
    """Solve ``X_R v = z_R`` on the ``n_rows`` rows where ``z`` is largest (1.6).

    Those rows are surely active and, being about ``1.2 d`` of them, well
    conditioned (see :func:`solve_rows`).
    """
    R = top_rows(z, n_rows)
    return solve_rows(X[R], z[R])


def _scale_by_plateau(X, z, act, n_rows):
    """Saturating ``f``: the largest value of ``z`` is ``c * sup f``; invert below it."""
    zmax = float(z.max())
    plateau = z >= zmax * (1.0 - 1e-9)
    if np.count_nonzero(plateau) < 2:
        return None, "no sample reaches the plateau of the activation, so the scale of the unit is not identifiable"
    s = act.invertible_max / zmax
    free = np.flatnonzero((z > 0) & ~plateau)
    if free.size < n_rows:
        return None, f"only {free.size} unsaturated active samples, fewer than the {n_rows} needed"
    R = free[top_rows(-np.abs(z[free] - 0.5 * zmax), n_rows)]  # well inside (0, plateau)
    return (solve_rows(X[R], act.inverse(s * z[R])), s), ""


def _scale_by_search(X, z, act, n_rows):
    """Invertible, not homogeneous ``f``: a 1-D zero-residual problem in ``s = 1/c``."""
    R = top_rows(z, n_rows)
    XR, zR = X[R], z[R]
    Qr, _ = np.linalg.qr(XR)

    def resid(log_s):
        with np.errstate(all="ignore"):
            t = np.asarray(act.inverse(np.exp(log_s) * zR), dtype=float)
            if not np.isfinite(t).all():  # outside the range of f: no solution
                return np.ones_like(zR)
            t = t / max(float(np.abs(t).max()), 1e-300)  # scale-free residual
            e = (t - Qr @ (Qr.T @ t)) / np.linalg.norm(t)
        return e if np.isfinite(e).all() else np.ones_like(zR)

    # s z ranges over the values of f on the active rows: search s over 8 decades
    base = -np.log(np.median(zR))
    grid = base + np.linspace(-9.0, 9.0, 73)
    vals = np.array([np.linalg.norm(resid(g)) for g in grid])
    g0 = grid[int(np.argmin(vals))]
    sol = scipy.optimize.least_squares(
        lambda p: resid(p[0]), x0=[g0], xtol=1e-15, ftol=1e-15, gtol=1e-15,
        method="lm",
    )
    s = float(np.exp(sol.x[0]))
    t = np.asarray(act.inverse(s * zR), dtype=float)
    return (solve_rows(XR, t), s), ""


def solve_unit(X: np.ndarray, z: np.ndarray, act, n_rows: int):
    """Weights ``v`` and scale ``s`` with ``f(X v) = s z`` (``s = 1`` when homogeneous).

    Returns ``((v, s), "")`` or ``(None, reason)`` when the scale cannot be read
    off this ``z``; the caller certifies ``||f(X v) - s z|| / ||s z||``.
    """
    if act.degree is not None:
        target = z if act.degree == 1.0 else act.inverse(np.maximum(z, 0.0))
        return (exact_direction(X, target, n_rows), 1.0), ""
    if act.inverse is None and np.isfinite(act.invertible_max):
        return None, (
            "the activation is constant on t > 0 (a step), so only the sign pattern "
            "of each unit is identifiable, not its scale nor its exact direction"
        )
    if act.inverse is None:
        return None, (
            "the activation is not invertible on t > 0, so the weights cannot be "
            "read off the hidden activations"
        )
    if np.isfinite(act.invertible_max):
        return _scale_by_plateau(X, z, act, n_rows)
    return _scale_by_search(X, z, act, n_rows)
