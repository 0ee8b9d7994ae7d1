"""Deep networks [CKM] (docs/algorithms.md 5): filtered PCA's honesty, learn_deep, the CLI."""

import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from relurecover import DeepNetwork, gaussian_inputs
from relurecover.cli import app
from relurecover.deep import filtered_pca, learn_deep, plain_pca, principal_angles
from relurecover.deep._filtered_pca import _pooled_reestimate, _slice_moments
from relurecover.deep._learn import _levenberg_marquardt, _mlp_residual_jacobian

FAST = dict(restarts=4, n_screen=2, screen_iter=60, fit_iter=80, max_iter=300)


@pytest.fixture(scope="module")
def small():
    truth = DeepNetwork.random(10, [3, 2], rng=0)
    X = gaussian_inputs(20_000, 10, rng=1)
    return truth, X, truth.predict(X)


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
    cnt, C, mu = _slice_moments(X, y, 20, chunk_size=8192)
    assert cnt.sum() == n and C.shape == (20, d, d)
    start = np.linalg.qr(T + 0.2 * rng.standard_normal((d, 2)))[0]
    B, its = _pooled_reestimate(start, cnt, C, mu)
    assert principal_angles(start, T).max() > 0.2
    assert principal_angles(B, T).max() < 0.05
    assert its >= 1


def test_filtered_pca_reestimate_is_optional_and_reported(small):
    truth, X, y = small
    on = filtered_pca(X, y)
    off = filtered_pca(X, y, reestimate=False)
    assert on.n_found == off.n_found == 3
    assert on.diagnostics["reestimate"]["slices"] == 20
    assert off.diagnostics["reestimate"] is None
    plane = truth.weights[0].T
    assert principal_angles(on.basis, plane).max() < 0.15
    with pytest.raises(ValueError, match="n_slices"):
        filtered_pca(X, y, n_slices=1)


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


def test_learn_deep_small_network(small):
    truth, X, y = small
    fit = learn_deep(X, y, [3, 2], rng=0, **FAST)
    assert fit.network.weights[0].shape == (3, 10)
    assert fit.widths == (3, 2)
    assert fit.subspace.n_found == 3
    assert fit.heldout_error < 1e-3
    assert principal_angles(fit.network.weights[0].T, truth.weights[0].T).max() < 1e-2
    # the held-out error is what the network does on rows it never saw
    Xn = gaussian_inputs(5000, 10, rng=9)
    yn = truth.predict(Xn)
    fresh = ((fit.network.predict(Xn) - yn) ** 2).sum() / (yn**2).sum()
    assert fresh < 1e-2
    assert {"subspace", "fit", "refine", "lm", "polish", "total"} <= set(fit.timings)
    assert "held-out error" in fit.message
    assert fit.diagnostics["kept_round"] in (0, 1)


def test_learn_deep_is_reproducible(small):
    _, X, y = small
    a = learn_deep(X[:8000], y[:8000], [3, 2], rng=5, rounds=1, lm_iter=0, **FAST)
    b = learn_deep(X[:8000], y[:8000], [3, 2], rng=5, rounds=1, lm_iter=0, **FAST)
    for Wa, Wb in zip(a.network.weights, b.network.weights):
        np.testing.assert_array_equal(Wa, Wb)


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
    assert "no subspace found" in fit.message


@pytest.mark.parametrize("kwargs, match", [
    (dict(widths=[0]), "widths"),
    (dict(widths=[]), "widths"),
    (dict(heldout=0.7), "heldout"),
    (dict(subspace=np.ones((3, 2))), "subspace"),
    (dict(rounds=0), "rounds"),
    (dict(lm_iter=-1), "lm_iter"),
])
def test_learn_deep_validates(small, kwargs, match):
    _, X, y = small
    with pytest.raises(ValueError, match=match):
        learn_deep(X[:2000], y[:2000], **kwargs)


def test_learn_deep_rejects_nan_and_shapes():
    X = gaussian_inputs(500, 4, rng=0)
    with pytest.raises(ValueError, match="NaN|finite"):
        learn_deep(np.where(X > 2, np.nan, X), np.ones(500))
    with pytest.raises(ValueError, match="rows"):
        learn_deep(X, np.ones(499))
    with pytest.raises(ValueError, match="zero"):
        learn_deep(X, np.zeros(500))


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


def test_dead_units_are_revived_and_the_fit_improves():
    # a layer-2 unit with all-negative incoming weights never fires (its inputs are
    # relu outputs, >= 0): no gradient reaches it, so plain L-BFGS cannot use it
    import torch

    from relurecover.deep._learn import (_activity, _init_weights, _lbfgs,
                                         _relative_error, _revive_dead_units)

    truth = DeepNetwork.random(3, [3, 3], rng=4)
    Z = gaussian_inputs(1500, 3, rng=5)
    Zt = torch.from_numpy(Z)
    Yt = torch.from_numpy(truth.predict(Z).reshape(-1, 1))
    gen = torch.Generator().manual_seed(0)
    Ws = _init_weights([3, 3, 3, 1], gen, torch)
    with torch.no_grad():
        Ws[1][2] = -Ws[1][2].abs() - 0.1
    _lbfgs(Ws, Zt, Yt, max_iter=100, tol=1e-14, deadline=np.inf, torch=torch)
    assert _activity(Ws, Zt, torch)[1][2] == 0.0  # still dead after fitting
    before = _relative_error(Ws, Zt, Yt, torch)
    kept = _revive_dead_units(Ws, Zt, Yt, fit_iter=100, tol=1e-14, gen=gen, torch=torch)
    after = _relative_error(Ws, Zt, Yt, torch)
    assert kept >= 1
    assert after < 0.5 * before
    assert _activity(Ws, Zt, torch)[1].min() > 0.0
