"""Streaming Hermite moments (docs/algorithms.md 1, steps 1-3)."""

import numpy as np
import pytest

from relurecover import TwoLayerNetwork, gaussian_inputs
from relurecover.moments import (
    C2,
    contracted_second_moments,
    first_moment,
    hermite4_contraction,
    hermite4_moment,
    iter_blocks,
    iter_chunks,
    relu_pattern_gram,
    second_moment,
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


def test_iter_blocks_are_float64_rows_of_every_array():
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    blocks = list(iter_blocks(X, y, chunk_size=4))
    assert [sl for sl, _ in blocks] == list(iter_chunks(10, 4))
    for sl, (Xc, yc) in blocks:
        assert Xc.dtype == np.float64 and yc.dtype == np.float64
        np.testing.assert_array_equal(Xc, X[sl])
        np.testing.assert_array_equal(yc, y[sl])


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_new_estimators_chunked_equal_unchunked(chunk):
    rng = np.random.default_rng(7)
    net = TwoLayerNetwork.random(6, 3, 1, rng=3)
    X = gaussian_inputs(1000, 6, rng=4)
    y = net.predict(X)[:, 0]
    a, b = rng.standard_normal((2, 6))
    whole = dict(chunk_size=len(X))
    M, f = second_moment(X, y, chunk_size=chunk)
    M0, f0 = second_moment(X, y, **whole)
    np.testing.assert_allclose(M, M0, rtol=1e-12, atol=1e-13)
    assert f == pytest.approx(f0, rel=1e-10)
    np.testing.assert_allclose(hermite4_moment(X, y, a, b, chunk_size=chunk),
                               hermite4_contraction(X, y, a, b), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(relu_pattern_gram(X, net.V, chunk_size=chunk),
                               relu_pattern_gram(X, net.V, **whole), rtol=1e-12, atol=1e-13)


def test_hermite4_moment_defaults_to_a_twice():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((500, 4))
    r = rng.standard_normal(500)
    a = rng.standard_normal(4)
    np.testing.assert_array_equal(hermite4_moment(X, r, a, chunk_size=64),
                                  hermite4_moment(X, r, a, a, chunk_size=64))


def test_second_moment_is_the_weighted_projector(sample):
    # the first output of the sample: M2 = C2 sum_i U[0, i] ||v_i|| vhat_i vhat_i^T,
    # and the residualised estimate is far closer than the floor says is noise
    net, X, Y = sample
    M2, floor = second_moment(X, Y[:, 0])
    norms = np.linalg.norm(net.V, axis=1)
    Vhat = net.V / norms[:, None]
    expected = C2 * (Vhat.T * (net.U[0] * norms)) @ Vhat
    assert np.linalg.norm(M2 - expected, 2) < floor
    np.testing.assert_allclose(M2, M2.T, atol=1e-12)


def test_relu_pattern_gram_is_the_mean_of_z_z():
    rng = np.random.default_rng(9)
    X = rng.standard_normal((300, 4))
    V = rng.standard_normal((3, 4))
    act = X @ V.T > 0
    Z = np.concatenate([X * act[:, i:i + 1] for i in range(3)], axis=1)  # (i, a) order
    np.testing.assert_allclose(relu_pattern_gram(X, V, chunk_size=50), Z.T @ Z / 300,
                               rtol=1e-12, atol=1e-14)


def test_second_moment_on_a_memmap(tmp_path):
    net = TwoLayerNetwork.random(6, 2, 1, rng=3)
    X = gaussian_inputs(500, 6, rng=4).astype(np.float32)
    Xm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32,
                                   shape=X.shape)
    Xm[:] = X
    y = net.predict(X.astype(float))[:, 0]
    a, b = second_moment(Xm, y, chunk_size=64), second_moment(X, y, chunk_size=64)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
