"""Which two-layer path to run: ``method="auto"`` (docs/algorithms.md 3.3).

``choose_method`` looks at the data and picks ``"gaussian"`` (the fast moment path of
docs/algorithms.md 1, possibly after whitening), ``"general"`` (any input
distribution, rank(U) = k, docs/algorithms.md 3.1) or ``"few-outputs"``
(rank(U) < k, docs/algorithms.md 3.2), and says why in the returned diagnostics.

The Gaussian checks (:func:`gaussian_checks`) run on at most :data:`CHECK_ROWS` rows.
With ``S = X^T X / n`` the second moment about 0 (the model has no bias) and
``z_i = L^-1 x_i`` the whitened rows (``S = L L^T``, Cholesky), they are:

- rank: the rows of ``X`` span all ``d`` dimensions;
- mean: Hotelling's ``T = n zbar^T zbar = n xbar^T S^-1 xbar``. Under ``N(0, Sigma)``,
  ``T / n`` is the squared length of the projection of the unit vector
  ``1 / sqrt(n)`` on the uniformly distributed column space of ``X``, so exactly
  ``Beta(d / 2, (n - d) / 2)`` (``chi2_d``, heavier-tailed, only as ``n -> oo``);
  non-centred inputs would need biases, so they go "general";
- Mardia's kurtosis ``b_2 = mean_i (x_i^T S^-1 x_i)^2 = n sum_i h_i^2``, with ``h_i``
  the leverages of ``X``. Under normality, with ``S`` about 0,

  ``E[b_2] = d (d + 2) n / (n + 2)``,
  ``Var[b_2] = 8 d (d + 2) n^2 (n - d) (n - d + 2) / ((n + 1) (n + 2)^2 (n + 4) (n + 6))``

  exactly (the centred ``S`` of Mardia 1970/1974 gives ``(n - 1) / (n + 1)`` and
  ``(n - 3) (n - d - 1) (n - d + 1) / ((n + 1)^2 (n + 3) (n + 5))`` instead). The
  asymptotic mean ``d (d + 2)`` is too high by about ``2 d (d + 2) / n``, that is
  ``sqrt(d (d + 2) / (2 n))`` standard errors: 5 at ``d = 1000, n = 20,000``, where
  Gaussian inputs were refused; the asymptotic variance ``8 d (d + 2) / n`` is too
  large by about ``(1 - d / n)^-2``. The right tail is skewed (skewness
  ``2 sqrt(2) (d + 8) / sqrt(d (d + 2) n)`` to first order; smaller at small ``n``) and
  is read off a Pearson type III (gamma) law with :data:`MARDIA_SKEW_INFLATION` times
  that skewness, which errs on the side of accepting; the left tail, lighter than
  normal, is read as normal;
- per coordinate: D'Agostino's skewness and Anscombe-Glynn's kurtosis tests of the
  columns of ``Z``. Each column of ``Z`` is ``sqrt(n)`` times a uniform unit vector
  (the Q factor of a Gaussian matrix is Haar distributed), and both statistics are
  invariant to scale, so each test is exactly that of ``n`` normal samples; the
  largest of the ``d`` is read by Bonferroni, valid under any dependence;
- covariance: when ``max |eig(S) - 1|`` exceeds the Marchenko-Pastur edge (see
  :func:`gaussian_checks`) the Gaussian path runs on the whitened inputs
  ``X S^-1/2`` (``whitening`` holds ``S^-1/2``).

Cost: one ``X^T X`` on the rows checked (a symmetric rank-n update), the eigenvalues
and the Cholesky factor of ``S`` (``O(d^3)``; the eigenvectors only when whitening),
one triangular solve for ``Z`` and a few elementwise passes over ``Z``: at
``d = 1000, n = 2e5`` about 1.7 passes of ``X @ V.T`` with ``k = 50``, single-threaded
(``bench/auto_checks.py``).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.linalg
import scipy.special
import scipy.stats

from .._linalg import RANK_RTOL, affine_rank
from ..data import sample_rows
from ..moments import iter_chunks

__all__ = ["choose_method", "gaussian_checks"]

#: rows used by the checks (a random subset of the rows when there are more).
CHECK_ROWS = 20_000
#: how many standard errors (as a normal z-score) a statistic may be off before its
#: check fails: about 3e-7 per one-sided check under the null.
Z_MAX = 5.0
#: eigenvalues of ``S`` below this fraction of the largest count as zero (rank):
#: singular values of ``X`` below 1e-6 of the largest (eigenvalues of a Gram
#: matrix cannot resolve ``_linalg.SPAN_RTOL`` = 1e-10, whose square is below
#: their rounding); the general path then measures the span exactly.
EIGENVALUE_RTOL = 1e-12
#: the checks need ``n >= d + MIN_SPARE_ROWS`` rows: with ``n`` close to ``d`` every
#: leverage is close to 1 whatever the distribution, and Anscombe-Glynn's kurtosis
#: test needs 20 rows.
MIN_SPARE_ROWS = 20
#: Mardia's upper tail is read off a gamma law whose skewness is this many times the
#: first-order skewness of ``b_2``: with the first-order skewness itself the gamma tail
#: is lighter than that of ``b_2`` at small ``d`` (higher cumulants): Gaussian inputs
#: at ``d = 1`` went over 4 two to four times as often as a normal would (8e-5 to
#: 1.4e-4 for 3.2e-5, n = 100..1000, 1e6 Monte Carlo draws) and over 5 ten to thirty
#: times as often; with 1.5 times, 1.3e-5 to 3.4e-5 over 4 and at most 1e-6 over 5, at
#: ``d = 1, 2, 3`` and ``n`` from 100 to 10,000. At large ``d`` the skewness is small
#: (0.02 at ``d = 1000, n = 20,000``) and the inflation changes little.
MARDIA_SKEW_INFLATION = 1.5
#: ``log p`` is capped here so that ``p`` rounding to 1 still gives a finite z-score.
_LOG_P_MAX = -1e-300
#: ``rank(Y)`` is read off at most this many random rows of ``Y``, singular values
#: above ``RANK_Y_RTOL`` times the largest counting.
RANK_Y_ROWS = 50_000
#: rows whitened at a time by :func:`gaussian_checks` (a block of ``z`` fits in cache).
WHITEN_BLOCK = 2048
RANK_Y_RTOL = RANK_RTOL


def _z_upper(log_p: float) -> float:
    """The normal z-score whose upper tail has log-probability ``log_p``.

    Parameters
    ----------
    log_p : float
        Natural log of a one-sided tail probability (``-inf`` allowed).

    Returns
    -------
    float
        ``Phi^-1(1 - p)``, computed from ``log p`` so that it stays finite and
        accurate for p-values far below the smallest double.
    """
    return float(-scipy.special.ndtri_exp(min(float(log_p), _LOG_P_MAX)))


def _gamma_log_sf(x: float, shape: float) -> float:
    """``log P(G > x)`` for ``G ~ Gamma(shape)``, finite far into the tail.

    Parameters
    ----------
    x, shape : float
        Point and shape (scale 1).

    Returns
    -------
    float
        :func:`scipy.stats.gamma.logsf`, or where that underflows the leading term
        ``(shape - 1) log x - x - log Gamma(shape)`` of its expansion for large ``x``.
    """
    log_p = float(scipy.stats.gamma.logsf(x, shape))
    if np.isfinite(log_p):
        return log_p
    return float((shape - 1) * np.log(x) - x - scipy.special.gammaln(shape))


def _beta_log_sf(u: float, a: float, b: float) -> float:
    """``log P(B > u)`` for ``B ~ Beta(a, b)``, finite far into the tail.

    Parameters
    ----------
    u, a, b : float
        Point and parameters.

    Returns
    -------
    float
        :func:`scipy.stats.beta.logsf`, or where that underflows the leading term
        ``b log(1 - u) - log b - log B(a, b)`` of its expansion at ``u -> 1``
        (``-inf`` at ``u >= 1``).
    """
    log_p = float(scipy.stats.beta.logsf(u, a, b))
    if np.isfinite(log_p) or u >= 1:
        return log_p
    return float(b * np.log1p(-u) - np.log(b) - scipy.special.betaln(a, b))


def _bonferroni_z(z_abs: float, d: int) -> float:
    """The largest of ``d`` two-sided z-scores as one two-sided z-score (Bonferroni).

    Parameters
    ----------
    z_abs : float
        The largest absolute z-score of the ``d`` tests.
    d : int
        Number of tests.

    Returns
    -------
    float
        The ``|z|`` whose two-sided p-value is ``min(1, d p)``, ``p`` the two-sided
        p-value of ``z_abs``.
    """
    log_p = min(0.0, np.log(d) + np.log(2.0) + float(scipy.special.log_ndtr(-z_abs)))
    return _z_upper(log_p - np.log(2.0))


def mardia_null_moments(d: int, n: int) -> tuple[float, float, float]:
    """Mean, variance and skewness of Mardia's ``b_2`` for ``n`` normal rows, ``S`` about 0.

    ``b_2 = n sum_i h_i^2`` with ``h_i = x_i^T (X^T X)^-1 x_i``: under ``N(0, Sigma)``
    the column space of ``X`` is uniformly distributed, ``h_1 ~ Beta(d/2, (n-d)/2)``
    and ``h_2 = (1 - h_1) u + (1 - u) b`` with ``u ~ Beta(1/2, (n-2)/2)`` and
    ``b ~ Beta((d-1)/2, (n-d-1)/2)`` independent, which gives the mean and variance
    exactly. The skewness is the first-order one, ``kappa_3 / kappa_2^(3/2)`` of the
    influence function ``q^2 - 2 (d + 2) q + d (d + 2)``, ``q ~ chi2_d``; the true
    skewness is smaller at small ``n`` (0.34 times at ``d = 1, n = 10``, 0.87 times at
    ``n = 100``, equal at ``n = 1000``: Monte Carlo, 4e5 draws).

    Parameters
    ----------
    d : int
        Dimension.
    n : int
        Number of rows, ``n > d``.

    Returns
    -------
    mean, variance, skewness : float
    """
    d, n = float(d), float(n)
    mean = d * (d + 2) * n / (n + 2)
    var = (8 * d * (d + 2) * n**2 * (n - d) * (n - d + 2)
           / ((n + 1) * (n + 2) ** 2 * (n + 4) * (n + 6)))
    skew = 2 * np.sqrt(2.0) * (d + 8) / np.sqrt(d * (d + 2) * n)
    return float(mean), float(var), float(skew)


def _mardia_z(b2: float, d: int, n: int) -> float:
    """Mardia's ``b_2`` as a signed normal z-score (see :func:`mardia_null_moments`).

    Parameters
    ----------
    b2 : float
        ``mean_i (x_i^T S^-1 x_i)^2`` with ``S = X^T X / n``.
    d, n : int
        Dimension and number of rows.

    Returns
    -------
    float
        Below the mean, ``(b_2 - E) / sd`` (the left tail is lighter than normal);
        above it, the z-score of the upper tail of the Pearson type III law with the
        null mean and variance and :data:`MARDIA_SKEW_INFLATION` times the null
        skewness.
    """
    mean, var, skew = mardia_null_moments(d, n)
    skew *= MARDIA_SKEW_INFLATION
    t = (b2 - mean) / np.sqrt(var)
    if t <= 0:
        return float(t)
    shape = 4.0 / skew**2  # gamma(shape): mean shape, sd sqrt(shape), skewness skew
    return _z_upper(_gamma_log_sf(shape + t * np.sqrt(shape), shape))


def _skewness_z(g1: np.ndarray, n: int) -> np.ndarray:
    """D'Agostino's (1970) z-scores of sample skewnesses of ``n`` normal samples.

    The transform of :func:`scipy.stats.skewtest`, here from the skewness itself so
    that the columns' moments come from one pass (``arcsinh`` for its ``log``).

    Parameters
    ----------
    g1 : ndarray
        Sample skewnesses ``m_3 / m_2^(3/2)`` (central, biased moments).
    n : int
        Number of samples behind each, ``n >= 8``.

    Returns
    -------
    ndarray
        The z-scores, shape of ``g1``.
    """
    y = g1 * np.sqrt((n + 1.0) * (n + 3) / (6.0 * (n - 2)))
    beta2 = (3.0 * (n**2 + 27 * n - 70) * (n + 1) * (n + 3)
             / ((n - 2.0) * (n + 5) * (n + 7) * (n + 9)))
    w2 = -1 + np.sqrt(2 * (beta2 - 1))
    delta = 1 / np.sqrt(0.5 * np.log(w2))
    alpha = np.sqrt(2 / (w2 - 1))
    return delta * np.arcsinh(y / alpha)


def _kurtosis_z(b2: np.ndarray, n: int) -> np.ndarray:
    """Anscombe-Glynn's (1983) z-scores of sample kurtoses of ``n`` normal samples.

    The transform of :func:`scipy.stats.kurtosistest`, here from the kurtosis itself.
    At the lower edge of the approximating law (``denom = 0``) the z-score is
    infinite: such a kurtosis is not that of normal samples.

    Parameters
    ----------
    b2 : ndarray
        Sample kurtoses ``m_4 / m_2^2`` (central, biased moments; 3 for a normal).
    n : int
        Number of samples behind each, ``n >= 20``.

    Returns
    -------
    ndarray
        The z-scores, shape of ``b2``.
    """
    n = float(n)
    mean = 3.0 * (n - 1) / (n + 1)
    var = 24.0 * n * (n - 2) * (n - 3) / ((n + 1) ** 2 * (n + 3) * (n + 5))
    x = (b2 - mean) / np.sqrt(var)
    sqrt_beta1 = (6.0 * (n * n - 5 * n + 2) / ((n + 7) * (n + 9))
                  * np.sqrt(6.0 * (n + 3) * (n + 5) / (n * (n - 2) * (n - 3))))
    a = 6.0 + 8.0 / sqrt_beta1 * (2.0 / sqrt_beta1 + np.sqrt(1 + 4.0 / sqrt_beta1**2))
    denom = 1 + x * np.sqrt(2 / (a - 4.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        term2 = np.sign(denom) * np.cbrt((1 - 2 / a) / np.abs(denom))
        z = (1 - 2 / (9 * a) - term2) / np.sqrt(2 / (9 * a))
    return np.where(denom == 0, np.inf, z)


def gaussian_checks(X: np.ndarray, *, rng) -> dict:
    """Statistics that say whether the rows of ``X`` look like ``N(0, Sigma)``.

    See the module docstring for the statistics and their exact null laws
    (docs/algorithms.md 3.3). Each z-score is a normal z-score: under the null it
    exceeds :data:`Z_MAX` with probability about 3e-7.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        The inputs; at most :data:`CHECK_ROWS` random rows of it are checked.
    rng : numpy.random.Generator
        Picks the rows checked when ``n > CHECK_ROWS``.

    Returns
    -------
    dict
        ``data_rank``; ``n_checked`` (rows checked); ``mean_z`` (Hotelling, upper
        tail); ``mardia_b2`` and ``mardia_z`` (signed); ``max_marginal_kurtosis_z``
        and ``max_marginal_skewness_z`` (Bonferroni over the ``d`` coordinates);
        ``covariance_deviation`` (``max |eig(S) - 1|``) and ``covariance_tolerance``
        (the Marchenko-Pastur edge ``(1 + sqrt(d/n))^2 - 1 = 2 sqrt(d/n) + d/n`` of
        the eigenvalues of ``S`` for ``Sigma = I``, plus ``Z_MAX / sqrt(n)``, far
        above the Tracy-Widom fluctuations of the edge); ``failed`` (names of failed
        checks); ``is_gaussian`` (no check failed); ``is_standard`` (and ``S`` within
        the tolerance of ``I``); ``whitening`` (``S^-1/2`` when Gaussian but not
        standard, else None); ``seconds`` (time spent here). When the rows are too
        few or do not span ``d`` dimensions only ``data_rank``, ``n_checked``,
        ``failed``, ``is_gaussian = is_standard = False``, ``whitening = None`` and
        ``seconds`` are given.
    """
    t0 = time.perf_counter()
    n, d = X.shape
    rows = None
    if n > CHECK_ROWS:  # the rows checked, never a copy of all of X
        rows = sample_rows(X, CHECK_ROWS, rng)
        n = CHECK_ROWS
        if not isinstance(X, np.ndarray):  # a store: read the rows once
            X, rows = X[rows], None

    def blocks():
        """The rows checked, :data:`WHITEN_BLOCK` at a time, as float64: gathered a
        block at a time from an array (small temporaries, no n x d copy)."""
        for sl in iter_chunks(n, WHITEN_BLOCK):
            yield sl, np.asarray(X[sl] if rows is None else X[rows[sl]], dtype=float)

    out = {"n_checked": n, "whitening": None}

    def refuse(rank, why):
        out.update(data_rank=rank, is_gaussian=False, is_standard=False, failed=[why],
                   seconds=time.perf_counter() - t0)
        return out

    if n < d + MIN_SPARE_ROWS:
        return refuse(min(n, d), f"only {n} rows: too few to test in d = {d} dimensions "
                      f"(need d + {MIN_SPARE_ROWS})")
    S = np.zeros((d, d))
    for _, Xb in blocks():
        S += Xb.T @ Xb
    S /= n  # second moment about 0: the model has no bias
    w = np.linalg.eigvalsh(S)
    rank = int(np.count_nonzero(w > EIGENVALUE_RTOL * max(w[-1], 1e-300)))
    if rank < d:
        return refuse(rank, f"rows span only {rank} < d = {d} dimensions")
    try:
        L = np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        return refuse(rank, f"the second moment of the rows is numerically singular "
                      f"(eigenvalues {w[0]:.1e} .. {w[-1]:.1e})")
    # the whitened rows z = L^-1 x, a block at a time (small temporaries, no n x d
    # arrays besides the rows themselves): their power sums per coordinate, and
    # q_i = z_i^T z_i = x_i^T S^-1 x_i
    s1, s2, s3, s4 = (np.zeros(d) for _ in range(4))
    q = np.empty(n)
    for sl, Xb in blocks():
        Z = scipy.linalg.solve_triangular(L, Xb.T, lower=True, check_finite=False).T
        Z2 = Z * Z
        s1 += Z.sum(axis=0)
        s2 += Z2.sum(axis=0)
        s3 += np.einsum("ij,ij->j", Z2, Z)
        s4 += np.einsum("ij,ij->j", Z2, Z2)
        q[sl] = Z2.sum(axis=1)
    del Z, Z2, Xb
    # Hotelling: T / n ~ Beta(d / 2, (n - d) / 2), exactly
    T = float(s1 @ s1) / n
    mean_z = _z_upper(_beta_log_sf(T / n, d / 2, (n - d) / 2))
    b2 = float(np.mean(q**2))
    mardia_z = _mardia_z(b2, d, n)
    # per coordinate: central moments of each column from its raw sums
    mu, r2, r3, r4 = s1 / n, s2 / n, s3 / n, s4 / n
    m2 = r2 - mu**2
    m3 = r3 - 3 * mu * r2 + 2 * mu**3
    m4 = r4 - 4 * mu * r3 + 6 * mu**2 * r2 - 3 * mu**4
    with np.errstate(divide="ignore", invalid="ignore"):
        g1, g2 = m3 / m2**1.5, m4 / m2**2  # a constant column gives nan: not normal
    skew_abs = np.nan_to_num(np.abs(_skewness_z(g1, n)), nan=np.inf).max()
    kurt_abs = np.nan_to_num(np.abs(_kurtosis_z(g2, n)), nan=np.inf).max()
    skew_z, kurt_z = _bonferroni_z(skew_abs, d), _bonferroni_z(kurt_abs, d)
    delta = np.sqrt(d / n)
    cov_tol = float(2 * delta + delta**2 + Z_MAX / np.sqrt(n))
    cov_dev = float(np.abs(w - 1.0).max())
    failed = [name for name, z in (("mean", mean_z), ("mardia kurtosis", abs(mardia_z)),
                                   ("marginal kurtosis", kurt_z),
                                   ("marginal skewness", skew_z)) if z > Z_MAX]
    out.update(
        data_rank=rank, mean_z=mean_z, mardia_b2=b2, mardia_z=mardia_z,
        max_marginal_kurtosis_z=kurt_z, max_marginal_skewness_z=skew_z,
        covariance_deviation=cov_dev, covariance_tolerance=cov_tol, failed=failed,
        is_gaussian=not failed, is_standard=bool(not failed and cov_dev <= cov_tol),
    )
    if not failed and cov_dev > cov_tol:
        w, E = np.linalg.eigh(S)
        out["whitening"] = (E / np.sqrt(w)) @ E.T  # S^-1/2
    out["seconds"] = time.perf_counter() - t0
    return out


def choose_method(X: np.ndarray, Y: np.ndarray, k: int | None, *, rng) -> tuple[str, dict]:
    """Pick the path for ``recover_two_layer(method="auto")`` (docs/algorithms.md 3.3).

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Inputs.
    Y : ndarray of shape (n, m)
        Labels.
    k : int or None
        Number of hidden units, when given.
    rng : numpy.random.Generator
        Picks the rows the checks look at (``recover_two_layer`` passes a child of
        its own generator, so the path chosen makes the draws it makes when named).

    Returns
    -------
    method : str
        ``"gaussian"``, ``"general"`` or ``"few-outputs"``.
    diagnostics : dict
        ``"auto"``: the reason in words; ``"auto_rank_Y"``: the numerical rank of
        ``Y``; ``"auto_checks"``: the statistics of :func:`gaussian_checks` (less
        ``whitening``; ``["seconds"]`` is the time they took); ``"whitening"``: the
        matrix ``S^-1/2`` when the Gaussian path is to run on ``X S^-1/2`` (inputs
        Gaussian up to a linear map).
    """
    m = Y.shape[1]
    if k is not None and k > m:
        return "few-outputs", {"auto": f"n_hidden = {k} > m = {m} outputs: rank(U) < k."}
    n = Y.shape[0]
    sub = Y if n <= RANK_Y_ROWS else Y[sample_rows(Y, RANK_Y_ROWS, rng, sort=False)]
    # rank modulo the constant (an output bias adds it, docs/algorithms.md 6.2);
    # row-capped: one huge row hides nothing
    rank_Y = affine_rank(sub, rtol=RANK_Y_RTOL)
    if k is not None and rank_Y < k:
        return "few-outputs", {
            "auto": f"Y has numerical rank {rank_Y} < n_hidden = {k}: rank(U) < k.",
            "auto_rank_Y": rank_Y,
        }
    checks = gaussian_checks(X, rng=rng)
    A = checks.pop("whitening")
    diag = {"auto_checks": checks, "auto_rank_Y": rank_Y}
    if k is None and m == 1 and checks["is_gaussian"]:
        # one output: rank(Y) = 1 says nothing about the number of units, which
        # the few-outputs path infers from the second moment (docs/algorithms.md 3)
        diag["auto"] = ("one output and n_hidden not given: the number of units "
                        "cannot be read off rank(Y); few-outputs path (it infers k).")
        if A is not None:
            diag["auto"] += (" The inputs look Gaussian with covariance S != I; the "
                             "few-outputs path assumes S = I.")
        return "few-outputs", diag
    if checks["is_standard"]:
        diag["auto"] = "inputs look standard Gaussian and rank(Y) >= k: Gaussian path."
        return "gaussian", diag
    if checks["is_gaussian"]:
        diag["auto"] = (
            "inputs look Gaussian with covariance S != I (largest |eig(S) - 1| = "
            f"{checks['covariance_deviation']:.2g}): Gaussian path on the whitened "
            "inputs X S^-1/2, V mapped back."
        )
        diag["whitening"] = A
        return "gaussian", diag
    diag["auto"] = (
        "inputs do not look Gaussian (" + ", ".join(checks["failed"]) + "): general path."
    )
    return "general", diag
