"""Filtered PCA [CKM] (docs/algorithms.md 5.1): a first, fast check of the deep subpackage."""

import numpy as np
import pytest

from relurecover import DeepNetwork, gaussian_inputs
from relurecover.deep import alternating_network, filtered_pca, plain_pca, principal_angles


@pytest.mark.parametrize("seed", [0, 1])
def test_filtered_pca_finds_first_layer_span(seed):
    net = DeepNetwork.random(20, [3, 3], rng=seed)
    X = gaussian_inputs(40_000, 20, rng=seed + 100)
    sub = filtered_pca(X, net.predict(X))
    assert sub.basis.shape[1] == 3
    # angles of order sqrt(d / n) / eigen-gap: 0.3 rad leaves a wide margin
    assert principal_angles(sub.basis, net.weights[0].T).max() < 0.3


def test_plain_pca_is_blind_where_filtered_pca_sees():
    net = alternating_network(20, rng=0)
    X = gaussian_inputs(100_000, 20, rng=1)
    y = net.predict(X)
    plane = net.weights[0].T
    filt = filtered_pca(X, y)
    assert filt.basis.shape[1] >= 2
    assert principal_angles(filt.basis[:, :2], plane).max() < 0.3
    plain = plain_pca(X, y, rng=0)
    # the plain second moment vanishes for this instance: nothing rises above its
    # floor, although y depends on x (a permutation floor reported noise here)
    assert plain.n_found == 0
    assert plain.diagnostics["best_ratio"] < 1.0


def test_plain_pca_sees_a_nonzero_second_moment():
    # y = relu(a.x) + 0.5 relu(b.x): E[y (x x^T - I)] = (a a^T + 0.5 b b^T) / sqrt(2 pi)
    rng = np.random.default_rng(2)
    d = 20
    T = np.linalg.qr(rng.standard_normal((d, 2)))[0]
    X = gaussian_inputs(40_000, d, rng=3)
    Z = np.maximum(X @ T, 0)
    plain = plain_pca(X, Z[:, 0] + 0.5 * Z[:, 1], rng=0)
    assert plain.n_found == 2
    assert principal_angles(plain.basis, T).max() < 0.2
    with pytest.raises(ValueError, match="n_batches"):
        plain_pca(X, Z[:, 0], n_batches=2)
    with pytest.raises(ValueError, match="n >= n_batches"):
        plain_pca(X[:100], Z[:100, 0])


def test_filtered_pca_validates_input():
    X = gaussian_inputs(100, 5, rng=0)
    with pytest.raises(ValueError, match="rows"):
        filtered_pca(X, np.ones(99))
    with pytest.raises(ValueError, match="NaN"):
        filtered_pca(np.full((100, 5), np.nan), np.ones(100))
