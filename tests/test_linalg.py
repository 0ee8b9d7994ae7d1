"""The shared rank / residual / scaling decisions (relurecover._linalg)."""

import numpy as np
import pytest

from relurecover._linalg import (
    ROW_CAP,
    column_space,
    inverse_sqrt,
    matrix_rank,
    power_of_two_scale,
    relative_residual,
    row_caps,
    row_span,
    safe_norm,
    scale_and_row_norms,
)


@pytest.mark.parametrize("scale", [1e-300, 1e-160, 1.0, 1e154, 1e300])
def test_safe_norm_neither_underflows_nor_overflows(scale):
    a = np.array([3.0, 4.0]) * scale
    assert safe_norm(a) == pytest.approx(5.0 * scale, rel=1e-15)
    # what it guards against: squares below the smallest normal number lose digits
    naive = float(np.sqrt(np.sum(np.square(np.array([3.0, 4.0]) * 1e-160))))
    assert abs(naive - 5e-160) > 1e-6 * 5e-160


def test_safe_norm_of_nan_is_inf():
    assert safe_norm(np.array([1.0, np.nan])) == np.inf
    assert safe_norm(np.zeros(3)) == 0.0


def test_row_caps_shorten_only_outlier_rows():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2000, 10))
    assert np.all(row_caps(A) == 1.0)  # Gaussian rows are never capped
    A[0] *= 1e12
    w = row_caps(A)
    med = np.median(np.linalg.norm(A[1:], axis=1))
    assert np.all(w[1:] == 1.0)
    assert np.linalg.norm(A[0] * w[0]) == pytest.approx(ROW_CAP * med, rel=1e-2)


def test_rank_is_not_hidden_by_one_huge_row():
    rng = np.random.default_rng(1)
    Y = rng.standard_normal((500, 3)) @ rng.standard_normal((3, 5))  # rank 3
    Y[0] *= 1e12
    s = np.linalg.svd(Y, compute_uv=False)
    assert int(np.count_nonzero(s > 1e-9 * s[0])) < 3  # a plain count is fooled
    assert matrix_rank(Y) == 3
    assert column_space(Y)[2] == 3


def test_row_span_is_not_hidden_by_one_huge_row():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 6))
    X[0] *= 1e12
    Q, _, r = row_span(X, chunk_size=64)
    assert r == 6 and Q.shape == (6, 6)


def test_relative_residual_is_not_fooled_by_a_huge_row():
    # a "network" that reproduces the one huge row and nothing else
    rng = np.random.default_rng(3)
    Y = rng.standard_normal((1000, 4))
    Y[0] *= 1e12
    Yhat = np.zeros_like(Y)
    Yhat[0] = Y[0]
    plain = np.linalg.norm(Y - Yhat) / np.linalg.norm(Y)
    assert plain < 1e-9  # the old certificate would call this exact
    assert relative_residual(Y, Yhat) > 0.1


@pytest.mark.parametrize("scale", [1e-200, 1e-160, 1.0, 1e154, 1e200])
def test_relative_residual_is_scale_free(scale):
    rng = np.random.default_rng(4)
    Y = rng.standard_normal((200, 3))
    R = 1e-4 * rng.standard_normal((200, 3))
    ref = relative_residual(Y, Y + R)
    assert ref == pytest.approx(np.linalg.norm(R) / np.linalg.norm(Y), rel=1e-12)
    assert relative_residual(Y * scale, (Y + R) * scale) == pytest.approx(ref, rel=1e-12)


def test_relative_residual_of_non_finite_prediction_is_inf():
    Y = np.ones((5, 2))
    assert relative_residual(Y, np.full((5, 2), np.inf)) == np.inf
    assert relative_residual(Y, np.full((5, 2), np.nan)) == np.inf


@pytest.mark.parametrize("scale, expected", [(1.0, 0), (3.0, 0), (2.0**40, 40 + 2),
                                             (2.0**-40, -40 + 2)])
def test_power_of_two_scale(scale, expected):
    A = np.array([[1.5, -3.0], [0.25, 2.0]]) * scale  # largest |entry| 3 = 1.5 * 2
    assert power_of_two_scale(A) == expected
    e = power_of_two_scale(A)
    B = np.ldexp(A, -e)
    np.testing.assert_array_equal(np.ldexp(B, e), A)  # lossless


def test_scale_and_row_norms_read_once_when_no_rescaling():
    rng = np.random.default_rng(5)
    A = rng.standard_normal((100, 4))
    e, norms = scale_and_row_norms(A, chunk_size=7)
    assert e == 0
    np.testing.assert_allclose(norms, np.linalg.norm(A, axis=1), rtol=1e-15)
    e, norms = scale_and_row_norms(A * 1e200, chunk_size=7)
    assert e > 600
    np.testing.assert_allclose(norms, np.linalg.norm(np.ldexp(A * 1e200, -e), axis=1),
                               rtol=1e-14)


def test_inverse_sqrt():
    rng = np.random.default_rng(6)
    G = rng.standard_normal((50, 4))
    M = G.T @ G / 50
    A, w = inverse_sqrt(M)
    np.testing.assert_allclose(A @ M @ A, np.eye(4), atol=1e-12)
    assert np.all(np.diff(w) >= 0)


def test_affine_rank_is_the_rank_of_affine_column_space():
    from relurecover._linalg import affine_column_space, affine_rank

    rng = np.random.default_rng(0)
    H = rng.standard_normal((2000, 4))
    cases = [H @ rng.standard_normal((4, 9)) + 3.0,        # rank 4 plus a constant
             rng.standard_normal((500, 6)),                 # full rank
             np.zeros((10, 2))]                             # nothing
    big = cases[0].copy()
    big[7] *= 1e12  # one huge row hides nothing
    for Y in cases + [big]:
        assert affine_rank(Y) == affine_column_space(Y)[2]
    assert [affine_rank(Y) for Y in cases] == [4, 6, 0]
    o = rng.random(2000) + 0.5
    Yo = H @ rng.standard_normal((4, 5)) + np.outer(o, np.ones(5))
    assert affine_rank(Yo, o) == affine_column_space(Yo, o)[2] == 4
