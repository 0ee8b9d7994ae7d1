"""Rectified activations and their Hermite coefficients (docs/algorithms.md sections 1 and 4).

A *rectified* activation has ``f(t) = 0`` for ``t <= 0`` and ``f(t) > 0`` for
``t > 0`` [BJW]. Exact recovery needs only that zero pattern; the moment method
needs the Hermite coefficients ``c_j(s) = E[f(s g) He_j(g)]`` of ``t -> f(s t)``
with ``g ~ N(0, 1)`` and ``He_j`` the probabilists' Hermite polynomials. For the
ReLU they are ``c_0 = s / sqrt(2 pi)``, ``c_1 = s / 2``, ``c_2 = s / sqrt(2 pi)``,
``c_3 = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Callable

import numpy as np

__all__ = [
    "Activation",
    "canonical_units",
    "get_activation",
    "hermite_coefficients",
    "ACTIVATIONS",
]

_QUAD_POINTS = 200
#: upper end of the quadrature in ``g``: ``P(g > 12) < 2e-33``.
_G_MAX = 12.0


@dataclass(frozen=True)
class Activation:
    """A rectified activation ``f`` with what recovery needs to know about it.

    Attributes
    ----------
    name : str
        Registry name, or ``"custom"`` for a user's callable.
    func : callable
        Vectorised ``f``; maps an ndarray to an ndarray of the same shape.
    degree : float or None
        ``p`` when ``f`` is positively homogeneous, ``f(a t) = a**p f(t)`` for
        ``a > 0`` (ReLU: 1, squared ReLU: 2); then the scale of a unit is free and
        pushed into the output layer. None otherwise.
    inverse : callable or None
        ``f^{-1}`` on the values where it is defined and one-to-one.
    invertible_max : float
        ``inverse`` applies to values ``0 < z < invertible_max`` (``inf`` when
        ``f`` is strictly increasing on ``t > 0``; ``c`` for the clipped ReLU).
    """

    name: str
    func: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    degree: float | None = None
    inverse: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    invertible_max: float = np.inf

    def __call__(self, t):
        return self.func(t)

    @property
    def is_relu(self) -> bool:
        """Whether this is the registry's ReLU (paths that need ReLU check this)."""
        return self.name == "relu"

    @cached_property
    def bias_identifiable(self) -> bool:
        """Whether a hidden bias is identifiable from the activations (docs/algorithms.md 6).

        On its active rows a unit gives ``z = s f(v . x + b)`` for an unknown scale
        ``s``. Homogeneous ``f`` make ``s`` free, a plateau fixes it, and a
        non-affine inverse fixes it too (``f^{-1}(s z)`` is affine in ``x`` for one
        ``s`` only). When ``f^{-1}`` is affine on ``t > 0`` and ``f`` is not
        homogeneous (``relu(t) + 1{t > 0}``), ``s`` trades against ``b``: every
        ``s`` fits the active rows, and only the boundary of the active set, known
        to an interval, would tell. Such activations are recovered with ``b = 0``.
        """
        if self.degree is not None or np.isfinite(self.invertible_max):
            return True
        if self.inverse is None:
            return False
        with np.errstate(all="ignore"):
            z = np.array([0.5, 1.0, 2.0, 4.0])
            t = np.asarray(self.inverse(z), dtype=float)
        if not np.isfinite(t).all():
            return True
        slope = (t[1] - t[0]) / 0.5
        pred = t[0] + slope * (z - 0.5)
        return not np.allclose(pred, t, rtol=1e-9, atol=1e-12 * max(abs(t).max(), 1.0))

    @cached_property
    def reflection(self) -> tuple[float, float] | None:
        """``(t_s, c0)`` when ``f(t) = c0 - f(t_s - t)`` for all ``t``, else None.

        A saturating ``f`` that is point-symmetric about ``(t_s / 2, c0 / 2)`` (the
        clipped ReLU ``min(relu(t), c0)``: ``t_s = c0``) makes a unit with a bias
        equal to its reflection: ``u f(v . x + b) = u c0 - u f(-v . x + t_s - b)``.
        :func:`canonical_units` picks one of the two (docs/algorithms.md 6).
        """
        if self.inverse is None or not np.isfinite(self.invertible_max):
            return None
        c0 = float(self.invertible_max)
        with np.errstate(all="ignore"):
            ts = float(np.asarray(self.inverse(np.array([c0 * (1 - 1e-12)])))[0])
            if not np.isfinite(ts) or ts <= 0:
                return None
            lo, hi = 0.0, 2.0 * ts  # the saturation point: smallest t with f(t) = c0
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                if not lo < mid < hi:
                    break
                if float(np.asarray(self(np.array([mid])))[0]) >= c0:
                    hi = mid
                else:
                    lo = mid
            ts = hi
            t = np.linspace(-0.5 * ts, 1.5 * ts, 41)
            lhs = np.asarray(self(t), dtype=float)
            rhs = c0 - np.asarray(self(ts - t), dtype=float)
        return (ts, c0) if np.allclose(lhs, rhs, rtol=0, atol=1e-9 * c0) else None

    def hermite_coefficients(self, scale: float = 1.0, degree: int = 4) -> np.ndarray:
        """``c_j = E[f(scale * g) He_j(g)]`` for ``j = 0..degree`` (Gauss-Legendre, cached).

        Parameters
        ----------
        scale : float, default=1.0
            ``s = ||v||`` of a unit, so that ``f(v . x) = f(s g)`` with ``g ~ N(0, 1)``
            for ``x ~ N(0, I)``; must be positive.
        degree : int, default=4
            Highest Hermite degree.

        Returns
        -------
        ndarray of shape (degree + 1,)
            See :func:`hermite_coefficients`.
        """
        return hermite_coefficients(self, float(scale), int(degree))


def canonical_units(U, V, b, c, activation):
    """One of the equivalent forms of units with a bias, for a point-symmetric ``f``.

    With :attr:`Activation.reflection` ``(t_s, c0)`` the unit ``(v, b, u)`` and its
    reflection ``(-v, t_s - b, -u)`` with ``c + u c0`` are the same network; the form
    with ``b <= t_s / 2`` is kept (the bias-free form when ``b = 0``). Other
    activations have one form and are returned as given (docs/algorithms.md 6).

    Parameters
    ----------
    U : ndarray of shape (m, k) or None
        Output weights (None: only ``V`` and ``b`` are transformed).
    V : ndarray of shape (k, d)
        Hidden weights.
    b : ndarray of shape (k,)
        Hidden biases.
    c : ndarray of shape (m,) or None
        Output biases.
    activation : Activation

    Returns
    -------
    U, V, b, c : the canonical form (copies where changed).
    """
    refl = activation.reflection
    if refl is None:
        return U, V, b, c
    ts, c0 = refl
    flip = b > 0.5 * ts
    if not np.any(flip):
        return U, V, b, c
    V = np.where(flip[:, None], -V, V)
    b = np.where(flip, ts - b, b)
    if U is not None:
        if c is not None:
            c = c + c0 * U[:, flip].sum(axis=1)
        U = np.where(flip[None, :], -U, U)
    return U, V, b, c


def _relu(t):
    return np.maximum(t, 0.0)


def _relu2(t):
    r = np.maximum(t, 0.0)
    return r * r


def _log1p_relu(t):
    return np.log1p(np.maximum(t, 0.0))


def _step_linear(t):
    t = np.asarray(t, dtype=float)
    return np.where(t > 0, t + 1.0, 0.0)


def _clipped(c: float):
    def f(t):
        return np.minimum(np.maximum(t, 0.0), c)

    return f


def _positive_part_inverse(z):
    return np.asarray(z, dtype=float)


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("relu", _relu, degree=1.0, inverse=_positive_part_inverse),
    "relu2": Activation("relu2", _relu2, degree=2.0, inverse=np.sqrt),
    "clipped": Activation(
        "clipped", _clipped(1.0), inverse=_positive_part_inverse, invertible_max=1.0
    ),
    "log1p": Activation("log1p", _log1p_relu, inverse=np.expm1),
    "step-linear": Activation(
        "step-linear", _step_linear, inverse=lambda z: np.asarray(z, float) - 1.0
    ),
}


def _check_rectified(f: Callable, name: str) -> None:
    """Raise ``ValueError`` unless ``f`` is 0 on ``t <= 0`` and positive on ``t > 0``."""
    neg = np.concatenate([-np.logspace(-8, 3, 60), [0.0]])
    pos = np.logspace(-6, 2, 60)
    try:
        fn = np.asarray(f(neg.copy()), dtype=float)
        fp = np.asarray(f(pos.copy()), dtype=float)
    except Exception as exc:
        raise ValueError(
            f"activation {name!r} could not be evaluated on an ndarray: {exc}. "
            "Pass a vectorised function (e.g. built from numpy ufuncs)."
        ) from exc
    if fn.shape != neg.shape or fp.shape != pos.shape:
        raise ValueError(
            f"activation {name!r} must map an array to an array of the same shape."
        )
    if not (np.isfinite(fn).all() and np.isfinite(fp).all()):
        raise ValueError(f"activation {name!r} returned NaN or inf on finite inputs.")
    if np.any(fn != 0):
        i = int(np.flatnonzero(fn != 0)[0])
        raise ValueError(
            f"activation {name!r} is not rectified: f({neg[i]:.3g}) = {fn[i]:.3g}, but a "
            "rectified activation is exactly 0 for every t <= 0 (the zero pattern is "
            "what exact recovery uses [BJW]). Leaky ReLU, tanh, sigmoid and GELU are "
            "not rectified."
        )
    if np.any(fp <= 0):
        i = int(np.flatnonzero(fp <= 0)[0])
        raise ValueError(
            f"activation {name!r} is not rectified: f({pos[i]:.3g}) = {fp[i]:.3g}, but a "
            "rectified activation is strictly positive for every t > 0."
        )


def get_activation(activation="relu") -> Activation:
    """Return the :class:`Activation` for a registry name, an ``Activation`` or a callable.

    Parameters
    ----------
    activation : str, Activation or callable, default="relu"
        One of ``"relu"``, ``"relu2"`` (squared ReLU), ``"clipped"`` (``min(relu(t), 1)``),
        ``"log1p"`` (``log(1 + relu(t))``), ``"step-linear"`` (``relu(t) + 1{t > 0}``),
        or a vectorised rectified function.

    Returns
    -------
    Activation
        The registry's entry for a name, ``activation`` itself for an
        ``Activation``, and for a callable its description (homogeneity degree,
        plateau, inverse) worked out numerically.

    Raises
    ------
    ValueError
        For an unknown name, or a function that is not rectified.

    Examples
    --------
    >>> get_activation("relu")(np.array([-1.0, 2.0]))
    array([0., 2.])
    >>> get_activation(np.tanh)
    Traceback (most recent call last):
    ...
    ValueError: activation 'tanh' is not rectified: ...
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        try:
            return ACTIVATIONS[activation]
        except KeyError:
            raise ValueError(
                f"unknown activation {activation!r}; choose one of "
                f"{sorted(ACTIVATIONS)} or pass a rectified callable."
            ) from None
    if callable(activation):
        name = getattr(activation, "__name__", "custom")
        _check_rectified(activation, name)
        return _analyse_custom(activation)
    raise ValueError(
        f"`activation` must be a name or a callable, got {type(activation).__name__}."
    )


def _numeric_inverse(f: Callable, sup: float) -> Callable:
    """Vectorised inverse of ``f`` on ``(0, sup)`` by bisection in ``t > 0``.

    ``f`` is increasing there (checked by :func:`_analyse_custom`); 1100 halvings
    would reach every float, but bisection stops once the bracket no longer
    shrinks, which takes about ``60 + log2(hi / t)`` steps.
    """

    def inverse(y):
        y = np.asarray(y, dtype=float)
        lo = np.zeros_like(y)
        hi = np.ones_like(y)
        for _ in range(2000):  # grow the bracket
            short = np.asarray(f(hi), dtype=float) < y
            if not short.any():
                break
            hi = np.where(short, 2.0 * hi, hi)
        for _ in range(1100):
            mid = 0.5 * (lo + hi)
            moved = (mid > lo) & (mid < hi)
            if not moved.any():
                break
            below = np.asarray(f(mid), dtype=float) < y
            lo = np.where(moved & below, mid, lo)
            hi = np.where(moved & ~below, mid, hi)
        return 0.5 * (lo + hi)

    return inverse


def _analyse_custom(f: Callable) -> Activation:
    """Describe a user's rectified ``f``: homogeneity degree, plateau, inverse.

    ``f(a t) = a^p f(t)`` is tested on a grid (then the scale of a unit is free);
    otherwise ``f`` must be increasing on ``t > 0`` up to an optional plateau to be
    invertible, which recovery needs to read weights off activations.
    """
    t = np.logspace(-4, 4, 400)
    ft = np.asarray(f(t), dtype=float)
    p = float(np.log2(f(np.array([2.0]))[0] / f(np.array([1.0]))[0]))
    degree = None
    if np.isfinite(p) and p > 0:
        ok = all(
            np.allclose(np.asarray(f(a * t), dtype=float), a**p * ft, rtol=1e-10, atol=0)
            for a in (0.37, 3.1)
        )
        degree = p if ok else None
    if degree is not None:
        c1 = float(f(np.array([1.0]))[0])
        return Activation("custom", f, degree=degree,
                          inverse=lambda y: (np.asarray(y, float) / c1) ** (1.0 / degree))
    steps = np.diff(ft)
    if np.all(steps > 0):
        return Activation("custom", f, inverse=_numeric_inverse(f, np.inf))
    top = float(ft.max())
    first_top = int(np.argmax(ft >= top))
    if first_top == 0 and np.all(ft == top):  # a step: constant on t > 0
        return Activation("custom", f, invertible_max=top)
    if np.all(steps[:first_top] > 0) and np.all(ft[first_top:] == top):
        return Activation("custom", f, inverse=_numeric_inverse(f, top),
                          invertible_max=top)
    return Activation("custom", f)  # not invertible: recovery will say so


@lru_cache(maxsize=4096)
def hermite_coefficients(activation: Activation, scale: float, degree: int) -> np.ndarray:
    """``c_j = E[f(scale g) He_j(g)]``, ``j = 0..degree``, by Gauss-Legendre quadrature.

    ``g ~ N(0, 1)`` and ``He_j`` are the probabilists' Hermite polynomials. ``f`` is
    0 on ``g <= 0``, so only ``(0, 12]`` is integrated (the Gaussian weight beyond
    12 is below ``2e-33``), by a 200-point Gauss-Legendre rule: a rule on the
    whole line (Gauss-Hermite) would converge slowly across the kink of ``f`` at
    0. A saturating ``f`` (finite ``invertible_max``, as ``min(relu(t), 1)``) has a
    second kink where it reaches its plateau; the interval is split there, so
    the coefficients are exact to double precision for every ``f`` that is
    smooth on ``t > 0`` apart from that plateau.

    Parameters
    ----------
    activation : Activation
        The rectified activation ``f``.
    scale : float
        ``s > 0``: the norm of a unit, ``f(v . x) = f(s g)`` for ``x ~ N(0, I)``.
    degree : int
        Highest Hermite degree (``>= 0``).

    Returns
    -------
    ndarray of shape (degree + 1,)
        ``c_0, ..., c_degree``. For the ReLU ``c = s (1/sqrt(2 pi), 1/2,
        1/sqrt(2 pi), 0, -1/sqrt(2 pi))``.

    Raises
    ------
    ValueError
        When ``scale`` is not positive and finite, or ``degree`` is negative.

    Examples
    --------
    >>> c = hermite_coefficients(get_activation("relu"), 1.0, 3)
    >>> np.allclose(c, [1 / np.sqrt(2 * np.pi), 0.5, 1 / np.sqrt(2 * np.pi), 0.0])
    True

    For ``min(relu(t), 1)`` at ``s = 1``, ``c_1 = Phi(1) - 1/2`` in closed form:

    >>> from scipy.stats import norm
    >>> c = hermite_coefficients(get_activation("clipped"), 1.0, 1)
    >>> bool(abs(c[1] - (norm.cdf(1.0) - 0.5)) < 1e-14)
    True
    """
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"`scale` must be a positive number (a unit's norm), got {scale!r}.")
    if degree < 0:
        raise ValueError(f"`degree` must be >= 0, got {degree!r}.")
    top = _G_MAX
    if (activation.degree is None and activation.inverse is not None
            and np.isfinite(activation.invertible_max)):
        # the plateau starts at f^{-1}(sup f): a kink of the integrand
        kink = float(np.asarray(activation.inverse(np.array([activation.invertible_max])),
                                dtype=float)[0]) / scale
        if np.isfinite(kink) and 0.0 < kink < _G_MAX:
            top = kink
    pieces = [(0.0, top)] + ([(top, _G_MAX)] if top < _G_MAX else [])
    t, w = np.polynomial.legendre.leggauss(_QUAD_POINTS)
    out = np.zeros(degree + 1)
    for a, b in pieces:
        half = 0.5 * (b - a)
        g = a + half * (t + 1.0)
        wg = half * w * np.exp(-0.5 * g * g) / np.sqrt(2.0 * np.pi)
        fg = np.asarray(activation.func(scale * g), dtype=float)
        out += (wg * fg) @ np.polynomial.hermite_e.hermevander(g, degree)
    return out
