"""Round trips to scikit-learn's MLPRegressor and to PyTorch (relurecover.formats)."""

import numpy as np
import pytest

from relurecover import DeepNetwork, TwoLayerNetwork, compare, gaussian_inputs, recover_two_layer
from relurecover.formats import from_mlp, from_torch, to_mlp, to_torch


def _nets():
    yield TwoLayerNetwork.random(6, 3, 4, rng=0)
    yield TwoLayerNetwork.random(6, 3, 4, bias_scale=0.5, rng=1)
    yield TwoLayerNetwork.random(6, 3, 1, bias_scale=0.5, rng=2)
    deep = DeepNetwork.random(6, [4, 3], 2, rng=3)
    yield DeepNetwork(deep.weights, [np.arange(4.0), -np.ones(3), np.array([0.5, -0.5])])


@pytest.mark.parametrize("net", list(_nets()), ids=["2l", "2l-bias", "2l-m1", "deep-bias"])
def test_mlp_round_trip(net):
    X = gaussian_inputs(50, 6, rng=9)
    mlp = to_mlp(net)
    Y = net.predict(X)
    np.testing.assert_allclose(mlp.predict(X), Y.ravel() if Y.shape[1] == 1 else Y,
                               rtol=1e-12, atol=1e-14)
    back = from_mlp(mlp)
    assert type(back) is type(net)
    np.testing.assert_allclose(back.predict(X), Y, rtol=1e-12, atol=1e-14)


def test_trained_mlp_is_recovered():
    from sklearn.neural_network import MLPRegressor

    g = np.random.default_rng(0)
    Xt = g.standard_normal((300, 8))
    Yt = np.stack([np.sin(Xt[:, 0]), Xt[:, 1] * Xt[:, 2], np.abs(Xt[:, 3]),
                   np.maximum(Xt[:, 4], 0), Xt[:, 5] ** 2], axis=1)  # m = 5 >= k = 4
    mlp = MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=300, random_state=0).fit(Xt, Yt)
    truth = from_mlp(mlp)
    X = gaussian_inputs(40 * 8 * 4, 8, rng=1)
    res = recover_two_layer(X, mlp.predict(X), rng=0)
    assert res.exact, res.message
    assert compare(res.network, truth).max_error < 1e-9


@pytest.mark.parametrize("activation, match", [("tanh", "only 'relu'"), ("logistic", "only")])
def test_from_mlp_refuses_other_activations(activation, match):
    from sklearn.neural_network import MLPRegressor

    g = np.random.default_rng(0)
    mlp = MLPRegressor(hidden_layer_sizes=(3,), activation=activation, max_iter=20, random_state=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp.fit(g.standard_normal((50, 4)), g.standard_normal(50))
    with pytest.raises(ValueError, match=match):
        from_mlp(mlp)
    with pytest.raises(ValueError, match="not fitted"):
        from_mlp(MLPRegressor())


@pytest.mark.parametrize("net", list(_nets()), ids=["2l", "2l-bias", "2l-m1", "deep-bias"])
def test_torch_round_trip(net):
    torch = pytest.importorskip("torch")
    X = gaussian_inputs(50, 6, rng=9)
    mod = to_torch(net)
    with torch.no_grad():
        out = mod(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(out, net.predict(X), rtol=1e-12, atol=1e-14)
    back = from_torch(mod)
    assert type(back) is type(net)
    np.testing.assert_allclose(back.predict(X), net.predict(X), rtol=1e-12, atol=1e-14)


def test_from_torch_without_bias_and_bad_structures():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    mod = nn.Sequential(nn.Linear(5, 3, bias=False), nn.ReLU(), nn.Linear(3, 2, bias=False))
    net = from_torch(mod)
    assert isinstance(net, TwoLayerNetwork) and not net.has_biases
    with pytest.raises(ValueError, match="Tanh"):
        from_torch(nn.Sequential(nn.Linear(5, 3), nn.Tanh(), nn.Linear(3, 2)))
    with pytest.raises(ValueError, match="end with an nn.Linear"):
        from_torch(nn.Sequential(nn.Linear(5, 3), nn.ReLU()))
    with pytest.raises(ValueError, match="expected nn.Linear"):
        from_torch(nn.Sequential(nn.ReLU(), nn.Linear(5, 3)))


def test_non_relu_network_has_no_mlp_form():
    net = TwoLayerNetwork.random(4, 2, 2, activation="relu2", rng=0)
    with pytest.raises(ValueError, match="only ReLU"):
        to_mlp(net)


def test_torch_conversions_without_torch(no_torch):
    from relurecover.deep import MissingDependencyError

    with pytest.raises(MissingDependencyError, match="to_torch / from_torch need PyTorch"):
        to_torch(TwoLayerNetwork.random(3, 2, 2, rng=0))
    # the scikit-learn conversions do not need torch
    net = TwoLayerNetwork.random(3, 2, 2, bias_scale=0.5, rng=0)
    np.testing.assert_array_equal(from_mlp(to_mlp(net)).b, net.b)


def test_network_methods_delegate():
    net = TwoLayerNetwork.random(5, 3, 2, bias_scale=0.5, rng=0)
    X = gaussian_inputs(20, 5, rng=1)
    np.testing.assert_allclose(TwoLayerNetwork.from_mlp(net.to_mlp()).predict(X),
                               net.predict(X), rtol=1e-12, atol=1e-14)
    deep = DeepNetwork.from_mlp(net.to_mlp())  # one hidden layer is a deep network too
    np.testing.assert_allclose(deep.predict(X), net.predict(X), rtol=1e-12, atol=1e-14)
    d3 = DeepNetwork.random(5, [3, 3], 2, rng=2)
    with pytest.raises(ValueError, match="DeepNetwork.from_mlp"):
        TwoLayerNetwork.from_mlp(d3.to_mlp())
    torch = pytest.importorskip("torch")
    back = TwoLayerNetwork.from_torch(net.to_torch())
    np.testing.assert_allclose(back.predict(X), net.predict(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(DeepNetwork.from_torch(d3.to_torch()).predict(X),
                               d3.predict(X), rtol=1e-12, atol=1e-14)
    assert isinstance(d3.to_torch(dtype=torch.float32)[0].weight.dtype, torch.dtype)
