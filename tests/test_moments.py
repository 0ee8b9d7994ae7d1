"""Streaming Hermite moments (docs/algorithms.md 1, steps 1-3)."""

import numpy as np
import pytest

from relurecover import TwoLayerNetwork, gaussian_inputs
from relurecover.moments import (
    contracted_second_moments,
    first_moment,
    iter_chunks,
    second_moment_weights,
)


@pytest.fixture(scope="module")
def sample():
    net = TwoLayerNetwork.random(5, 3, 4, rng=0)
    X = gaussian_inputs(400_000, 5, rng=1)
    return net, X, net.predict(X)


def test_iter_chunks_cover_rows():
    chunks = list(iter_chunks(10, 4))
    assert chunks == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert list(iter_chunks(0, 4)) == []


def test_first_moment_is_U_V_over_2(sample):
    net, X, Y = sample
    M1 = first_moment(X, Y)
    # entries of y x have variance ~ ||U||^2 ||V||^2 / k: standard error at n = 4e5
    # is ~0.01 here; 0.06 is five standard errors
    np.testing.assert_allclose(M1, net.U @ net.V / 2, rtol=0, atol=0.06)


def test_first_moment_row_space_is_span_V(sample):
    net, X, Y = sample
    _, _, Vt = np.linalg.svd(first_moment(X, Y))
    Q = Vt[:3].T
    # each row of V lies (nearly) in the span of the top-3 right singular vectors
    resid = net.V - (net.V @ Q) @ Q.T
    assert np.linalg.norm(resid) / np.linalg.norm(net.V) < 0.02


def test_second_moment_is_the_cp_tensor(sample):
    net, X, Y = sample
    A = np.random.default_rng(2).standard_normal((4, 2))
    T = contracted_second_moments(X, Y, A)
    norms = np.linalg.norm(net.V, axis=1)
    Vhat = net.V / norms[:, None]
    W = net.U * norms / np.sqrt(2 * np.pi)  # w_i = ||v_i|| U[:, i] / sqrt(2 pi)
    for c in range(2):
        expected = Vhat.T @ np.diag(A[:, c] @ W) @ Vhat
        # sample error ~1/sqrt(n) times the fourth moments: 0.1 absolute is safe
        np.testing.assert_allclose(T[c], expected, rtol=0, atol=0.1)
        np.testing.assert_allclose(T[c], T[c].T, atol=1e-12)


def test_second_moment_weights(sample):
    net, X, Y = sample
    norms = np.linalg.norm(net.V, axis=1)
    # in full dimension d = 5 > k = 3 complete P with two directions orthogonal to V
    Vhat = net.V / norms[:, None]
    extra = np.linalg.svd(Vhat)[2][3:]
    P = np.vstack([Vhat, extra]).T  # (5, 5)
    W = second_moment_weights(X, Y, P)
    assert W.shape == (4, 5)
    np.testing.assert_allclose(W[:, :3], net.U * norms / np.sqrt(2 * np.pi), atol=0.1)
    np.testing.assert_allclose(W[:, 3:], 0.0, atol=0.1)


def test_one_chunk_is_the_plain_formula():
    net = TwoLayerNetwork.random(6, 2, 3, rng=3)
    X = gaussian_inputs(1000, 6, rng=4)
    Y = net.predict(X)
    np.testing.assert_array_equal(first_moment(X, Y, chunk_size=5000), Y.T @ X / 1000)


@pytest.mark.parametrize("chunk", [1, 7, 1000, 10**6])
def test_chunked_equals_unchunked(chunk):
    net = TwoLayerNetwork.random(6, 2, 3, rng=3)
    X = gaussian_inputs(1000, 6, rng=4)
    Y = net.predict(X)
    A = np.random.default_rng(5).standard_normal((3, 2))
    P = np.random.default_rng(6).standard_normal((6, 6))
    whole = dict(chunk_size=len(X))
    # the same products summed in another grouping: equal to rounding, and exactly
    # equal (same bits) when the chunks are the same
    np.testing.assert_allclose(first_moment(X, Y, chunk_size=chunk),
                               first_moment(X, Y, **whole), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(contracted_second_moments(X, Y, A, chunk_size=chunk),
                               contracted_second_moments(X, Y, A, **whole),
                               rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(second_moment_weights(X, Y, P, chunk_size=chunk),
                               second_moment_weights(X, Y, P, **whole),
                               rtol=1e-12, atol=1e-13)


def test_memmap_input(tmp_path):
    net = TwoLayerNetwork.random(6, 2, 3, rng=3)
    X = gaussian_inputs(500, 6, rng=4).astype(np.float32)
    Xm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32,
                                   shape=X.shape)
    Xm[:] = X
    Y = net.predict(X.astype(float))
    np.testing.assert_array_equal(first_moment(Xm, Y, chunk_size=64),
                                  first_moment(X, Y, chunk_size=64))
