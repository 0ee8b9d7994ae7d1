"""Exact recovery with every rectified activation (issue: other rectified activations)."""

import numpy as np
import pytest

from relurecover import TwoLayerNetwork, compare, gaussian_inputs, get_activation, recover_two_layer

BUILTIN = ["relu", "relu2", "clipped", "log1p", "step-linear"]


def _planted(activation, seed, d=12, k=3, m=4):
    rng = np.random.default_rng(seed)
    net = TwoLayerNetwork.random(d, k, m, activation=activation, rng=rng)
    X = gaussian_inputs(10 * d * k, d, rng=rng)
    return net, X, net.predict(X)


@pytest.mark.parametrize("activation", BUILTIN)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_builtin_activations_are_recovered_exactly(activation, seed):
    net, X, Y = _planted(activation, seed)
    res = recover_two_layer(X, Y, activation=activation, rng=seed)
    assert res.exact, res.message
    # float64 precision, with room for the conditioning of a random instance
    assert compare(res.network, net).max_error < 1e-9


@pytest.mark.parametrize(
    "f",
    [
        lambda t: np.maximum(t, 0.0) ** 1.5,  # homogeneous of degree 1.5
        lambda t: np.sqrt(np.log1p(np.maximum(t, 0.0))),  # increasing, not homogeneous
        lambda t: np.minimum(np.maximum(t, 0.0), 2.0),  # saturating at 2
    ],
    ids=["pow1.5", "sqrtlog", "clip2"],
)
def test_user_lambda_is_recovered_exactly(f):
    net, X, Y = _planted(f, 3)
    res = recover_two_layer(X, Y, activation=f, rng=0)
    assert res.exact, res.message
    assert compare(res.network, net).max_error < 1e-9


def test_custom_callable_is_analysed():
    act = get_activation(lambda t: np.maximum(t, 0.0) ** 3)
    assert act.degree == pytest.approx(3.0)
    sat = get_activation(lambda t: np.minimum(np.maximum(t, 0.0), 0.5))
    assert sat.degree is None and sat.invertible_max == 0.5
    y = np.array([0.1, 0.25, 0.4])
    np.testing.assert_allclose(sat.inverse(y), y, rtol=1e-15)


@pytest.mark.parametrize(
    "f, match",
    [
        (lambda t: np.where(t > 0, t, 0.01 * t), "not rectified: f"),  # leaky ReLU
        (np.tanh, "not rectified"),
        (lambda t: np.maximum(t - 1.0, 0.0), "strictly positive"),  # a bias: 0 on (0, 1]
    ],
)
def test_non_rectified_activations_are_refused(f, match):
    with pytest.raises(ValueError, match=match):
        get_activation(f)
    with pytest.raises(ValueError, match="not rectified|strictly positive"):
        TwoLayerNetwork.random(3, 2, 2, activation=f, rng=0)


def test_unknown_activation_name():
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        get_activation("gelu")


def test_step_function_scale_is_reported_not_identifiable():
    def step(t):
        return (np.asarray(t) > 0).astype(float)

    net, X, Y = _planted(step, 0, d=8, k=2, m=3)
    res = recover_two_layer(X, Y, activation=step, rng=0, max_starts=30)
    assert not res.exact
    assert "only the sign pattern" in res.message


@pytest.mark.parametrize("activation", ["relu2", "log1p", "clipped"])
def test_hermite_coefficients_match_monte_carlo(activation):
    act = get_activation(activation)
    c = act.hermite_coefficients(1.7, 3)
    g = np.random.default_rng(0).standard_normal(2_000_000)
    he = np.stack([np.ones_like(g), g, g * g - 1, g**3 - 3 * g])
    mc = (act(1.7 * g) * he).mean(axis=1)
    # Monte Carlo error with 2e6 samples is a few 1e-3 for these bounded moments
    np.testing.assert_allclose(c, mc, atol=2e-2 * max(1.0, np.abs(c).max()))
