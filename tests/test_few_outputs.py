"""method="few-outputs" (rank(U) < k, e.g. one output) [BJW] (docs/algorithms.md 3)."""

import numpy as np
import pytest
import scipy.integrate

from relurecover import TwoLayerNetwork, compare, gaussian_inputs, recover_two_layer
from relurecover.instances import safran_shamir
from relurecover.moments import C2, C4, hermite4_contraction, second_moment
from relurecover.twolayer._few_outputs import _low_degree_residual

EXACT = 1e-9


def _h4_brute(z):
    """The full multivariate Hermite tensor He4(z), shape (p, p, p, p)."""
    p = z.size
    I = np.eye(p)
    zz = np.einsum("a,b->ab", z, z)
    t = np.einsum("a,b,c,e->abce", z, z, z, z)
    t -= (np.einsum("ab,ce->abce", I, zz) + np.einsum("ac,be->abce", I, zz)
          + np.einsum("ae,bc->abce", I, zz) + np.einsum("bc,ae->abce", I, zz)
          + np.einsum("be,ac->abce", I, zz) + np.einsum("ce,ab->abce", I, zz))
    t += (np.einsum("ab,ce->abce", I, I) + np.einsum("ac,be->abce", I, I)
          + np.einsum("ae,bc->abce", I, I))
    return t


def test_hermite4_contraction_matches_brute_force():
    rng = np.random.default_rng(0)
    n, p = 40, 4
    Z = rng.standard_normal((n, p))
    r = rng.standard_normal(n)
    a, b = rng.standard_normal((2, p))
    brute = np.mean([r[j] * np.einsum("abce,a,b->ce", _h4_brute(Z[j]), a, b)
                     for j in range(n)], axis=0)
    fast = hermite4_contraction(Z, r, a, b)
    assert np.allclose(fast, brute, rtol=1e-12, atol=1e-12)
    assert np.allclose(fast, fast.T)


def test_hermite_constants():
    phi = lambda g: np.exp(-g * g / 2) / np.sqrt(2 * np.pi)  # noqa: E731
    c4 = scipy.integrate.quad(lambda g: g * (g**4 - 6 * g**2 + 3) * phi(g), 0, np.inf)[0]
    c2 = scipy.integrate.quad(lambda g: g * (g**2 - 1) * phi(g), 0, np.inf)[0]
    assert abs(c4 - C4) < 1e-10 and abs(c2 - C2) < 1e-10
    # the moment identity E[relu(v.z) He4(z)(a, b, ., .)] = C4 (a.v)(b.v) v v^T
    rng = np.random.default_rng(1)
    p = 3
    v = np.array([0.6, 0.8, 0.0])
    Z = rng.standard_normal((400_000, p))
    a, b = rng.standard_normal((2, p))
    y = np.maximum(Z @ v, 0)
    expected = C4 * (a @ v) * (b @ v) * np.outer(v, v)
    # removing the Hermite degree <= 2 part keeps the expectation, cuts the noise
    M = hermite4_contraction(Z, _low_degree_residual(Z, y), a, b)
    assert np.abs(M - expected).max() < 0.06 * np.abs(expected).max()
    assert np.abs(hermite4_contraction(Z, y, a, b) - expected).max() < 0.3 * np.abs(
        expected).max()


def test_second_moment_and_floor():
    rng = np.random.default_rng(2)
    truth = TwoLayerNetwork(np.array([[1.0, -1.5, 2.0]]), rng.standard_normal((3, 10)))
    X = gaussian_inputs(100_000, 10, rng=rng)
    M2, floor = second_moment(X, truth.predict(X)[:, 0])
    Vh = truth.V / np.linalg.norm(truth.V, axis=1, keepdims=True)
    a = truth.U[0] * np.linalg.norm(truth.V, axis=1)
    expected = C2 * (Vh.T * a) @ Vh
    assert np.linalg.norm(M2 - expected, 2) < floor  # the noise stays under the floor
    lam = np.linalg.eigvalsh(M2)
    assert np.count_nonzero(np.abs(lam) > floor) == 3


def _planted(d, k, m, n, seed):
    rng = np.random.default_rng([d, k, m, seed])
    truth = TwoLayerNetwork.random(d, k, m, rng=rng)
    X = gaussian_inputs(n, d, rng=rng)
    return truth, X, truth.predict(X)


def _assert_exact(res, truth):
    assert res.exact, res.message
    assert res.method == "few-outputs"
    assert res.certificate <= 1e-9
    assert res.n_found == truth.V.shape[0]
    cmp = compare(res.network, truth)
    assert cmp.n_matched == truth.V.shape[0]
    assert cmp.max_error <= EXACT


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [2, 3])
def test_exact_one_output(k, seed):
    truth, X, Y = _planted(8, k, 1, 3000, seed)
    res = recover_two_layer(X, Y, n_hidden=k, method="few-outputs", rng=seed)
    _assert_exact(res, truth)
    assert res.network.U.shape == (1, k) and res.network.V.shape == (k, 8)


@pytest.mark.parametrize("seed", range(2))
def test_safran_shamir(seed):
    truth = safran_shamir(12, 5, rng=seed)
    X = gaussian_inputs(5000, 12, rng=seed + 10)
    res = recover_two_layer(X, truth.predict(X), n_hidden=5, method="few-outputs",
                            rng=seed)
    _assert_exact(res, truth)


def test_two_outputs_three_units():
    truth, X, Y = _planted(8, 3, 2, 4000, 0)
    assert np.linalg.matrix_rank(truth.U) == 2 < 3
    res = recover_two_layer(X, Y, n_hidden=3, method="few-outputs", rng=0)
    _assert_exact(res, truth)
    assert res.network.U.shape == (2, 3)


def test_one_dimensional_labels_accepted():
    truth, X, Y = _planted(6, 2, 1, 2000, 1)
    res = recover_two_layer(X, Y[:, 0], n_hidden=2, method="few-outputs", rng=1)
    _assert_exact(res, truth)


def test_infers_k():
    rng = np.random.default_rng(5)
    V = rng.standard_normal((3, 8))
    truth = TwoLayerNetwork(np.array([[1.0, -1.5, 2.0]]), V)
    X = gaussian_inputs(60_000, 8, rng=rng)
    res = recover_two_layer(X, truth.predict(X), method="few-outputs", rng=0)
    assert res.diagnostics["n_hidden_inferred"] == 3
    assert "inferred k = 3" in res.message
    _assert_exact(res, truth)


def test_random_labels_not_exact():
    rng = np.random.default_rng(3)
    X = gaussian_inputs(3000, 8, rng=rng)
    Y = rng.standard_normal((3000, 1))
    res = recover_two_layer(X, Y, n_hidden=2, method="few-outputs", rng=0, max_starts=5)
    assert not res.exact and not res.success
    assert res.certificate > 1e-3
    assert "not exact" in res.message and "of 2 units" in res.message


def test_wider_network_fitted_with_fewer_units_not_exact():
    truth, X, Y = _planted(8, 5, 1, 4000, 2)  # labels of 5 units, fitted with 3
    res = recover_two_layer(X, Y, n_hidden=3, method="few-outputs", rng=0, max_starts=8)
    assert not res.exact
    assert res.certificate > 1e-6
    assert "not exact" in res.message


def test_tiny_budget_reports_reason():
    truth, X, Y = _planted(8, 3, 1, 3000, 4)
    res = recover_two_layer(X, Y, n_hidden=3, method="few-outputs", rng=0,
                            time_limit=1e-9)
    assert not res.exact
    assert res.n_found == 0
    assert "time limit" in res.message


def test_non_gaussian_inputs_certificate_decides():
    # moments assume Gaussian inputs; the finish and the certificate do not
    rng = np.random.default_rng(6)
    truth = TwoLayerNetwork.random(8, 3, 1, rng=rng)
    X = rng.uniform(-1, 1, size=(4000, 8))
    res = recover_two_layer(X, truth.predict(X), n_hidden=3, method="few-outputs", rng=0,
                            max_starts=10)
    if res.exact:
        assert compare(res.network, truth).max_error <= EXACT
    else:
        assert res.certificate > 1e-9


def test_non_relu_refused():
    truth, X, _ = _planted(6, 2, 1, 1000, 0)
    Y = TwoLayerNetwork(truth.U, truth.V, activation="relu2").predict(X)
    with pytest.raises(ValueError, match="only activation='relu'"):
        recover_two_layer(X, Y, n_hidden=2, method="few-outputs", activation="relu2",
                          rng=0)


def test_small_unit_under_the_floor():
    # |u_3| ||v_3|| is small: M2 shows only 2 eigenvalues above its floor, so the
    # 4th moment completes the subspace (k given) or k = 3 is found by trying k + 1
    rng = np.random.default_rng(2)
    V = rng.standard_normal((3, 8))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    truth = TwoLayerNetwork(np.array([[1.0, -1.0, 0.1]]), V)
    X = gaussian_inputs(20000, 8, rng=rng)
    Y = truth.predict(X)
    res = recover_two_layer(X, Y, n_hidden=3, method="few-outputs", rng=0)
    assert res.diagnostics["eigenvalues_above_floor"] == 2
    assert res.diagnostics["fourth_moment_subspace"]
    _assert_exact(res, truth)
    res = recover_two_layer(X, Y, method="few-outputs", rng=0)
    assert res.diagnostics["n_hidden_from_floor"] == 2
    assert "k = 3" in res.message
    _assert_exact(res, truth)


def test_random_labels_k_inferred_not_exact():
    rng = np.random.default_rng(7)
    X = gaussian_inputs(3000, 6, rng=rng)
    res = recover_two_layer(X, rng.standard_normal(3000), method="few-outputs", rng=0,
                            max_starts=4)
    assert not res.exact
    assert "not" in res.message


def test_certificate_uses_all_rows():
    # labels right except on 30 rows of small margin, which the finish never picks:
    # the finish converges, yet the certificate on all rows must refuse exactness
    truth, X, Y = _planted(8, 3, 1, 4000, 3)
    Y = Y.copy()
    Vh = truth.V / np.linalg.norm(truth.V, axis=1, keepdims=True)
    bad = np.argsort(np.min(np.abs(X @ Vh.T), axis=1))[:30]
    Y[bad] += 1.0
    res = recover_two_layer(X, Y, n_hidden=3, method="few-outputs", rng=0, max_starts=5)
    assert not res.exact
    assert res.certificate > 1e-3
    assert "does not reproduce the labels" in res.message


def test_pattern_solve_exact_and_rank_check():
    from relurecover.twolayer._few_outputs import _pattern_solve

    rng = np.random.default_rng(8)
    truth = TwoLayerNetwork.random(6, 2, 1, rng=rng)
    X = rng.standard_normal((400, 6))
    y = truth.predict(X)[:, 0]
    E = truth.V / np.linalg.norm(truth.V, axis=1, keepdims=True)
    E[1] *= -1  # a flipped direction is absorbed by the free linear term
    W, lvec, res, full = _pattern_solve(X, y, E)
    assert full and res < 1e-13
    assert np.allclose(lvec, -W[1], atol=1e-10)
    # rows where unit 0 is always on: its weights and the linear term are confounded
    on = X @ E[0] > 0
    _, _, res, full = _pattern_solve(X[on], y[on], E)
    assert not full
