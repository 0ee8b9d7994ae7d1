"""Extraction from low-precision (float32) oracles: hyperplanes from kink points (docs/algorithms.md 7.7).

A float32 oracle rounds each answer to about ``2^-24`` of its size, and its inputs too.
Finite differences then measure a Jacobian to a few times ``1e-5`` at best, and a step
that crossed an unseen hyperplane spoils it without a clear sign; the jumps of 7.2 and
7.4 give hyperplanes good to ``1e-3`` or worse. Positions are measured far better than
slopes: the kink of ``g(s) = r . F(q + s n)`` across hyperplane ``i`` lies where the two
affine pieces beside it meet, to the rounding of ``g`` divided by the jump ``||u_i||``.
So each hyperplane is measured from points on it:

- :func:`kink_offsets`: for many points ``q`` (near the hyperplane), six queries at
  ``s = +-a, +-2a, +-3a`` along the normal; the two inner pairs give the two pieces and
  their meeting point, the outer points check that each side is one piece (to a
  tolerance read off the residuals themselves), and the jump of the slope must be the
  unit's. Points where a kink of another unit falls inside the window fail a check and
  are dropped; a kink found outside ``[-a, a]`` moves the window there.
- :func:`refine_hyperplane`: the points ``p0 +- R t_j`` along an orthonormal basis
  ``t_j`` of the rough hyperplane give, with their offsets ``s_j^+-``, the correction of
  the normal along each ``t_j`` in closed form (``-(s_j^+ - s_j^-) / 2R``) and of the
  bias from their mean. Rounds go outwards from ``p0`` (a rough hyperplane is
  corrected where the offsets still fit the window) to ``R = rho sqrt(d)``, the size of
  a typical input, where the error in the normal is about the offsets' error over
  ``R``. Sixteen fresh points on the result measure its error honestly.
- :func:`fit_outputs`: with the hyperplanes known, ``F(x) = sum_i s_i relu(n_i . x +
  b_i) + W x + c`` is linear in ``(s, W, c)``: ``k + d + 1`` unknowns per output, fitted
  by least squares on ``3 (k + d + 1)`` random queries. ``relu(z) = relu(-z) + z``: the
  orientation of the units is read from ``W`` (7.3) by the caller;
  :func:`refit_outputs` fits ``(U, c)`` again once the units are oriented and measured.
"""

from __future__ import annotations

import numpy as np

from ._lines import NotPiecewiseLinear, find_kinks
from ._oracle import QueryOracle

__all__ = ["kink_offsets", "refine_hyperplane", "fit_outputs", "refit_outputs",
           "refit_queries", "output_lstsq", "fit_hinge"]

_WINDOW = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])


def _pieces(g, a):
    """Meeting point, slopes and check residuals of the six values ``g`` (rows)."""
    sl = (g[:, 2] - g[:, 1]) / a
    sr = (g[:, 4] - g[:, 3]) / a
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (g[:, 3] - g[:, 2] - (sr + sl) * a) / (sl - sr)
    res = np.maximum(np.abs(g[:, 0] - (g[:, 1] - sl * a)),
                     np.abs(g[:, 5] - (g[:, 4] + sr * a)))
    return x, sr - sl, res


def kink_offsets(Q: QueryOracle, q, n, r, jump, a, *, rounds: int = 3, tau=None,
                 jump_rtol: float = 0.3):
    """Offsets ``s`` along ``n`` of the kink of one unit near each row of ``q`` (7.7).

    Parameters
    ----------
    Q : QueryOracle
    q : ndarray of shape (N, d)
        Points near the hyperplane.
    n : ndarray of shape (d,)
        Unit normal of the (rough) hyperplane.
    r : ndarray of shape (m,)
        Output projection: ``g = r . F``.
    jump : float
        Expected ``|slope change|`` of ``g`` along ``n`` across the hyperplane.
    jump_rtol : float, default=0.3
        Relative tolerance on it (a second kink inside the window adds its own).
    a : float
        Window step: the six queries of a point sit at ``s = centre + a {-3..3}``.
    rounds : int, default=3
        Windows tried per point (each moved to the kink found outside the last).
    tau : float, optional
        Tolerance of the one-piece checks; default six times the median residual of
        the first round (the rounding of ``g``).

    Returns
    -------
    s : ndarray of shape (N,)
        Offsets; NaN where every window failed a check.
    tau : float
        The tolerance used.
    jump : float
        The median slope change of the points accepted (the given ``jump`` if fewer
        than three).
    """
    N, d = q.shape
    s = np.full(N, np.nan)
    centre = np.zeros(N)
    todo = np.arange(N)
    first = True
    for _ in range(rounds):
        if todo.size == 0:
            break
        off = centre[todo, None] + a * _WINDOW[None, :]  # (t, 6)
        P = q[todo, None, :] + off[:, :, None] * n[None, None, :]
        g = (Q(P.reshape(-1, d)) @ r).reshape(todo.size, _WINDOW.size)
        x, dslope, res = _pieces(g, a)
        if tau is None:
            floor = 4.0 * Q.precision * float(np.max(np.abs(g)))
            tau = max(6.0 * float(np.median(res)), floor)
        if first:
            # a rough jump measured across two kinks is wrong: when most one-piece
            # windows agree on another slope change, that one is the unit's
            one = (res <= tau) & (np.abs(x) <= a)
            if np.count_nonzero(one) >= max(3, todo.size // 2):
                jm = float(np.median(np.abs(dslope[one])))
                if np.mean(np.abs(np.abs(dslope[one]) - jm) <= 0.1 * jm) >= 0.5:
                    jump = jm
        # (the rounding moves the slope change by about 2 tau / a: a weak unit's
        # window is checked to that)
        jump_tol = max(jump_rtol * jump, 2.0 * tau / a)
        one_kink = (res <= tau) & (np.abs(np.abs(dslope) - jump) <= jump_tol)
        ok = one_kink & (np.abs(x) <= a)
        if first and np.count_nonzero(ok) >= 3:
            jump = float(np.median(np.abs(dslope[ok])))
        first = False
        s[todo[ok]] = centre[todo[ok]] + x[ok]
        move = ~ok & np.isfinite(x) & (np.abs(x) <= 4.0 * a)
        centre[todo[move]] += x[move]
        todo = todo[move]
    return s, tau, jump


def _tangent_basis(n):
    """An orthonormal basis of the hyperplane ``n^perp`` (columns, ``(d, d - 1)``)."""
    Qm, _ = np.linalg.qr(n[:, None], mode="complete")
    return Qm[:, 1:]


def _anchor(Q, p0, n, r, scale, f_scale):
    """The kink nearest ``p0`` on the line ``p0 + s n`` (``|s| <= scale / 10``), or None.

    The rough hyperplane's kink point may lie on another unit's hyperplane close by
    (the rough jump was measured across both): the rounds must start on this unit's.
    """
    def g(t):
        return Q(p0[None, :] + np.multiply.outer(np.atleast_1d(t), n)) @ r

    try:
        lk = find_kinks(g, scale / 20.0, precision=Q.precision, f_scale=f_scale,
                        n_grid=9, max_kinks=64, max_doublings=1)
    except NotPiecewiseLinear:
        return None
    if lk.t.size == 0:
        return None
    return p0 + float(lk.t[np.argmin(np.abs(lk.t))]) * n


def _round_at(Q, n, b, p0, T, R, r, jump, a, tries, missing=0.1):
    """One refinement round at radius ``R``: the corrected ``(n, b)``, or None.

    At most a fraction ``missing`` of the directions may stay unmeasured (no
    correction along them)."""
    p0 = p0 - (n @ p0 + b) * n
    j_all = np.arange(T.shape[1])
    s_plus = np.full(j_all.size, np.nan)
    s_minus = np.full(j_all.size, np.nan)
    radius = np.full(j_all.size, R)
    todo = j_all
    tau = None
    rtol = 0.3
    for _ in range(tries):
        Rt = radius[todo]
        q = np.concatenate([p0 + (Rt[:, None] * T[:, todo].T),
                            p0 - (Rt[:, None] * T[:, todo].T)])
        s, tau, jump = kink_offsets(Q, q, n, r, jump, a, tau=tau, jump_rtol=rtol)
        rtol = 0.1  # the jump is now measured: a second kink inside shows
        s_plus[todo], s_minus[todo] = s[:todo.size], s[todo.size:]
        good = np.isfinite(s_plus) & np.isfinite(s_minus)
        # each pair's mean is the same offset (that of p0): a pair whose mean is far
        # from the others' met another unit's kink undetected
        avg = 0.5 * (s_plus + s_minus)
        if np.count_nonzero(good) >= 8:
            centre = float(np.median(avg[good]))
            spread = 1.4826 * float(np.median(np.abs(avg[good] - centre)))
            good &= np.abs(avg - centre) <= max(6.0 * spread, 1e-300)
        todo = j_all[~good]
        if todo.size == 0:
            break
        # try points nearer p0 on those directions
        radius[todo] *= 0.6
        s_plus[todo] = s_minus[todo] = np.nan
    if todo.size > max(missing * j_all.size, 1.0 if missing > 0 else 0.0):
        return None, jump
    both = np.isfinite(s_plus) & np.isfinite(s_minus)
    mean_avg = float(np.mean(0.5 * (s_plus[both] + s_minus[both])))
    # the few directions without a clean pair: one side if it has a kink, else no
    # correction (the check points of refine_hyperplane measure what is left)
    delta = np.zeros(j_all.size)
    delta[both] = -(s_plus[both] - s_minus[both]) / (2.0 * radius[both])
    plus = ~both & np.isfinite(s_plus)
    minus = ~both & ~plus & np.isfinite(s_minus)
    delta[plus] = -(s_plus[plus] - mean_avg) / radius[plus]
    delta[minus] = (s_minus[minus] - mean_avg) / radius[minus]
    beta = -mean_avg - delta @ (T.T @ p0)
    n_new = n + T @ delta
    b_new = b + beta
    norm = np.linalg.norm(n_new)
    return (n_new / norm, b_new / norm, p0), jump


def refine_hyperplane(Q: QueryOracle, h, u, p0, scale, rng, *, f_scale=1.0, a=None,
                      tries: int = 4, moves: int = 2, max_err=None, radii=None, err0=1e-2,
                      a_max=None, f_local=None,
                      n_check: int = 16):
    """Hyperplane ``h = [n, b]`` measured again from kink points on it (7.7).

    Parameters
    ----------
    Q : QueryOracle
    h : ndarray of shape (d + 1,)
        Rough hyperplane (any scale; ``n`` is normalised).
    u : ndarray of shape (m,)
        Rough output weights of the unit (``||u||`` is the jump along ``n``).
    p0 : ndarray of shape (d,)
        A point near the hyperplane (the kink where it was found).
    scale : float
        Input scale ``rho``.
    rng : numpy.random.Generator
        Draws the check points.
    f_scale : float, default=1.0
        Typical size of the answers (their rounding sets the window).
    a : float, optional
        Window step of :func:`kink_offsets`. Default: long enough that the rounding of
        the answers moves the measured slope change by under a few per cent
        (``2^9 precision f_scale / ||u||``), at least ``scale / 1000`` and at most
        ``a_max``.
    f_local : float, optional
        Size of the answers near ``p0`` (default ``f_scale``): the tolerance of the
        search for the kink nearest ``p0`` (small where every other unit is off).
    a_max : float, optional
        Longest default window; ``scale / 200`` (a longer window meets other units'
        kinks more often), ``scale / 50`` where the other units are off (7.7).
    tries : int, default=4
        Radii tried per basis direction (shrunk each time a window fails); up to a
        tenth of the directions may stay unmeasured (no correction along them).
    moves : int, default=2
        When the first round fails (another hyperplane close to ``p0`` spoils most
        windows), ``p0`` is moved along the rough hyperplane by ``scale / 2`` and the
        round tried again, at most this many times.
    err0 : float, default=1e-2
        Expected relative error of ``h`` (it sets the first radius).
    radii : sequence of float, optional
        Radii of the rounds; those at the last radius measure every direction.
        Default: a rough hyperplane is corrected near ``p0`` first (the offsets of
        the points, the radius times the error over ``sqrt(d)``, must fit the
        window), but not so near that the rounding of the offsets (measured at eight
        points next to ``p0``), ``sqrt(d)`` times their error over the radius,
        exceeds a quarter of ``err0`` (at least
        ``scale / 8``), then eight times further each round up to ``scale sqrt(d)``, the
        size of a typical input, and that round twice (the second
        from points moved along the hyperplane: its windows start centred, and a
        direction spoilt by another unit's kink in the first, measured nearer
        ``p0`` with less leverage, is measured afresh; kept only if it succeeds), three
        times in all.
        A unit found where every other unit is off (7.7) keeps its points there.
    max_err : float, optional
        A result whose check points put its error above this is refused: the windows
        met other units' kinks too often to trust it. Default ``2e-5 f_scale / ||u||``
        (what matters is the unit's output error ``||u|| err``), within
        ``[1e-5, 0.1]``.
    n_check : int, default=16
        Fresh points on the result that measure its error (with the difference
        between the last two looks at the last radius).

    Returns
    -------
    (h, err) or None
        The refined unit-normal hyperplane and its estimated relative error
        (``sqrt(d)`` times the rms offset of the check points over their radius), or
        None when a direction could not be measured.
    """
    h = np.asarray(h, dtype=float)
    nrm = np.linalg.norm(h[:-1])
    n, b = h[:-1] / nrm, h[-1] / nrm
    d = n.size
    u = np.asarray(u, dtype=float)
    jump = float(np.linalg.norm(u))
    if jump == 0 or not np.isfinite(jump):
        return None
    r = u / jump
    if a is None:
        a = float(np.clip(512.0 * Q.precision * f_scale / jump, scale / 1000.0,
                          scale / 200.0 if a_max is None else a_max))
    if d == 1:  # the hyperplane is the kink point itself, which the line search placed
        p = float(np.asarray(p0, dtype=float)[0])
        # (to the rounding of the answers over the jump, as the kink search places it)
        err = 64.0 * Q.precision * (f_scale / jump + abs(p)) / scale
        return np.array([n[0], -n[0] * p]), err
    p = _anchor(Q, np.asarray(p0, dtype=float), n, r, scale,
                f_scale if f_local is None else f_local)
    if p is None:
        return None
    b = -float(n @ p)  # through the kink point, which is placed far better than b
    T = _tangent_basis(n)
    if radii is None:
        R_big = scale * np.sqrt(d)
        # the rounding of the offsets, sigma (measured at eight points next to p0),
        # adds sqrt(d) sigma / R to the error: the first radius keeps that below a
        # quarter of err0, unless the offsets, R err0 / sqrt(d), would then not fit
        # the window
        w = T @ rng.standard_normal((d - 1, 8))
        w *= a / np.linalg.norm(w, axis=0)
        s8, *_ = kink_offsets(Q, p[None, :] + w.T, n, r, jump, a)
        s8 = s8[np.isfinite(s8)]
        sigma = float(np.std(s8)) if s8.size >= 4 else 64.0 * Q.precision * f_scale / jump
        e0 = max(err0, 1e-12)
        R = min(4.0 * sigma * np.sqrt(d) / e0, a * np.sqrt(d) / e0)
        R = float(np.clip(R, scale / 8.0, R_big))
        radii = []
        while R < R_big:
            radii.append(R)
            R *= 8.0
        radii += [R_big] * 3
    radii = tuple(float(R) for R in radii)
    R_big = radii[-1]
    first_big = radii.index(R_big)
    e = max(float(err0), 1e-12)
    gap = 0.0
    for i, R in enumerate(radii):
        # the window holds the offsets the error so far allows (R e / sqrt(d)); the
        # rounds at the last radius measure every direction (one left out keeps the
        # error of the rounds before), and after the first of them are second looks,
        # from points moved along the hyperplane, kept only when they succeed
        a_i = float(np.clip(2.0 * R * e / np.sqrt(d), a, max(a, scale / 50.0)))
        last = i >= first_big
        if i > first_big:
            w = T @ rng.standard_normal(d - 1)
            p_before, p = p, p + min(scale, 0.1 * R) * w / np.linalg.norm(w)
        out, jump = _round_at(Q, n, b, p, T, R, r, jump, a_i, 2 * tries if last else tries,
                              missing=0.0 if last else 0.1)
        for _ in range(moves if i == 0 and not last else 0):
            if out is not None:
                break
            w = T @ rng.standard_normal(d - 1)
            p = p + 0.5 * scale * w / np.linalg.norm(w)
            out, jump = _round_at(Q, n, b, p, T, R, r, jump, a_i, tries)
        if out is None:
            if i > first_big:
                p = p_before
                break
            return None
        if i > first_big:
            # two looks from different points must agree: their difference bounds
            # the error of the last (an error the check points can miss)
            gap = max(gap, float(np.linalg.norm(np.r_[out[0] - n, (out[1] - b) / scale])))
        n, b, p = out
        T = _tangent_basis(n)
        e /= 8.0
    # the check: offsets of fresh points on the result at the last radius
    w = rng.standard_normal((n_check, d - 1))
    w *= R_big / np.linalg.norm(w, axis=1, keepdims=True)
    p = p - (n @ p + b) * n
    s, *_ = kink_offsets(Q, p + w @ T.T, n, r, jump, a, jump_rtol=0.1)
    s = s[np.isfinite(s)]
    if s.size < 0.75 * n_check:  # (a check point off the hyperplane finds no kink)
        return None
    err = max(float(np.sqrt(d) * np.sqrt(np.mean(s**2)) / R_big), gap)
    if max_err is None:
        max_err = float(np.clip(2e-5 * f_scale / jump, 1e-5, 0.1))
    if err > max_err:
        return None
    return np.r_[n, b], max(err, 4.0 * Q.precision)


def fit_outputs(Q: QueryOracle, Hm, scale, rng):
    """``(S, W, c)`` with ``F(x) = S relu(Hm [x; 1]) + W x + c`` by least squares (7.7).

    ``3 (k + d + 1)`` queries ``N(0, scale^2 I)``; ``S`` is ``(m, k)``, ``W`` ``(m, d)``.
    Returns also the queries and answers (for a refit once the units are oriented).
    """
    k, d1 = Hm.shape
    d = d1 - 1
    n = 3 * (k + d + 1)
    X = scale * rng.standard_normal((n, d))
    Y = Q(X)
    Z = X @ Hm[:, :-1].T + Hm[:, -1]
    D = np.concatenate([np.maximum(Z, 0.0), X, np.ones((n, 1))], axis=1)
    coef, *_ = np.linalg.lstsq(D, Y, rcond=None)
    return coef[:k].T, coef[k:k + d].T, coef[-1], X, Y


def refit_outputs(Q: QueryOracle, V, b, scale, rng, *, n=None):
    """Output weights and bias by least squares with the units known (7.7).

    ``F(x) = U relu(V x + b) + c`` is linear in ``(U, c)``; ``n`` (default ``4 (k + 1)``,
    at least 1,000) random queries ``N(0, scale^2 I)`` average the oracle's rounding.
    Returns ``(U, c)``.
    """
    k, d = V.shape
    n = refit_queries(k) if n is None else int(n)
    X = scale * rng.standard_normal((n, d))
    return output_lstsq(X, Q(X), V, b)


def refit_queries(k):
    """Queries :func:`refit_outputs` sends by default for ``k`` units."""
    return max(4 * (k + 1), 1000)


def output_lstsq(X, Y, V, b):
    """``(U, c)`` minimising ``||U relu(V X^T + b) + c - Y^T||`` (queries ``X``, answers ``Y``)."""
    k = V.shape[0]
    D = np.concatenate([np.maximum(X @ V.T + b, 0.0), np.ones((X.shape[0], 1))], axis=1)
    coef, *_ = np.linalg.lstsq(D, Y, rcond=None)
    return coef[:k].T, coef[-1]


def fit_hinge(X, r, B=None, *, max_iter: int = 40, n_offsets: int = 25):
    """The hyperplane of one hinge in a residual, ``r(x) ~ a relu(n . x + beta) + l . x + c`` (7.7).

    The answers of a network less the units found are the missing unit's term plus an
    affine part (and the oracle's rounding); ``B`` holds the found units' terms
    (``relu`` of their hyperplanes at ``X``), fitted with the hinge, so that their
    output weights need not be known. The direction starts at the eigenvector of
    ``sum_i r0_i x_i x_i^T`` of largest magnitude (``r0``: ``r`` less its fit on
    ``[B, x, 1]``; a ReLU's second Hermite coefficient is never zero, an affine part
    has none), the offset from a scan of ``n_offsets`` quantiles of ``n . x``; then
    Breiman's hinge-finding iteration: with the points split by the current
    hyperplane, ``r = 1[side] ([x, 1] . theta) + [B, x, 1] . gamma`` is linear, and
    the new hyperplane is ``theta`` (where the two affine pieces meet), until the
    split no longer changes. The least squares go through the normal equations,
    updated by the points that change sides only.

    Parameters
    ----------
    X : ndarray of shape (N, d)
        Inputs (Gaussian for the direction's start).
    r : ndarray of shape (N,) or (N, m)
        Answers at ``X``; with several outputs, their combination ``r v`` along the
        largest singular direction ``v`` of what ``[B, x, 1]`` leaves.
    B : ndarray of shape (N, p), optional
        Terms fitted alongside (``N`` must exceed ``p + 2 (d + 1)``).

    Returns
    -------
    h : ndarray of shape (d + 1,) or None
        ``[n, beta]`` with ``||n|| = 1``; None when no hinge fits (too few points on
        one side, or a singular system).
    g : float
        Slope change across the hyperplane along ``n``.
    rms : float
        Root mean square of ``r`` less the fit with the hinge.
    rms0 : float
        Root mean square of ``r`` less its fit on ``[B, x, 1]`` alone.
    v : ndarray of shape (m,)
        The outputs' combination (``[1.0]`` for one output): the unit's output
        weights are about ``g v``.
    """
    X = np.asarray(X, dtype=float)
    r = np.asarray(r, dtype=float)
    N, d = X.shape
    A = np.concatenate([X, np.ones((N, 1))], axis=1)
    F = A if B is None else np.concatenate([np.asarray(B, dtype=float), A], axis=1)
    p = F.shape[1]
    if N <= p + d + 1:
        return None, 0.0, 0.0, 0.0, np.ones(1)
    # columns scaled to unit norm: the normal equations are then as well conditioned
    # as the columns allow
    cs = np.linalg.norm(F, axis=0)
    cs[cs == 0] = 1.0
    F = F / cs
    As = A / np.linalg.norm(A, axis=0)
    G_FF = F.T @ F
    try:
        L_FF = np.linalg.cholesky(G_FF)
    except np.linalg.LinAlgError:
        return None, 0.0, 0.0, 0.0, np.ones(1)

    def project(v):
        y = np.linalg.solve(L_FF, F.T @ v)
        return v - F @ np.linalg.solve(L_FF.T, y)

    r0 = project(r)
    v = np.ones(1)
    if r.ndim == 2:
        # several outputs: a missing unit adds a rank-one term, along v
        v = np.linalg.svd(r0, full_matrices=False)[2][0]
        r, r0 = r @ v, r0 @ v
    rms0 = float(np.sqrt(np.mean(r0**2)))
    if rms0 == 0.0:
        return None, 0.0, 0.0, 0.0, np.ones(1)
    w, vecs = np.linalg.eigh((X * r0[:, None]).T @ X / N)
    n = vecs[:, int(np.argmax(np.abs(w)))]
    z = X @ n
    best, beta = -1.0, 0.0
    for t in np.quantile(z, np.linspace(0.02, 0.98, n_offsets)):
        f = project(np.maximum(z - t, 0.0))
        ff = float(f @ f)
        score = float(f @ r0) ** 2 / ff if ff > 0 else -1.0
        if score > best:
            best, beta = score, -float(t)
    G = np.zeros((d + 1 + p, d + 1 + p))
    G[d + 1:, d + 1:] = G_FF
    rhs = np.zeros(d + 1 + p)
    rhs[d + 1:] = F.T @ r
    side = np.zeros(N, dtype=bool)
    rms, g = rms0, 0.0
    h = None
    for _ in range(max_iter):
        new_side = (z + beta) > 0
        flip = new_side != side
        if h is not None and not np.any(flip):
            break
        n_on = np.count_nonzero(new_side)
        if min(n_on, N - n_on) < d + 1:
            return None, 0.0, rms0, rms0, v
        sg = np.where(new_side[flip], 1.0, -1.0)
        Af = As[flip]
        G[:d + 1, :d + 1] += (Af * sg[:, None]).T @ Af
        G[:d + 1, d + 1:] += (Af * sg[:, None]).T @ F[flip]
        G[d + 1:, :d + 1] = G[:d + 1, d + 1:].T
        rhs[:d + 1] += (Af * sg[:, None]).T @ r[flip]
        side = new_side
        try:
            coef = np.linalg.solve(G, rhs)
        except np.linalg.LinAlgError:
            return None, 0.0, rms0, rms0, v
        fit = (As[side] @ coef[:d + 1])
        res = r - F @ coef[d + 1:]
        res[side] -= fit
        rms = float(np.sqrt(np.mean(res**2)))
        theta = coef[:d + 1] / np.linalg.norm(A, axis=0)
        g = float(np.linalg.norm(theta[:d]))
        if g == 0.0 or not np.isfinite(g):
            return None, 0.0, rms0, rms0, v
        # (keep the orientation of the last n: relu(z) = relu(-z) + z, the affine part
        # takes the difference, and the split is the same)
        sgn = 1.0 if theta[:d] @ n >= 0 else -1.0
        n, beta = sgn * theta[:d] / g, sgn * theta[d] / g
        g *= sgn
        h = np.r_[n, beta]
        z = X @ n
    return h, g, rms, rms0, v
