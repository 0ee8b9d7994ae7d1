"""Errors between networks after alignment (docs/algorithms.md, "Conventions").

For a ReLU network ``(U P D^-1, D P^T V)`` with a permutation ``P`` and a positive
diagonal ``D`` is the same function, so weights are compared only after
alignment: rows of ``V`` are scaled to unit norm (the norms pushed into ``U``),
units are matched with the Hungarian algorithm, and then the errors are taken.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["Comparison", "compare", "normalize_units", "align"]


@dataclass(frozen=True)
class Comparison:
    """Aligned errors between a found network and the truth.

    Attributes
    ----------
    v_error, u_error : float
        Relative Frobenius errors ``||V_f - V_t||_F / ||V_t||_F`` (unit-norm rows)
        and ``||U_f - U_t||_F / ||U_t||_F`` (norms pushed into ``U``), over matched units.
    max_error : float
        Largest entry error of ``V`` and ``U``, each relative to the largest entry
        of the truth.
    bits : float
        Bits of precision, ``-log2(max_error)`` (53 at most in float64).
    permutation : ndarray of shape (k_found,)
        ``permutation[i]`` is the true unit matched to found unit ``i`` (-1 if none).
    n_matched, n_true, n_found : int
        Units matched, in the truth, and found. Unmatched units count as full error.
    """

    v_error: float
    u_error: float
    max_error: float
    bits: float
    permutation: np.ndarray
    n_matched: int
    n_true: int
    n_found: int

    @property
    def error(self) -> float:
        """The larger of the two relative Frobenius errors."""
        return max(self.v_error, self.u_error)

    def __repr__(self) -> str:
        return (
            f"Comparison(max_error={self.max_error:.3g}, bits={self.bits:.1f}, "
            f"v_error={self.v_error:.3g}, u_error={self.u_error:.3g}, "
            f"matched={self.n_matched}/{self.n_true})"
        )


def normalize_units(U, V, degree: float = 1.0):
    """Scale rows of ``V`` to unit norm and push ``norm**degree`` into ``U``'s columns.

    Valid for positively homogeneous activations of that degree (ReLU: 1).
    """
    U = np.asarray(U, dtype=float)
    V = np.asarray(V, dtype=float)
    norms = np.linalg.norm(V, axis=1)
    safe = np.where(norms > 0, norms, 1.0)
    return U * safe**degree, V / safe[:, None]


def align(U_found, V_found, U_true, V_true, degree: float | None = 1.0):
    """Match found units to true ones; return ``(U_f, V_f, U_t, V_t, perm)`` aligned.

    With ``degree=None`` (an activation that is not positively homogeneous) units
    are compared as they are, without rescaling.
    """
    if degree is not None:
        U_found, V_found = normalize_units(U_found, V_found, degree)
        U_true, V_true = normalize_units(U_true, V_true, degree)
    # cost: distance between unit directions plus output columns, both normalised
    scale_u = max(np.abs(U_true).max(initial=0.0), 1e-300)
    cost = (
        np.linalg.norm(V_found[:, None, :] - V_true[None, :, :], axis=2)
        / max(np.abs(V_true).max(initial=0.0), 1e-300)
    )
    if U_found.shape[0] == U_true.shape[0]:
        cost = cost + np.linalg.norm(
            U_found.T[:, None, :] - U_true.T[None, :, :], axis=2
        ) / scale_u
    rows, cols = linear_sum_assignment(cost)
    perm = np.full(V_found.shape[0], -1)
    perm[rows] = cols
    return U_found, V_found, U_true, V_true, perm


def compare(found, truth) -> Comparison:
    """Aligned errors of ``found`` against ``truth`` (two ``TwoLayerNetwork``).

    Examples
    --------
    >>> from relurecover import TwoLayerNetwork
    >>> t = TwoLayerNetwork.random(6, 3, 4, rng=0)
    >>> f = TwoLayerNetwork(t.U[:, ::-1] / 2, 2 * t.V[::-1])  # permuted and rescaled
    >>> compare(f, t).max_error < 1e-15
    True
    """
    degree = truth.activation.degree
    Uf, Vf, Ut, Vt, perm = align(found.U, found.V, truth.U, truth.V, degree)
    k_true, k_found = Vt.shape[0], Vf.shape[0]
    matched = perm >= 0
    dV = np.zeros_like(Vt)
    dV[perm[matched]] = Vf[matched] - Vt[perm[matched]]
    missing = np.setdiff1d(np.arange(k_true), perm[matched])
    dV[missing] = Vt[missing]
    v_err = np.linalg.norm(dV) / max(np.linalg.norm(Vt), 1e-300)
    vmax = np.abs(dV).max() / max(np.abs(Vt).max(), 1e-300)
    if Uf.shape[0] == Ut.shape[0]:
        dU = np.zeros_like(Ut)
        dU[:, perm[matched]] = Uf[:, matched] - Ut[:, perm[matched]]
        dU[:, missing] = Ut[:, missing]
        u_err = np.linalg.norm(dU) / max(np.linalg.norm(Ut), 1e-300)
        umax = np.abs(dU).max() / max(np.abs(Ut).max(), 1e-300)
    else:
        u_err = umax = np.inf
    # extra found units that match nothing are an error too
    extra = Vf[~matched]
    if extra.size:
        vmax = max(vmax, 1.0)
        v_err = float(np.hypot(v_err, np.linalg.norm(extra) / np.linalg.norm(Vt)))
    max_err = float(max(vmax, umax))
    bits = float(min(53.0, -np.log2(max_err))) if max_err > 0 else 53.0
    return Comparison(
        v_error=float(v_err), u_error=float(u_err), max_error=max_err, bits=bits,
        permutation=perm, n_matched=int(matched.sum()), n_true=k_true, n_found=k_found,
    )
