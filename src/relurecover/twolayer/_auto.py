"""Which two-layer path to run: ``method="auto"`` (docs/algorithms.md 1, 1.5, 3).

``choose_method`` looks at the data and picks ``"gaussian"`` (the fast moment path,
possibly after whitening), ``"general"`` (any input distribution, rank(U) = k) or
``"few-outputs"`` (rank(U) < k), and says why in the returned diagnostics.

The Gaussian checks, on at most 20,000 rows, each at about five standard errors:

- rank: the rows of ``X`` span all ``d`` dimensions;
- mean: Hotelling's ``n mu^T S^-1 mu`` (chi-squared with ``d`` degrees of freedom
  under the null); non-centred inputs would need biases, so they go "general";
- kurtosis: Mardia's ``b_2 = mean((x^T S^-1 x)^2)`` against ``d (d + 2)``, and the
  largest marginal excess kurtosis and skewness of the whitened coordinates;
- covariance: when ``S`` is not close to ``I`` the Gaussian path runs on the
  whitened inputs ``X S^-1/2`` (``diagnostics["whitening"]`` holds ``S^-1/2``).
"""

from __future__ import annotations

import numpy as np
import scipy.stats

__all__ = ["choose_method", "gaussian_checks"]

#: rows used by the checks.
CHECK_ROWS = 20_000
#: how many standard errors a statistic may be off before the check fails.
Z_MAX = 5.0


def _max_z(t: float, d: int) -> float:
    """The largest of ``d`` two-sided z-scores as one z-score (Bonferroni)."""
    p = min(1.0, d * 2.0 * float(scipy.stats.norm.sf(t)))
    return float(scipy.stats.norm.isf(p / 2.0))


def gaussian_checks(X: np.ndarray, *, rng) -> dict:
    """Statistics that say whether the rows of ``X`` look like ``N(0, Sigma)``.

    Returns a dict with ``data_rank``, ``mean_z``, ``mardia_z``,
    ``max_marginal_kurtosis_z``, ``max_marginal_skewness_z``, ``covariance_deviation``
    (``max |eig(S) - 1|``), ``covariance_tolerance``, ``is_gaussian`` (all the
    z-scores below :data:`Z_MAX`), ``is_standard`` (and ``S`` close to ``I``),
    ``failed`` (names of failed checks) and ``whitening`` (``S^-1/2``, or None).
    """
    n, d = X.shape
    if n > CHECK_ROWS:
        X = X[np.sort(rng.choice(n, CHECK_ROWS, replace=False))]
        n = CHECK_ROWS
    mu = X.mean(axis=0)
    S = X.T @ X / n  # second moment about 0: the model has no bias
    w, E = np.linalg.eigh(S)
    rank = int(np.count_nonzero(w > 1e-12 * max(w[-1], 1e-300)))
    out = {"data_rank": rank, "n_checked": n, "whitening": None}
    if rank < d:
        out.update(is_gaussian=False, is_standard=False,
                   failed=[f"rows span only {rank} < d = {d} dimensions"])
        return out
    A = (E / np.sqrt(w)) @ E.T  # S^{-1/2}
    Z = X @ A
    zmu = Z.mean(axis=0)
    # Hotelling: n mu^T S^-1 mu ~ chi2_d; its tail probability as a normal z-score
    # (the normal approximation of chi2_d is far too light-tailed for small d:
    # Gaussian inputs at d = 10 failed at "5 sd" once in a few thousand draws)
    mean_z = float(scipy.stats.norm.isf(scipy.stats.chi2.sf(n * float(zmu @ zmu), d)))
    q = np.einsum("ij,ij->i", Z, Z)
    mardia_z = float((np.mean(q**2) - d * (d + 2)) / np.sqrt(8 * d * (d + 2) / n))
    # per coordinate: D'Agostino's skewness and Anscombe-Glynn's kurtosis tests,
    # whose z-scores are accurate in the tails (the plain sqrt(6 / n) scale of
    # the sample skewness rejected Gaussian inputs once in 300 draws at "5 sd")
    kurt_z = _max_z(float(np.abs(scipy.stats.kurtosistest(Z, axis=0).statistic).max()), d)
    skew_z = _max_z(float(np.abs(scipy.stats.skewtest(Z, axis=0).statistic).max()), d)
    delta = np.sqrt(d / n)
    cov_tol = float(2 * delta + delta**2 + Z_MAX / np.sqrt(n))
    cov_dev = float(np.abs(w - 1.0).max())
    failed = [name for name, z in (("mean", mean_z), ("mardia kurtosis", abs(mardia_z)),
                                   ("marginal kurtosis", kurt_z),
                                   ("marginal skewness", skew_z)) if z > Z_MAX]
    out.update(
        mean_z=mean_z, mardia_z=mardia_z, max_marginal_kurtosis_z=kurt_z,
        max_marginal_skewness_z=skew_z, covariance_deviation=cov_dev,
        covariance_tolerance=cov_tol, failed=failed, is_gaussian=not failed,
        is_standard=bool(not failed and cov_dev <= cov_tol),
    )
    if not failed and cov_dev > cov_tol:
        out["whitening"] = A
    return out


def choose_method(X: np.ndarray, Y: np.ndarray, k: int | None, *, rng) -> tuple[str, dict]:
    """Pick the path for ``recover_two_layer(method="auto")`` (docs/algorithms.md 1, 3).

    Returns ``(method, diagnostics)``: ``diagnostics["auto"]`` holds the reason in
    words, ``diagnostics["auto_checks"]`` the statistics of :func:`gaussian_checks`,
    and ``diagnostics["whitening"]`` the matrix ``S^-1/2`` when the Gaussian path is
    to run on ``X S^-1/2`` (inputs Gaussian up to a linear map).
    """
    m = Y.shape[1]
    if k is not None and k > m:
        return "few-outputs", {"auto": f"n_hidden = {k} > m = {m} outputs: rank(U) < k."}
    sub = Y if Y.shape[0] <= 50_000 else Y[rng.choice(Y.shape[0], 50_000, replace=False)]
    s = np.linalg.svd(sub, compute_uv=False)
    rank_Y = int(np.count_nonzero(s > 1e-9 * s[0])) if s[0] > 0 else 0
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
