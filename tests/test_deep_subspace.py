"""Filtered PCA [CKM] (ALGORITHMS.md 5.1): a first, fast check of the deep subpackage."""

import numpy as np
import pytest

from relurecover import DeepNetwork, gaussian_inputs
from relurecover.deep import alternating_network, filtered_pca, plain_pca, principal_angles


@pytest.mark.parametrize("seed", [0, 1])
def test_filtered_pca_finds_first_layer_span(seed):
    net = DeepNetwork.random(20, [3, 3], rng=seed)
    X = gaussian_inputs(40_000, 20, rng=seed + 100)
    sub = filtered_pca(X, net.predict(X), rng=seed)
    assert sub.basis.shape[1] == 3
    # angles of order sqrt(d / n) / eigen-gap: 0.3 rad leaves a wide margin
    assert principal_angles(sub.basis, net.weights[0].T).max() < 0.3


def test_plain_pca_is_blind_where_filtered_pca_sees():
    net = alternating_network(20, rng=0)
    X = gaussian_inputs(100_000, 20, rng=1)
    y = net.predict(X)
    plane = net.weights[0].T
    filt = filtered_pca(X, y, rng=0)
    assert filt.basis.shape[1] >= 2
    assert principal_angles(filt.basis[:, :2], plane).max() < 0.3
    plain = plain_pca(X, y)
    # the plain second moment vanishes for this instance: nothing rises above its floor
    assert plain.basis.shape[1] == 0 or principal_angles(plain.basis[:, :2], plane).max() > 0.3


def test_filtered_pca_validates_input():
    X = gaussian_inputs(100, 5, rng=0)
    with pytest.raises(ValueError, match="rows"):
        filtered_pca(X, np.ones(99))
    with pytest.raises(ValueError, match="NaN"):
        filtered_pca(np.full((100, 5), np.nan), np.ones(100))
