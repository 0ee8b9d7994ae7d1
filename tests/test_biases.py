"""Networks with biases, y = U f(V x + b) + c (docs/algorithms.md 6)."""

import warnings

import numpy as np
import pytest

from relurecover import (
    DeepNetwork,
    TwoLayerNetwork,
    compare,
    gaussian_inputs,
    get_activation,
    recover_two_layer,
)
from relurecover.activations import canonical_units
from relurecover.networks import load_network


def _biased(d=10, k=3, m=4, seed=0, betas=None, c=None):
    net = TwoLayerNetwork.random(d, k, m, bias_scale=0.5, rng=seed)
    if betas is not None:
        b = np.asarray(betas, float) * np.linalg.norm(net.V, axis=1)
        net = TwoLayerNetwork(net.U, net.V, b=b, c=net.c if c is None else c)
    return net


# ------------------------------------------------------------------ the networks


def test_predict_with_biases():
    net = _biased()
    X = gaussian_inputs(7, 10, rng=1)
    expected = np.maximum(X @ net.V.T + net.b, 0) @ net.U.T + net.c
    np.testing.assert_allclose(net.predict(X), expected, rtol=1e-15)
    assert net.has_biases and "biases=True" in repr(net)


def test_random_without_biases_draws_as_before():
    a = TwoLayerNetwork.random(6, 3, 2, rng=5)
    g = np.random.default_rng(5)
    V = g.standard_normal((3, 6))
    U = g.standard_normal((2, 3))
    np.testing.assert_array_equal(a.V, V)
    np.testing.assert_array_equal(a.U, U)
    assert not a.has_biases and np.all(a.b == 0) and np.all(a.c == 0)


def test_random_bias_scale_is_relative_to_unit_norm():
    net = TwoLayerNetwork.random(50, 2000, 1, bias_scale=0.5, output_bias_scale=0.0, rng=0)
    beta = net.b / np.linalg.norm(net.V, axis=1)
    assert abs(beta.std() - 0.5) < 0.03 and np.all(net.c == 0)
    with pytest.raises(ValueError, match="bias_scale"):
        TwoLayerNetwork.random(3, 2, 1, bias_scale=-1.0)


@pytest.mark.parametrize("name, value, match", [
    ("b", np.zeros(4), r"shape \(3,\)"),
    ("c", np.zeros((2, 2)), r"shape \(4,\)"),
    ("b", [0.0, np.nan, 0.0], "NaN"),
])
def test_bias_shapes_are_checked(name, value, match):
    net = TwoLayerNetwork.random(5, 3, 4, rng=0)
    with pytest.raises(ValueError, match=match):
        TwoLayerNetwork(net.U, net.V, **{name: value})


def test_save_load_keeps_biases_and_old_files_load(tmp_path):
    net = _biased()
    net.save(tmp_path / "a.npz")
    back = load_network(tmp_path / "a.npz")
    np.testing.assert_array_equal(back.b, net.b)
    np.testing.assert_array_equal(back.c, net.c)
    # a file written before biases existed: U, V and the activation only
    np.savez(tmp_path / "old.npz", U=net.U, V=net.V, activation=np.array("relu"),
             kind=np.array("two-layer"))
    old = TwoLayerNetwork.load(tmp_path / "old.npz")
    assert not old.has_biases


def test_deep_network_biases(tmp_path):
    net = DeepNetwork.random(6, [4, 3], 2, rng=0)
    bs = [np.arange(4.0), -np.ones(3), np.array([0.5, -0.5])]
    biased = DeepNetwork(net.weights, bs)
    X = gaussian_inputs(5, 6, rng=1)
    H = np.maximum(X @ net.weights[0].T + bs[0], 0)
    H = np.maximum(H @ net.weights[1].T + bs[1], 0)
    np.testing.assert_allclose(biased.predict(X), H @ net.weights[2].T + bs[2], rtol=1e-14)
    biased.save(tmp_path / "d.npz")
    back = load_network(tmp_path / "d.npz")
    np.testing.assert_array_equal(back.predict(X), biased.predict(X))
    with pytest.raises(ValueError, match="one vector per layer"):
        DeepNetwork(net.weights, bs[:2])


# ---------------------------------------------------------------------- compare


def test_compare_aligns_units_with_their_biases():
    t = _biased()
    perm, scale = [2, 0, 1], np.array([2.0, 0.5, 3.0])
    f = TwoLayerNetwork(t.U[:, perm] / scale, t.V[perm] * scale[:, None],
                        b=t.b[perm] * scale, c=t.c)
    c = compare(f, t)
    assert c.max_error < 1e-15 and c.b_error < 1e-15 and c.c_error == 0
    wrong_b = TwoLayerNetwork(f.U, f.V, b=f.b + 1e-6, c=f.c)
    assert 1e-8 < compare(wrong_b, t).b_error < 1e-5
    wrong_c = TwoLayerNetwork(f.U, f.V, b=f.b, c=f.c + 1e-6)
    assert compare(wrong_c, t).c_error > 1e-8
    assert compare(wrong_c, t).max_error >= compare(wrong_c, t).c_error


def test_clipped_reflection_is_one_network():
    act = get_activation("clipped")
    assert act.reflection == (1.0, 1.0)
    t = TwoLayerNetwork.random(6, 2, 3, activation="clipped", rng=0)
    U, V, b, c = t.U.copy(), t.V.copy(), t.b.copy(), t.c.copy()
    # unit 0 in its other form: f(t) = 1 - f(1 - t)
    c = c + U[:, 0]
    U[:, 0] *= -1
    V[0] *= -1
    b[0] = 1.0
    f = TwoLayerNetwork(U, V, activation="clipped", b=b, c=c)
    X = gaussian_inputs(50, 6, rng=1)
    np.testing.assert_allclose(f.predict(X), t.predict(X), atol=1e-14)
    assert compare(f, t).max_error < 1e-14
    U2, V2, b2, c2 = canonical_units(U, V, b, c, act)
    np.testing.assert_allclose(V2, t.V)
    np.testing.assert_allclose(b2, 0.0, atol=0)


# ------------------------------------------------------------------- recovery


@pytest.mark.parametrize("method", ["auto", "gaussian", "general"])
@pytest.mark.parametrize("seed", [0, 1])
def test_biases_recovered_exactly(method, seed):
    t = _biased(20, 5, 6, seed=seed)
    X = gaussian_inputs(1000, 20, rng=seed + 10)
    res = recover_two_layer(X, t.predict(X), method=method, rng=seed)
    assert res.exact, res.message
    c = compare(res.network, t)
    assert c.max_error < 1e-9 and c.b_error < 1e-9 and c.c_error < 1e-9


@pytest.mark.parametrize("method", ["auto", "gaussian", "general"])
def test_bias_free_labels_give_zero_biases(method):
    t = TwoLayerNetwork.random(12, 4, 5, rng=3)
    X = gaussian_inputs(600, 12, rng=4)
    res = recover_two_layer(X, t.predict(X), method=method, rng=0)
    assert res.exact, res.message
    assert np.all(res.network.b == 0) and np.all(res.network.c == 0)
    assert compare(res.network, t).max_error < 1e-10


def test_output_bias_only():
    t = TwoLayerNetwork.random(10, 3, 4, rng=2)
    t = TwoLayerNetwork(t.U, t.V, c=[5.0, -1.0, 0.0, 2.0])
    X = gaussian_inputs(600, 10, rng=3)
    res = recover_two_layer(X, t.predict(X), rng=0)
    assert res.exact, res.message
    assert np.all(res.network.b == 0)
    np.testing.assert_allclose(res.network.c, t.c, atol=1e-10)


@pytest.mark.parametrize("kind", ["uniform", "t3"])
def test_biases_on_other_input_laws(kind):
    g = np.random.default_rng(7)
    n, d = 1000, 20
    X = (g.uniform(-np.sqrt(3), np.sqrt(3), (n, d)) if kind == "uniform"
         else g.standard_t(3, (n, d)))
    t = _biased(d, 5, 6, seed=8)
    res = recover_two_layer(X, t.predict(X), rng=0)
    assert res.exact, res.message
    assert compare(res.network, t).max_error < 1e-9


@pytest.mark.parametrize("activation", ["relu2", "clipped", "log1p"])
def test_other_activations_with_biases(activation):
    t = TwoLayerNetwork.random(12, 3, 4, activation=activation, bias_scale=0.4, rng=1)
    X = gaussian_inputs(360, 12, rng=2)
    res = recover_two_layer(X, t.predict(X), activation=activation, rng=0)
    assert res.exact, res.message
    assert compare(res.network, t).max_error < 1e-9


def test_step_linear_biases_are_not_identifiable():
    act = get_activation("step-linear")
    assert not act.bias_identifiable
    t = TwoLayerNetwork.random(12, 3, 4, activation=act, rng=1)
    X = gaussian_inputs(360, 12, rng=2)
    res = recover_two_layer(X, t.predict(X), activation=act, rng=0)  # bias-free: exact
    assert res.exact and np.all(res.network.b == 0)
    assert "not fitted" in res.diagnostics["hidden_biases"]
    tb = TwoLayerNetwork(t.U, t.V, activation=act, b=[0.3, -0.2, 0.1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = recover_two_layer(X, tb.predict(X), activation=act, rng=0, max_starts=60)
    assert not res.exact


def test_unit_active_on_every_sample_is_reported_not_invented():
    t = _biased(10, 3, 4, betas=[0.3, -0.2, 6.0])
    X = gaussian_inputs(600, 10, rng=1)
    assert np.all(X @ t.V[2] + t.b[2] > 0)
    res = recover_two_layer(X, t.predict(X), method="gaussian", rng=0, max_starts=60)
    assert not res.exact and res.n_found == 2
    assert "active on every sample" in res.message
    assert res.diagnostics["always_active_rank"] == 1


def test_rarely_active_unit_is_reported_not_invented():
    t = _biased(10, 3, 4, betas=[0.3, -0.2, -2.4])
    X = gaussian_inputs(600, 10, rng=1)
    q = int(np.count_nonzero(X @ t.V[2] + t.b[2] > 0))
    assert 0 < q <= 10
    for method in ("gaussian", "general"):
        res = recover_two_layer(X, t.predict(X), method=method, rng=0, max_starts=100)
        assert not res.exact and res.n_found == 2, res.message
        assert "not identifiable" in res.message


def test_never_active_unit_is_invisible():
    t = _biased(10, 3, 4, betas=[0.3, -0.2, -4.0])
    X = gaussian_inputs(600, 10, rng=1)
    assert not np.any(X @ t.V[2] + t.b[2] > 0)
    res = recover_two_layer(X, t.predict(X), rng=0)
    assert res.n_hidden == 2 and res.exact  # the function on the data, two units
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res3 = recover_two_layer(X, t.predict(X), n_hidden=3, method="gaussian", rng=0)
    assert not res3.exact


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("scale", [1e-100, 1e100])
def test_scaled_biased_data_stays_exact(scale):
    t = _biased(10, 3, 4, seed=4)
    X = gaussian_inputs(600, 10, rng=5)
    Y = t.predict(X)
    res = recover_two_layer(X * scale, Y * scale, rng=0)
    assert res.exact, res.message
    truth = TwoLayerNetwork(t.U * scale, t.V / scale, b=t.b, c=t.c * scale)
    assert compare(res.network, truth).max_error < 1e-9


@pytest.mark.filterwarnings("ignore")
def test_outlier_row_with_biases_is_not_certified_falsely():
    t = _biased(10, 3, 5, seed=0)
    X = gaussian_inputs(2000, 10, rng=1)
    X[0] *= 1e12
    Y = t.predict(X)
    for method in ("auto", "gaussian", "general"):
        res = recover_two_layer(X, Y, method=method, rng=0)
        if res.exact:
            Z = gaussian_inputs(500, 10, rng=9)
            err = np.abs(res.network.predict(Z) - t.predict(Z)).max()
            assert err < 1e-6 * np.abs(t.predict(Z)).max(), (method, res.message)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("kind", ["leaky", "softplus", "noise"])
def test_near_networks_with_biases_are_not_certified(kind):
    t = _biased(10, 3, 4, seed=6)
    X = gaussian_inputs(600, 10, rng=7)
    S = X @ t.V.T + t.b
    if kind == "leaky":
        Y = np.where(S > 0, S, 1e-2 * S) @ t.U.T + t.c
    elif kind == "softplus":
        Y = np.logaddexp(0, 10 * S) / 10 @ t.U.T + t.c
    else:
        Y = t.predict(X)
        Y = Y + 1e-8 * Y.std() * np.random.default_rng(8).standard_normal(Y.shape)
    res = recover_two_layer(X, Y, rng=0, max_starts=100, time_limit=20)
    assert not res.exact, res.message


@pytest.mark.filterwarnings("ignore")
def test_noisy_labels_with_biases():
    t = TwoLayerNetwork.random(10, 3, 5, bias_scale=0.5, rng=2)
    X = gaussian_inputs(30_000, 10, rng=3)
    Y = t.predict(X)
    Y = Y + 0.1 * Y.std() * np.random.default_rng(4).standard_normal(Y.shape)
    res = recover_two_layer(X, Y, rng=0)
    assert not res.exact and res.noise_level is not None
    c = compare(res.network, t)
    se = res.standard_errors
    assert c.error < 0.05 and c.b_error < 0.05 and c.c_error < 0.05
    assert se.b.shape == (3,) and se.c.shape == (5,) and np.all(se.b > 0)
    # the standard errors are of the right size: within a factor 10 of the error
    assert 0.1 < c.error / se.estimated_error < 10


@pytest.mark.parametrize("k", [2, 3])
def test_few_outputs_with_biases(k):
    # one output (rank(U) = 1 < k): the fixed-pattern finish on rows [x, 1]
    t = TwoLayerNetwork.random(10, k, 1, bias_scale=0.5, rng=k)
    X = gaussian_inputs(10_000, 10, rng=k + 1)
    res = recover_two_layer(X, t.predict(X), rng=0)
    assert res.method == "few-outputs" and res.exact, res.message
    c = compare(res.network, t)
    assert c.max_error < 1e-9 and c.b_error < 1e-9 and c.c_error < 1e-9


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_extreme_scales_with_biases_compare_finite(scale):
    # weights near overflow (data at 1e+-300): compare must not overflow its norms
    t = _biased(10, 3, 4, seed=3)
    X = gaussian_inputs(1000, 10, rng=4)
    res = recover_two_layer(X * scale, t.predict(X), rng=0)
    assert res.exact, res.message
    truth = TwoLayerNetwork(t.U, t.V / scale, b=t.b, c=t.c)
    assert compare(res.network, truth).max_error < 1e-9


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("method", ["general", "auto"])
def test_outlier_row_with_biases_general_path_exact(method):
    # the constant column is scaled like a typical entry, so one row 1e12 longer
    # than the others (shortened before the paths) leaves the span of [X, 1] whole
    t = _biased(10, 3, 4, seed=3)
    X = gaussian_inputs(1000, 10, rng=4)
    X[0] *= 1e12
    res = recover_two_layer(X, t.predict(X), method=method, rng=0)
    assert res.exact, res.message
    assert compare(res.network, t).max_error < 1e-9
