"""Jennrich's simultaneous diagonalisation, plain and deflated (docs/algorithms.md 1.2, 1.6)."""

import numpy as np
import pytest

from relurecover.tensor import deflated_jennrich, jennrich


def unit_columns(P):
    return P / np.linalg.norm(P, axis=0)


def contractions(P, rng, n=3):
    """``T_c = P diag(w_c) P^T`` for random weights ``w_c``: contractions of a CP tensor."""
    return [P @ np.diag(rng.standard_normal(P.shape[1])) @ P.T for _ in range(n)]


def assert_columns_match(found, P, tol):
    """Every column of ``found`` is +-(a distinct column of ``P``), up to ``tol``."""
    cos = np.abs(unit_columns(found).T @ unit_columns(P))  # (found, true)
    best = cos.argmax(axis=1)
    assert len(set(best.tolist())) == found.shape[1], "two found columns hit one unit"
    np.testing.assert_allclose(cos.max(axis=1), 1.0, rtol=0, atol=tol)
    return best


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("kind", ["orthogonal", "general"])
def test_jennrich_recovers_columns(seed, kind):
    rng = np.random.default_rng(seed)
    p = 6
    A = rng.standard_normal((p, p))
    P = np.linalg.qr(A)[0] if kind == "orthogonal" else A
    Ta, Tb, _ = contractions(P, rng)
    found = jennrich(Ta, Tb)
    assert found.shape == (p, p) and np.isrealobj(found)
    np.testing.assert_allclose(np.linalg.norm(found, axis=0), 1.0)
    # exact contractions: only the eigensolver's rounding (condition number of P)
    best = assert_columns_match(found, P, tol=1e-8)
    assert sorted(best.tolist()) == list(range(p))


def test_jennrich_tolerates_noise():
    rng = np.random.default_rng(0)
    P = rng.standard_normal((5, 5))
    Ta, Tb, _ = contractions(P, rng)
    noise = 1e-6 * rng.standard_normal((2, 5, 5))
    found = jennrich(Ta + noise[0] + noise[0].T, Tb + noise[1] + noise[1].T)
    assert np.isrealobj(found)  # complex eigenvectors from noise: real parts
    assert_columns_match(found, P, tol=1e-3)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_found", [1, 3, 5])
def test_deflated_jennrich_finds_missing_columns(seed, n_found):
    rng = np.random.default_rng(seed)
    p = 7
    P = rng.standard_normal((p, p))  # not orthogonal: deflation must still be exact
    Ta, Tb, Tc = contractions(P, rng)
    found = deflated_jennrich(Ta, Tb, Tc, unit_columns(P[:, :n_found]))
    assert found.shape == (p, p - n_found)
    best = assert_columns_match(found, P, tol=1e-8)
    assert sorted(best.tolist()) == list(range(n_found, p))  # only the missing units


def test_deflated_jennrich_edge_cases():
    rng = np.random.default_rng(0)
    P = rng.standard_normal((4, 4))
    Ta, Tb, Tc = contractions(P, rng)
    np.testing.assert_array_equal(
        deflated_jennrich(Ta, Tb, Tc, np.zeros((4, 0))), jennrich(Ta, Tb)
    )
    assert deflated_jennrich(Ta, Tb, Tc, unit_columns(P)).shape == (4, 0)


def test_jennrich_split_complex_gives_both_directions_of_a_complex_pair():
    # Ta Tb^{-1} is a rotation: eigenvalues +-i, eigenvectors (1, -+i)/sqrt(2)
    Ta = np.array([[0.0, 1.0], [1.0, 0.0]])
    Tb = np.array([[1.0, 0.0], [0.0, -1.0]])
    real = jennrich(Ta, Tb)
    split = jennrich(Ta, Tb, split_complex=True)
    assert np.linalg.matrix_rank(real, tol=1e-8) == 1  # both real parts the same line
    assert np.linalg.matrix_rank(split, tol=1e-8) == 2
    assert np.allclose(np.linalg.norm(split, axis=0), 1.0)
