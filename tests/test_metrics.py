"""Aligned comparison of networks (docs/algorithms.md, Conventions)."""

import numpy as np
import pytest

from relurecover import TwoLayerNetwork, compare
import dataclasses

from relurecover.metrics import Alignment, Comparison, align, normalize_units


@pytest.fixture
def truth():
    return TwoLayerNetwork.random(8, 4, 5, rng=0)


def test_identical_networks(truth):
    c = compare(truth, truth)
    assert c.max_error == 0.0 and c.bits == 53.0
    assert c.v_error == 0.0 and c.u_error == 0.0
    assert c.n_matched == c.n_true == c.n_found == 4
    np.testing.assert_array_equal(c.permutation, np.arange(4))


@pytest.mark.parametrize("seed", range(5))
def test_permutation_and_positive_scale_are_free(truth, seed):
    rng = np.random.default_rng(seed)
    perm = rng.permutation(4)
    D = rng.uniform(0.1, 10.0, size=4)
    found = TwoLayerNetwork((truth.U / D)[:, perm], (D[:, None] * truth.V)[perm])
    c = compare(found, truth)
    # the rescaling costs a few ulps
    assert c.max_error < 1e-14 and c.bits > 46
    np.testing.assert_array_equal(c.permutation, perm)


def test_negative_scale_is_an_error(truth):
    # relu(-t) != -relu(t): a sign flip of a unit is a different network
    V = truth.V.copy()
    V[1] *= -1
    c = compare(TwoLayerNetwork(truth.U, V), truth)
    assert c.max_error > 0.1


def test_small_perturbation_bits(truth):
    # errors are relative to the largest entry of the aligned U = U diag(||v_i||)
    Ut, _ = normalize_units(truth.U, truth.V)
    U = truth.U.copy()
    U[2, 3] += 1e-6 * np.abs(Ut).max() / np.linalg.norm(truth.V[3])
    c = compare(TwoLayerNetwork(U, truth.V), truth)
    assert c.max_error == pytest.approx(1e-6, rel=1e-6)
    assert c.bits == pytest.approx(-np.log2(1e-6), rel=1e-6)
    assert c.v_error == 0.0 and c.u_error > 0


def test_missing_and_extra_units(truth):
    fewer = TwoLayerNetwork(truth.U[:, :3], truth.V[:3])
    c = compare(fewer, truth)
    assert c.n_matched == 3 and c.n_found == 3 and c.n_true == 4
    # the missing unit counts as full error: its entries, relative to the largest
    assert c.max_error > 0.5 and c.bits < 1
    assert c.v_error == pytest.approx(0.5)  # one of four unit rows
    more = TwoLayerNetwork(np.hstack([truth.U, truth.U[:, :1]]),
                           np.vstack([truth.V, -truth.V[:1]]))
    c = compare(more, truth)
    assert c.n_matched == 4 and c.n_found == 5 and c.max_error >= 1.0
    assert (c.permutation == -1).sum() == 1


def test_different_output_count(truth):
    other = TwoLayerNetwork(truth.U[:3], truth.V)
    c = compare(other, truth)
    assert c.u_error == np.inf and c.max_error == np.inf and c.v_error == 0.0


def test_normalize_units():
    U = np.array([[1.0, 2.0]])
    V = np.array([[3.0, 4.0], [0.0, 0.5]])
    Un, Vn = normalize_units(U, V)
    np.testing.assert_allclose(np.linalg.norm(Vn, axis=1), 1.0)
    np.testing.assert_allclose(Un, [[5.0, 1.0]])
    Un2, _ = normalize_units(U, V, degree=2.0)
    np.testing.assert_allclose(Un2, [[25.0, 0.5]])


def test_align_returns_unit_rows(truth):
    a = align(truth.U, 3.0 * truth.V, truth.U, truth.V)
    assert isinstance(a, Alignment)
    np.testing.assert_allclose(np.linalg.norm(a.V_found, axis=1), 1.0)
    np.testing.assert_allclose(a.V_found, a.V_true, atol=1e-15)
    np.testing.assert_allclose(a.U_found, 3.0 * a.U_true, rtol=1e-14)
    np.testing.assert_array_equal(a.permutation, np.arange(4))


def test_align_fields_are_the_matched_matrices(truth):
    # found = truth with units permuted and rescaled, one output fewer: only V
    # enters the cost, and each field is the normalised matrix of its network
    perm = np.array([2, 0, 3, 1])
    U, V = truth.U[:4, perm] / 2.0, 2.0 * truth.V[perm]
    a = align(U, V, truth.U, truth.V)
    np.testing.assert_array_equal(a.permutation, perm)
    Un, Vn = normalize_units(truth.U, truth.V)
    np.testing.assert_array_equal(a.U_true, Un)
    np.testing.assert_array_equal(a.V_true, Vn)
    assert a.U_found.shape == (4, 4) and a.V_found.shape == (4, 8)
    np.testing.assert_allclose(a.V_found, Vn[perm], atol=1e-15)
    np.testing.assert_allclose(a.U_found, Un[:4, perm], rtol=1e-14)
    # degree=None leaves the matrices as they are
    b = align(U, V, truth.U, truth.V, degree=None)
    np.testing.assert_array_equal(b.V_found, V)
    np.testing.assert_array_equal(b.U_true, truth.U)


def test_align_extra_found_unit_is_unmatched(truth):
    U = np.hstack([truth.U, truth.U[:, :1]])
    V = np.vstack([truth.V, -truth.V[:1]])
    a = align(U, V, truth.U, truth.V)
    assert a.permutation.tolist() == [0, 1, 2, 3, -1]


def test_results_are_frozen_and_keyword_only(truth):
    a = align(truth.U, truth.V, truth.U, truth.V)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.permutation = None
    with pytest.raises(TypeError):
        Alignment(a.U_found, a.V_found, a.U_true, a.V_true, a.permutation)
    c = compare(truth, truth)
    with pytest.raises(TypeError):
        Comparison(*(getattr(c, f.name) for f in dataclasses.fields(c)))
    d = dataclasses.replace(c, bits=1.0)  # keyword construction works
    assert d.bits == 1.0 and d.max_error == c.max_error


def test_error_property_and_repr(truth):
    c = compare(truth, truth)
    assert c.error == max(c.v_error, c.u_error)
    assert repr(c).startswith("Comparison(max_error=0, bits=53.0")
    assert "matched=4/4" in repr(c)
