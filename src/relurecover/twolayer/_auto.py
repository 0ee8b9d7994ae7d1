"""Which two-layer path to run: ``method="auto"`` (ALGORITHMS.md 1, 1.5, 3).

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

__all__ = ["choose_method", "gaussian_checks"]

#: rows used by the checks.
CHECK_ROWS = 20_000
#: how many standard errors a statistic may be off before the check fails.
Z_MAX = 5.0


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
    # Hotelling: n mu^T S^-1 mu ~ chi2_d (mean d, sd sqrt(2 d))
    mean_z = float((n * float(zmu @ zmu) - d) / np.sqrt(2 * d))
    q = np.einsum("ij,ij->i", Z, Z)
    mardia_z = float((np.mean(q**2) - d * (d + 2)) / np.sqrt(8 * d * (d + 2) / n))
    kurt = np.mean(Z**4, axis=0) / np.mean(Z**2, axis=0) ** 2 - 3.0
    skew = np.mean(Z**3, axis=0) / np.mean(Z**2, axis=0) ** 1.5
    # several coordinates: allow for the maximum of d z-scores
    extra = np.sqrt(2 * np.log(max(d, 2)))
    kurt_z = float(np.abs(kurt).max() / np.sqrt(24 / n)) - extra
    skew_z = float(np.abs(skew).max() / np.sqrt(6 / n)) - extra
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
    """Pick the path for ``recover_two_layer(method="auto")`` (ALGORITHMS.md 1, 3).

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
