"""Kinks of a piecewise-affine function along a line (docs/algorithms.md 7.1).

On a line ``x(t) = x0 + t e`` the output of a one-hidden-layer ReLU network, projected
on a fixed random vector, is a piecewise-linear function ``g(t)`` whose kinks are the
crossings of the hyperplanes ``v_i . x + b_i = 0``. :func:`find_kinks` locates them with
values only:

- three sampled points that are collinear (to 64 times the oracle's precision,
  relative to the values, the typical output and the slope times the distance) hold
  no kink between them (two kinks whose slope changes cancel exactly are a null event);
- only a triple whose two gaps are within a factor 16 certifies: with the middle
  point very close to one end, a kink in the long gap moves it off the chord by no
  more than the short gap times the slope change;
- a dirty segment between two clean ones probably holds a single kink where the two
  clean lines meet: ``g`` is sampled there, at ``t* -+ delta`` (``delta`` just long
  enough for a slope change to show) and midway to the segment's ends. When every
  one lies on its line, ``t*`` is a kink and the two short segments beside it are
  clean; otherwise the new points refine the segment. The points beside ``t*`` are
  the guard against the false kink of the "2-linear test": two kinks whose middle
  slope is not between the outer ones put the meeting point of the outer lines
  *outside* both kinks, on one of the outer lines, where the value alone agrees;
- otherwise the segment is bisected. Segments narrower than the precision of ``t``
  are given up ("unresolved": two kinks closer than precision, or a function that
  is not piecewise linear) and counted;
- when every segment is clean the kinks sit on sampled points: the points off the
  chord of their two neighbours (this also finds a kink that falls on a grid point);
- the search runs outwards by ``max_doublings`` doublings of the first range (a
  kink far out belongs to a hyperplane almost parallel to the line, which other
  lines cross nearer).

Every round sends all its new points in one batch, and the number of dirty segments
is bounded (``max_kinks``), so a smooth or random oracle ends in bounded queries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LineKinks", "find_kinks", "NotPiecewiseLinear"]


class NotPiecewiseLinear(RuntimeError):
    """The function along a line is not piecewise linear with few pieces."""


@dataclass
class LineKinks:
    """The kinks found on one line.

    Attributes
    ----------
    t : ndarray
        Kink positions, increasing.
    unresolved : int
        Dirty segments narrower than the precision of ``t`` (given up).
    t_range : tuple of float
        The interval searched.
    n_queries : int
        Queries spent.
    """

    t: np.ndarray
    unresolved: int
    t_range: tuple
    n_queries: int


def _collinear(t, f, tol):
    """For consecutive triples, whether the middle point lies on the chord of the outer two."""
    t1, t2, t3 = t[:-2], t[1:-1], t[2:]
    f1, f2, f3 = f[:-2], f[1:-1], f[2:]
    pred = f1 + (f3 - f1) * ((t2 - t1) / (t3 - t1))
    scale = np.maximum(np.maximum(np.abs(f1), np.abs(f2)), np.abs(f3))
    return np.abs(f2 - pred) <= tol(scale, np.maximum(np.abs(t1), np.abs(t3)))


def _clean_segments(t, f, tol, certified=(), max_ratio: float = 16.0):
    """Segment ``j`` (between points j and j+1) is clean if a collinear triple holds it.

    Only a triple whose two gaps are within ``max_ratio`` of each other certifies:
    with a middle point very close to one end, a kink in the long gap moves the middle
    point off the chord by no more than the short gap times the slope change, which
    the tolerance hides.
    """
    n = t.size
    clean = np.zeros(n - 1, dtype=bool)
    if n >= 3:
        gaps = np.diff(t)
        ratio = np.maximum(gaps[:-1], gaps[1:]) / np.minimum(gaps[:-1], gaps[1:])
        col = _collinear(t, f, tol) & (ratio <= max_ratio)
        clean[:-1] |= col
        clean[1:] |= col
    if certified:
        clean |= np.isin(t[:-1], np.fromiter(certified, float))
    return clean


def _line_at(t_a, f_a, t_b, f_b, t):
    return f_a + (f_b - f_a) * ((t - t_a) / (t_b - t_a))


def find_kinks(g, T0: float, *, precision: float, f_scale: float, n_grid: int = 33,
               max_kinks: int = 4096, max_doublings: int = 8) -> LineKinks:
    """Locate the kinks of the piecewise-linear function ``g`` (docs/algorithms.md 7.1).

    Parameters
    ----------
    g : callable
        ``g(t)`` for an array of positions returns the values (one query each).
    T0 : float
        Half-width of the first grid (the search extends beyond it by doubling).
    precision : float
        Relative precision of the values (the oracle's unit roundoff or noise).
    f_scale : float
        Typical magnitude of the values and the network's internal sums at
        ``|t| <= T0`` (sets the absolute part of the collinearity tolerance, which
        grows in proportion to ``|t| / T0`` beyond).
    n_grid : int, default=33
        Points of the first grid.
    max_kinks : int, default=4096
        More dirty segments than this at once ends the search with
        :class:`NotPiecewiseLinear`.
    max_doublings : int, default=8
        The search covers ``[-2^max_doublings T0, 2^max_doublings T0]``.

    Returns
    -------
    LineKinks

    Raises
    ------
    NotPiecewiseLinear
        When the function does not look piecewise linear with at most ``max_kinks``
        pieces (too many dirty segments, or most segments unresolved).
    """
    eta = 64.0 * precision
    slope_scale = [0.0]

    def tol(scale, tabs):
        # rounding of the answers: relative to the values and to the network's
        # internal sums, which grow with the distance from the origin like the slope
        return eta * (scale + f_scale + slope_scale[0] * tabs)

    t = np.linspace(-T0, T0, n_grid)
    f = np.asarray(g(t), dtype=float)
    n_queries = t.size
    slope_scale[0] = float(np.max(np.abs(np.diff(f) / np.diff(t))))

    # extend outwards by doubling
    far = T0 * 2.0 ** np.arange(1, max_doublings + 1)
    tf = np.concatenate([-far[::-1], far])
    ff = np.asarray(g(tf), dtype=float)
    n_queries += tf.size
    t = np.concatenate([tf[:max_doublings], t, tf[max_doublings:]])
    f = np.concatenate([ff[:max_doublings], f, ff[max_doublings:]])
    slope_scale[0] = max(slope_scale[0], float(np.max(np.abs(np.diff(f) / np.diff(t)))))

    unresolved_segments: set = set()
    certified: set = set()  # left ends of the short segments beside accepted kinks
    t_min_width = 64.0 * precision
    for _ in range(10_000):
        clean = _clean_segments(t, f, tol, certified)
        width = np.diff(t)
        too_small = width <= t_min_width * np.maximum(np.abs(t[:-1]), np.abs(t[1:])) + 1e-300
        dirty = np.flatnonzero(~clean & ~too_small)
        for j in np.flatnonzero(~clean & too_small):
            unresolved_segments.add(float(t[j]))
        if dirty.size == 0:
            break
        if dirty.size > max_kinks:
            raise NotPiecewiseLinear(
                f"more than {max_kinks} segments of one line are not linear at the oracle's "
                f"precision: the function is not piecewise linear with few pieces")
        new_t = []
        candidates = []
        # clean runs: run_start[j] is the first point of the run of clean segments that
        # ends at point j; run_end[j] the last point of the run that starts at j. The
        # slopes of the lines come from the whole run (the farthest points), not from
        # the nearest two, which may be a short step apart (t* -+ delta)
        # (a run goes on through a point only where the point is on its neighbours'
        # chord: a kink on a sampled point ends it)
        n = t.size
        straight = np.zeros(n, dtype=bool)
        straight[1:-1] = _collinear(t, f, tol)
        run_start = np.arange(n)
        for j in range(1, n):
            if clean[j - 1]:
                run_start[j] = run_start[j - 1] if straight[j - 1] else j - 1
        run_end = np.arange(n)
        for j in range(n - 2, -1, -1):
            if clean[j]:
                run_end[j] = run_end[j + 1] if straight[j + 1] else j + 1
        for j in dirty:
            if 1 <= j and j + 2 < t.size and clean[j - 1] and clean[j + 1]:
                a, e = run_start[j], run_end[j + 1]
                ta, fa, tb, fb = t[a], f[a], t[j], f[j]
                tc, fc, td, fd = t[j + 1], f[j + 1], t[e], f[e]
                sl, sr = (fb - fa) / (tb - ta), (fd - fc) / (td - tc)
                if sl != sr:
                    ts = (fc - fb + sl * tb - sr * tc) / (sl - sr)
                    lo, hi = tb, tc
                    margin = 1e-9 * (hi - lo)
                    if lo - margin <= ts <= hi + margin:
                        # (a kink on a sampled point meets the lines at that point)
                        ts = min(max(ts, lo), hi)
                        # t* -+ delta check the one-sided slopes; delta is long enough
                        # for a slope change to show above the tolerance
                        need = 64.0 * tol(max(abs(fb), abs(fc)), abs(ts)) / abs(sl - sr)
                        delta = min(max(1e-6 * (hi - lo), need), 0.25 * (hi - lo))
                        left, right = (ta, fa, tb, fb), (tc, fc, td, fd)
                        checks = [(ts, left), (ts, right), (ts - delta, left),
                                  (ts + delta, right)]
                        if ts - delta > lo:
                            checks.append((0.5 * (lo + ts - delta), left))
                        if ts + delta < hi:
                            checks.append((0.5 * (ts + delta + hi), right))
                        candidates.append((ts, delta, len(new_t), checks))
                        new_t += [c[0] for c in checks]
                        continue
            new_t.append(0.5 * (t[j] + t[j + 1]))
        new_t = np.asarray(new_t)
        new_f = np.asarray(g(new_t), dtype=float)
        n_queries += new_t.size
        # a candidate is a kink when every check point lies on its line: then the two
        # short segments beside it are clean (no triple of comparable gaps can say so)
        for ts, delta, start, checks in candidates:
            vals = new_f[start:start + len(checks)]
            if all(abs(v - _line_at(*line, tc_)) <= tol(abs(v), abs(tc_))
                   for v, (tc_, line) in zip(vals, checks)):
                certified.add(float(ts - delta))
                certified.add(float(ts))
        order = np.argsort(np.concatenate([t, new_t]), kind="stable")
        t = np.concatenate([t, new_t])[order]
        f = np.concatenate([f, new_f])[order]
        # duplicates (a candidate equal to an existing point) would make width 0
        keep = np.concatenate([[True], np.diff(t) > 0])
        t, f = t[keep], f[keep]
    else:  # pragma: no cover - bounded by max_kinks and the width floor
        raise NotPiecewiseLinear("the kink search did not settle")

    # every segment is now clean (or given up), so the kinks sit on sampled points: a
    # point whose two neighbours' chord misses it, both its segments clean
    clean = _clean_segments(t, f, tol, certified)
    bent = ~_collinear(t, f, tol) & clean[:-1] & clean[1:]
    kinks = t[1:-1][bent]
    n_segments = t.size - 1
    if len(unresolved_segments) > max(8, n_segments // 4):
        raise NotPiecewiseLinear(
            f"{len(unresolved_segments)} of {n_segments} segments of one line could not be "
            f"resolved to a kink: the function is not piecewise linear")
    return LineKinks(t=np.sort(kinks), unresolved=len(unresolved_segments),
                     t_range=(float(t[0]), float(t[-1])), n_queries=n_queries)
