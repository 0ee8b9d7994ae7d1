"""Rectified activations and their Hermite coefficients (docs/algorithms.md 1)."""

import numpy as np
import pytest

from relurecover.activations import ACTIVATIONS, get_activation, hermite_coefficients

C = 1.0 / np.sqrt(2.0 * np.pi)


@pytest.mark.parametrize("scale", [1.0, 0.3, 2.5])
def test_relu_hermite_coefficients(scale):
    c = get_activation("relu").hermite_coefficients(scale, degree=4)
    # E[relu g] = E[relu(g)(g^2-1)] = 1/sqrt(2 pi), E[relu(g) g] = 1/2, E[relu(g) He3] = 0;
    # relu is 1-homogeneous, so all scale with s. Quadrature is exact to ~1e-15.
    np.testing.assert_allclose(c[:4], scale * np.array([C, 0.5, C, 0.0]), rtol=0, atol=1e-14)
    # He4 = g^4 - 6 g^2 + 3: E[relu(g) He4] = (8 - 12 + 3) / sqrt(2 pi) = -1/sqrt(2 pi)
    assert c[4] == pytest.approx(-scale * C, abs=1e-14)


def test_relu2_hermite_coefficients():
    c = hermite_coefficients(get_activation("relu2"), 1.0, 2)
    # E[relu(g)^2] = 1/2, E[relu(g)^2 g] = sqrt(2/pi), E[relu(g)^2 (g^2-1)] = (3-1)/2
    np.testing.assert_allclose(c, [0.5, np.sqrt(2 / np.pi), 1.0], rtol=0, atol=1e-14)


def test_hermite_coefficients_match_monte_carlo():
    g = np.random.default_rng(0).standard_normal(2_000_000)
    f = get_activation("log1p")
    c = f.hermite_coefficients(1.0, degree=2)
    mc = [f(g).mean(), (f(g) * g).mean(), (f(g) * (g * g - 1)).mean()]
    # Monte Carlo standard error at 2e6 samples is below 1e-3
    np.testing.assert_allclose(c, mc, atol=3e-3)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_registry_is_rectified(name):
    f = get_activation(name)
    assert f.name == name and get_activation(f) is f
    t = np.array([-3.0, -1e-9, 0.0, 1e-6, 0.5, 4.0])
    out = f(t)
    assert np.all(out[:3] == 0) and np.all(out[3:] > 0)


@pytest.mark.parametrize("name", ["relu", "relu2", "log1p", "step-linear"])
def test_inverse(name):
    f = get_activation(name)
    t = np.array([0.1, 0.7, 3.0])
    np.testing.assert_allclose(f.inverse(f(t)), t, rtol=1e-12)


def test_clipped_is_invertible_below_its_plateau():
    f = get_activation("clipped")
    assert f.invertible_max == 1.0 and f(np.array([5.0]))[0] == 1.0
    np.testing.assert_allclose(f.inverse(f(np.array([0.2, 0.9]))), [0.2, 0.9])


def test_degrees():
    assert get_activation("relu").degree == 1.0
    assert get_activation("relu2").degree == 2.0
    assert get_activation("log1p").degree is None
    assert get_activation("relu").is_relu and not get_activation("relu2").is_relu


def leaky_relu(t):
    return np.where(t > 0, t, 0.01 * t)


def softplus(t):
    return np.log1p(np.exp(t))


@pytest.mark.parametrize("f, match", [
    (np.tanh, r"activation 'tanh' is not rectified: f\(-1e-08\)"),
    (leaky_relu, "activation 'leaky_relu' is not rectified.*Leaky ReLU, tanh"),
    (softplus, "activation 'softplus' is not rectified"),
    (lambda t: -np.maximum(t, 0), "strictly positive for every t > 0"),
    (lambda t: np.where(t > 0, np.nan, 0.0), "returned NaN or inf"),
    (lambda t: 0.0, "same shape"),
])
def test_non_rectified_refused(f, match):
    with pytest.raises(ValueError, match=match):
        get_activation(f)


@pytest.mark.parametrize("bad, match", [
    ("gelu", r"unknown activation 'gelu'; choose one of \['clipped'"),
    (3, "`activation` must be a name or a callable, got int"),
])
def test_bad_activation_argument(bad, match):
    with pytest.raises(ValueError, match=match):
        get_activation(bad)


def test_custom_homogeneous():
    def cube(t):
        return np.maximum(t, 0.0) ** 3

    f = get_activation(cube)
    assert f.name == "custom" and f.degree == pytest.approx(3.0)
    np.testing.assert_allclose(f.inverse(f(np.array([0.5, 2.0]))), [0.5, 2.0], rtol=1e-12)


def test_custom_increasing_gets_numeric_inverse():
    def f(t):
        return np.log1p(np.maximum(t, 0.0)) + np.sqrt(np.maximum(t, 0.0))

    act = get_activation(f)
    assert act.degree is None and act.invertible_max == np.inf
    t = np.array([1e-3, 0.4, 25.0])
    np.testing.assert_allclose(act.inverse(act(t)), t, rtol=1e-12)


def test_custom_plateau():
    act = get_activation(lambda t: np.minimum(np.maximum(t, 0.0), 2.0))
    assert act.invertible_max == 2.0
    np.testing.assert_allclose(act.inverse(np.array([0.5, 1.5])), [0.5, 1.5], rtol=1e-12)
