"""Noisy labels (docs/algorithms.md 2): moment start, least-squares refinement, statistics."""

import warnings

import numpy as np
import pytest

from relurecover import TwoLayerNetwork, compare, gaussian_inputs, recover_two_layer
from relurecover.exceptions import AssumptionWarning
from relurecover.metrics import align
from relurecover.twolayer import Recovery
from relurecover.moments import relu_pattern_gram
from relurecover.twolayer._noisy import (
    _gauss_newton_matrix,
    _loss_grad,
    _penalised_gauss_newton,
    refine_least_squares,
    spectral_gap_rank,
)
from relurecover.twolayer._result import StandardErrors

# Contract: every test here passes for any seed; the parametrised seeds sample it.
SEEDS = range(3)
D, K, M, N = 10, 3, 5, 20_000


def noisy(seed, *, n=N, d=D, k=K, m=M, level=0.1, offset=0.0):
    """Planted network, Gaussian inputs, labels plus noise of std ``level * std(Y)``."""
    rng = np.random.default_rng(seed)
    truth = TwoLayerNetwork.random(d, k, m, rng=rng)
    X = gaussian_inputs(n, d, rng=rng)
    Y0 = truth.predict(X)
    sigma = level * Y0.std()
    return truth, X, Y0 + sigma * rng.standard_normal(Y0.shape) + offset * sigma, sigma


def quiet(X, Y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AssumptionWarning)
        return recover_two_layer(X, Y, **kw)


@pytest.mark.parametrize("seed", SEEDS)
def test_approximate_recovery(seed):
    truth, X, Y, sigma = noisy(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean noisy case warns about nothing
        res = recover_two_layer(X, Y, n_hidden=K, rng=seed)
    assert not res.exact and not res.success
    assert res.message.startswith("not exact: the labels look noisy")
    assert res.network.n_hidden == K and res.n_found == K
    err = compare(res.network, truth).error
    # the error is O(sigma sqrt(p / n)) ~ 5e-3 here; 0.03 leaves a wide margin
    assert err < 0.03
    # the noise level from n m = 1e5 residuals: relative accuracy ~ 1 / sqrt(2e5)
    assert res.noise_level == pytest.approx(sigma, rel=0.03)
    assert res.diagnostics["refinement"]["converged"]
    # bias-free truth: the fitted biases are zero within a few standard errors
    se = res.standard_errors
    assert np.all(np.abs(res.network.c) < 5 * se.c)


@pytest.mark.parametrize("seed", SEEDS)
def test_standard_errors_are_plausible(seed):
    truth, X, Y, _ = noisy(seed)
    res = recover_two_layer(X, Y, n_hidden=K, rng=seed)
    se = res.standard_errors
    assert isinstance(se, StandardErrors)
    assert se.V.shape == (K, D) and se.U.shape == (M, K) and se.per_unit.shape == (K,)
    assert np.all(np.isfinite(se.V)) and np.all(se.V > 0) and np.all(se.U > 0)
    # rows of [V, b] have unit norm: the radial direction has no error
    net = res.network
    Va = np.hstack([net.V, net.b[:, None]])
    np.testing.assert_allclose(np.linalg.norm(Va, axis=1), 1.0, rtol=1e-12)
    # calibration: the errors in units of standard errors have rms ~ 1
    # (rms of K (D + 1) + M K + M = 53 squared z-scores: 1 +- 0.15; [0.5, 2] is generous)
    Ta = np.hstack([truth.V, truth.b[:, None]])
    al = align(net.U, Va, truth.U, Ta)
    Uf, Vf, Ut, Vt, perm = al.U_found, al.V_found, al.U_true, al.V_true, al.permutation
    se_a = np.hstack([se.V, se.b[:, None]])
    zV = (Vf - Vt[perm]) / se_a
    zU = (Uf - Ut[:, perm]) / se.U
    zc = (net.c - truth.c) / se.c
    rms = np.sqrt(np.mean(np.concatenate([zV.ravel(), zU.ravel(), zc]) ** 2))
    assert 0.5 < rms < 2.0
    # the estimated aligned error predicts compare().error within a factor 2
    err = compare(res.network, truth).error
    assert 0.5 < err / se.estimated_error < 2.0


def test_matches_oracle_refinement():
    # the same refinement started from the truth finds the same minimiser
    truth, X, Y, _ = noisy(0)
    res = recover_two_layer(X, Y, n_hidden=K, rng=0)
    oracle = refine_least_squares(X, Y, truth.U, truth.V, rng=0)
    err = compare(res.network, truth).error
    err_oracle = compare(TwoLayerNetwork(oracle.U, oracle.V), truth).error
    assert err <= 1.1 * err_oracle


@pytest.mark.parametrize("seed", SEEDS)
def test_tiny_noise_is_nearly_exact(seed):
    truth, X, Y, _ = noisy(seed, level=1e-8)
    res = recover_two_layer(X, Y, n_hidden=K, rng=seed)
    assert not res.exact  # the labels are not exactly those of a network
    # the least-squares error scales with the noise: ~1e-8 * sqrt(p / n) ~ 5e-10
    assert compare(res.network, truth).max_error < 1e-6
    assert res.standard_errors.estimated_error < 1e-7


def test_noiseless_unchanged():
    # noiseless labels take the exact path: no noise level, no standard errors
    rng = np.random.default_rng(0)
    truth = TwoLayerNetwork.random(D, K, M, rng=rng)
    X = gaussian_inputs(600, D, rng=rng)
    res = recover_two_layer(X, truth.predict(X), rng=0)
    assert res.exact and res.noise_level is None and res.standard_errors is None
    assert "noise_level" not in repr(res)
    assert "refinement" not in res.diagnostics


def test_n_hidden_from_spectral_gap():
    truth, X, Y, sigma = noisy(1)
    res = recover_two_layer(X, Y, rng=1)
    assert res.n_hidden == K and res.diagnostics["n_hidden_from_spectral_gap"] == K
    assert "spectral gap" in res.message
    assert compare(res.network, truth).error < 0.03


def test_no_spectral_gap_asks_for_n_hidden():
    # k = m: no floor of noise singular values shows how many units there are
    truth, X, Y, _ = noisy(0, n=4000, m=K)
    with pytest.warns(AssumptionWarning, match="pass n_hidden"):
        res = recover_two_layer(X, Y, rng=0, max_starts=20)
    assert not res.exact and "pass n_hidden" in res.message


def test_spectral_gap_rank():
    s = np.array([10.0, 6.0, 3.0, 0.101, 0.100, 0.0995])
    assert spectral_gap_rank(s, 10_000, strict=True) == 3
    assert spectral_gap_rank(s[:4], 10_000, strict=False) is None  # tail of one value
    assert spectral_gap_rank(np.array([1.0, 0.9, 0.8, 0.7]), 10_000, strict=False) is None


def test_noise_mean_is_the_output_bias():
    # a mean offset of the noise is an output bias: it is fitted as c, and the
    # weights are as good as with mean-zero noise
    truth, X, Y, sigma = noisy(0, offset=0.5)  # noise mean 0.5 sigma
    res = quiet(X, Y, n_hidden=K, rng=0)
    assert not res.exact
    np.testing.assert_allclose(res.network.c, 0.5 * sigma, atol=5 * res.standard_errors.c.max())
    assert compare(TwoLayerNetwork(res.network.U, res.network.V, b=res.network.b),
                   truth).error < 0.03


def test_too_few_samples_warns_with_estimated_error():
    truth, X, Y, _ = noisy(0, n=400, level=1.0)
    with pytest.warns(AssumptionWarning, match=r"Too few samples .* estimated aligned error"):
        res = recover_two_layer(X, Y, n_hidden=K, rng=0)
    assert not res.exact
    assert res.standard_errors.estimated_error > 0.1
    assert "do not trust this network" in res.message


def test_repr_shows_noise_level():
    _, X, Y, _ = noisy(0)
    text = repr(recover_two_layer(X, Y, n_hidden=K, rng=0))
    assert text.startswith("Recovery(NOT exact, certificate=")
    assert "noise_level=" in text and "estimated_error=" in text


def test_recovery_defaults():
    res = Recovery(network=None, exact=False, certificate=np.inf, message="not recovered",
                   n_found=0, n_hidden=3)
    assert res.noise_level is None and res.standard_errors is None


def test_same_seed_same_bits():
    _, X, Y, _ = noisy(2, n=5000)
    a = recover_two_layer(X, Y, n_hidden=K, rng=7)
    b = recover_two_layer(X, Y, n_hidden=K, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.network.V, b.network.V)
    np.testing.assert_array_equal(a.standard_errors.U, b.standard_errors.U)
    assert a.noise_level == b.noise_level


def test_other_activation_not_refined():
    # the refinement is for ReLU: other activations keep the exact path's answer
    rng = np.random.default_rng(0)
    truth = TwoLayerNetwork.random(D, K, M, activation="relu2", rng=rng)
    X = gaussian_inputs(2000, D, rng=rng)
    Y = truth.predict(X)
    Y = Y + 0.1 * Y.std() * rng.standard_normal(Y.shape)
    res = quiet(X, Y, n_hidden=K, activation="relu2", rng=0, max_starts=20)
    assert not res.exact and res.noise_level is None


def test_validation_still_applies_to_noisy_labels():
    _, X, Y, _ = noisy(0, n=2000)
    with pytest.raises(ValueError, match="`n_hidden` = 6 > min"):
        recover_two_layer(X, Y, n_hidden=6, method="gaussian")
    with pytest.raises(ValueError, match="same number of rows"):
        recover_two_layer(X, Y[:-1], n_hidden=K)


def _explicit_jacobian(X, U, V):
    """With the output bias: the columns of ``c`` appended (``dR/dc = -1``)."""
    H, J = _explicit_jacobian_no_c(X, U, V)
    n, m = X.shape[0], U.shape[0]
    Jc = np.tile(np.eye(m), (n, 1))
    return H, np.hstack([J, Jc])


def _explicit_jacobian_no_c(X, U, V):
    """``d(relu(X V^T) U^T)/d(vec V, vec U)``, rows ``(sample, output)``."""
    n, d = X.shape
    m, k = U.shape
    S = X @ V.T
    H = np.maximum(S, 0.0)
    J = np.zeros((n, m, k * d + m * k))
    for o in range(m):
        J[:, o, :k * d] = (((S > 0) * U[o])[:, :, None] * X[:, None, :]).reshape(n, k * d)
        J[:, o, k * d + o * k:k * d + (o + 1) * k] = H
    return H, J.reshape(n * m, -1)


def test_gauss_newton_pass_matches_the_explicit_jacobian():
    rng = np.random.default_rng(0)
    n, d, k, m = 200, 4, 3, 2
    X = np.hstack([rng.standard_normal((n, d - 1)), np.ones((n, 1))])  # rows [x, 1]
    U, V = rng.standard_normal((m, k)), rng.standard_normal((k, d))
    c = rng.standard_normal(m)
    Y = rng.standard_normal((n, m))
    H, J = _explicit_jacobian(X, U, V)
    M = _gauss_newton_matrix(relu_pattern_gram(X, V, chunk_size=64) * n, U, V, n)
    np.testing.assert_allclose(M, J.T @ J, rtol=1e-10, atol=1e-10)
    lp = _loss_grad(X, Y, U, V, c, chunk_size=64)
    R = Y - H @ U.T - c
    assert lp.loss == pytest.approx(0.5 * float((R**2).sum()), rel=1e-12)
    g = -J.T @ R.ravel()
    np.testing.assert_allclose(np.concatenate([lp.gV.ravel(), lp.gU.ravel(), lp.gc]), g,
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(lp.rsq, (R**2).sum(axis=0), rtol=1e-12)


def test_gauge_directions_are_penalised():
    # (v_i, -u_i) is a null vector of J^T J (ReLU is positively homogeneous); the
    # penalised matrix is positive definite and leaves the other directions alone
    rng = np.random.default_rng(1)
    n, d, k, m = 400, 4, 2, 3
    X = np.hstack([rng.standard_normal((n, d - 1)), np.ones((n, 1))])  # rows [x, 1]
    U, V = rng.standard_normal((m, k)), rng.standard_normal((k, d))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    M = _gauss_newton_matrix(relu_pattern_gram(X, V) * n, U, V, n)
    Mp = _penalised_gauss_newton(X, U, V, n, 128)
    gauge = []
    for i in range(k):
        t = np.zeros(k * d + m * k + m)
        t[i * d:(i + 1) * d] = V[i]
        t[k * d + i:k * d + m * k:k] = -U[:, i]
        gauge.append(t)
        assert np.linalg.norm(M @ t) < 1e-8 * np.linalg.norm(M) * np.linalg.norm(t)
        assert t @ Mp @ t > 1e-3 * np.trace(M) / M.shape[0] * (t @ t)
    assert np.linalg.eigvalsh(Mp).min() > 0
    N = np.array(gauge).T
    w = rng.standard_normal(k * d + m * k + m)
    w -= N @ np.linalg.lstsq(N, w, rcond=None)[0]  # orthogonal to the gauge
    np.testing.assert_allclose(Mp @ w, M @ w, rtol=1e-10, atol=1e-10)


def test_refinement_budgets_are_reported():
    truth, X, Y, _ = noisy(0, n=5000)
    start = dict(rng=0)
    short = refine_least_squares(X, Y, truth.U * 1.1, truth.V, max_iter=1, **start)
    assert not short.converged and short.n_iter == 1
    assert short.message == "stopped after max_iter=1 steps"
    assert short.loss < short.history[0]
    late = refine_least_squares(X, Y, truth.U, truth.V, time_limit=1e-12, **start)
    assert not late.converged and late.n_iter == 0
    assert late.message.startswith("stopped at the time limit")
    full = refine_least_squares(X, Y, truth.U, truth.V, **start)
    assert full.converged and full.message.startswith("converged")
    assert full.loss <= short.loss and np.all(np.diff(full.history) < 0)
    # past the time limit no curvature is formed, for the steps or the statistics:
    # the standard errors are NaN, the noise level is still measured
    assert np.all(np.isnan(late.se_V)) and np.isfinite(late.noise_level)
    assert np.all(np.isfinite(full.se_V))


def test_the_pattern_gram_stops_at_its_deadline():
    import time

    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 6))
    V = rng.standard_normal((4, 6))
    assert relu_pattern_gram(X, V, deadline=time.perf_counter() - 1.0) is None
    # a deadline far off: the same matrix (to rounding: its chunks are smaller)
    np.testing.assert_allclose(relu_pattern_gram(X, V, deadline=time.perf_counter() + 1e6),
                               relu_pattern_gram(X, V), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(relu_pattern_gram(X, V, deadline=float("inf")),
                                  relu_pattern_gram(X, V))


def test_time_limit_bounds_the_exact_and_the_noisy_path_together():
    # (the noisy path had the whole time_limit again after the exact path used it)
    truth, X, Y, _ = noisy(1, n=8000, d=20, k=6, m=8)
    res = quiet(X, Y, n_hidden=6, rng=0, time_limit=1e-9)
    assert not res.exact
    assert "stopped at the time limit after 0 steps" in res.message
    assert "not estimated (the time limit came first)" in res.message


def test_curvature_updates_its_gram_on_the_rows_that_changed():
    """docs/algorithms.md 2: J^T J from the updated pattern Gram equals a fresh one,
    whether no pattern changed (U moved), a few flipped (an update, several units
    on some rows) or most did (a recomputation)."""
    from relurecover.twolayer._noisy import _Curvature, _penalised_gauss_newton

    rng = np.random.default_rng(0)
    Xs = np.hstack([rng.standard_normal((3000, 6)), np.ones((3000, 1))])
    V = rng.standard_normal((3, 7))
    U = rng.standard_normal((4, 3))
    cur = _Curvature(Xs, 1024)
    M0 = cur.matrix(U, V, 10_000)
    assert cur.n_grams == 1 and M0.shape == (3 * 7 + 4 * 3 + 4,) * 2
    for U2, V2 in [(U * 1.1, V), (U, V + 0.01 * rng.standard_normal(V.shape)),
                   (U, V + 2.0 * rng.standard_normal(V.shape))]:
        np.testing.assert_allclose(cur.matrix(U2, V2, 10_000),
                                   _penalised_gauss_newton(Xs, U2, V2, 10_000, 1024),
                                   rtol=1e-10, atol=1e-9)
    assert cur.n_grams == 2 and cur.flips_applied > 0


def test_a_poor_moment_start_is_tried_again(monkeypatch):
    """A first start far from the truth that ends in a wrong minimum (an estimated
    error above WARN_ERROR) is followed by a new moment start; the better fit is
    kept and nothing warns (docs/algorithms.md 2)."""
    from relurecover.twolayer import _noisy

    truth, X, Y, _ = noisy(0)
    real = _noisy.moment_estimate
    calls = []

    def first_poor(*args, **kw):
        U0, V0, b0, c0 = real(*args, **kw)
        calls.append(1)
        if len(calls) == 1:  # copies of one unit: a symmetric stationary point
            V0 = np.tile(V0[:1], (V0.shape[0], 1))
            b0 = np.full_like(b0, b0[0])
            U0 = np.tile(U0[:, :1], (1, U0.shape[1])) / U0.shape[1]
        return U0, V0, b0, c0

    monkeypatch.setattr(_noisy, "moment_estimate", first_poor)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = recover_two_layer(X, Y, n_hidden=K, rng=0)
    assert len(calls) == res.diagnostics["noisy_starts"] >= 2
    assert compare(res.network, truth).error < 0.03
