"""Jennrich's simultaneous diagonalisation and its deflated form (docs/algorithms.md 1.2, 1.6).

For symmetric ``T_a = P diag(alpha) P^T`` and ``T_b = P diag(beta) P^T`` with ``P``
square and invertible, ``T_a T_b^{-1} = P diag(alpha / beta) P^{-1}``: its
eigenvectors are the columns of ``P`` (up to scale and sign) when the ratios
``alpha_i / beta_i`` are distinct.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

__all__ = ["jennrich", "deflated_jennrich"]


def _unit_columns(P: np.ndarray) -> np.ndarray:
    P = np.real(P)
    norms = np.linalg.norm(P, axis=0)
    return P / np.where(norms > 0, norms, 1.0)


def jennrich(Ta: np.ndarray, Tb: np.ndarray, *, split_complex: bool = False) -> np.ndarray:
    """Columns of ``P`` from two contractions ``T_a``, ``T_b`` of a rank-``p`` tensor.

    Parameters
    ----------
    Ta, Tb : ndarray of shape (p, p)
        Symmetric contractions ``sum_i alpha_i p_i p_i^T`` and ``sum_i beta_i p_i p_i^T``.

    split_complex : bool, default=False
        Sample noise can make a pair of eigenvalues complex conjugate; the real
        parts of its two eigenvectors then point the same way. With
        ``split_complex`` the pair gives the real and the imaginary part instead:
        two distinct directions of the same invariant plane (on the 4th-moment
        tensors of the few-outputs path, docs/algorithms.md 3, this took the success of
        one start on Safran-Shamir k = 10 from 0/20 to 12/20).

    Returns
    -------
    P : ndarray of shape (p, p)
        Unit columns, each close to some ``+-p_i``. Sample noise can make
        eigenvalues complex; real parts are taken (docs/algorithms.md 1.6) unless
        ``split_complex``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> P = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    >>> Ta = P @ np.diag([1.0, 2.0, 3.0]) @ P.T
    >>> Tb = P @ np.diag([1.0, -1.0, 0.5]) @ P.T
    >>> found = jennrich(Ta, Tb)
    >>> bool(np.allclose(np.sort(np.abs(found.T @ P).max(axis=0)), 1.0))
    True
    """
    # eigenvectors of Ta Tb^{-1}: Ta x = lam Tb x gives the dual basis, so transpose
    M = np.linalg.lstsq(Tb, Ta, rcond=None)[0].T  # = Ta Tb^{-1} (both symmetric)
    lam, vecs = scipy.linalg.eig(M, check_finite=False)
    P = np.real(vecs).copy()
    if split_complex:
        p = P.shape[1]
        for i in np.flatnonzero(np.imag(lam) > 0):  # one of each conjugate pair
            j = np.flatnonzero(np.isclose(lam, np.conj(lam[i])) & (np.arange(p) != i))
            if j.size:
                P[:, j[0]] = np.imag(vecs[:, i])
    return _unit_columns(P)


def deflated_jennrich(
    Ta: np.ndarray, Tb: np.ndarray, Tc: np.ndarray, P_found: np.ndarray
) -> np.ndarray:
    """Directions of the units not yet found, from three contractions (docs/algorithms.md 1.6).

    With ``P_found`` (shape ``(p, j)``) the exact directions already found, take an
    orthonormal basis ``N`` of their orthogonal complement. Jennrich on ``N^T T_a N``
    and ``N^T T_b N`` gives ``s_l = N^T p_l`` for the missing units; with the dual
    basis ``r_l`` (``s_m . r_l = delta_ml``), ``T_c N r_l`` is proportional to the full
    ``p_l`` because the found units drop out (``p_i^T N = 0``).

    Parameters
    ----------
    Ta, Tb, Tc : ndarray of shape (p, p)
        Three symmetric contractions ``sum_i gamma_i p_i p_i^T`` of the same tensor
        (different random contractions of its output mode).
    P_found : ndarray of shape (p, j)
        Directions of the units already found, one a column (exact, any norm).
        With ``j = 0`` this is plain :func:`jennrich` on ``Ta`` and ``Tb``.

    Returns
    -------
    ndarray of shape (p, p - j)
        Unit columns, candidate directions of the missing units (up to sign).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> P = np.linalg.qr(rng.standard_normal((4, 4)))[0] + 0.3  # not orthogonal
    >>> T = [P @ np.diag(rng.standard_normal(4)) @ P.T for _ in range(3)]
    >>> found = deflated_jennrich(*T, P[:, :2])
    >>> Pn = P / np.linalg.norm(P, axis=0)
    >>> bool(np.allclose(np.sort(np.abs(found.T @ Pn[:, 2:]).max(axis=0)), 1.0))
    True
    """
    p = Ta.shape[0]
    if P_found.shape[1] == 0:
        return jennrich(Ta, Tb)
    full_q = np.linalg.qr(P_found, mode="complete")[0]
    N = full_q[:, P_found.shape[1]:]  # (p, p - j)
    if N.shape[1] == 0:
        return np.zeros((p, 0))
    S = jennrich(N.T @ Ta @ N, N.T @ Tb @ N)  # (p - j, p - j)
    R = np.linalg.pinv(S).T  # columns r_l with s_m . r_l = delta_ml
    return _unit_columns(Tc @ N @ R)
