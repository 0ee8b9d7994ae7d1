"""Black-box extraction of a one-hidden-layer ReLU network from queries (docs/algorithms.md 7).

``F(x) = U relu(V x + b) + c`` is piecewise affine. The steps, each in its function:

1. :func:`_probe`: the output width ``m``, the scale of the answers and the oracle's
   precision (second differences on an affine piece).
2. When the outputs span the hidden units (``m >= k``), random Gaussian queries and
   :func:`relurecover.recover_two_layer` (7.5): :func:`_gaussian_route`.
3. Otherwise chosen queries. Kinks along random lines (7.1, :mod:`._lines`); the
   Jacobian of each affine piece between kinks by finite differences; the jump of
   ``[J, F - J x]`` between consecutive pieces is ``u_i [v_i, b_i]`` (rank one), which
   gives each hyperplane roughly (7.2, :func:`_locate_units`). Later lines must meet
   the same hyperplanes: a kink that lies on none is a new unit; kinks that keep
   appearing off every hyperplane mean a deeper network (7.6).
4. Precise jumps (7.4, :func:`_measure_units`): for each unit two cells of the
   hyperplane arrangement that differ in that unit alone, re-centred far from every
   hyperplane (least-norm points with all ``|v_l . x + b_l| = rho``, or a max-margin LP
   when there are more units than inputs), so that the finite-difference steps can be
   as long as the cell allows; the rounding error of the oracle then costs only a few
   ulps of the weights.
5. Orientation (7.3, :func:`_orient`): with orientations guessed, ``F`` minus the
   guessed network is affine, and its linear part is ``-sum_{i flipped} u_i v_i^T``:
   a linear system in the 0/1 indicators of the flipped units, solved by least squares
   and rounding when its columns are independent, and by an integer program
   (``scipy.optimize.milp``) otherwise; never ``2^k`` enumeration.
6. The certificate (:func:`fidelity`): the output error on fresh random queries.

Oracles of low precision (float32) measure each hyperplane from kink points on it, the
output weights and orientation by least squares, and look for weak units on quiet
lines where every unit found is off (7.7, :mod:`._lowprec`, :meth:`_Run.outputs_low`,
:meth:`_Run.quiet_lines`).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from .._validation import check_random_state
from ..networks import TwoLayerNetwork
from ._lines import NotPiecewiseLinear, find_kinks
from ._lowprec import (fit_hinge, fit_outputs, refine_hyperplane, refit_outputs,
                       refit_queries)
from ._oracle import BudgetExhausted, NotAnOracle, QueryOracle

__all__ = ["extract", "Extraction", "Fidelity", "fidelity"]


@dataclass(frozen=True)
class Fidelity:
    """How closely a recovered network reproduces the oracle on fresh inputs.

    Attributes
    ----------
    max_error : float
        ``max_x ||F(x) - G(x)||_inf / max_x ||F(x)||_inf`` over the inputs.
    mean_error : float
        Mean of ``||F(x) - G(x)||_inf`` divided by ``max_x ||F(x)||_inf``.
    bits : float
        ``-log2(max_error)`` (inf when the outputs agree exactly).
    class_agreement : float or None
        Fraction of inputs where the arg-max output agrees (outputs read as logits);
        None for one output.
    n_inputs : int
        Fresh inputs used.
    """

    max_error: float
    mean_error: float
    bits: float
    class_agreement: float | None
    n_inputs: int

    def as_dict(self) -> dict:
        """The fields as a plain dict (JSON-ready)."""
        return {"max_error": self.max_error, "mean_error": self.mean_error,
                "bits": self.bits, "class_agreement": self.class_agreement,
                "n_inputs": self.n_inputs}


@dataclass(frozen=True, kw_only=True)
class Extraction:
    """What :func:`extract` recovered from the oracle, and how sure it is.

    Attributes
    ----------
    network : TwoLayerNetwork or None
        The recovered network (rows of ``V`` of unit norm, biases ``b``, ``c``); with
        a budget cut short, the units measured so far; None when none was.
    exact : bool
        True only when the network reproduces the oracle on fresh random queries to
        ``tol`` relative (see :attr:`fidelity`).
    n_queries : int
        Queries sent to the oracle, in all.
    queries : dict of str to int
        Queries per stage.
    fidelity : Fidelity or None
        The output error on fresh inputs (None when no network).
    n_hidden : int
        Units found.
    message : str
        The verdict in words, with the reason when not exact.
    method : str
        ``"gaussian-queries"`` (outputs span the units) or ``"chosen-queries"``.
    precision : float
        Relative precision of the oracle's answers (measured).
    timings : dict of str to float
        Seconds per stage.
    diagnostics : dict
        Lines searched, kinks, unresolved segments, the orientation solver.
    """

    network: TwoLayerNetwork | None
    exact: bool
    n_queries: int
    queries: dict
    fidelity: Fidelity | None
    n_hidden: int
    message: str
    method: str
    precision: float
    timings: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        fid = "none" if self.fidelity is None else f"{self.fidelity.max_error:.2e}"
        return (f"Extraction(exact={self.exact}, n_hidden={self.n_hidden}, "
                f"n_queries={self.n_queries}, max_error={fid}, method={self.method!r})")


# ---------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------
def fidelity(oracle, network, X) -> Fidelity:
    """Output error of ``network`` against ``oracle`` on the rows of ``X`` (7.4).

    Parameters
    ----------
    oracle : callable
        ``(q, d)`` array to ``(q,)`` or ``(q, m)`` outputs.
    network : TwoLayerNetwork
        The candidate.
    X : ndarray of shape (q, d)
        Inputs (fresh: not used to build ``network``).

    Returns
    -------
    Fidelity
    """
    F = np.asarray(oracle(X), dtype=float)
    if F.ndim == 1:
        F = F[:, None]
    G = network.predict(X)
    if G.ndim == 1:
        G = G[:, None]
    scale = float(np.max(np.abs(F))) or 1.0
    err = np.max(np.abs(F - G), axis=1) / scale
    max_err = float(err.max())
    agree = None
    if F.shape[1] > 1:
        agree = float(np.mean(np.argmax(F, axis=1) == np.argmax(G, axis=1)))
    bits = float("inf") if max_err == 0 else float(-np.log2(max_err))
    return Fidelity(max_error=max_err, mean_error=float(err.mean()), bits=bits,
                    class_agreement=agree, n_inputs=int(X.shape[0]))


def _jacobian(Q: QueryOracle, x, h):
    """``[J, F(x) - J x]`` (shape ``(m, d + 1)``) by forward differences of step ``h``."""
    d = x.size
    P = np.repeat(x[None, :], d + 1, axis=0)
    P[np.arange(1, d + 1), np.arange(d)] += h
    Y = Q(P)
    J = ((Y[1:] - Y[0]) / h).T
    return np.concatenate([J, (Y[0] - J @ x)[:, None]], axis=1), Y[0]


def _checked_jacobian(Q: QueryOracle, x, h0, f_scale, retries: int = 6):
    """``[J, F - J x]`` by central differences whose steps are checked (low precision).

    A step that crossed a hyperplane shows in the second difference
    ``F(x + h e_j) + F(x - h e_j) - 2 F(x)``, which is rounding only on an affine piece;
    such directions are measured again with an eighth of the step. Long steps keep the
    rounding of a low-precision oracle small. Returns ``(A, F(x), err)`` with ``err``
    the expected error of ``J`` (2-norm over its entries).
    """
    d = x.size
    F0 = Q(x[None, :])[0]
    noise = 4.0 * Q.precision * (f_scale + np.max(np.abs(F0)))
    J = np.zeros((F0.size, d))
    h = np.full(d, float(h0))
    todo = np.arange(d)
    err = np.zeros(d)
    for attempt in range(retries):
        P = np.repeat(x[None, :], 2 * todo.size, axis=0)
        P[np.arange(todo.size), todo] += h[todo]
        P[todo.size + np.arange(todo.size), todo] -= h[todo]
        Y = Q(P)
        Yp, Ym = Y[:todo.size], Y[todo.size:]
        second = np.max(np.abs(Yp + Ym - 2.0 * F0), axis=1)
        J[:, todo] = ((Yp - Ym) / (2.0 * h[todo, None])).T
        ok = second <= 8.0 * noise
        if attempt == retries - 1:
            ok[:] = True
        err[todo[ok]] = (noise + 0.5 * second[ok]) / h[todo[ok]]
        todo = todo[~ok]
        if todo.size == 0:
            break
        h[todo] /= 8.0
    return np.concatenate([J, (F0 - J @ x)[:, None]], axis=1), F0, float(np.linalg.norm(err))


def _rank_one(dA, n_ref=None):
    """``dA = u h^T`` with ``||h[:d]|| = 1`` oriented along ``n_ref``; relative residual."""
    Us, s, Wt = np.linalg.svd(dA, full_matrices=False)
    w = Wt[0]
    nw = np.linalg.norm(w[:-1])
    if nw == 0 or s[0] == 0:
        return None, None, np.inf
    h = w / nw
    u = Us[:, 0] * s[0] * nw
    if n_ref is not None and h[:-1] @ n_ref < 0:
        h, u = -h, -u
    resid = float(s[1] / s[0]) if s.size > 1 else 0.0
    return u, h, resid


# ---------------------------------------------------------------------------------
# step 1: probe
# ---------------------------------------------------------------------------------
def _probe(Q: QueryOracle, d, scale, rng):
    """Output width, answer scale and precision from a few queries (7, step 1)."""
    X = scale * rng.standard_normal((16, d))
    Y = Q(X)
    f_scale = float(np.max(np.abs(Y))) or 1.0
    noise = []
    for _ in range(3):
        x = scale * rng.standard_normal(d)
        e = rng.standard_normal(d)
        e /= np.linalg.norm(e)
        h = 1e-4 * scale
        P = x[None, :] + h * np.arange(5)[:, None] * e[None, :]
        Z = Q(P)
        second = np.abs(Z[:-2] - 2 * Z[1:-1] + Z[2:]).max()
        noise.append(second / (4 * max(f_scale, float(np.max(np.abs(Z))))))
    Q.note_noise(float(min(noise)))
    return f_scale


# ---------------------------------------------------------------------------------
# step 2: outputs that span the units
# ---------------------------------------------------------------------------------
def _gaussian_route(Q, d, scale, rng, n_hidden, m):
    """``recover_two_layer`` on random Gaussian queries (7.5); None when it does not certify."""
    import warnings

    from ..twolayer import recover_two_layer

    Q.stage("gaussian queries")
    n = 20 * (d + 1) if n_hidden is None else max(20 * (d + 1), 4 * n_hidden * (d + 1))
    X = scale * rng.standard_normal((n, d))
    Y = Q(X)
    with warnings.catch_warnings():
        # a failed attempt is expected when m < k: its warnings are not the user's
        warnings.simplefilter("ignore")
        # (the moment path: the queries are Gaussian, and with m < k it fails fast)
        res = recover_two_layer(X / scale, Y, n_hidden=n_hidden, method="gaussian",
                                max_starts=max(100, 8 * m), rng=rng)
    if res.network is None:
        return None, res
    net = res.network
    net = TwoLayerNetwork(net.U, net.V / scale, activation=net.activation,
                          b=net.b, c=net.c)
    return net, res


# ---------------------------------------------------------------------------------
# step 3: locate the hyperplanes along lines
# ---------------------------------------------------------------------------------
# a unit of a low-precision oracle is measured from its kink points (7.7), not from a
# pair of cells: the marker its `pair` entry holds
_FROM_KINK_POINTS = "kink points"


@dataclass
class _Units:
    """Approximate hyperplanes ``h_i = [n_i, b_i]`` (``||n_i|| = 1``) and output weights."""

    H: list = field(default_factory=list)
    u: list = field(default_factory=list)
    err: list = field(default_factory=list)  # expected relative error of each h
    where: list = field(default_factory=list)  # (line, t before, t after, kink point)
    rough: list = field(default_factory=list)  # (h, err) from the line (7.2)
    pair: list = field(default_factory=list)  # (cell before, cell after, step) measured

    def __len__(self):
        return len(self.H)

    def matrix(self):
        return np.array(self.H) if self.H else np.zeros((0, 0))

    def truncate(self, k):
        """Keep the first ``k`` units."""
        for rows in (self.H, self.u, self.err, self.where, self.rough, self.pair):
            del rows[k:]

    def same(self, h, err):
        """Whether hyperplane ``h`` (either orientation, relative error ``err``) is known."""
        if not self.H:
            return False
        Hm = self.matrix()
        diff = np.minimum(np.linalg.norm(Hm - h, axis=1), np.linalg.norm(Hm + h, axis=1))
        # (errors measured from kink points can be a few times the estimate: 7.7)
        factor = 5.0 if max(err, max(self.err)) < 1e-7 else 30.0
        tol = np.maximum(1e-6, factor * np.maximum(err, np.array(self.err)))
        return bool(np.any(diff <= tol * (1.0 + abs(h[-1]))))

    def match(self, p, size, precision):
        """Index of the measured hyperplane through point ``p`` (norm scale ``size``), or None.

        Unit ``l`` passes through ``p`` when ``|n_l . p + b_l| <= max(1e-6, 5 err_l,
        1e3 precision) size`` (``precision`` bounds the error of the kink's position).
        """
        done = [i for i in range(len(self.H)) if self.pair[i] is not None]
        if not done:
            return None
        Hm = self.matrix()[done]
        rel = np.maximum(max(1e-6, 1e3 * precision), 5.0 * np.array(self.err)[done])
        z = np.abs(Hm[:, :-1] @ p + Hm[:, -1]) / (rel * size)
        i = int(np.argmin(z))
        return done[i] if z[i] <= 1.0 else None


class _Line:
    """A line ``x0 + t e`` (random unless given) and the projection ``r . F`` searched on it."""

    def __init__(self, Q, d, scale, rng, x0=None, e=None):
        self.x0 = 0.5 * scale * rng.standard_normal(d) if x0 is None else x0
        e = rng.standard_normal(d) if e is None else e
        self.e = e / np.linalg.norm(e)
        r = rng.standard_normal(Q.m)
        self.r = r / np.linalg.norm(r)
        self.Q = Q

    def point(self, t):
        return self.x0 + np.multiply.outer(t, self.e)

    def g(self, t):
        t = np.atleast_1d(np.asarray(t, dtype=float))
        return self.Q(self.point(t)) @ self.r


def _region_points(t):
    """One point inside each affine piece between consecutive kinks (and the two outer)."""
    gaps = np.diff(t)
    w = float(np.median(gaps)) if gaps.size else 1.0
    pts = [t[0] - w] + list(0.5 * (t[:-1] + t[1:])) + [t[-1] + w]
    half = [w] + list(0.5 * gaps) + [w]
    return np.array(pts), np.array(half)


def _locate_jump(Q, line, j, t_kink, pts, half, d, scale, f_scale, memo, elsewhere=True):
    """Approximate ``(u, h, err)`` of the unit whose kink is at ``t_kink`` (7.2), or None.

    The kink lies between region points ``pts[j]`` and ``pts[j + 1]``; the Jacobian of
    each region is measured once (``memo``) and shared by the kinks either side of it.
    ``err`` is the expected relative error of ``h`` from the rounding of the answers.
    ``elsewhere=False`` skips the low-precision check of :func:`_kink_elsewhere` (on a
    quiet line, far out, a rough tilt moves the check point off the hyperplane; the
    kink-point measurement of 7.7 that follows checks the unit instead).
    """
    p_kink = line.point(np.array([t_kink]))[0]
    size = np.linalg.norm(p_kink) + scale
    Q.stage("locate")
    low = Q.low_precision  # float32 and coarser: long checked steps
    for shrink in ((0.5, 1e-2) if low else (1e-2, 1e-4)):
        floor = np.sqrt(Q.precision) * size
        A, err_J = [], 0.0
        for r in (j, j + 1):
            if (r, shrink) not in memo:
                x = line.point(np.array([pts[r]]))[0]
                if low:
                    Ar, F0, e = _checked_jacobian(Q, x, shrink * half[r], f_scale)
                else:
                    h = max(shrink * half[r] / np.sqrt(d), floor)
                    Ar, F0 = _jacobian(Q, x, h)
                    e = 4.0 * Q.precision * (f_scale + np.max(np.abs(F0))) / h * np.sqrt(d)
                memo[r, shrink] = (Ar, e)
            A.append(memo[r, shrink][0])
            err_J = np.hypot(err_J, memo[r, shrink][1])
        u, h, resid = _rank_one(A[1] - A[0], n_ref=line.e)
        if h is None:
            continue
        err = err_J / max(np.linalg.norm(u), 1e-300)
        tol = max(1e-7, 30.0 * err)
        # the hyperplane must pass through the kink point (a finite-difference step
        # that crossed another hyperplane breaks this), and the jump be rank one
        z = abs(h[:-1] @ p_kink + h[-1])
        if z <= tol * size and resid <= max(1e-4, tol):
            if not (low and elsewhere) or _kink_elsewhere(Q, line, p_kink, u, h, scale):
                return u, h, err
    return None


def _kink_elsewhere(Q, line, p_kink, u, h, scale, tries: int = 2) -> bool:
    """Whether the hyperplane ``h`` bends ``F`` away from the kink it was found at (7.2).

    For low-precision oracles the kink-point check is weak: a step that crossed another
    hyperplane spoils one column of a Jacobian and the offset with it, and the bad
    hyperplane still passes near the kink. So the jump is looked for at a point of the
    hyperplane one input scale away: the second difference of ``r . F`` across it along
    the line's direction must be the one the unit predicts, ``(r . u)(n . e) delta``
    (three queries a try; a try spoilt by another hyperplane nearby is retried).
    """
    n = h[:-1]
    if n.size == 1:
        return True  # the hyperplane is a point: there is no elsewhere
    # directions drawn from the kink point's bits: reproducible from run to run
    # (Python's hash of bytes is salted per process)
    rng = np.random.default_rng(zlib.crc32(p_kink.tobytes()))
    delta = 0.05 * scale
    pred = float(line.r @ u) * float(n @ line.e) * delta
    for _ in range(tries):
        w = rng.standard_normal(n.size)
        w -= (w @ n) * n
        w *= scale / np.linalg.norm(w)
        q = p_kink + w
        q = q - (n @ q + h[-1]) * n  # on the hyperplane
        P = q[None, :] + np.array([-delta, 0.0, delta])[:, None] * line.e[None, :]
        y = Q(P) @ line.r
        second = y[0] + y[2] - 2.0 * y[1]
        if abs(second - pred) <= 0.3 * abs(pred):
            return True
    return False


def _search_line(Q, units, d, scale, f_scale, rng, max_kinks, line=None, f_line=None,
                 radii=None):
    """One line: its kinks, the new units among them (7.1, 7.2). Returns counts.

    ``line`` (default: a random one), ``f_line``, the typical size of the answers on it
    (default ``f_scale``), and the radii of :func:`refine_hyperplane` are given for the
    quiet lines of 7.7 (whose windows may then be longer: no other unit is on there).
    """
    line = _Line(Q, d, scale, rng) if line is None else line
    Q.stage("kink search")
    T0 = 4.0 * scale * np.sqrt(d)
    lk = find_kinks(line.g, T0, precision=Q.precision,
                    f_scale=f_scale if f_line is None else f_line, max_kinks=max_kinks)
    t = lk.t
    n_new = n_matched = n_failed = 0
    if t.size == 0:
        return line, lk, n_new, n_matched, n_failed
    pts, half = _region_points(t)
    P = line.point(t)
    memo: dict = {}
    used: set = set()
    for j, tj in enumerate(t):
        hit = units.match(P[j], np.linalg.norm(P[j]) + scale, Q.precision)
        if hit is not None and hit not in used:
            # (a line crosses each hyperplane once: a second kink on the same
            # hyperplane is another unit close to it)
            used.add(hit)
            n_matched += 1
            continue
        found = _locate_jump(Q, line, j, tj, pts, half, d, scale, f_scale, memo,
                             elsewhere=radii is None)
        if found is None:
            # a kink far out (a hyperplane almost parallel to the line) is measured
            # poorly here; other lines cross it nearer
            n_failed += abs(tj) <= 16.0 * T0
            continue
        u, h, err = found
        if Q.low_precision:
            # low precision: the hyperplane from points on it (7.7), not the jump
            # (whose error estimate is rough there, either way)
            refined = refine_hyperplane(Q, h, u, P[j], scale, rng, f_scale=f_scale,
                                        radii=radii, err0=float(np.clip(err, 1e-3, 3e-2)),
                                        a_max=None if radii is None else scale / 50.0,
                                        f_local=f_line,
                                        # (a quiet-line unit may be far out, where the
                                        # inputs' rounding limits it; the quiet cells of
                                        # 7.4 measure it again)
                                        max_err=None if radii is None else 5e-2)
            if refined is None:
                n_failed += abs(tj) <= 16.0 * T0
                continue
            h, err = refined
        if units.same(h, err):
            n_matched += 1  # the same hyperplane, measured twice: keep the first
            continue
        units.H.append(h)
        units.u.append(u)
        units.err.append(err)
        units.where.append((line, pts[j], pts[j + 1], P[j]))
        units.rough.append((h, err))
        units.pair.append(_FROM_KINK_POINTS if Q.low_precision else None)
        n_new += 1
    return line, lk, n_new, n_matched, n_failed


# ---------------------------------------------------------------------------------
# step 4: precise jumps in re-centred cells
# ---------------------------------------------------------------------------------
def _cell_point(Hm, sigma, rho, anchor):
    """A point where ``sigma_l (n_l . x + b_l) >= rho`` for every unit, far from all (7.4).

    Least-norm solution of ``n_l . x + b_l = sigma_l rho`` when the normals are
    independent; otherwise the max-margin point of the cell within a box around
    ``anchor`` (HiGHS).
    """
    N, b = Hm[:, :-1], Hm[:, -1]
    k, d = N.shape
    target = sigma * rho - b
    if k <= d:
        x, *_ = np.linalg.lstsq(N, target, rcond=None)
        z = N @ x + b
        if np.all(sigma * z >= 0.5 * rho):
            return x, 0.5 * rho
    from scipy.optimize import linprog

    # variables (x, s): maximise s subject to sigma_l (n_l x + b_l) >= s, s <= rho,
    # |x - anchor|_inf <= box
    box = 4.0 * (np.max(np.abs(anchor)) + rho)
    A = np.hstack([-(sigma[:, None] * N), np.ones((k, 1))])
    ub = sigma * b
    bounds = [(a - box, a + box) for a in anchor] + [(None, rho)]
    c = np.zeros(d + 1)
    c[-1] = -1.0
    res = linprog(c, A_ub=A, b_ub=ub, bounds=bounds, method="highs")
    if res.status != 0 or res.x[-1] <= 0:
        return None, 0.0
    return res.x[:-1], 0.5 * float(res.x[-1])


class _Cells:
    """Measured cells of the arrangement: point, finite-difference step, ``[J, F - J x]``, F."""

    def __init__(self, Q, f_scale):
        self.Q = Q
        self.f_scale = f_scale
        self.items: list = []
        self._cache: dict = {}

    def measure(self, Hm, sigma, rho, anchor):
        """The re-centred cell of sign pattern ``sigma`` (measured once per pattern).

        Forward differences of step ``margin`` (half the distance to the nearest
        hyperplane); for a low-precision oracle central differences of step
        ``1.8 margin``, checked by the second difference (3.6 times less rounding).
        """
        key = (Hm.shape[0], sigma.tobytes())
        if key not in self._cache:
            x, margin = _cell_point(Hm, sigma, rho, anchor)
            if x is None:
                self._cache[key] = None
            else:
                if self.Q.low_precision:
                    A, F, _ = _checked_jacobian(self.Q, x, 1.8 * margin, self.f_scale,
                                                retries=3)
                    margin = 1.8 * margin / np.sqrt(8.0)  # its rounding, as a forward step
                else:
                    A, F = _jacobian(self.Q, x, margin)
                self._cache[key] = (x, margin, A, F)
                self.items.append(self._cache[key])
        return self._cache[key]

    def valid(self, Hm):
        """The cells that no finite-difference step took across a hyperplane of ``Hm``."""
        out = []
        for x, step, A, F in self.items:
            z = np.abs(Hm[:, :-1] @ x + Hm[:, -1])
            if np.all(z > 1.01 * step):
                out.append((x, step, A, F))
        return out


def _measure_unit(Q, units, i, cells, rho, f_scale):
    """Precise ``(u_i, h_i)`` from the jump between two re-centred cells (7.4).

    The two cells have the sign pattern of the current arrangement beside unit ``i``'s
    kink on the line where it was found, and differ in unit ``i`` alone. Returns None
    on success, else the reason.
    """
    Hm = units.matrix()
    line, t_before, t_after, p_kink = units.where[i]
    xb = line.point(np.array([t_before]))[0]
    xa = line.point(np.array([t_after]))[0]
    sb = np.sign(Hm[:, :-1] @ xb + Hm[:, -1])
    sb[sb == 0] = 1.0
    sb[i] = -1.0
    sa = sb.copy()
    sa[i] = 1.0
    anchor = 0.5 * (xb + xa)
    c0 = cells.measure(Hm, sb, rho, anchor)
    c1 = cells.measure(Hm, sa, rho, anchor)
    if c0 is None or c1 is None:
        return "no cell of the arrangement beside its hyperplane could be centred"
    u, h, resid = _rank_one(c1[2] - c0[2], n_ref=Hm[i, :-1])
    if h is None:
        return "its jump vanished"
    step = min(c0[1], c1[1])
    size = f_scale + max(np.max(np.abs(c0[3])), np.max(np.abs(c1[3])))
    err_J = 4.0 * Q.precision * size / step
    err = err_J * np.sqrt(2.0 * Hm.shape[1]) / max(np.linalg.norm(u), 1e-300)
    tol = max(1e-7, 30.0 * err)
    h_rough, err_rough = units.rough[i]
    size = np.linalg.norm(p_kink) + rho
    off_kink = abs(h[:-1] @ p_kink + h[-1]) / size  # the kink where it was found
    if (resid > tol or np.linalg.norm(h[:-1] - h_rough[:-1]) > max(1e-3, 100.0 * err_rough)
            or off_kink > max(1e-6, 1e3 * Q.precision, 30.0 * err)):
        # a jump that is not the unit's alone: a hyperplane not yet found (or found
        # only roughly) runs between the two cells
        return "its jump was not rank one or not along its hyperplane"
    units.H[i], units.u[i], units.err[i] = h, u, err
    units.pair[i] = (c0[0], c1[0], step)
    return None


def _pair_valid(Hm, i, pair):
    """Whether the cells measured for unit ``i`` still differ in unit ``i`` alone."""
    x0, x1, step = pair
    z0 = Hm[:, :-1] @ x0 + Hm[:, -1]
    z1 = Hm[:, :-1] @ x1 + Hm[:, -1]
    others = np.arange(Hm.shape[0]) != i
    same = np.sign(z0[others]) == np.sign(z1[others])
    clear = np.minimum(np.abs(z0[others]), np.abs(z1[others])) > 1.01 * step
    return bool(np.all(same) and np.all(clear))


# ---------------------------------------------------------------------------------
# step 5: orientation
# ---------------------------------------------------------------------------------
def _orient(U, Hm, cells, precision):
    """Which units to flip so that ``F`` minus the network is constant (7.3).

    The linear part ``L`` of ``F`` minus the guessed network is read from the measured
    cells; :func:`_flips` solves for the flips. Returns (flip indicator, solver name)
    or (None, reason).
    """
    diffs = []
    for x, _, A, F in cells:
        act = (Hm[:, :-1] @ x + Hm[:, -1]) > 0
        diffs.append(A - (U[:, act] @ Hm[act]))
    L = np.mean(diffs, axis=0)[:, :-1]  # m x d: -sum_flipped u_i n_i^T
    return _flips(U, Hm, L, precision)


def _flip_system(U, Hm):
    """``M`` with ``M phi = vec(L)`` for the flips ``phi`` (7.3): column ``i`` is
    ``-vec(u_i n_i^T)``."""
    return -np.stack([np.outer(U[:, i], Hm[i, :-1]).ravel() for i in range(Hm.shape[0])],
                     axis=1)


def _flips(U, Hm, L, precision):
    """0/1 flips ``phi`` with ``L = -sum_i phi_i u_i n_i^T`` (7.3): least squares and
    rounding when the columns are independent, else an integer program (HiGHS)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    k = Hm.shape[0]
    m = U.shape[0]
    d = Hm.shape[1] - 1
    M = _flip_system(U, Hm)
    target = L.ravel()
    scale = float(np.max(np.abs(M))) or 1.0
    if k <= m * d:
        phi, *_ = np.linalg.lstsq(M, target, rcond=None)
        r = np.round(phi)
        if np.all(np.abs(phi - r) < 0.25) and np.all((r == 0) | (r == 1)):
            resid = np.max(np.abs(M @ r - target))
            if resid <= max(1e-7, 1e5 * precision) * scale * np.sqrt(k):
                return r.astype(bool), "least squares"
    tau = max(1e-9, 1e4 * precision) * scale * np.sqrt(k)
    cons = [LinearConstraint(M, target - tau, target + tau)]
    res = milp(np.zeros(k), constraints=cons, integrality=np.ones(k),
               bounds=Bounds(0, 1), options={"time_limit": 60.0})
    if res.status != 0 or res.x is None:
        return None, "no 0/1 orientation makes the rest affine (integer program infeasible)"
    return np.round(res.x).astype(bool), "integer program (HiGHS)"


def _better_flips(X, Y, V, b, *, gain: float = 0.95, max_passes: int = 2):
    """Orientations checked one unit at a time on the answers themselves (7.7).

    The flips of :func:`_flips` rest on the linear part of a least-squares fit, where
    a weak unit's column ``u_i n_i^T`` is within the noise: its orientation may come
    out wrong, and the network is then off by ``u_i (n_i . x + b_i)``, an affine
    error far above the rounding. Each unit in turn is flipped and ``(U, c)`` fitted
    again (:func:`output_lstsq` on the queries ``X``, answers ``Y``); a flip is kept
    when it takes the residual below ``gain`` times the best so far. Returns
    ``(V, b, U, c, flipped)``, ``(U, c)`` as :func:`output_lstsq` gives them.
    """
    V, b = V.copy(), b.copy()
    n, k = X.shape[0], V.shape[0]
    Z = X @ V.T + b
    D = np.concatenate([np.maximum(Z, 0.0), np.ones((n, 1))], axis=1)

    def fit(D):  # (output_lstsq's system; a flip negates a column of Z exactly)
        coef, *_ = np.linalg.lstsq(D, Y, rcond=None)
        return coef, float(np.linalg.norm(Y - D @ coef))

    coef, res = fit(D)
    flipped = []
    for _ in range(max_passes):
        changed = False
        for i in range(V.shape[0]):
            col = D[:, i].copy()
            D[:, i] = np.maximum(-Z[:, i], 0.0)
            coef_i, res_i = fit(D)
            if res_i < gain * res:
                coef, res, changed = coef_i, res_i, True
                Z[:, i] *= -1.0
                V[i], b[i] = -V[i], -b[i]
                flipped.append(i)
            else:
                D[:, i] = col
        if not changed:
            break
    return V, b, coef[:k].T, coef[-1], flipped


def _column_gain(X, Y, Hm, h):
    """Share of the squared residual of ``Y`` on ``[relu(Hm [x; 1]), x, 1]`` that one
    more column ``relu(h . [x; 1])`` removes (7.7): near 0 for a hyperplane fitted to
    noise, large for a unit missing."""
    n = X.shape[0]
    base = np.concatenate([np.maximum(X @ Hm[:, :-1].T + Hm[:, -1], 0.0), X,
                           np.ones((n, 1))], axis=1)
    Y = Y.reshape(n, -1)

    def rss(D):
        coef, *_ = np.linalg.lstsq(D, Y, rcond=None)
        return float(np.sum((Y - D @ coef) ** 2))

    r0 = rss(base)
    if r0 == 0.0:
        return 0.0
    col = np.maximum(X @ h[:-1] + h[-1], 0.0)[:, None]
    return 1.0 - rss(np.concatenate([base, col], axis=1)) / r0


def _refine_quiet_cells(Q, net, errs, rho, f_scale, *, target: float = 1e-11,
                       reserve: int = 100):
    """Measure units again where every other unit is off (7.4), once orientations are known.

    At a point where all units are inactive ``F = c`` exactly, and where unit ``i``
    alone is active ``F = c + u_i (v_i . x + b_i)``: the oracle's rounding is then that
    of a few terms instead of the sum over every active unit, so the jump between the
    two cells is far more precise. Needs independent normals (``k <= d``: the least-norm
    points of each pattern exist). Units are measured again when their estimated error
    is above ``target`` (all of them for a low-precision oracle); the shared all-off
    cell also gives ``c``. Returns the new network, or None when nothing was done.
    """
    k, d = net.V.shape
    if k > d:
        return None
    Hn = np.c_[net.V, net.b] / np.linalg.norm(net.V, axis=1)[:, None]
    N = Hn[:, :-1]
    if np.linalg.cond(N) > 1e8:
        return None
    low = Q.low_precision
    todo = [i for i in range(k) if low or errs[i] > target]
    per_cell = (2 * d + 1) if low else (d + 1)
    if not todo or Q.remaining < per_cell * (len(todo) + 1) + reserve:
        return None
    Q.stage("refine")

    def measure(target_z):
        x, *_ = np.linalg.lstsq(N, target_z - Hn[:, -1], rcond=None)
        if low:
            A, F, _ = _checked_jacobian(Q, x, 0.9 * rho, f_scale, retries=1)
        else:
            A, F = _jacobian(Q, x, 0.5 * rho)
        return x, A, F

    off = -rho * np.ones(k)
    x0, A0, F0 = measure(off)
    U = net.U / np.linalg.norm(net.V, axis=1)[None, :]  # weights of the normalised units
    V, b = N.copy(), Hn[:, -1].copy()
    for i in todo:
        z = off.copy()
        z[i] = rho
        _, Ai, _ = measure(z)
        u, h, _ = _rank_one(Ai - A0, n_ref=N[i])
        # a new measurement must agree with the old one to the old one's error (a
        # pattern other than the planned one would not); a low-precision oracle's
        # estimate of a weak unit's error is rough (7.7), and its quiet measurement far
        # better, so only a gross disagreement (5e-2) refuses it there
        tol_i = max(1e-9, 10.0 * errs[i], 5e-2 if low else 0.0)
        if h is None or np.linalg.norm(h - Hn[i]) > tol_i:
            continue
        U[:, i], V[i], b[i] = u, h[:-1], h[-1]
    c_old = np.asarray(net.c, dtype=float)
    c = F0 if np.all(np.abs(F0 - c_old) <= 1e-6 * (1.0 + np.abs(c_old))) else c_old
    return TwoLayerNetwork(U, V, b=b, c=c)


def _polish(Q, net, scale, rng, *, max_columns: int = 1200, reserve: int = 100):
    """Least squares over all weights with the activation patterns fixed (7.4).

    With the hyperplanes known, ``F(x) = sum_i a_i(x) (W_i x + beta_i) + c`` is linear
    in ``(W_i, beta_i, c)`` (``a_i(x)`` the 0/1 pattern, ``W_i = u_i v_i^T``). On
    ``3 (k (d + 1) + 1)`` fresh Gaussian queries the least-squares solution averages the
    rounding of the cells' finite differences away; each ``[W_i, beta_i]`` is then
    projected on rank one. Only for ``k (d + 1) + 1 <= max_columns`` (the design
    matrix is dense) and when the budget allows; returns None otherwise, or when the
    polish does not lower the residual.
    """
    k, d = net.V.shape
    cols = k * (d + 1) + 1
    n = 3 * cols
    if cols > max_columns or Q.remaining < n + reserve:
        return None
    Q.stage("polish")
    X = scale * rng.standard_normal((n, d))
    Y = Q(X)
    Z = X @ net.V.T + net.b
    act = Z > 0
    Xa = np.concatenate([X, np.ones((n, 1))], axis=1)
    D = np.concatenate([(act[:, :, None] * Xa[:, None, :]).reshape(n, -1),
                        np.ones((n, 1))], axis=1)
    keep = np.min(np.abs(Z) / (np.linalg.norm(net.V, axis=1) * scale), axis=1) > 1e-9
    sol, *_ = np.linalg.lstsq(D[keep], Y[keep], rcond=None)  # (cols, m)
    blocks = sol[:-1].reshape(k, d + 1, -1)  # unit, [x, 1], output
    U = np.empty_like(net.U)
    V = np.empty_like(net.V)
    b = np.empty_like(net.b)
    for i in range(k):
        Ms = blocks[i].T  # (m, d + 1) = u_i [v_i, b_i]
        u, h, _ = _rank_one(Ms, n_ref=net.V[i])
        if h is None:
            return None
        U[:, i], V[i], b[i] = u, h[:-1], h[-1]
    new = TwoLayerNetwork(U, V, b=b, c=sol[-1])
    old_res = np.linalg.norm(Y - net.predict(X).reshape(Y.shape))
    new_res = np.linalg.norm(Y - new.predict(X).reshape(Y.shape))
    return new if new_res < old_res else None


# ---------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------
def extract(oracle, d=None, *, max_queries=None, time_limit=None, n_hidden=None, rng=None,
            input_scale: float = 1.0, tol=None, max_lines: int = 8,
            max_kinks: int = 4096, n_fidelity: int = 10_000, progress=None) -> Extraction:
    """Recover a one-hidden-layer ReLU network that one can only query (docs/algorithms.md 7).

    Parameters
    ----------
    oracle : callable, torch.nn.Module, sklearn estimator or path
        Anything :func:`relurecover.extract.as_oracle` opens: a callable from an
        ``(q, d)`` float64 array to ``(q,)`` or ``(q, m)`` outputs, a PyTorch module,
        a fitted scikit-learn ``MLPRegressor``, or a model file (state dict, TorchScript,
        ONNX, ``.skops``, ``.npz``). Extraction only ever calls it.
    d : int, optional
        Input dimension; read from the model's declared input shape when omitted.
    max_queries : int, optional
        The oracle is never asked more rows than this; a budget too small returns the
        units measured so far ("found j of k"), never a wrong unit.
    time_limit : float, optional
        Seconds; no batch of queries is sent after it.
    n_hidden : int, optional
        Expected width: checked against the width found (never required).
    rng : None, int or numpy.random.Generator
        Seeds the lines, the cells and the fresh inputs.
    input_scale : float, default=1.0
        Scale of the inputs of interest: the fresh inputs of the certificate are
        ``N(0, input_scale^2 I)`` and the first search range is a few
        ``input_scale sqrt(d)``.
    tol : float, optional
        ``exact`` needs the fidelity's ``max_error <= tol``; default
        ``max(2^-36, 2^6 precision)`` (the oracle's measured precision: ``2^-18`` for a
        float32 oracle).
    max_lines : int, default=8
        Lines searched at most; the search stops at the first line after the first
        whose kinks all lie on known hyperplanes.
    max_kinks : int, default=4096
        Dirty segments per line at most (bounds the search on oracles that are not
        piecewise linear).
    n_fidelity : int, default=10000
        Fresh inputs of the certificate.
    progress : callable, optional
        ``progress(stage, fraction)`` at each stage (``probe``, ``lines``, ``orient``,
        ``polish``, ``fidelity``), ``fraction`` in ``[0, 1]``: the command line's
        progress bar.

    Returns
    -------
    Extraction
    """
    from ._models import as_oracle

    t_start = time.perf_counter()
    fn, d, _ = as_oracle(oracle, d)
    if not (isinstance(input_scale, (int, float)) and np.isfinite(input_scale)
            and input_scale > 0):
        raise ValueError(f"`input_scale` must be a positive number, got {input_scale!r}.")
    if n_hidden is not None and (int(n_hidden) != n_hidden or n_hidden < 1):
        raise ValueError(f"`n_hidden` must be a positive integer or None, got {n_hidden!r}.")
    rng = check_random_state(rng)
    Q = QueryOracle(fn, d, max_queries=max_queries, time_limit=time_limit)
    if progress is not None and not callable(progress):
        raise TypeError(f"`progress` must be callable or None, got {type(progress).__name__}.")
    run = _Run(Q, d, float(input_scale), rng, t_start=t_start, progress=progress,
               n_fidelity=n_fidelity)
    return run.extract(n_hidden=n_hidden, tol=tol, max_lines=max_lines,
                       max_kinks=max_kinks)


#: fewest fresh queries a search of the residual (7.7) fits its hinge on
RESIDUAL_ROWS = 2000
#: share of the squared residual a new hinge must remove on other fresh queries
RESIDUAL_GAIN = 0.2
#: error assumed of a hyperplane from the residual (7.7) that kink points could not
#: measure again (the hinges fitted came within 2e-2 on the benchmark's networks)
HINGE_ERR = 2e-2
#: error assumed, after the polish, of a unit whose estimate was coarser (the polish
#: measures every unit again, 7.4)
POLISHED_ERR = 1e-3


class _Run:
    """One call of :func:`extract`: the oracle, the records, and the steps of
    docs/algorithms.md 7 as methods, each returning an :class:`Extraction` when the
    run ends there (None to go on)."""

    def __init__(self, Q, d, scale, rng, *, t_start, progress, n_fidelity):
        self.Q, self.d, self.scale, self.rng = Q, d, scale, rng
        self.t_start, self.progress, self.n_fidelity = t_start, progress, n_fidelity
        self.timings: dict = {}
        self.diag: dict = {}

    def report(self, stage, fraction):
        if self.progress is not None:
            self.progress(stage, fraction)

    def done(self, network, message, method, exact=False, fid=None):
        """The :class:`Extraction`, the network in the oracle's output units."""
        Q = self.Q
        self.report("done", 1.0)
        if network is not None and Q.out_scale != 1.0:
            s_ = Q.out_scale
            network = TwoLayerNetwork(network.U * s_, network.V, activation=network.activation,
                                      b=network.b, c=network.c * s_)
        self.timings["total"] = time.perf_counter() - self.t_start
        return Extraction(network=network, exact=bool(exact), n_queries=Q.n_queries,
                          queries=dict(Q.per_stage), fidelity=fid,
                          n_hidden=0 if network is None else network.n_hidden,
                          message=message, method=method, precision=Q.precision,
                          timings=self.timings, diagnostics=self.diag)

    def certify(self, net):
        """The fidelity on fresh inputs (step 6), or None when the budget is too small."""
        Q = self.Q
        n_fid = int(min(self.n_fidelity, max(0, Q.remaining)))
        if n_fid < min(self.n_fidelity, 100):
            return None
        Q.stage("fidelity")
        Xf = self.scale * self.rng.standard_normal((n_fid, self.d))
        return fidelity(Q, net, Xf)

    def extract(self, *, n_hidden, tol, max_lines, max_kinks):
        """Steps 1-6 in order."""
        out = self.probe()
        if out is not None:
            return out
        if tol is None:
            tol = max(2.0**-36, 2.0**6 * self.Q.precision)
        self.tol = tol
        if self.Q.m >= 2:
            out = self.gaussian_route(n_hidden)
            if out is not None:
                return out
        units, cells, out = self.lines(max_lines, max_kinks)
        if out is not None:
            return out
        if self.Q.low_precision:
            net, out = self.outputs_low(units)
            # a unit missed makes the orientation infeasible: the quiet lines then
            # use the orientation rounded from least squares
            guess = net if out is None else self.provisional_net()
            if guess is not None and self.quiet_lines(guess, units, max_kinks):
                net, out = self.outputs_low(units)
            if out is not None and self.more_lines(units, max_lines, max_kinks):
                net, out = self.outputs_low(units)
            k_found = len(units)
            added = self.residual_units(units) if out is None else 0
            if added:
                new, why = self.outputs_low(units, ending=False)
                if why is None:
                    net = new
                    self.diag["residual_new_units"] = added
                else:  # (the units found before keep their orientation)
                    units.truncate(k_found)
                    self.diag["residual_units_dropped"] = why
        else:
            net, out = self.orient(units, cells)
        if out is not None:
            return out
        net = self.polish(net, units)
        if self.Q.low_precision:
            net, k = self.second_look(net, units, max_kinks)
        else:
            k = len(units)
        return self.finish(net, k, n_hidden)

    def probe(self):
        """Step 1: the oracle's output width, scale and precision."""
        Q = self.Q
        try:
            Q.stage("probe")
            self.report("probe", 0.0)
            t0 = time.perf_counter()
            self.f_scale = _probe(Q, self.d, self.scale, self.rng)
            self.timings["probe"] = time.perf_counter() - t0
        except BudgetExhausted as exc:
            return self.done(None, f"not recovered: {exc} while probing the oracle", "none")
        except NotAnOracle as exc:
            return self.done(None, f"not recovered: {exc}", "none")
        if Q.precision > 1e-4:
            return self.done(
                None, f"not recovered: the oracle's answers are not affine on a short "
                f"segment even to {Q.precision:.1e} relative (a ReLU network's are, to "
                f"rounding): the outputs are random, noisy or not piecewise linear", "none")
        self.diag["precision"] = Q.precision
        return None

    def gaussian_route(self, n_hidden):
        """Step 2: outputs that span the units, from random queries (7.5)."""
        Q = self.Q
        t0 = time.perf_counter()
        try:
            net, res = _gaussian_route(Q, self.d, self.scale, self.rng, n_hidden, Q.m)
            self.diag["gaussian_route"] = res.message
            if net is not None:
                fid = self.certify(net)
                if fid is not None and fid.max_error <= self.tol:
                    self.timings["gaussian queries"] = time.perf_counter() - t0
                    return self.done(
                        net, f"exact: {net.n_hidden} units from random queries (the "
                        f"outputs span the hidden units); max output error "
                        f"{fid.max_error:.1e} on {fid.n_inputs} fresh inputs",
                        "gaussian-queries", True, fid)
        except BudgetExhausted:
            pass
        except (ValueError, np.linalg.LinAlgError) as exc:
            self.diag["gaussian_route"] = f"failed: {exc}"
        self.timings["gaussian queries"] = time.perf_counter() - t0
        return None

    def partial(self, units, why, t0):
        """The units measured so far, when the budget ended the search."""
        m = self.Q.m
        idx = [i for i in range(len(units)) if units.pair[i] is not None]
        net = None
        if idx:
            Hm = np.array([units.H[i] for i in idx])
            U = np.stack([units.u[i] for i in idx], axis=1)
            net = TwoLayerNetwork(U, Hm[:, :-1], b=Hm[:, -1], c=np.zeros(m))
        note = ("" if net is None else ". The units returned have their hyperplanes and "
                "output weights measured; which side of each hyperplane is active is fixed "
                "only once all are found, so `network` is not the oracle's function")
        self.timings["lines"] = time.perf_counter() - t0
        what = (f"found {len(idx)} of at least {len(units)} units" if len(units)
                else "found no unit")
        return self.done(net, f"not recovered: {what} ({why}){note}", "chosen-queries")

    def lines(self, max_lines, max_kinks):
        """Steps 3 and 4 (7.1-7.2): lines, each new unit located roughly then measured
        precisely, so that the next line's kinks are matched against precise
        hyperplanes. Returns ``(units, cells, None)`` or an ending."""
        Q, d, scale, rng, f_scale = self.Q, self.d, self.scale, self.rng, self.f_scale
        units = _Units()
        cells = _Cells(Q, f_scale)
        lines = self.diag["lines"] = []
        verdict = None
        failed: dict = {}
        t0 = time.perf_counter()
        rho = scale
        try:
            for n_lines in range(1, max_lines + 1):
                self.report("lines", 0.1 + 0.6 * (n_lines - 1) / max_lines)
                k_before = len(units)
                line, lk, n_new, n_matched, n_failed = _search_line(
                    Q, units, d, scale, f_scale, rng, max_kinks)
                lines.append({"kinks": int(lk.t.size), "new": n_new, "matched": n_matched,
                              "failed": n_failed, "unresolved": lk.unresolved})
                Q.stage("measure")
                for i in range(k_before, len(units)):
                    if units.pair[i] is not None:
                        continue  # measured from its kink points (low precision)
                    why = _measure_unit(Q, units, i, cells, rho, f_scale)
                    if why is not None:
                        failed[i] = why
                # (a low-precision oracle fails to place a few kinks of every line:
                # units missed that way are looked for on the quiet lines, 7.7)
                allowed = max(1, lk.t.size // 20) if Q.low_precision else 0
                if n_lines >= 2 and n_new == 0 and n_failed <= allowed:
                    break
            else:
                last = lines[-1]
                if (Q.low_precision
                        and last["new"] + last["failed"] <= max(2, last["kinks"] // 10)):
                    # a low-precision oracle whose lines have all but settled: the few
                    # kinks left unplaced do not make a deeper network; the quiet lines
                    # and the certificate decide (7.7)
                    self.diag["lines_unsettled"] = int(last["new"] + last["failed"])
                    verdict = None
                else:
                    verdict = (f"kinks keep appearing off the {len(units)} hyperplanes found "
                               f"after {max_lines} lines: the oracle is not a one-hidden-"
                               f"layer ReLU network (a second hidden layer bends the "
                               f"hyperplanes of its units)")
                    if Q.low_precision:
                        verdict += (f", or its precision ({Q.precision:.1e} relative) is "
                                    f"too coarse to place them")
            # units measured before later units were found: re-measure those whose two
            # cells a later hyperplane separates or comes too close to
            Q.stage("measure")
            for _ in range(2):
                Hm = units.matrix()
                redo = [i for i in range(len(units)) if units.pair[i] is None
                        or (units.pair[i] is not _FROM_KINK_POINTS
                            and not _pair_valid(Hm, i, units.pair[i]))]
                for i in redo:
                    why = _measure_unit(Q, units, i, cells, rho, f_scale)
                    if why is not None:
                        failed[i] = why
                        units.pair[i] = None
                if not redo:
                    break
        except NotPiecewiseLinear as exc:
            self.timings["lines"] = time.perf_counter() - t0
            return units, cells, self.done(
                None, f"not recovered: the oracle is not a piecewise-linear (ReLU) "
                f"network: {exc}", "chosen-queries")
        except BudgetExhausted as exc:
            return units, cells, self.partial(units, str(exc), t0)
        self.timings["lines"] = time.perf_counter() - t0
        if len(units) == 0:
            # (a float32 oracle's rounding can hide kinks that float64 shows: it is
            # not called affine)
            why = ("the oracle is affine on every line searched" if not Q.low_precision
                   else f"if there are any, none stands out of the answers' rounding or "
                   f"noise, {Q.precision:.1e} relative")
            return units, cells, self.done(
                None, f"not recovered: no kink on any line ({why})", "chosen-queries")
        if verdict is not None:
            return units, cells, self.done(None, "not recovered: " + verdict,
                                           "chosen-queries")
        failed = {i: r for i, r in failed.items() if units.pair[i] is None}
        if failed:
            return units, cells, self.partial(
                units, "; ".join(f"unit {i}: {r}" for i, r in failed.items()), t0)
        return units, cells, None

    def orient(self, units, cells):
        """Step 5 (7.3): which side of each hyperplane is active, and the output bias.
        Returns ``(network, None)`` or ``(None, ending)``."""
        m = self.Q.m
        Hm = units.matrix()
        U = np.stack(units.u, axis=1)
        cells = cells.valid(Hm)
        self.report("orient", 0.75)
        t0 = time.perf_counter()
        flip, solver = _orient(U, Hm, cells, self.Q.precision)
        V, b, out = self.oriented(U, Hm, flip, solver)
        if out is not None:
            return None, out
        net0 = TwoLayerNetwork(U, V, b=b, c=np.zeros(m))
        X = np.array([cc[0] for cc in cells])
        F = np.array([cc[3] for cc in cells])
        c = np.median(F - net0.predict(X).reshape(F.shape), axis=0)
        self.timings["orient"] = time.perf_counter() - t0
        return TwoLayerNetwork(U, V, b=b, c=c), None

    def outputs_low(self, units, ending=True):
        """Step 5 for a low-precision oracle (7.7): output weights, linear part and
        bias by least squares on random queries, the flips from the linear part (7.3),
        then the output weights and bias again with the units oriented."""
        Q = self.Q
        self.report("orient", 0.75)
        t0 = time.perf_counter()
        Hm = units.matrix()
        try:
            Q.stage("outputs")
            S, W, _, X, Y = fit_outputs(Q, Hm, self.scale, self.rng)
        except BudgetExhausted as exc:
            return None, self.partial(units, str(exc), t0) if ending else str(exc)
        self._fit = (S, W, Hm)
        flip, solver = _flips(S, Hm, W, Q.precision)
        V, b, out = self.oriented(S, Hm, flip, solver, ending=ending)
        if out is not None:
            return None, out
        V, b, U, c, flipped = _better_flips(X, Y, V, b)
        if flipped:
            self.diag["flips_corrected"] = flipped
        self.timings["orient"] = time.perf_counter() - t0
        return TwoLayerNetwork(U, V, b=b, c=c), None

    def oriented(self, U, Hm, flip, solver, ending=True):
        """``(V, b, None)``: the hyperplanes with the flips applied, or ``(None, None,
        ending)`` when no orientation was found (7.3); the ending is only the reason
        when ``ending`` is False (the run goes on)."""
        self.diag["orientation"] = solver
        if flip is None and not ending:
            return None, None, solver
        if flip is None:
            net = TwoLayerNetwork(U, Hm[:, :-1], b=Hm[:, -1], c=np.zeros(self.Q.m))
            return None, None, self.done(net, f"not recovered: {solver}", "chosen-queries")
        sgn = np.where(flip, -1.0, 1.0)
        return Hm[:, :-1] * sgn[:, None], Hm[:, -1] * sgn, None

    def provisional_net(self):
        """The units of the last output fit oriented by rounding the least-squares flips
        (only to plan the quiet lines), or None."""
        fit = getattr(self, "_fit", None)
        if fit is None:
            return None
        S, W, Hm = fit
        k, d = Hm.shape[0], Hm.shape[1] - 1
        if k >= d:
            return None
        phi, *_ = np.linalg.lstsq(_flip_system(S, Hm), W.ravel(), rcond=None)
        sgn = np.where(phi > 0.5, -1.0, 1.0)
        return TwoLayerNetwork(S, Hm[:, :-1] * sgn[:, None], b=Hm[:, -1] * sgn,
                               c=np.zeros(S.shape[0]))

    def more_lines(self, units, max_lines, max_kinks):
        """Step 5d for a low-precision oracle (7.7): when the orientation is infeasible
        (a unit is still missing, and there is no quiet region when ``k >= d``), up to
        ``max_lines`` more random lines, until one has no new unit and no kink left
        unplaced. Returns the number of new units (added to ``units``)."""
        Q, d, scale, rng = self.Q, self.d, self.scale, self.rng
        new = 0
        self.report("more lines", 0.78)
        try:
            for _ in range(max_lines):
                _, _, n_new, _, n_failed = _search_line(Q, units, d, scale, self.f_scale,
                                                        rng, max_kinks)
                new += n_new
                if n_new == 0 and n_failed == 0:
                    break
        except (BudgetExhausted, NotPiecewiseLinear):
            pass
        self.diag["more_lines_new_units"] = new
        return new

    def residual_units(self, units, max_units: int = 4):
        """Step 5e for a low-precision oracle (7.7): units that no line found, from the
        answers the units found leave.

        A weak unit's kinks can drown in the rounding of the sum on every line (and
        with ``k >= d`` there is no quiet region). On fresh random queries the answers
        are then ``S relu(H [x; 1]) + W x + c`` (the units found, their hyperplanes
        measured) plus the missing unit's term: :func:`fit_hinge` finds its
        hyperplane with the known units' terms in the fit, and
        :func:`refine_hyperplane` measures it again from kink points where it can. A
        hinge is added when it is not a hyperplane already found and, as one more
        column on ``n / 2`` fresh queries, takes ``RESIDUAL_GAIN`` (a fifth) at least
        of the squared residual away (a hyperplane fitted to noise takes about
        ``1 / n``); at most ``max_units``, within the budget. Returns the number of
        units added.
        """
        Q, d, scale, rng = self.Q, self.d, self.scale, self.rng
        self.report("residual", 0.79)
        added = 0
        log = self.diag.setdefault("residual_units", [])
        try:
            for _ in range(max_units):
                Hm = units.matrix()
                k = Hm.shape[0]
                n = max(20 * (d + 1) + k, RESIDUAL_ROWS)
                need = n + n // 2 + refit_queries(k + 1) + 3 * (k + d + 2) + self.n_fidelity
                if Q.remaining < need:
                    break
                Q.stage("residual")
                X = scale * rng.standard_normal((n, d))
                Y = Q(X)
                B = np.maximum(X @ Hm[:, :-1].T + Hm[:, -1], 0.0)
                h, g, rms, rms0, v = fit_hinge(X, Y, B)
                log.append({"rms_before": rms0, "rms_after": rms})
                if h is None or units.same(h, 1e-2):
                    break
                # checked on fresh queries: the hinge as one more column must explain
                # a share of what the units found leave that noise never would
                Xv = scale * rng.standard_normal((n // 2, d))
                Yv = Q(Xv)
                gain = _column_gain(Xv, Yv, Hm, h)
                log[-1]["validation_gain"] = gain
                if not gain >= RESIDUAL_GAIN:
                    break
                u = g * v
                err = HINGE_ERR
                Q.stage("refine")
                refined = refine_hyperplane(Q, h, u, -h[-1] * h[:-1], scale, rng,
                                            f_scale=self.f_scale, err0=err)
                log[-1]["refined"] = refined is not None
                if refined is not None:
                    h, err = refined
                units.H.append(h)
                units.u.append(u)
                units.err.append(err)
                units.where.append(None)
                units.rough.append((h, err))
                units.pair.append(_FROM_KINK_POINTS)
                added += 1
        except (BudgetExhausted, NotPiecewiseLinear):
            pass
        return added

    def second_look(self, net, units, max_kinks):
        """Step 5f for a low-precision oracle (7.7): quiet lines and the residual
        searched again with the polished network's units (measured again in quiet
        cells, 7.4).

        On the first quiet lines the stronger units still missing set the tolerance
        of the kink search (it grows with the slopes on the line), and a much weaker
        unit's kink can stay below it; before the polish, the errors of the
        hyperplanes measured from kink points leave a residual that can hide the
        weakest unit missed. With every unit found so far off on the quiet lines, and
        the residual smaller after the polish, units found there are added, and the
        outputs and the polish are run again. Returns the network and its width.
        """
        Hn = np.c_[net.V, net.b] / np.linalg.norm(net.V, axis=1)[:, None]
        measured = self.diag.get("refined_in_quiet_cells") or self.diag.get("polished")
        errs = [min(e, POLISHED_ERR) if measured else e for e in units.err]
        again = _Units(H=list(Hn), u=[net.U[:, i] * np.linalg.norm(net.V[i])
                                      for i in range(net.n_hidden)],
                       err=errs, where=[None] * net.n_hidden,
                       rough=[(h, e) for h, e in zip(Hn, errs)],
                       pair=[_FROM_KINK_POINTS] * net.n_hidden)
        quiet_before = self.diag.get("quiet_lines_new_units", 0)
        quiet = self.quiet_lines(net, again, max_kinks)
        self.diag["quiet_lines_new_units"] = quiet_before + quiet
        residual = self.residual_units(again)
        if not quiet + residual:
            return net, net.n_hidden
        new, out = self.outputs_low(again, ending=False)
        if out is not None:
            self.diag["second_look"] = f"units found, but {out}: not kept"
            return net, net.n_hidden
        new = self.polish(new, again)
        self.diag["second_look_new_units"] = quiet + residual
        self.diag["residual_new_units"] = self.diag.get("residual_new_units", 0) + residual
        return new, new.n_hidden

    def quiet_lines(self, net, units, max_kinks, n_lines: int = 2):
        """Step 5c for a low-precision oracle (7.7): lines where every unit found is off.

        There ``F = c`` exactly (every ReLU returns 0), so the kinks of units that the
        random lines missed (a weak unit's kink is lost in the rounding of the sum over
        the others) stand out. The lines lie in the null space of the normals found
        (``k < d``), through the least-norm point with every ``n_l . x + b_l = -rho``.
        Returns the number of new units (added to ``units``).
        """
        Q, d, scale, rng = self.Q, self.d, self.scale, self.rng
        k = net.n_hidden
        if k >= d:
            return 0
        nrm = np.linalg.norm(net.V, axis=1)
        N, b = net.V / nrm[:, None], net.b / nrm
        if np.linalg.cond(N) > 1e8:
            return 0
        Z = np.linalg.svd(N, full_matrices=True)[2][k:].T  # (d, d - k) null space
        margin = 4.0 * scale
        x_ls, *_ = np.linalg.lstsq(N, -margin - b, rcond=None)
        # points within margin / 1.5 of the kink along its hyperplane stay quiet
        radii = (scale / 8.0, margin / 1.5, margin / 1.5)
        f_line = max(float(np.max(np.abs(net.c))), 1e-3 * self.f_scale)
        new = 0
        self.report("quiet lines", 0.77)
        try:
            for _ in range(n_lines):
                x0 = x_ls + Z @ (scale * rng.standard_normal(d - k))
                line = _Line(Q, d, scale, rng, x0=x0, e=Z @ rng.standard_normal(d - k))
                _, _, n_new, _, _ = _search_line(Q, units, d, scale, self.f_scale, rng,
                                                 max_kinks, line=line, f_line=f_line,
                                                 radii=radii)
                new += n_new
                if n_new == 0:
                    break
        except (BudgetExhausted, NotPiecewiseLinear):
            pass
        self.diag["quiet_lines_new_units"] = new
        return new

    def polish(self, net, units):
        """Step 5b (7.4): units measured again in quiet cells (every other unit off),
        then a global least-squares polish when the network is small."""
        Q = self.Q
        self.report("polish", 0.8)
        t0 = time.perf_counter()
        reserve = min(self.n_fidelity, 100)
        try:
            quiet = _refine_quiet_cells(Q, net, [units.err[i] for i in range(len(units))],
                                        self.scale, self.f_scale, reserve=reserve)
        except BudgetExhausted:
            quiet = None
        if quiet is not None:
            net = quiet
            self.diag["refined_in_quiet_cells"] = True
        if Q.low_precision and Q.remaining >= refit_queries(net.n_hidden) + reserve:
            try:
                Q.stage("outputs")
                U, c = refit_outputs(Q, net.V, net.b, self.scale, self.rng)
                net = TwoLayerNetwork(U, net.V, b=net.b, c=c)
            except BudgetExhausted:
                pass
        try:
            polished = _polish(Q, net, self.scale, self.rng, reserve=reserve)
        except BudgetExhausted:
            polished = None
        if polished is not None:
            net = polished
            self.diag["polished"] = True
        self.timings["polish"] = time.perf_counter() - t0
        return net

    def finish(self, net, k, n_hidden):
        """Step 6: the certificate on fresh inputs, and the verdict."""
        Q = self.Q
        self.report("fidelity", 0.9)
        t0 = time.perf_counter()
        try:
            fid = self.certify(net)
        except BudgetExhausted:
            fid = None
        self.timings["fidelity"] = time.perf_counter() - t0
        width_note = ""
        if n_hidden is not None and int(n_hidden) != k:
            width_note = f" (you expected {int(n_hidden)})"
        if fid is None:
            return self.done(net, f"not certified: {k} units found{width_note}, but the "
                             f"budget left no fresh queries for the certificate",
                             "chosen-queries", False, None)
        exact = fid.max_error <= self.tol
        from_residual = self.diag.get("residual_new_units", 0)
        if from_residual:
            # (their kinks were below the rounding on every line: the residual is the
            # only evidence, and it holds to the oracle's precision, 7.7)
            width_note += f" ({from_residual} of them in the residual only)"
        if exact:
            msg = (f"exact: {k} units found{width_note} with {Q.n_queries} queries; max "
                   f"output error {fid.max_error:.1e} ({fid.bits:.1f} bits) on "
                   f"{fid.n_inputs} fresh inputs")
        else:
            msg = (f"not certified: {k} units found{width_note}, but the max output error "
                   f"on fresh inputs is {fid.max_error:.1e} > tol = {self.tol:.1e}")
        return self.done(net, msg, "chosen-queries", exact, fid)
