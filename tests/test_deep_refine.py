"""The refinement of learn_deep and what it runs on (docs/algorithms.md 5.4, 5.7, 5.1).

The screen, Levenberg-Marquardt's probe, the polish only where a gap is, the engine
``"auto"`` and the passes over the data that must give the same numbers as the
plain formulas they replace.
"""

import math

import numpy as np
import pytest

from relurecover import DeepNetwork, gaussian_inputs
from relurecover.deep import learn_deep
from relurecover.deep._engine import (CACHE_ENTRIES, INPUT_BLOCK_ENTRIES, NumpyEngine,
                                      cache_rows, loss_and_gradient, resolve_engine)
from relurecover.deep._learn import (LM_FAST_GAIN, LM_PROBE_ITER, LM_TOL,
                                     _levenberg_marquardt, _mlp_residual_jacobian)
from relurecover.deep._scaling import outlier_rows, rms_exponent


@pytest.fixture(scope="module")
def planted():
    truth = DeepNetwork.random(8, [3, 3], rng=4)
    X = gaussian_inputs(4000, 8, rng=5)
    return truth, X, truth.predict(X).reshape(-1, 1)


def test_auto_is_numpy_whether_or_not_torch_is_installed():
    assert resolve_engine("auto") == "numpy"
    with pytest.raises(ValueError, match="engine"):
        resolve_engine("jax")


def test_cache_rows_fit_the_widest_layer():
    for widths in ([4], [4, 4], [8, 8], [16], [64, 64], [1000]):
        mats = [np.zeros((w, 3)) for w in widths] + [np.zeros((1, widths[-1]))]
        rows = cache_rows(mats)
        assert rows >= 256 and rows & (rows - 1) == 0  # a power of two
        assert rows * max(widths) <= CACHE_ENTRIES or rows == 256
    # and the block of inputs fits a core's cache: 4,096 rows at d = 3 or 16, 1,024 at
    # d = 50, 256 (the least) at d = 200
    for d, expected in ((3, 4096), (16, 4096), (50, 1024), (200, 256), (1000, 256)):
        mats = [np.zeros((4, d)), np.zeros((4, 4)), np.zeros((1, 4))]
        assert cache_rows(mats) == expected
        assert expected * d <= INPUT_BLOCK_ENTRIES or expected == 256


def test_blocked_loss_is_the_loss(planted):
    # the numpy engine's L-BFGS sums the loss over blocks; one block gives the same
    truth, X, Y = planted
    mats = [W + 0.1 for W in truth.weights]
    whole = loss_and_gradient(mats, X, Y, scale=1.0 / len(X))
    parts = [loss_and_gradient(mats, X[s:s + 512], Y[s:s + 512], scale=1.0 / len(X))
             for s in range(0, len(X), 512)]
    assert math.isclose(whole[0], sum(p[0] for p in parts), rel_tol=1e-12)
    for g, l in zip(whole[1], zip(*[p[1] for p in parts])):
        np.testing.assert_allclose(g, sum(l), rtol=1e-10, atol=1e-14)


def test_jacobian_in_a_buffer_is_the_jacobian(planted):
    truth, X, Y = planted
    mats = [W + 0.05 for W in truth.weights]
    r, J = _mlp_residual_jacobian(mats, X[:300], Y[:300])
    buf = np.full_like(J, np.nan)
    r2, J2 = _mlp_residual_jacobian(mats, X[:300], Y[:300], out=buf)
    assert J2 is buf
    np.testing.assert_array_equal(r, r2)
    np.testing.assert_array_equal(J, J2)
    # against finite differences of the residual in one weight of each layer
    for layer, (a, b) in enumerate([(0, 0), (1, 2), (0, 1)]):
        bumped = [W.copy() for W in mats]
        h = 1e-6
        bumped[layer][a, b] += h
        rb = _mlp_residual_jacobian(bumped, X[:300], Y[:300])[0]
        col = sum(W.size for W in mats[:layer]) + a * mats[layer].shape[1] + b
        np.testing.assert_allclose((rb - r) / h, J[:, col], rtol=1e-4, atol=1e-6)


def test_levenberg_marquardt_converges_past_its_probe_near_the_truth(planted):
    truth, X, Y = planted
    rng = np.random.default_rng(0)
    start = [W * (1 + 1e-3 * rng.standard_normal(W.shape)) for W in truth.weights]
    mats, loss, steps = _levenberg_marquardt(start, X, Y, max_iter=30, tol=LM_TOL,
                                             deadline=math.inf, probe=LM_PROBE_ITER)
    assert loss <= 1e-20 and steps > 0
    # the same function on fresh inputs (a unit that never fires has free weights)
    Xn = gaussian_inputs(2000, 8, rng=6)
    F = DeepNetwork(mats).predict(Xn)
    assert np.abs(F - truth.predict(Xn)).max() <= 1e-9 * np.abs(truth.predict(Xn)).max()


def test_levenberg_marquardt_probe_ends_where_it_does_not_converge(planted):
    # from random weights the loss stalls well above the truth's: the attempt ends at
    # the first block of LM_PROBE_ITER steps that cut it by less than LM_PROBE_GAIN
    truth, X, Y = planted
    for seed in range(3):
        start = NumpyEngine(seed).init_weights([8, 3, 3, 1])
        r0 = _mlp_residual_jacobian(start, X, Y)[0]
        loss0 = float(r0 @ r0) / float((Y**2).sum())
        mats, loss, steps = _levenberg_marquardt(start, X, Y, max_iter=60, tol=LM_TOL,
                                                 deadline=math.inf, probe=LM_PROBE_ITER)
        assert loss <= loss0 and steps < 60 and loss > 1e-6
        # the steps taken end a block (or the search found no lower point)
        assert steps % LM_PROBE_ITER == 0 or steps < LM_PROBE_ITER
        # not patient (after an attempt that did not pay): past the probe only where
        # the probe cut the loss 100-fold
        mats, loss, steps = _levenberg_marquardt(start, X, Y, max_iter=60, tol=LM_TOL,
                                                 deadline=math.inf, probe=LM_PROBE_ITER,
                                                 patient=False)
        assert loss <= loss0
        assert steps <= LM_PROBE_ITER or loss <= LM_FAST_GAIN * loss0


def test_learn_deep_exact_fit_skips_the_polish_and_reports_rows(planted):
    truth, X, Y = planted
    fit = learn_deep(X, Y, [3, 3], rng=1, restarts=8, prune=False)
    r0 = fit.diagnostics["rounds"][0]
    assert fit.success
    if fit.heldout_error <= LM_TOL:  # exact: nothing left for the polish to do
        assert r0["polish_iterations"] == 0 or fit.diagnostics["kept_round"] > 0
    assert 0 < r0["lm_rows"] <= len(X) and 0 < r0["screen_rows"] <= len(X)
    assert fit.diagnostics["engine"] == "numpy"
    assert {"refine", "lm", "polish"} <= set(fit.timings)


@pytest.mark.parametrize("scale", [1e-300, 1e-150, 1.0, 3.7, 1e150, 1e300])
def test_rms_exponent_at_every_scale(scale):
    A = gaussian_inputs(3000, 7, rng=2) * scale
    e, c = rms_exponent(A, chunk_size=512)
    # the reference: the mean square of A scaled by an exact power of two
    B = np.ldexp(A, -e)
    assert math.isclose(c, float(np.sqrt(np.mean(B**2))), rel_tol=1e-12)
    assert 2**-0.5 <= c <= 2**0.5


def test_outlier_rows_at_every_scale_and_with_zero_rows():
    X = gaussian_inputs(5000, 6, rng=3)
    X[17] *= 1e3
    for scale in (1e-300, 1.0, 1e300):
        rows, ratio = outlier_rows(X * scale, chunk_size=1024)
        assert list(rows) == [17]
        assert math.isclose(float(ratio[0]), float(np.log10(np.linalg.norm(X[17])
                            / np.median(np.linalg.norm(X, axis=1)))), abs_tol=1e-3)
    Z = X.copy()
    Z[:10] = 0.0  # zero rows take the careful path, and are not outliers
    rows, _ = outlier_rows(Z, chunk_size=1024)
    assert list(rows) == [17]


def test_pruning_with_biases_never_reports_a_width_of_zero():
    # the truth's second layer has one unit that fires: pruning a biased fit would leave
    # that layer only the unit counted as the biases' carrier (widths (2, 0) were said)
    truth = DeepNetwork.random(10, [3, 2], m=3, rng=0)
    X = gaussian_inputs(30_000, 10, rng=1)
    fit = learn_deep(X, truth.predict(X), [3, 2], rng=0, biases=True)
    assert fit.success and min(fit.widths) >= 1
    assert [w - 1 for w in fit.network.widths] == list(fit.widths)


def test_time_limit_stops_every_stage():
    # filtered PCA starts no round after the deadline (round 0 always runs), the
    # subspace fits no restart after the first, the refinement no iteration
    import warnings

    from relurecover.deep import filtered_pca

    truth = DeepNetwork.random(30, [3, 3], rng=1)
    X = gaussian_inputs(20_000, 30, rng=2)
    y = truth.predict(X)
    sub = filtered_pca(X, y, time_limit=1e-9)
    assert "time_limit" in sub.message and len(sub.diagnostics["rounds"]) == 1
    assert sub.n_found >= 1
    full = filtered_pca(X, y)
    assert "time_limit" not in full.message and len(full.diagnostics["rounds"]) >= 2
    with pytest.raises(ValueError, match="time_limit"):
        filtered_pca(X, y, time_limit=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = learn_deep(X, y, [3, 3], rng=0, time_limit=1e-9, rounds=2)
    assert "time_limit" in fit.message
    assert len(fit.restart_errors) == 1  # one subspace fit, one round
    assert len(fit.diagnostics["rounds"]) == 1


def test_take_rows_is_fancy_indexing():
    from relurecover.deep._learn import TAKE_BLOCK, _take_rows

    rng = np.random.default_rng(0)
    A = rng.standard_normal((3 * TAKE_BLOCK + 17, 5))
    idx = np.sort(rng.choice(A.shape[0], A.shape[0] - 100, replace=False))
    out = _take_rows(A, idx)
    assert out.flags.c_contiguous and out.dtype == A.dtype
    np.testing.assert_array_equal(out, A[idx])
    np.testing.assert_array_equal(_take_rows(A, idx[:3]), A[idx[:3]])
    assert _take_rows(A, idx[:0]).shape == (0, 5)
