"""The Gaussian checks of method="auto" (twolayer._auto; docs/algorithms.md 3.3)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import scipy.stats

from relurecover import gaussian_inputs
from relurecover.instances import input_family, sklearn_inputs
from relurecover.twolayer._auto import (
    CHECK_ROWS,
    MIN_SPARE_ROWS,
    Z_MAX,
    _kurtosis_z,
    _skewness_z,
    gaussian_checks,
    mardia_null_moments,
)


def _largest_z(c):
    return max(c["mean_z"], abs(c["mardia_z"]), c["max_marginal_kurtosis_z"],
               c["max_marginal_skewness_z"])


def test_d1000_gaussian_rows_are_gaussian_mardia_centred():
    # the defect: at d = 1000 on 20,000 rows the asymptotic Mardia test (mean
    # d (d + 2), variance 8 d (d + 2) / n) is off by 5 standard errors; it gave
    # z = -5.9 on this draw and sent Gaussian inputs to the slow general path
    X = gaussian_inputs(CHECK_ROWS, 1000, rng=2)
    c = gaussian_checks(X, rng=np.random.default_rng(0))
    assert c["is_gaussian"] and c["is_standard"], c["failed"]
    assert abs(c["mardia_z"]) < 3, c["mardia_z"]  # the old z was below -5
    assert _largest_z(c) < 4
    assert c["covariance_deviation"] < c["covariance_tolerance"]
    assert c["n_checked"] == CHECK_ROWS and c["seconds"] > 0 and c["whitening"] is None


@pytest.mark.parametrize("d,n", [(10, 100), (10, 2000), (200, 2000)])
def test_gaussian_inputs_pass_over_20_seeds(d, n):
    zs = []
    for seed in range(20):
        X = gaussian_inputs(n, d, rng=np.random.default_rng([d, n, seed]))
        c = gaussian_checks(X, rng=np.random.default_rng(seed))
        assert c["is_gaussian"], (seed, c["failed"])
        zs.append(_largest_z(c))
    assert max(zs) < 4.5, max(zs)


@pytest.mark.parametrize("family", ["uniform", "student-t", "sparse-nonnegative",
                                    "heavy-tailed"])
@pytest.mark.parametrize("d", [10, 50, 100])
def test_non_gaussian_families_refused(family, d):
    X = input_family(family, 10 * d * 8, d, rng=np.random.default_rng([d, 1]))
    c = gaussian_checks(X, rng=np.random.default_rng(0))
    assert not c["is_gaussian"] and not c["is_standard"] and c["failed"]
    assert _largest_z(c) > 2 * Z_MAX, c  # refused clearly, not at the margin


def test_digits_refused():
    pytest.importorskip("sklearn", reason="scikit-learn's bundled digits data set")
    c = gaussian_checks(sklearn_inputs("digits"), rng=np.random.default_rng(0))
    assert not c["is_gaussian"] and c["data_rank"] == 61
    assert "span only 61" in c["failed"][0]


def test_too_few_rows_refused():
    d = 10
    c = gaussian_checks(gaussian_inputs(d + MIN_SPARE_ROWS - 1, d, rng=0),
                        rng=np.random.default_rng(0))
    assert not c["is_gaussian"] and "too few" in c["failed"][0]
    c = gaussian_checks(gaussian_inputs(d + MIN_SPARE_ROWS, d, rng=0),
                        rng=np.random.default_rng(0))
    assert "mardia_z" in c


def test_correlated_gaussian_whitening():
    d = 20
    L = np.random.default_rng(1).standard_normal((d, d))
    X = gaussian_inputs(4000, d, rng=2) @ L.T
    c = gaussian_checks(X, rng=np.random.default_rng(0))
    assert c["is_gaussian"] and not c["is_standard"]
    A = c["whitening"]
    S = X.T @ X / X.shape[0]
    assert np.allclose(A, A.T) and np.allclose(A @ S @ A, np.eye(d), atol=1e-9)


def test_mardia_moments_exact_at_d1():
    # d = 1: b_2 = n sum_i w_i^2 with w ~ Dirichlet(1/2, ..., 1/2) (w_i = x_i^2 / |x|^2),
    # whose moments are exact rationals: an independent check of the formulas
    half = Fraction(1, 2)

    def rising(a, j):
        out = Fraction(1)
        for i in range(j):
            out *= a + i
        return out

    for n in (21, 50, 1000):
        s = Fraction(n, 2)
        ew2 = rising(half, 2) / rising(s, 2)
        ew4 = rising(half, 4) / rising(s, 4)
        ew22 = rising(half, 2) ** 2 / rising(s, 4)
        mean = n * n * ew2
        var = n * n * (n * ew4 + n * (n - 1) * ew22) - mean**2
        m, v, _ = mardia_null_moments(1, n)
        assert m == pytest.approx(float(mean), rel=1e-13)
        assert v == pytest.approx(float(var), rel=1e-12)


def test_mardia_and_hotelling_null_laws_monte_carlo():
    # 20,000 Gaussian samples of n = 30 rows in d = 3: the exact mean and variance of
    # b_2 with S about 0 fit, the asymptotic ones do not; T / n ~ Beta(d/2, (n-d)/2)
    d, n, reps = 3, 30, 20_000
    X = np.random.default_rng(0).standard_normal((reps, n, d))
    Sinv = np.linalg.inv(np.einsum("rni,rnj->rij", X, X))
    q = n * np.einsum("rni,rij,rnj->rn", X, Sinv, X)
    b2 = (q**2).mean(axis=1)
    mean, var, _ = mardia_null_moments(d, n)
    se = np.sqrt(var / reps)
    assert abs(b2.mean() - mean) < 4 * se
    assert abs(b2.mean() - d * (d + 2)) > 40 * se  # the asymptotic mean is far off
    assert 0.93 < b2.var() / var < 1.07
    assert b2.var() / (8 * d * (d + 2) / n) < 0.8  # the asymptotic variance is too big
    s1 = X.sum(axis=1)
    T = np.einsum("ri,rij,rj->r", s1, Sinv, s1)  # n xbar^T S^-1 xbar
    assert scipy.stats.kstest(T / n, scipy.stats.beta(d / 2, (n - d) / 2).cdf).pvalue > 1e-3
    assert scipy.stats.kstest(T, scipy.stats.chi2(d).cdf).pvalue < 1e-3


def test_marginal_transforms_match_scipy():
    # the checks compute the skewness and kurtosis of every column in one pass and
    # apply D'Agostino's and Anscombe-Glynn's transforms themselves
    A = np.random.default_rng(0).standard_normal((500, 40)) ** 3
    for n in (20, 37, 500):
        B = A[:n]
        C = B - B.mean(axis=0)
        m2 = (C**2).mean(axis=0)
        g1, g2 = (C**3).mean(axis=0) / m2**1.5, (C**4).mean(axis=0) / m2**2
        np.testing.assert_allclose(_skewness_z(g1, n),
                                   scipy.stats.skewtest(B, axis=0).statistic, atol=1e-10)
        np.testing.assert_allclose(_kurtosis_z(g2, n),
                                   scipy.stats.kurtosistest(B, axis=0).statistic, atol=1e-10)


def test_auto_and_gaussian_give_the_same_network_for_the_same_seed():
    # auto's checks draw from a child stream of rng: the Gaussian path it picks
    # makes the draws it makes when named, so the two calls agree bit for bit
    from relurecover import TwoLayerNetwork, recover_two_layer

    truth = TwoLayerNetwork.random(12, 4, 5, rng=3)
    X = gaussian_inputs(30_000, 12, rng=4)  # > CHECK_ROWS: the checks draw rows
    Y = truth.predict(X)
    a = recover_two_layer(X, Y, rng=7)
    g = recover_two_layer(X, Y, rng=7, method="gaussian")
    assert a.method == g.method == "gaussian" and a.exact and g.exact
    assert np.array_equal(a.network.V, g.network.V)
    assert np.array_equal(a.network.U, g.network.U)
    # and the caller's generator is left where the named path leaves it
    r_auto, r_gauss = np.random.default_rng(5), np.random.default_rng(5)
    recover_two_layer(X, Y, rng=r_auto)
    recover_two_layer(X, Y, rng=r_gauss, method="gaussian")
    assert r_auto.random() == r_gauss.random()


def test_checks_on_a_float32_array_and_a_row_subset_match_float64():
    # the rows checked are gathered a block at a time, converted to float64
    X = gaussian_inputs(CHECK_ROWS + 5000, 20, rng=6)
    c64 = gaussian_checks(X, rng=np.random.default_rng(1))
    c32 = gaussian_checks(X.astype(np.float32).astype(np.float64), rng=np.random.default_rng(1))
    assert c64["n_checked"] == CHECK_ROWS
    assert abs(c64["mardia_b2"] - c32["mardia_b2"]) < 1e-4 * c64["mardia_b2"]
    c32b = gaussian_checks(X.astype(np.float32), rng=np.random.default_rng(1))
    assert c32b["mardia_b2"] == pytest.approx(c32["mardia_b2"], rel=1e-12)
