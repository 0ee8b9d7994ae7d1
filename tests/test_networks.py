"""Networks, planted instances, save and load."""

import numpy as np
import pytest

from relurecover import DeepNetwork, TwoLayerNetwork, gaussian_inputs, load_network


def test_two_layer_predict_matches_formula():
    net = TwoLayerNetwork.random(5, 3, 2, rng=0)
    X = gaussian_inputs(7, 5, rng=1)
    expected = np.maximum(X @ net.V.T, 0.0) @ net.U.T
    np.testing.assert_allclose(net.predict(X), expected, rtol=0, atol=1e-14)
    np.testing.assert_array_equal(net(X), net.predict(X))
    assert net.hidden(X).shape == (7, 3)
    assert (net.n_inputs, net.n_hidden, net.n_outputs) == (5, 3, 2)


def test_random_is_seeded():
    a = TwoLayerNetwork.random(4, 2, 3, rng=5)
    b = TwoLayerNetwork.random(4, 2, 3, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.V, b.V)
    np.testing.assert_array_equal(a.U, b.U)
    assert a.V.shape == (2, 4) and a.U.shape == (3, 2)
    np.testing.assert_array_equal(gaussian_inputs(3, 2, rng=9), gaussian_inputs(3, 2, rng=9))


def test_relu_network_is_positively_homogeneous_in_units():
    # (U P D^-1, D P^T V) is the same network (docs/algorithms.md, Conventions)
    net = TwoLayerNetwork.random(6, 3, 4, rng=0)
    D = np.array([0.5, 2.0, 3.0])
    perm = [2, 0, 1]
    other = TwoLayerNetwork((net.U / D)[:, perm], (D[:, None] * net.V)[perm])
    X = gaussian_inputs(20, 6, rng=1)
    np.testing.assert_allclose(other.predict(X), net.predict(X), rtol=1e-13, atol=1e-13)


def test_two_layer_save_load(tmp_path):
    net = TwoLayerNetwork.random(4, 2, 3, activation="relu2", rng=0)
    net.save(tmp_path / "net.npz")
    back = TwoLayerNetwork.load(tmp_path / "net.npz")
    np.testing.assert_array_equal(back.U, net.U)
    np.testing.assert_array_equal(back.V, net.V)
    assert back.activation.name == "relu2"
    assert isinstance(load_network(tmp_path / "net.npz"), TwoLayerNetwork)


def test_load_rejects_file_without_weights(tmp_path):
    np.savez(tmp_path / "x.npz", X=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"holds no two-layer network.*\['X'\]"):
        TwoLayerNetwork.load(tmp_path / "x.npz")


def test_custom_activation_cannot_be_saved(tmp_path):
    net = TwoLayerNetwork(np.ones((1, 1)), np.ones((1, 2)), activation=lambda t: np.maximum(t, 0) ** 3)
    with pytest.raises(ValueError, match="custom activation cannot be saved"):
        net.save(tmp_path / "c.npz")


def test_shape_errors():
    with pytest.raises(ValueError, match="`U` has 2 columns but `V` has 3 rows"):
        TwoLayerNetwork(np.ones((4, 2)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="`V` must be a 2-D array"):
        TwoLayerNetwork(np.ones((4, 2)), np.ones(5))
    net = TwoLayerNetwork.random(5, 2, 1, rng=0)
    with pytest.raises(ValueError, match="`X` has 4 features .* d = 5"):
        net.predict(np.ones((3, 4)))
    with pytest.raises(ValueError, match="`X` contains 1 NaN"):
        net.predict(np.array([[np.nan, 0, 0, 0, 0]]))


@pytest.mark.parametrize("args, match", [
    ((0, 2, 3), "`d` must be a positive integer"),
    ((4, 2.0, 3), "`k` must be a positive integer"),
    ((4, 2, -1), "`m` must be a positive integer"),
])
def test_random_rejects_bad_sizes(args, match):
    with pytest.raises(ValueError, match=match):
        TwoLayerNetwork.random(*args, rng=0)


def test_gaussian_inputs_rejects_bad_sizes():
    with pytest.raises(ValueError, match="`n` must be a positive integer"):
        gaussian_inputs(0, 3)


def test_deep_network(tmp_path):
    net = DeepNetwork.random(6, [4, 3], m=2, rng=0)
    assert net.widths == [4, 3] and net.n_inputs == 6 and net.n_outputs == 2
    X = gaussian_inputs(5, 6, rng=1)
    W1, W2, W3 = net.weights
    expected = np.maximum(np.maximum(X @ W1.T, 0) @ W2.T, 0) @ W3.T
    np.testing.assert_allclose(net.predict(X), expected, rtol=0, atol=1e-14)
    net.save(tmp_path / "deep.npz")
    back = load_network(tmp_path / "deep.npz")
    assert isinstance(back, DeepNetwork)
    for a, b in zip(back.weights, net.weights):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="consecutive layers must chain"):
        DeepNetwork([np.ones((3, 2)), np.ones((1, 4))])


def test_repr():
    assert repr(TwoLayerNetwork.random(5, 3, 2, rng=0)) == (
        "TwoLayerNetwork(d=5, k=3, m=2, activation='relu')"
    )


# --------------------------------------------------------------------------- metadata


@pytest.mark.parametrize("make", [
    lambda: TwoLayerNetwork.random(5, 3, 2, bias_scale=0.5, rng=0),
    lambda: DeepNetwork.random(6, [3, 2], m=2, rng=0),
])
def test_save_with_metadata_round_trip(tmp_path, make):
    from relurecover.networks import read_metadata

    net = make()
    meta = {"exact": True, "certificate": 1.5e-15, "method": "gaussian",
            "message": "exact: all 3 units certified", "data": {"n": 360, "Y": None},
            "widths": [3, 2]}
    net.save(tmp_path / "net.npz", metadata=meta)
    assert read_metadata(tmp_path / "net.npz") == meta
    back = load_network(tmp_path / "net.npz")  # load ignores the metadata
    assert type(back) is type(net)
    X = gaussian_inputs(4, net.n_inputs, rng=1)
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


def test_files_without_metadata_still_load(tmp_path):
    from relurecover.networks import read_metadata

    net = TwoLayerNetwork.random(4, 2, 3, rng=0)
    net.save(tmp_path / "new.npz")  # no metadata given: none stored
    np.savez(tmp_path / "old.npz", U=net.U, V=net.V)  # a file from before biases
    for name in ("new.npz", "old.npz"):
        assert read_metadata(tmp_path / name) == {}
        np.testing.assert_array_equal(TwoLayerNetwork.load(tmp_path / name).V, net.V)
    with np.load(tmp_path / "new.npz") as f:
        assert "metadata" not in f.files


@pytest.mark.parametrize("meta, match", [
    ({"certificate": float("nan")}, "JSON-serialisable"),
    ({"weights": np.ones(2)}, "JSON-serialisable"),
    ([("exact", True)], "must be a dict"),
    ({1: "x"}, "str keys"),
])
def test_bad_metadata_is_refused_before_writing(tmp_path, meta, match):
    with pytest.raises(ValueError, match=match):
        TwoLayerNetwork.random(4, 2, 3, rng=0).save(tmp_path / "n.npz", metadata=meta)
    with pytest.raises(ValueError, match=match):
        DeepNetwork.random(4, [2], rng=0).save(tmp_path / "d.npz", metadata=meta)
    assert not (tmp_path / "n.npz").exists() and not (tmp_path / "d.npz").exists()


def test_read_metadata_rejects_a_corrupt_entry(tmp_path):
    from relurecover.networks import read_metadata

    net = TwoLayerNetwork.random(4, 2, 3, rng=0)
    np.savez(tmp_path / "bad.npz", U=net.U, V=net.V, metadata=np.array("{not json"))
    with pytest.raises(ValueError, match="not valid JSON"):
        read_metadata(tmp_path / "bad.npz")
    np.savez(tmp_path / "list.npz", U=net.U, V=net.V, metadata=np.array("[1, 2]"))
    with pytest.raises(ValueError, match="not a JSON object"):
        read_metadata(tmp_path / "list.npz")
