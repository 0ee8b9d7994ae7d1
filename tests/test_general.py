"""method="general" and "auto", and relurecover.instances (issue 7; docs/algorithms.md 1.5, 3)."""

from __future__ import annotations

import numpy as np
import pytest

from relurecover import TwoLayerNetwork, compare, gaussian_inputs, recover_two_layer
from relurecover.instances import (
    ill_conditioned,
    input_family,
    near_parallel,
    planted_instance,
    planted_on,
    safran_shamir,
    sklearn_inputs,
)
from relurecover.twolayer._auto import choose_method


def _unit_distances(found, truth):
    """For each found unit, the distance of its unit direction to the nearest true one."""
    Vf = found.V / np.linalg.norm(found.V, axis=1, keepdims=True)
    Vt = truth.V / np.linalg.norm(truth.V, axis=1, keepdims=True)
    return np.linalg.norm(Vf[:, None, :] - Vt[None, :, :], axis=2).min(axis=1)


@pytest.mark.parametrize("family", ["uniform", "student-t", "sparse-nonnegative", "heavy-tailed"])
def test_general_exact_on_non_gaussian_inputs(family):
    truth, X = planted_instance(family, 400, 10, 3, 4, rng=11)
    res = recover_two_layer(X, truth.predict(X), n_hidden=3, method="general", rng=0)
    assert res.method == "general"
    assert res.exact, res.message
    assert res.n_found == 3 and res.certificate < 1e-12
    assert compare(res.network, truth).max_error < 1e-9
    assert res.diagnostics["data_rank"] == 10 and res.diagnostics["starts_used"] >= 3


def test_general_infers_k_from_rank_of_Y():
    truth, X = planted_instance("uniform", 500, 8, 4, 6, rng=3)
    res = recover_two_layer(X, truth.predict(X), method="general", rng=1)
    assert res.exact and res.n_hidden == 4
    assert res.diagnostics["n_hidden_from_rank_Y"] == 4


def test_digits_span_projection():
    pytest.importorskip("sklearn", reason="scikit-learn's bundled digits data set")
    X = sklearn_inputs("digits")[:700]
    truth = planted_on(X, 3, 4, rng=5)
    res = recover_two_layer(X, truth.predict(X), n_hidden=3, method="general", rng=2)
    r = res.diagnostics["data_rank"]
    assert r < 64
    assert int(np.linalg.matrix_rank(X)) == r
    assert "identifiable only on the" in res.message and "data_span_note" in res.diagnostics
    assert res.exact, res.message
    # V lies in the row span of X: no component along the directions X never visits
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    null = Vt[r:]
    assert np.abs(res.network.V @ null.T).max() < 1e-9 * np.abs(res.network.V).max()
    assert compare(res.network, truth).max_error < 1e-9
    # the certificate is on the original X
    resid = np.linalg.norm(res.network.predict(X) - truth.predict(X)) / np.linalg.norm(
        truth.predict(X))
    assert resid < 1e-12


def test_auto_standard_gaussian_goes_gaussian():
    truth = TwoLayerNetwork.random(10, 3, 4, rng=0)
    X = gaussian_inputs(1500, 10, rng=1)
    res = recover_two_layer(X, truth.predict(X), rng=2)
    assert res.method == "gaussian" and res.exact
    assert "standard Gaussian" in res.diagnostics["auto"]
    assert res.diagnostics["auto_checks"]["is_standard"]


def test_auto_whitens_correlated_gaussian_and_certifies_on_original_X():
    d = 10
    truth = TwoLayerNetwork.random(d, 3, 4, rng=0)
    L = np.random.default_rng(1).standard_normal((d, d))
    X = gaussian_inputs(2000, d, rng=2) @ L.T
    Y = truth.predict(X)
    method, diag = choose_method(X, Y, 3, rng=np.random.default_rng(0))
    assert method == "gaussian" and diag["whitening"].shape == (d, d)
    res = recover_two_layer(X, Y, rng=3)
    assert res.method == "gaussian" and res.diagnostics["whitened"]
    assert "whitened" in res.diagnostics["auto"]
    assert res.exact, res.message
    assert np.linalg.norm(res.network.predict(X) - Y) / np.linalg.norm(Y) == pytest.approx(
        res.certificate, rel=1e-6, abs=1e-15)
    assert compare(res.network, truth).max_error < 1e-9


@pytest.mark.parametrize("family", ["uniform", "sparse-nonnegative"])
def test_auto_non_gaussian_goes_general(family):
    truth, X = planted_instance(family, 600, 10, 3, 4, rng=4)
    res = recover_two_layer(X, truth.predict(X), rng=0)
    assert res.method == "general" and res.exact
    assert res.diagnostics["auto_checks"]["failed"]
    assert "general path" in res.diagnostics["auto"]


def test_auto_few_outputs_choice():
    truth = TwoLayerNetwork.random(10, 4, 2, rng=0)
    X = gaussian_inputs(800, 10, rng=1)
    method, diag = choose_method(X, truth.predict(X), 4, rng=np.random.default_rng(0))
    assert method == "few-outputs" and "rank(U) < k" in diag["auto"]
    # k <= m but rank(Y) < k: U rank deficient
    g = np.random.default_rng(2)
    U = g.standard_normal((5, 2)) @ g.standard_normal((2, 4))
    truth2 = TwoLayerNetwork(U, truth.V)
    method, diag = choose_method(X, truth2.predict(X), 4, rng=np.random.default_rng(0))
    assert method == "few-outputs" and diag["auto_rank_Y"] == 2


def test_auto_one_output_without_k_goes_few_outputs():
    # rank(Y) = 1 says nothing about k: the few-outputs path infers it
    truth = TwoLayerNetwork.random(10, 3, 1, rng=0)
    X = gaussian_inputs(5000, 10, rng=1)
    res = recover_two_layer(X, truth.predict(X), rng=0)
    assert res.method == "few-outputs", res.diagnostics["auto"]
    assert "one output" in res.diagnostics["auto"]
    assert res.exact and res.n_hidden == 3, res.message
    assert compare(res.network, truth).max_error < 1e-9


def test_gaussian_checks_rarely_reject_gaussian_inputs():
    # each check is at about 5 sd: 60 Gaussian draws at small d all pass (the
    # normal approximation of chi2_d, or of the sample skewness, failed this)
    from relurecover.twolayer._auto import gaussian_checks

    zs = []
    for seed in range(60):
        c = gaussian_checks(gaussian_inputs(3000, 8, rng=seed), rng=np.random.default_rng(0))
        assert c["is_gaussian"], (seed, c["failed"])
        zs.append(max(c["mean_z"], abs(c["mardia_z"]), c["max_marginal_kurtosis_z"],
                      c["max_marginal_skewness_z"]))
    assert max(zs) < 4.5


def test_budget_exhausted_reports_units_found_and_none_false():
    truth, X = planted_instance("uniform", 900, 12, 6, 8, rng=7)
    res = recover_two_layer(X, truth.predict(X), n_hidden=6, method="general", rng=0,
                            max_starts=2)
    assert not res.exact
    assert 1 <= res.n_found <= 2
    assert f"found {res.n_found} of 6 units" in res.message and "max_starts=2" in res.message
    assert res.network.V.shape == (res.n_found, 12)
    assert _unit_distances(res.network, truth).max() < 1e-9
    res = recover_two_layer(X, truth.predict(X), n_hidden=6, method="general", rng=0,
                            time_limit=1e-9)
    assert not res.exact and res.network is None and "time limit" in res.message


def test_random_labels_never_certified():
    rng = np.random.default_rng(0)
    X = input_family("uniform", 400, 8, rng=1)
    Y = rng.standard_normal((400, 5))
    for k in (3, None):
        res = recover_two_layer(X, Y, n_hidden=k, method="general", rng=0, max_starts=100)
        assert not res.exact and res.n_found == 0 and res.network is None
    assert "rank 5 > n_hidden = 3" in recover_two_layer(
        X, Y, n_hidden=3, method="general", rng=0, max_starts=20).message


def test_wider_network_fitted_with_fewer_units():
    truth, X = planted_instance("uniform", 800, 10, 5, 8, rng=8)
    res = recover_two_layer(X, truth.predict(X), n_hidden=3, method="general", rng=0,
                            max_starts=200)
    assert not res.exact and "rank 5 > n_hidden = 3" in res.message
    # the units found are units of the wider network
    assert res.n_found == 5 and _unit_distances(res.network, truth).max() < 1e-9


def test_units_constant_on_the_data_are_not_reported():
    # positive inputs, two units with positive weights: active on every row, so only
    # their sum is identifiable; the two other units are.
    g = np.random.default_rng(3)
    X = g.uniform(0.1, 1.0, (600, 8))
    net = planted_on(X, 2, 4, rng=4)
    V = np.vstack([g.uniform(0.5, 1, (2, 8)), net.V])
    truth = TwoLayerNetwork(g.standard_normal((4, 4)), V)
    res = recover_two_layer(X, truth.predict(X), n_hidden=4, method="general", rng=0,
                            max_starts=150)
    assert not res.exact and "active on every sample" in res.message
    assert "only their sum is identifiable" in res.message
    assert res.diagnostics["always_active_rank"] == 2
    assert res.n_found == 2
    assert _unit_distances(res.network, TwoLayerNetwork(net.U, net.V)).max() < 1e-9


def test_general_input_errors():
    truth, X = planted_instance("uniform", 200, 6, 2, 3, rng=0)
    Y = truth.predict(X)
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        recover_two_layer(Xn, Y, method="general")
    with pytest.raises(ValueError, match="same number of rows"):
        recover_two_layer(X, Y[:-1], method="general")
    with pytest.raises(ValueError, match="n_hidden"):
        recover_two_layer(X, Y, n_hidden=5, method="general")
    with pytest.raises(ValueError, match="method"):
        recover_two_layer(X, Y, method="generic")


def test_instances_reproducible_and_as_documented():
    a, Xa = planted_instance("sparse-nonnegative", 300, 6, 3, 4, rng=9)
    b, Xb = planted_instance("sparse-nonnegative", 300, 6, 3, 4, rng=9)
    c, Xc = planted_instance("sparse-nonnegative", 300, 6, 3, 4, rng=10)
    assert np.array_equal(Xa, Xb) and np.array_equal(a.V, b.V) and np.array_equal(a.U, b.U)
    assert not np.array_equal(Xa, Xc)
    frac = (Xa @ a.V.T > 0).mean(axis=0)
    assert np.all((frac >= 0.2) & (frac <= 0.8))
    assert np.allclose(a.V @ Xa.mean(axis=0), 0, atol=1e-12)  # orthogonal to the mean
    for i in range(3):
        assert np.linalg.matrix_rank(Xa[Xa @ a.V[i] > 0]) == 6
    assert np.array_equal(near_parallel(8, 4, 5, rng=1).V, near_parallel(8, 4, 5, rng=1).V)
    Vn = near_parallel(8, 4, 5, angle=0.02, rng=1).V
    assert np.isclose(Vn[2] @ Vn[3], np.cos(0.02))
    net = ill_conditioned(8, 4, 6, cond_U=1e5, cond_V=10, rng=2)
    assert np.isclose(np.linalg.cond(net.U), 1e5) and np.isclose(np.linalg.cond(net.V), 10)
    assert np.array_equal(safran_shamir(5, 3, rng=0).V, safran_shamir(5, 3, rng=0).V)
    with pytest.raises(ValueError, match="unknown input family"):
        input_family("cauchy", 10, 2)
    with pytest.raises(ValueError, match="unknown data set"):
        sklearn_inputs("iris")
    with pytest.raises(ValueError, match="k <= d"):
        near_parallel(3, 4, 2)


def test_sklearn_inputs_shape():
    pytest.importorskip("sklearn", reason="scikit-learn's bundled wine data set")
    assert sklearn_inputs("wine").shape == (178, 13)


def test_near_parallel_units_split_by_the_lp():
    # pairs of units 0.05 rad apart share most of their inactive samples: the null
    # space on S is often two-dimensional and the LP vertex separates them
    truth = near_parallel(20, 4, 6, angle=0.05, rng=1)
    X = input_family("uniform", 800, 20, rng=2)
    res = recover_two_layer(X, truth.predict(X), n_hidden=4, method="general", rng=0)
    assert res.exact, res.message
    assert compare(res.network, truth).max_error < 1e-8


@pytest.mark.parametrize("name,k,m", [("wine", 3, 4), ("breast_cancer", 3, 4)])
def test_sklearn_raw_features(name, k, m):
    pytest.importorskip("sklearn", reason="scikit-learn's bundled data sets")
    X = sklearn_inputs(name)
    truth = planted_on(X, k, m, rng=2)
    res = recover_two_layer(X, truth.predict(X), n_hidden=k, rng=0)
    assert res.method == "general" and res.exact, res.message
    assert compare(res.network, truth).max_error < 1e-6


def test_auto_falls_back_to_general_when_the_gaussian_path_stalls(monkeypatch):
    # the Gaussian path now solves the near-parallel instances that used to stall
    # it, so the stall is simulated: it keeps one unit fewer than it found, and
    # "auto" must then run the general path, which finds all four
    import dataclasses

    from relurecover.twolayer import _recover

    truth = near_parallel(20, 4, 6, angle=0.05, rng=0)
    X = gaussian_inputs(800, 20, rng=10)
    Y = truth.predict(X)
    real = _recover.recover_gaussian

    def stalled(*args, **kw):
        res = real(*args, **kw)
        net = res.network
        short = TwoLayerNetwork(net.U[:, 1:], net.V[1:], b=net.b[1:], c=net.c)
        return dataclasses.replace(res, network=short, exact=False, n_found=3,
                                   message="not exact: found 3 of 4 units (stalled)")

    monkeypatch.setattr(_recover, "recover_gaussian", stalled)
    res = recover_two_layer(X, Y, n_hidden=4, rng=0)
    assert res.method == "general" and res.exact, res.message
    assert "fell back to the general path" in res.diagnostics["auto"]
    assert res.diagnostics["gaussian_message"] == "not exact: found 3 of 4 units (stalled)"
    assert compare(res.network, truth).max_error < 1e-9
    assert any(name.startswith("gaussian: ") for name in res.timings)
