"""Planted two-layer instances that stress the methods (docs/algorithms.md 1.5, 3).

Networks (:func:`safran_shamir`, :func:`near_parallel`, :func:`ill_conditioned`),
input families (:func:`input_family`, :func:`sklearn_inputs`) and networks planted
so that every unit is identifiable on given inputs (:func:`planted_on`,
:func:`planted_instance`). Everything is seeded by ``rng`` (None, an int or a
``numpy.random.Generator``) and reproducible.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._validation import as_2d_float, check_positive_int, check_random_state
from .networks import TwoLayerNetwork, gaussian_inputs

__all__ = [
    "safran_shamir",
    "near_parallel",
    "ill_conditioned",
    "input_family",
    "sklearn_inputs",
    "planted_on",
    "planted_instance",
    "INPUT_FAMILIES",
    "SKLEARN_DATASETS",
]

#: names accepted by :func:`input_family`.
INPUT_FAMILIES = ("gaussian", "uniform", "student-t", "sparse-nonnegative", "heavy-tailed")
#: scikit-learn's bundled data sets accepted by :func:`sklearn_inputs` (no download).
SKLEARN_DATASETS = ("digits", "diabetes", "wine", "breast_cancer")


def _dims(d, k, m=None):
    d = check_positive_int(d, "d")
    k = check_positive_int(k, "k")
    if k > d:
        raise ValueError(f"the units must be independent, so k <= d; got k = {k} > d = {d}.")
    return (d, k) if m is None else (d, k, check_positive_int(m, "m"))


def safran_shamir(d: int, k: int, *, rng=None) -> TwoLayerNetwork:
    """Orthonormal ``V`` (k, d), one output, ``U`` all ones: ``y = sum_i relu(v_i . x)``.

    The family of Safran and Shamir (ICML 2018), where gradient descent on the
    square loss has spurious local minima for k >= 6.

    Parameters
    ----------
    d : int
        Input dimension.
    k : int
        Hidden units, ``k <= d``.
    rng : None, int or numpy.random.Generator, default=None
        Seed or generator.

    Returns
    -------
    TwoLayerNetwork
        ``V`` of shape ``(k, d)`` with orthonormal rows, ``U`` of shape ``(1, k)``.

    Examples
    --------
    >>> net = safran_shamir(5, 3, rng=0)
    >>> net.U.tolist(), bool(np.allclose(net.V @ net.V.T, np.eye(3)))
    ([[1.0, 1.0, 1.0]], True)
    """
    d = check_positive_int(d, "d")
    k = check_positive_int(k, "k")
    if k > d:
        raise ValueError(f"orthonormal V needs k <= d, got k = {k} > d = {d}.")
    g = check_random_state(rng).standard_normal((d, k))
    V = np.linalg.qr(g)[0].T
    return TwoLayerNetwork(np.ones((1, k)), V)


def near_parallel(d: int, k: int, m: int, *, angle: float = 0.1, rng=None) -> TwoLayerNetwork:
    """Units in pairs at ``angle`` radians from each other; Gaussian ``U``.

    Unit ``2 j + 1`` is unit ``2 j`` turned by ``angle`` towards a random
    orthogonal direction, so ``V`` has condition number about ``2 / angle``:
    the moment method's tensor decomposition struggles (docs/algorithms.md 1.2), the
    rounding step must separate close sign patterns (1.5).

    Parameters
    ----------
    d : int
        Input dimension.
    k : int
        Hidden units, ``k <= d`` (an odd ``k`` leaves the last unit unpaired).
    m : int
        Outputs.
    angle : float, default=0.1
        Angle between the two units of a pair, in ``(0, pi/2)`` radians.
    rng : None, int or numpy.random.Generator, default=None
        Seed or generator.

    Returns
    -------
    TwoLayerNetwork
        Unit-norm rows of ``V``, standard Gaussian ``U`` of shape ``(m, k)``.

    Examples
    --------
    >>> net = near_parallel(10, 4, 5, angle=0.05, rng=0)
    >>> Vn = net.V / np.linalg.norm(net.V, axis=1, keepdims=True)
    >>> round(float(np.arccos(Vn[0] @ Vn[1])), 6)
    0.05
    """
    d, k, m = _dims(d, k, m)
    if not (isinstance(angle, numbers.Real) and 0 < angle < np.pi / 2):
        raise ValueError(f"`angle` must be in (0, pi/2) radians, got {angle!r}.")
    g = check_random_state(rng)
    Q = np.linalg.qr(g.standard_normal((d, min(d, 2 * k))))[0].T  # orthonormal rows
    V = np.empty((k, d))
    for i in range(0, k, 2):
        base = Q[i]
        V[i] = base
        if i + 1 < k:
            other = Q[i + 1]
            V[i + 1] = np.cos(angle) * base + np.sin(angle) * other
    return TwoLayerNetwork(g.standard_normal((m, k)), V)


def ill_conditioned(d: int, k: int, m: int, *, cond_U: float = 1e3, cond_V: float = 1.0,
                    rng=None) -> TwoLayerNetwork:
    """Random orthogonal factors with singular values spread geometrically.

    ``U = A diag(s_U) B^T`` with ``s_U`` from 1 to ``1 / cond_U`` (likewise ``V``),
    so ``cond(U) = cond_U`` and ``cond(V) = cond_V``. An ill-conditioned ``U``
    puts rounding noise into the exact zeros of ``z = Y a`` (docs/algorithms.md 1.6).

    Parameters
    ----------
    d : int
        Input dimension.
    k : int
        Hidden units, ``k <= min(d, m)``.
    m : int
        Outputs.
    cond_U : float, default=1e3
        Condition number of ``U`` (``>= 1``).
    cond_V : float, default=1.0
        Condition number of ``V`` (``>= 1``; 1 gives orthonormal rows).
    rng : None, int or numpy.random.Generator, default=None
        Seed or generator.

    Returns
    -------
    TwoLayerNetwork
        ``U`` of shape ``(m, k)`` and ``V`` of shape ``(k, d)``.

    Examples
    --------
    >>> net = ill_conditioned(10, 4, 6, cond_U=1e4, rng=0)
    >>> round(float(np.log10(np.linalg.cond(net.U))), 6)
    4.0
    """
    d, k, m = _dims(d, k, m)
    if k > m:
        raise ValueError(f"cond(U) is defined here for k <= m; got k = {k} > m = {m}.")
    for name, c in (("cond_U", cond_U), ("cond_V", cond_V)):
        if not (isinstance(c, numbers.Real) and c >= 1):
            raise ValueError(f"`{name}` must be a number >= 1, got {c!r}.")
    g = check_random_state(rng)

    def factor(rows, cols, cond):
        A = np.linalg.qr(g.standard_normal((rows, cols)))[0]
        B = np.linalg.qr(g.standard_normal((cols, cols)))[0]
        s = np.geomspace(1.0, 1.0 / cond, cols)
        return (A * s) @ B.T

    U = factor(m, k, cond_U)
    V = factor(d, k, cond_V).T
    return TwoLayerNetwork(U, V)


def input_family(name: str, n: int, d: int, *, rng=None, density: float = 0.3) -> np.ndarray:
    """``n`` samples in ``d`` dimensions from a named family, shape ``(n, d)``.

    - ``"gaussian"``: standard normal;
    - ``"uniform"``: uniform on the cube ``[-sqrt 3, sqrt 3]^d`` (unit variance);
    - ``"student-t"``: independent Student-t coordinates with 3 degrees of freedom;
    - ``"sparse-nonnegative"``: each entry exponential(1) with probability
      ``density``, else 0 (non-centred: see :func:`planted_on`);
    - ``"heavy-tailed"``: symmetric Pareto coordinates with tail index 2
      (finite mean, infinite variance).

    Parameters
    ----------
    name : str
        One of :data:`INPUT_FAMILIES`.
    n : int
        Samples (rows).
    d : int
        Dimension (columns).
    rng : None, int or numpy.random.Generator, default=None
        Seed or generator.
    density : float, default=0.3
        Fraction of non-zero entries of ``"sparse-nonnegative"``, in ``(0, 1]``.

    Returns
    -------
    ndarray of shape (n, d)

    Examples
    --------
    >>> X = input_family("uniform", 1000, 3, rng=0)
    >>> X.shape, bool(np.abs(X).max() <= np.sqrt(3))
    ((1000, 3), True)
    """
    n = check_positive_int(n, "n")
    d = check_positive_int(d, "d")
    g = check_random_state(rng)
    if name == "gaussian":
        return gaussian_inputs(n, d, rng=g)
    if name == "uniform":
        return g.uniform(-np.sqrt(3.0), np.sqrt(3.0), (n, d))
    if name == "student-t":
        return g.standard_t(3, (n, d))
    if name == "sparse-nonnegative":
        if not (isinstance(density, numbers.Real) and 0 < density <= 1):
            raise ValueError(f"`density` must be in (0, 1], got {density!r}.")
        return g.exponential(1.0, (n, d)) * (g.random((n, d)) < density)
    if name == "heavy-tailed":
        return (g.pareto(2.0, (n, d)) + 1.0) * g.choice([-1.0, 1.0], (n, d))
    raise ValueError(f"unknown input family {name!r}; choose one of {INPUT_FAMILIES}.")


def sklearn_inputs(name: str, *, standardize: bool = False) -> np.ndarray:
    """The feature matrix of one of scikit-learn's bundled data sets (no download).

    ``"digits"`` (1797 x 64, pixel values 0..16, several pixels always 0: the rows
    span 61 dimensions), ``"diabetes"`` (442 x 10), ``"wine"`` (178 x 13),
    ``"breast_cancer"`` (569 x 30). With ``standardize`` each column is scaled to
    unit standard deviation (not centred, so rank and sign patterns are kept;
    constant-zero columns stay zero).

    Parameters
    ----------
    name : str
        One of :data:`SKLEARN_DATASETS`.
    standardize : bool, default=False
        Scale each column to unit standard deviation.

    Returns
    -------
    ndarray of shape (n_samples, n_features)
        The features as float64, one sample a row.

    Raises
    ------
    ValueError
        For an unknown name, or when scikit-learn is not installed.
    """
    if name not in SKLEARN_DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {SKLEARN_DATASETS}.")
    try:
        import sklearn.datasets as skd
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ValueError(
            "scikit-learn is needed for its bundled data sets: pip install scikit-learn"
        ) from exc
    X = np.asarray(getattr(skd, f"load_{name}")().data, dtype=np.float64)
    if standardize:
        sd = X.std(axis=0)
        X = X / np.where(sd > 0, sd, 1.0)
    return X


def _span_basis(X, rtol=1e-10):
    """Orthonormal basis (d, r) of the row span of ``X`` (from an SVD)."""
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    r = int(np.count_nonzero(s > rtol * s[0])) if s.size and s[0] > 0 else 0
    return Vt[:r].T


def planted_on(X, k: int, m: int, *, rng=None, active_range=(0.2, 0.8),
               max_tries: int = 1000) -> TwoLayerNetwork:
    """A network with ``k`` units, each identifiable on the inputs ``X`` (docs/algorithms.md 3).

    Without biases, a unit whose sign pattern is constant on the data (active on
    every row or on none) is not identifiable, and neither is one whose active rows
    span fewer dimensions than the data (any ``v`` with the same values there and
    ``<= 0`` elsewhere fits). So each row of ``V`` is drawn as a Gaussian vector
    in the row span of ``X``, made orthogonal to the data mean when the data are
    not centred (then the unit's threshold passes through the middle of the
    data), and redrawn until (i) it is active on a fraction of the rows within
    ``active_range`` and (ii) its active rows span the whole row span of ``X``.
    ``U`` is Gaussian, shape ``(m, k)``.

    Parameters
    ----------
    X : array-like of shape (n, d)
        The inputs the network will be evaluated on.
    k : int
        Hidden units, at most the dimension of the row span of ``X``.
    m : int
        Outputs.
    rng : None, int or numpy.random.Generator, default=None
        Seed or generator.
    active_range : tuple of float, default=(0.2, 0.8)
        Bounds ``(lo, hi)`` on the fraction of rows on which each unit is active.
    max_tries : int, default=1000
        Draws per unit before giving up.

    Returns
    -------
    TwoLayerNetwork
        ``V`` of shape ``(k, d)`` (rows in the row span of ``X``), ``U`` of shape
        ``(m, k)``.

    Raises
    ------
    ValueError
        When ``max_tries`` draws of one unit all fail (the data leave too few
        rows per unit: pass more rows or a wider ``active_range``), or ``k``
        exceeds the dimension spanned by the rows of ``X``.
    """
    X = as_2d_float(X, "X")
    n, d = X.shape
    k = check_positive_int(k, "k")
    m = check_positive_int(m, "m")
    lo, hi = active_range
    if not 0 <= lo < hi <= 1:
        raise ValueError(f"`active_range` must satisfy 0 <= lo < hi <= 1, got {active_range!r}.")
    g = check_random_state(rng)
    Q = _span_basis(X)
    r = Q.shape[1]
    if k > r:
        raise ValueError(
            f"the rows of X span {r} dimensions: at most {r} identifiable units, got k = {k}."
        )
    mu = Q.T @ X.mean(axis=0)
    scale = np.sqrt(np.mean(np.sum((X @ Q) ** 2, axis=1)))
    centred = np.linalg.norm(mu) <= 0.1 * scale
    XQ = X @ Q
    V = np.empty((k, d))
    for i in range(k):
        for _ in range(max_tries):
            c = g.standard_normal(r)
            if not centred:
                c -= (c @ mu) / (mu @ mu) * mu
            s = XQ @ c
            act = s > 0
            if lo <= act.mean() <= hi and np.linalg.matrix_rank(XQ[act]) == r:
                V[i] = Q @ c
                break
        else:
            raise ValueError(
                f"no identifiable unit found in {max_tries} draws: the active rows never "
                f"span the data's {r} dimensions with an active fraction in {active_range}; "
                "use more rows or a wider `active_range`."
            )
    return TwoLayerNetwork(g.standard_normal((m, k)), V)


def planted_instance(family: str, n: int, d: int, k: int, m: int, *, rng=None):
    """Inputs from a family and a network identifiable on them: ``(network, X)``.

    ``family`` is one of :data:`INPUT_FAMILIES` (``n`` rows of ``d`` columns) or
    of :data:`SKLEARN_DATASETS` (then ``n`` and ``d`` are ignored: all rows and
    columns of the data set). Centred families get a Gaussian network
    (``TwoLayerNetwork.random``); non-centred ones and the data sets get
    :func:`planted_on`, so that every unit is identifiable.

    Parameters
    ----------
    family : str
        A name of :data:`INPUT_FAMILIES` or :data:`SKLEARN_DATASETS`.
    n : int
        Samples (ignored for a data set).
    d : int
        Dimension (ignored for a data set).
    k : int
        Hidden units.
    m : int
        Outputs.
    rng : None, int or numpy.random.Generator, default=None
        Seed or generator.

    Returns
    -------
    network : TwoLayerNetwork
        The planted network.
    X : ndarray of shape (n, d)
        The inputs.

    Examples
    --------
    >>> net, X = planted_instance("sparse-nonnegative", 300, 6, 2, 3, rng=0)
    >>> X.shape, net.V.shape, bool(0.2 <= (X @ net.V[0] > 0).mean() <= 0.8)
    ((300, 6), (2, 6), True)
    """
    g = check_random_state(rng)
    if family in SKLEARN_DATASETS:
        X = sklearn_inputs(family)
        return planted_on(X, k, m, rng=g), X
    X = input_family(family, n, d, rng=g)
    if family == "sparse-nonnegative":
        return planted_on(X, k, m, rng=g), X
    d, k, m = _dims(d, k, m)
    return TwoLayerNetwork.random(d, k, m, rng=g), X
