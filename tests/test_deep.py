"""Deep networks [CKM] (docs/algorithms.md 5): filtered PCA's honesty, learn_deep, the CLI.

:func:`learn_deep` runs on the base install (the numpy engine); the tests of the
torch engine are skipped, with the reason, without PyTorch.
"""

import dataclasses
import importlib.util
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from relurecover import DeepNetwork, gaussian_inputs
from relurecover import metrics, moments
from relurecover.cli import app
from relurecover.deep import (DeepFit, MissingDependencyError, filtered_pca, learn_deep,
                              plain_pca, principal_angles)
from relurecover.deep._filtered_pca import _pooled_reestimate
from relurecover.deep._learn import (TORCH_HINT, _levenberg_marquardt,
                                     _mlp_residual_jacobian)

FAST = dict(restarts=4, n_screen=2, screen_iter=60, fit_iter=80, max_iter=300)
#: the settings of the reproducibility check, on the first 8000 rows of ``small``.
FAST_ONE_ROUND = dict(rounds=1, lm_iter=0, **FAST)

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="needs PyTorch: pip install 'relurecover[torch]'")
#: the engines of learn_deep to test: numpy always, torch where it is installed.
ENGINE_NAMES = ["numpy", pytest.param("torch", marks=needs_torch)]


@pytest.fixture(scope="module")
def small():
    truth = DeepNetwork.random(10, [3, 2], rng=0)
    X = gaussian_inputs(20_000, 10, rng=1)
    return truth, X, truth.predict(X)


@pytest.fixture(scope="module")
def small_pca(small):
    _, X, y = small
    return filtered_pca(X, y)


@pytest.fixture(scope="module")
def fast_fit(small):
    _, X, y = small
    return learn_deep(X[:8000], y[:8000], [3, 2], rng=5, **FAST_ONE_ROUND)




# --------------------------------------------------------------------------- filtered PCA


@pytest.mark.parametrize("label", ["gaussian", "abs"])
def test_filtered_pca_finds_nothing_in_pure_noise(label):
    # labels independent of X: every direction must stay below its floor
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30_000, 15))
    y = rng.standard_normal(30_000)
    y = np.abs(y) if label == "abs" else y
    sub = filtered_pca(X, y)
    assert sub.n_found == 0
    assert "nothing above the noise floor" in sub.message
    assert plain_pca(X, y, rng=0).n_found == 0


def test_pooled_reestimate_recovers_a_perturbed_span():
    # slices of a function of two directions: the span is a fixed point, and a
    # perturbed start comes back to it far more closely than it started
    rng = np.random.default_rng(0)
    d, n = 12, 60_000
    T = np.linalg.qr(rng.standard_normal((d, 2)))[0]
    X = rng.standard_normal((n, d))
    Z = X @ T
    y = np.maximum(Z[:, 0], 0) - 0.7 * np.maximum(Z[:, 1], 0) + 0.3 * Z[:, 0] * Z[:, 1]
    cnt, C, mu = moments.slice_moments(X, y, 20, chunk_size=8192)
    assert cnt.sum() == n and C.shape == (20, d, d)
    start = np.linalg.qr(T + 0.2 * rng.standard_normal((d, 2)))[0]
    B, its = _pooled_reestimate(start, cnt, C, mu)
    assert principal_angles(start, T).max() > 0.2
    assert principal_angles(B, T).max() < 0.05
    assert its >= 1


def test_filtered_pca_reestimate_is_optional_and_reported(small, small_pca):
    truth, X, y = small
    on = small_pca
    off = filtered_pca(X, y, reestimate=False)
    assert on.n_found == off.n_found == 3
    assert on.diagnostics["reestimate"]["slices"] == 20
    assert off.diagnostics["reestimate"] is None
    plane = truth.weights[0].T
    assert principal_angles(on.basis, plane).max() < 0.15
    with pytest.raises(ValueError, match="n_slices"):
        filtered_pca(X, y, n_slices=1)


# --------------------------------------------------------------------------- scale


def test_filtered_pca_is_scale_free(small, small_pca):
    # powers of two are exact: the same bits; 1e200 and 1e-300 used to overflow /
    # underflow the Grams (LinAlgError, or every direction "found")
    _, X, y = small
    base = small_pca
    same = filtered_pca(X * 2.0**600, y * 2.0**-900)
    np.testing.assert_array_equal(same.basis, base.basis)
    np.testing.assert_array_equal(same.eigenvalues, base.eigenvalues)
    assert same.diagnostics["input_scale"] == 2.0**600
    np.testing.assert_array_equal(same.diagnostics["thresholds"],
                                  base.diagnostics["thresholds"] * 2.0**-900)
    assert base.diagnostics["input_scale"] == 1.0 and "divided" not in base.message
    for sx, sy in [(1e200, 1.0), (1e-300, 1e-300), (2.5, 1e200)]:
        sub = filtered_pca(X * sx, y * sy)
        assert sub.n_found == base.n_found, (sx, sy, sub)
        # divided by the estimated rms, not by sx: a change of order 1 / sqrt(n d)
        assert principal_angles(sub.basis, base.basis).max() < 1e-2
        assert f"X was divided by {sub.diagnostics['input_scale']:.6g}" in sub.message
        assert abs(sub.diagnostics["input_scale"] / sx - 1) < 1e-2


def test_filtered_pca_many_outputs_large_labels(small):
    # ||y|| of two outputs of size 1e200 overflowed to inf
    truth, X, y = small
    Y = np.c_[y, 2 * y - X[:, 0]]
    base = filtered_pca(X, Y)
    big = filtered_pca(X, Y * 1e200)
    assert base.n_found == big.n_found == 3
    assert principal_angles(big.basis, base.basis).max() < 1e-6


def test_plain_pca_is_scale_free(small):
    _, X, y = small
    base = plain_pca(X, y, rng=0)
    exact = plain_pca(X * 2.0**-700, y * 2.0**500, rng=0)
    np.testing.assert_array_equal(exact.basis, base.basis)
    np.testing.assert_array_equal(exact.eigenvalues, base.eigenvalues * 2.0**500)
    big = plain_pca(X * 1e200, y * 1e200, rng=0)  # was: LinAlgError
    assert big.n_found == base.n_found >= 1
    assert principal_angles(big.basis, base.basis).max() < 1e-2
    # X is divided by its estimated rms: E[y] (1 - rms^2) I, of order sqrt(2 / (n d)),
    # shifts the eigenvalues, far below the noise floor
    shift = np.abs(big.eigenvalues / 1e200 - base.eigenvalues)
    assert shift.max() < 0.1 * base.floors[0]
    np.testing.assert_allclose(big.floors / 1e200, base.floors, rtol=5e-2)


@pytest.mark.parametrize("func", [filtered_pca, plain_pca])
@pytest.mark.parametrize("X, y, match", [
    (np.zeros((4000, 10)), np.ones(4000), "`X` is identically zero"),
    (np.ones((4000, 0)), np.ones(4000), "`X`"),
    (np.ones((0, 10)), np.ones(0), "`X`"),
    (np.ones((4000, 10)), np.ones((4000, 0)), "`y`"),
    (np.ones((4000, 10)), np.zeros(4000), "`y` is identically zero"),
    (np.ones((4000, 10)), np.full(4000, 2.0), r"`y` is constant \(every row is \[2.\]\)"),
    (np.ones((10, 10)), np.ones(10), "too few samples"),
])
def test_pca_refuses_degenerate_inputs(func, X, y, match):
    with pytest.raises(ValueError, match=match):
        func(X, y)


def test_filtered_pca_validates_options(small):
    _, X, y = small
    for kwargs, match in [(dict(margin=np.nan), "margin"), (dict(dtype="float16"), "dtype"),
                          (dict(chunk_size=0), "chunk_size"),
                          (dict(n_directions=11), "n_directions"),
                          (dict(quantiles=[0.5, 1.0]), "quantiles"),
                          (dict(thresholds=[-1.0]), "thresholds"),
                          (dict(cell_dims=-1), "cell_dims")]:
        with pytest.raises(ValueError, match=match):
            filtered_pca(X[:2000], y[:2000], **kwargs)
    with pytest.raises(TypeError, match="rng"):  # removed: filtered PCA is deterministic
        filtered_pca(X[:2000], y[:2000], rng=0)


# --------------------------------------------------------------------------- moments


def test_grouped_moment_kernels_match_direct_sums():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((1000, 5))
    w = rng.standard_normal(1000)
    g = rng.integers(0, 4, size=1000)
    g[g == 2] = 1  # group 2 empty
    G, counts = moments.grouped_grams(X, g, 4, chunk_size=128)
    G32, _ = moments.grouped_grams(X, g, 4, chunk_size=128, dtype="float32")
    S = moments.grouped_sums(X, g, 4, chunk_size=128)
    M, Mg = moments.grouped_second_moments(X, w, g, 4, chunk_size=128)
    np.testing.assert_array_equal(counts, np.bincount(g, minlength=4))
    I = np.eye(5)
    for j in range(4):
        Xj, wj = X[g == j], w[g == j]
        np.testing.assert_allclose(G[j], Xj.T @ Xj, atol=1e-10)
        np.testing.assert_allclose(G32[j], Xj.T @ Xj, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(S[j], Xj.sum(axis=0), atol=1e-10)
        if len(wj):
            np.testing.assert_allclose(Mg[j], (Xj * wj[:, None]).T @ Xj / len(wj)
                                       - wj.mean() * I, atol=1e-10)
    assert not G[2].any() and not Mg[2].any()
    np.testing.assert_allclose(M, (X * w[:, None]).T @ X / 1000 - w.mean() * I, atol=1e-10)


def test_principal_angles_lives_in_metrics():
    import relurecover.deep as deep

    assert deep.principal_angles is metrics.principal_angles
    e = np.eye(4)
    np.testing.assert_allclose(principal_angles(e[:, :2], e[:, [1, 0]]), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="same number of rows"):
        principal_angles(e[:, :2], np.eye(3)[:, :2])
    with pytest.raises(ValueError, match="2-D"):
        principal_angles(np.ones(4), e)
    with pytest.raises(ValueError, match="NaN"):
        principal_angles(np.full((4, 1), np.nan), e)


# --------------------------------------------------------------------------- learning


def test_mlp_jacobian_matches_finite_differences():
    rng = np.random.default_rng(0)
    mats = [rng.standard_normal((4, 6)), rng.standard_normal((3, 4)),
            rng.standard_normal((2, 3))]
    X, Y = rng.standard_normal((7, 6)), rng.standard_normal((7, 2))
    r, J = _mlp_residual_jacobian(mats, X, Y)
    assert r.shape == (14,) and J.shape == (14, 24 + 12 + 6)
    sizes = [W.shape for W in mats]
    cuts = np.cumsum([a * b for a, b in sizes])[:-1]
    theta = np.concatenate([W.ravel() for W in mats])

    def res(t):
        return _mlp_residual_jacobian(
            [a.reshape(sh) for a, sh in zip(np.split(t, cuts), sizes)], X, Y)[0]

    eye = np.eye(theta.size)
    num = np.stack([(res(theta + 1e-7 * e) - res(theta - 1e-7 * e)) / 2e-7 for e in eye], 1)
    assert np.abs(J - num).max() < 1e-6


def test_levenberg_marquardt_converges_near_the_truth():
    rng = np.random.default_rng(1)
    truth = DeepNetwork.random(6, [3, 2], rng=2)
    X = rng.standard_normal((2000, 6))
    Y = truth.predict(X)
    start = [W + 1e-3 * rng.standard_normal(W.shape) for W in truth.weights]
    mats, loss, its = _levenberg_marquardt(start, X, Y, max_iter=30, tol=1e-20,
                                           deadline=np.inf)
    assert loss < 1e-20
    assert np.abs(DeepNetwork(mats).predict(X) - Y).max() < 1e-9


def test_loss_gradient_matches_finite_differences():
    from relurecover.deep._engine import loss_and_gradient

    rng = np.random.default_rng(0)
    mats = [rng.standard_normal((4, 6)), rng.standard_normal((3, 4)),
            rng.standard_normal((2, 3))]
    X, Y = rng.standard_normal((50, 6)), rng.standard_normal((50, 2))
    loss, grads = loss_and_gradient(mats, X, Y, scale=1 / 50)
    pred = np.maximum(np.maximum(X @ mats[0].T, 0) @ mats[1].T, 0) @ mats[2].T
    assert loss == pytest.approx(((pred - Y) ** 2).sum() / 50, rel=1e-13)
    for li, W in enumerate(mats):
        for idx in [(0, 0), (1, 2), (W.shape[0] - 1, W.shape[1] - 1)]:
            up = [M.copy() for M in mats]
            dn = [M.copy() for M in mats]
            up[li][idx] += 1e-6
            dn[li][idx] -= 1e-6
            num = (loss_and_gradient(up, X, Y, scale=1 / 50)[0]
                   - loss_and_gradient(dn, X, Y, scale=1 / 50)[0]) / 2e-6
            assert grads[li][idx] == pytest.approx(num, rel=1e-5, abs=1e-8)


@needs_torch
def test_engines_compute_the_same_network():
    import torch

    from relurecover.deep._engine import NumpyEngine, TorchEngine

    rng = np.random.default_rng(1)
    mats = [rng.standard_normal((5, 7)), rng.standard_normal((4, 5)),
            rng.standard_normal((2, 4))]
    X, Y = rng.standard_normal((300, 7)), rng.standard_normal((300, 2))
    a, b = NumpyEngine(0), TorchEngine(torch, 0)
    np.testing.assert_allclose(a.forward(mats, X), b.forward(mats, X), rtol=1e-12,
                               atol=1e-12)
    assert a.relative_error(mats, X, Y) == pytest.approx(b.relative_error(mats, X, Y),
                                                         rel=1e-12)
    # row blocks change nothing but the order of the sums
    assert a.relative_error(mats, X, Y, chunk=7) == pytest.approx(
        a.relative_error(mats, X, Y), rel=1e-12)


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_engine_lbfgs_fits_a_small_network_and_respects_its_budget(name):
    from relurecover.deep._engine import engine

    truth = DeepNetwork.random(3, [3], rng=2)
    Z = gaussian_inputs(2000, 3, rng=3)
    Y = truth.predict(Z).reshape(-1, 1)
    eng = engine(name, 1)
    start = [W + 0.05 * eng.randn(W.shape) for W in truth.weights]
    kept = [W.copy() for W in start]
    mats, loss, it, ok = eng.lbfgs(start, Z, Y, max_iter=500, tol=1e-20, deadline=np.inf,
                                   chunk=512)
    assert loss < 1e-12 and it <= 500
    assert [W.shape for W in mats] == [W.shape for W in truth.weights]
    for budget in (1, 3, 30):
        assert eng.lbfgs(start, Z, Y, max_iter=budget, tol=1e-20, deadline=np.inf)[2] <= budget
    # the start is not changed in place
    assert all(np.array_equal(S, W) for S, W in zip(start, kept))


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_learn_deep_small_network_either_engine(small, name):
    truth, X, y = small
    fit = learn_deep(X[:8000], y[:8000], [3, 2], rng=5, engine=name, **FAST_ONE_ROUND)
    assert fit.diagnostics["engine"] == name
    assert fit.success, fit
    assert principal_angles(fit.network.weights[0].T, truth.weights[0].T).max() < 1e-2


def test_learn_deep_small_network(small):
    truth, X, y = small
    fit = learn_deep(X, y, [3, 2], rng=0, **FAST)
    assert fit.network.weights[0].shape == (3, 10)
    # the truth's second layer-2 unit never fires on these inputs: pruning may drop it
    assert fit.diagnostics["fitted_widths"] == (3, 2) and fit.widths in ((3, 2), (3, 1))
    assert fit.subspace.n_found == 3
    assert fit.heldout_error < 1e-3
    assert fit.success and fit.success_tol == 1e-3
    assert fit.message.startswith("Success: held-out error")
    assert principal_angles(fit.network.weights[0].T, truth.weights[0].T).max() < 1e-2
    # the held-out error is what the network does on rows it never saw
    Xn = gaussian_inputs(5000, 10, rng=9)
    yn = truth.predict(Xn)
    fresh = ((fit.network.predict(Xn) - yn) ** 2).sum() / (yn**2).sum()
    assert fresh < 1e-2
    assert {"subspace", "fit", "refine", "lm", "polish", "total"} <= set(fit.timings)
    assert "held-out error" in fit.message
    assert fit.diagnostics["kept_round"] in (0, 1)


def test_learn_deep_is_reproducible(small, fast_fit):
    _, X, y = small
    b = learn_deep(X[:8000], y[:8000], [3, 2], rng=5, **FAST_ONE_ROUND)
    for Wa, Wb in zip(fast_fit.network.weights, b.network.weights):
        np.testing.assert_array_equal(Wa, Wb)
    assert b.heldout_error == fast_fit.heldout_error


def test_learn_deep_is_scale_free(small, fast_fit):
    # X and y by powers of two: the same network, exactly rescaled (W_1 by 1/sx,
    # the last layer by sy); X * 1e200 (was: LinAlgError) and y * 1e-300 learn too
    truth, X, y = small
    sx, sy = 2.0**600, 2.0**-900
    fit = learn_deep(X[:8000] * sx, y[:8000] * sy, [3, 2], rng=5, **FAST_ONE_ROUND)
    W0, W1, W2 = fast_fit.network.weights
    np.testing.assert_array_equal(fit.network.weights[0], W0 / sx)
    np.testing.assert_array_equal(fit.network.weights[1], W1)
    np.testing.assert_array_equal(fit.network.weights[2], W2 * sy)
    assert fit.heldout_error == fast_fit.heldout_error
    assert fit.diagnostics["scale_exponents"][0] == 600
    sx, sy = 1e200, 1e-300
    fit = learn_deep(X[:8000] * sx, y[:8000] * sy, [3, 2], rng=5, **FAST_ONE_ROUND)
    assert fit.success, fit
    Xn = gaussian_inputs(3000, 10, rng=9)
    yn = truth.predict(Xn)
    rel = ((fit.network.predict(Xn * sx) / sy - yn) ** 2).sum() / (yn**2).sum()
    assert rel < 1e-3


def test_outlier_rows_are_set_aside_and_scored(small, fast_fit, small_pca):
    # one row of norm 1e8 times the others' made filtered PCA find all d directions
    # and the fit fail (held-out 0.29); rows far outside a Gaussian's range are now
    # set aside before any moment or fit, and scored at the end
    truth, X, y = small
    assert fast_fit.diagnostics["outliers"] is None  # Gaussian data: nothing set aside
    Xo, yo = X[:8000].copy(), y[:8000].copy()
    Xo[5] *= 1e8
    Xo[9] *= 1e250
    yo = truth.predict(Xo)
    yo[9] = 1.0  # a corrupted label on an outlier row: no network fits it
    fit = learn_deep(Xo, yo, [3, 2], rng=5, **FAST_ONE_ROUND)
    assert fit.success and fit.subspace.n_found == 3
    out = fit.diagnostics["outliers"]
    assert out["rows"] == [5, 9] and 249 < out["log10_norm_ratio"] < 251
    assert out["max_relative_error"] > 1e200  # the corrupted row, said
    assert "2 outlier rows" in fit.message and "set aside" in fit.message
    assert fit.diagnostics["n_train"] + fit.diagnostics["n_heldout"] == 8000 - 2
    # filtered PCA alone sets them aside too
    Xp = X.copy()
    Xp[3] *= 1e6
    sub = filtered_pca(Xp, truth.predict(Xp))
    assert sub.n_found == small_pca.n_found == 3
    assert list(sub.diagnostics["outlier_rows"]) == [3] and "outlier row" in sub.message
    assert small_pca.diagnostics["outlier_rows"] is None


def test_many_outlier_rows_are_kept_and_said():
    from relurecover.deep._scaling import OUTLIER_MAX_FRACTION, set_aside_outliers

    X = gaussian_inputs(5000, 6, rng=3)
    Y = X[:, :1].copy()
    X[: int(3 * OUTLIER_MAX_FRACTION * 5000)] *= 1e3  # 3% of rows: not a few bad rows
    Xk, Yk, out, note = set_aside_outliers(X, Y)
    assert Xk is X and Yk is Y and out is None
    assert "do not look like" in note
    # at every scale: 1e-300 and 1e300 data have no outliers of their own
    for s in (1e-300, 1e300):
        assert set_aside_outliers(X[1000:] * s, Y[1000:])[2] is None


def test_learn_deep_with_a_given_subspace(small):
    truth, X, y = small
    basis = np.linalg.qr(truth.weights[0].T)[0]
    fit = learn_deep(X, y, [3, 2], subspace=basis, rng=0, **FAST)
    assert fit.subspace.method == "given"
    assert fit.heldout_error < 1e-3


def test_learn_deep_on_pure_noise_is_honest():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, 5))
    y = rng.standard_normal(4000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = learn_deep(X, y, [2], rng=0, restarts=2, n_screen=1, max_iter=50,
                         fit_iter=30, lm_iter=0, polish_iter=0, rounds=1)
    assert any("no direction above the noise floor" in str(w.message) for w in caught)
    assert fit.heldout_error > 0.5  # nothing to learn: the error says so
    assert not fit.success
    assert fit.message.startswith("Not a success: held-out error")
    assert "no subspace found" in fit.message


def test_deep_fit_is_a_frozen_keyword_only_record(fast_fit):
    assert fast_fit.success == (fast_fit.heldout_error <= fast_fit.success_tol)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast_fit.success = False
    fields = {f.name: getattr(fast_fit, f.name) for f in dataclasses.fields(DeepFit)}
    assert DeepFit(**fields) == fast_fit
    with pytest.raises(TypeError):
        DeepFit(*fields.values())
    assert "success=True" in repr(fast_fit)


@pytest.mark.parametrize("kwargs, match", [
    (dict(widths=[0]), "widths"),
    (dict(widths=[]), "widths"),
    (dict(heldout=0.7), "heldout"),
    (dict(subspace=np.ones((3, 2))), "subspace"),
    (dict(rounds=0), "rounds"),
    (dict(lm_iter=-1), "lm_iter"),
    (dict(polish_iter=1.5), "polish_iter"),
    (dict(success_tol=0.0), "success_tol"),
    (dict(success_tol=np.nan), "success_tol"),
    (dict(n_threads=0), "n_threads"),
    (dict(n_directions=11), "n_directions"),
    (dict(pca_options={"rng": 0}), "pca_options"),
])
def test_learn_deep_validates(small, kwargs, match):
    _, X, y = small
    with pytest.raises(ValueError, match=match):
        learn_deep(X[:2000], y[:2000], **kwargs)


@pytest.mark.parametrize("subspace, match", [
    (np.full((10, 3), np.nan), "NaN or infinite"),
    (np.where(np.eye(10)[:, :3] > 0, np.inf, 0.0), "NaN or infinite"),
    (np.ones((10, 0)), "1 <= r <= d"),
    (np.ones((10, 11)), "1 <= r <= d"),
    (np.ones((10, 2)), "linearly dependent"),
    (np.ones((9, 2)), r"shape \(d, r\) = \(10, r\)"),
    (np.ones(10), r"shape \(d, r\)"),
    ("abc", "Subspace or an array"),
])
def test_learn_deep_validates_subspace_before_any_work(small, monkeypatch, subspace, match):
    # a NaN basis used to fail after 79 s naming an internal object
    import relurecover.deep._learn as learn

    def no_work(*args, **kwargs):
        raise AssertionError("learn_deep started working before checking `subspace`")

    monkeypatch.setattr(learn, "_split", no_work)
    monkeypatch.setattr(learn, "filtered_pca", no_work)
    _, X, y = small
    with pytest.raises(ValueError, match=match):
        learn_deep(X, y, [3, 2], subspace=subspace)


def test_learn_deep_rejects_nan_and_shapes():
    X = gaussian_inputs(500, 4, rng=0)
    with pytest.raises(ValueError, match="NaN|finite"):
        learn_deep(np.where(X > 2, np.nan, X), np.ones(500))
    with pytest.raises(ValueError, match="rows"):
        learn_deep(X, np.ones(499))
    with pytest.raises(ValueError, match="zero"):
        learn_deep(X, np.zeros(500))
    with pytest.raises(ValueError, match="`X` is identically zero"):
        learn_deep(np.zeros((500, 4)), np.ones(500))
    # constant labels: no direction, and a bias-free network cannot make a constant
    # (they ran every restart and advised "more samples, restarts or other widths")
    with pytest.raises(ValueError, match="`y` is constant"):
        learn_deep(X, np.full(500, 2.0))
    # scales whose network, mapped back, would overflow float64: refused up front
    y = np.abs(X[:, 0])
    with pytest.raises(ValueError, match="`X` is too small"):
        learn_deep(X * 2.0**-1010, y)
    with pytest.raises(ValueError, match="`y` is too large"):
        learn_deep(X, y * 2.0**1010)


def test_learn_deep_without_torch_runs_on_numpy(no_torch, small):
    # the base install: "auto" is the numpy engine, "torch" is refused before any work
    truth, X, y = small
    fit = learn_deep(X[:8000], y[:8000], [3, 2], rng=5, **FAST_ONE_ROUND)
    assert fit.diagnostics["engine"] == "numpy"
    assert fit.success, fit
    with pytest.raises(MissingDependencyError) as info:
        learn_deep(X, y, [3, 2], engine="torch")
    assert str(info.value) == TORCH_HINT
    assert "pip install 'relurecover[torch]'" in TORCH_HINT
    assert isinstance(info.value, ImportError)
    assert plain_pca(X[:4000], y[:4000], rng=0).basis.shape[0] == 10


@pytest.mark.parametrize("engine", ["jax", 1, None])
def test_learn_deep_validates_engine(small, engine):
    _, X, y = small
    with pytest.raises(ValueError, match="`engine` must be one of"):
        learn_deep(X[:2000], y[:2000], [3, 2], engine=engine)


# --------------------------------------------------------------------------- CLI

runner = CliRunner()


def test_cli_deep_demo_alternating():
    res = runner.invoke(app, ["deep-demo", "--d", "12", "--n", "40000", "--alternating",
                              "--restarts", "6"])
    assert res.exit_code == 0, res.output
    assert "filtered" in res.output and "plain" in res.output
    assert "held-out error <= 0.001" in res.output


def test_cli_generate_fit_deep_compare(tmp_path):
    data = tmp_path / "deep.npz"
    res = runner.invoke(app, ["generate", str(data), "--d", "8", "--widths", "3,2",
                              "--n", "20000", "--seed", "1"])
    assert res.exit_code == 0, res.output
    model = tmp_path / "model.npz"
    res = runner.invoke(app, ["fit", str(data), "--deep", "--widths", "3,2", "-o",
                              str(model), "--restarts", "6"])
    assert res.exit_code == 0, res.output
    assert "held-out error" in res.output
    assert isinstance(DeepNetwork.load(model), DeepNetwork)
    res = runner.invoke(app, ["compare", str(model), str(data)])
    assert res.exit_code == 0, res.output
    assert "first-layer span" in res.output


@pytest.mark.parametrize("args, match", [
    (["deep-demo", "--widths", "4,x"], "widths"),
    (["deep-demo", "--widths", "0"], "widths"),
    (["deep-demo", "--d", "50", "--n", "100"], "too few samples"),
])
def test_cli_deep_errors(args, match):
    # checked before PyTorch is needed: the same answer on a base install
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert match in res.output


def test_cli_fit_widths_needs_deep(tmp_path):
    data = tmp_path / "two.npz"
    assert runner.invoke(app, ["generate", str(data), "--d", "5", "--k", "2", "--m",
                               "2"]).exit_code == 0
    res = runner.invoke(app, ["fit", str(data), "--widths", "2"])
    assert res.exit_code == 2
    assert "--deep" in res.output


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_dead_units_are_revived_and_the_fit_improves(name):
    # a layer-2 unit with all-negative incoming weights never fires (its inputs are
    # relu outputs, >= 0): no gradient reaches it, so plain L-BFGS cannot use it
    from relurecover.deep._engine import engine
    from relurecover.deep._learn import _revive_dead_units

    truth = DeepNetwork.random(3, [3, 3], rng=4)
    Z = gaussian_inputs(1500, 3, rng=5)
    Y = truth.predict(Z).reshape(-1, 1)
    eng = engine(name, 0)
    Ws = eng.init_weights([3, 3, 3, 1])
    Ws[1][2] = -np.abs(Ws[1][2]) - 0.1
    Ws = eng.lbfgs(Ws, Z, Y, max_iter=100, tol=1e-14, deadline=np.inf)[0]
    assert eng.activity(Ws, Z)[1][2] == 0.0  # still dead after fitting
    before = eng.relative_error(Ws, Z, Y)
    Ws, kept = _revive_dead_units(Ws, Z, Y, fit_iter=100, tol=1e-14, eng=eng)
    after = eng.relative_error(Ws, Z, Y)
    assert kept >= 1
    # kept only because the loss fell; how far depends on the engine's arithmetic
    # (torch's L-BFGS reached 0.78 x on one machine, under 0.75 x on another)
    assert after < before
    assert eng.activity(Ws, Z)[1][2] >= 0.05  # the dead unit now fires
    assert eng.activity(Ws, Z)[1].min() > 0.0


def test_architecture_search_grows_only_while_it_gains():
    from relurecover.deep import learn_deep
    from relurecover.deep._instances import alternating_network
    from relurecover.deep._learn import SEARCH_GAIN, SEARCH_GROW_ABOVE

    net = alternating_network(6, 6, rng=0)  # 12 units in a plane: (4,) cannot hold them
    X = np.random.default_rng(1).standard_normal((6000, 6))
    fit = learn_deep(X, net.predict(X), rng=2, restarts=1, fit_iter=30, n_screen=1,
                     max_iter=30, polish_iter=0, lm_iter=0, rounds=1, n_directions=2,
                     fit_rows=2000)
    archs = fit.diagnostics["rounds"][0]["architectures"]
    assert [a["widths"] for a in archs[:2]] == [[4], [4, 4]]
    assert all(np.isfinite(a["heldout"]) for a in archs)
    # levels: 2 architectures, then 3 per doubled width; a level is tried only when the
    # one before was above SEARCH_GROW_ABOVE and gained SEARCH_GAIN on the one before it
    assert len(archs) == 2 or (len(archs) - 2) % 3 == 0
    level_best = [min(a["heldout"] for a in archs[:2])]
    for i in range(2, len(archs), 3):
        level_best.append(min(a["heldout"] for a in archs[i:i + 3]))
    for j in range(1, len(level_best)):
        assert level_best[j - 1] > SEARCH_GROW_ABOVE
        if j >= 2:
            assert level_best[j - 1] < SEARCH_GAIN * level_best[j - 2]
    assert fit.widths in [tuple(a["widths"]) for a in archs]
    # given widths: no search
    fit = learn_deep(X, net.predict(X), [4], rng=2, restarts=1, fit_iter=30, n_screen=1,
                     max_iter=30, polish_iter=0, lm_iter=0, rounds=1, n_directions=2,
                     fit_rows=2000)
    assert [a["widths"] for a in fit.diagnostics["rounds"][0]["architectures"]] == [[4]]


def test_learn_deep_fits_biases_in_every_layer():
    from relurecover import DeepNetwork
    from relurecover.deep import learn_deep

    rng = np.random.default_rng(0)
    base = DeepNetwork.random(8, [3, 3], 1, rng=1)
    biases = [0.5 * rng.standard_normal(W.shape[0]) * np.linalg.norm(W, axis=1)
              for W in base.weights]
    truth = DeepNetwork(base.weights, biases)  # biases in both hidden layers and the output
    X = np.random.default_rng(2).standard_normal((20_000, 8))
    y = truth.predict(X)
    fit = learn_deep(X, y, [3, 3], rng=3, biases=True, restarts=8, rounds=1)
    Xt = np.random.default_rng(4).standard_normal((2000, 8))
    err = np.sum((fit.network.predict(Xt) - truth.predict(Xt))**2) / np.sum(truth.predict(Xt)**2)
    assert fit.heldout_error < 1e-4 and err < 1e-4
    assert fit.network.widths == [4, 4]  # one constant unit per hidden layer
    assert np.any(fit.network.biases[0] != 0)
    with pytest.raises(TypeError, match="biases"):
        learn_deep(X, y, [3, 3], biases="yes")


# --------------------------------------------------------------------------- pruning


def test_prune_network_removes_silent_and_folds_duplicated_units():
    from relurecover.deep._prune import prune_network

    rng = np.random.default_rng(0)
    W1 = rng.standard_normal((3, 5))
    # unit 3 is 2.5 times unit 0 (a duplicate); unit 4 never fires (weights 0, bias -1)
    W1 = np.vstack([W1, 2.5 * W1[0], np.zeros(5)])
    b1 = np.array([0.1, 0.0, -0.2, 0.25, -1.0])
    W2 = rng.standard_normal((2, 5))
    net = DeepNetwork([W1, W2], [b1, np.array([0.3, -0.1])])
    X = gaussian_inputs(2000, 5, rng=1)
    pruned, report = prune_network(net, X)
    assert report["widths_before"] == [5] and report["widths_after"] == [3]
    assert report["silent"] == [1] and report["duplicates"] == [1]
    np.testing.assert_allclose(pruned.predict(X), net.predict(X), rtol=0, atol=1e-12)
    # a layer-2 unit whose only receiver is gone: the chain goes in one call
    W1 = rng.standard_normal((3, 4))
    W2 = rng.standard_normal((3, 3))
    W3 = np.array([[1.0, -2.0, 0.0]])  # layer-2 unit 2 sends nothing
    W2[:, 1] = [0.0, 0.0, 1.0]  # layer-1 unit 1 feeds only that unit
    net = DeepNetwork([W1, W2, W3])
    X = gaussian_inputs(3000, 4, rng=2)
    pruned, report = prune_network(net, X)
    assert report["widths_after"] == [2, 2]
    np.testing.assert_allclose(pruned.predict(X), net.predict(X), rtol=0, atol=1e-12)
    # nothing to remove: the same widths, every layer keeps a unit
    same, report = prune_network(pruned, X)
    assert report["widths_after"] == report["widths_before"] == [2, 2]


def test_learn_deep_prunes_a_too_wide_fit_to_the_truth(small):
    truth, X, y = small
    fit = learn_deep(X[:8000], y[:8000], [6, 4], rng=2, engine="numpy", **FAST_ONE_ROUND)
    report = fit.diagnostics["pruning"]
    assert fit.diagnostics["fitted_widths"] == (6, 4)
    assert fit.success, fit
    if report["pruned"]:
        assert fit.widths == tuple(report["widths_after"])
        assert report["heldout_after"] <= 1.01 * report["heldout_before"] + 1e-14
    assert fit.network.widths == list(fit.widths)
    kept = learn_deep(X[:8000], y[:8000], [6, 4], rng=2, engine="numpy", prune=False,
                      **FAST_ONE_ROUND)
    assert kept.widths == (6, 4) and kept.diagnostics["pruning"]["pruned"] is False
    with pytest.raises(TypeError, match="`prune` must be True or False"):
        learn_deep(X[:2000], y[:2000], [3, 2], prune="yes")


def test_levenberg_marquardt_is_skipped_above_lm_max_params(small):
    # the limit counts the lifted network's weights (d w_1 + ...), not the subspace
    # network's: 10 inputs x 3 + 3 x 2 + 2 = 38 weights
    _, X, y = small
    kw = dict(FAST_ONE_ROUND, lm_iter=5, engine="numpy")
    on = learn_deep(X[:8000], y[:8000], [3, 2], rng=5, lm_max_params=38, **kw)
    off = learn_deep(X[:8000], y[:8000], [3, 2], rng=5, lm_max_params=37, **kw)
    assert off.diagnostics["lm_iterations"] == 0 and off.diagnostics["lm_used"] is False
    assert on.diagnostics["n_parameters"] < 37  # the subspace network is smaller
    assert on.diagnostics["lm_iterations"] > 0 or on.heldout_error <= 1e-14
