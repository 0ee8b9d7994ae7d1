"""Errors between networks after alignment (docs/algorithms.md, section 0.2).

For a ReLU network ``(U P D^-1, D P^T V)`` with a permutation ``P`` and a positive
diagonal ``D`` is the same function, so weights are compared only after
alignment: rows of ``V`` are scaled to unit norm (the norms pushed into ``U``),
units are matched with the Hungarian algorithm, and then the errors are taken.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ._linalg import safe_norm

__all__ = ["Alignment", "Comparison", "compare", "normalize_units", "align",
           "principal_angles"]

#: floor of the norms and largest entries that errors are relative to (an all-zero
#: truth then gives the absolute error instead of a division by zero).
_TINY = 1e-300
#: bits of a float64 significand: the most precision an error can show.
_FLOAT64_BITS = 53.0


@dataclass(frozen=True, kw_only=True)
class Alignment:
    """Two networks with normalised units, and the matching of their units.

    What :func:`align` returns (docs/algorithms.md, section 0.2, steps 1 and 2).

    Attributes
    ----------
    U_found : ndarray of shape (m, k_found)
        Output weights of the found network, the norms of ``V_found``'s rows pushed in.
    V_found : ndarray of shape (k_found, d)
        Hidden weights of the found network, rows of unit norm.
    U_true : ndarray of shape (m', k_true)
        Output weights of the truth, normalised likewise.
    V_true : ndarray of shape (k_true, d)
        Hidden weights of the truth, rows of unit norm.
    permutation : ndarray of shape (k_found,)
        ``permutation[i]`` is the true unit matched to found unit ``i``, -1 when
        ``k_found > k_true`` leaves it unmatched.
    """

    U_found: np.ndarray
    V_found: np.ndarray
    U_true: np.ndarray
    V_true: np.ndarray
    permutation: np.ndarray


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """Aligned errors between a found network and the truth.

    What :func:`compare` returns (docs/algorithms.md, section 0.2, step 3).

    Attributes
    ----------
    v_error, u_error : float
        Relative Frobenius errors ``||V_f - V_t||_F / ||V_t||_F`` (unit-norm rows)
        and ``||U_f - U_t||_F / ||U_t||_F`` (norms pushed into ``U``), over matched units.
    max_error : float
        Largest entry error of ``V`` and ``U``, each relative to the largest entry
        of the truth.
    bits : float
        Bits of precision, ``-log2(max_error)`` (at most 53, the bits of a float64
        significand).
    permutation : ndarray of shape (k_found,)
        ``permutation[i]`` is the true unit matched to found unit ``i`` (-1 if none).
    n_matched, n_true, n_found : int
        Units matched, in the truth, and found. Unmatched units count as full error.
    b_error : float
        Largest error of the hidden biases, relative to the largest entry of the
        truth's ``[V, b]`` (units aligned jointly as ``(v_i, b_i)``, normalised to
        unit norm). 0 when both networks are bias-free.
    c_error : float
        Largest error of the output biases, relative to the largest entry of the
        truth's ``c`` and (normalised) ``U``.
    """

    v_error: float
    u_error: float
    max_error: float
    bits: float
    permutation: np.ndarray
    n_matched: int
    n_true: int
    n_found: int
    b_error: float = 0.0
    c_error: float = 0.0

    @property
    def error(self) -> float:
        """The largest of the relative errors of ``V``, ``U``, ``b`` and ``c``."""
        return max(self.v_error, self.u_error, self.b_error, self.c_error)

    def __repr__(self) -> str:
        return (
            f"Comparison(max_error={self.max_error:.3g}, bits={self.bits:.1f}, "
            f"v_error={self.v_error:.3g}, u_error={self.u_error:.3g}, "
            + (f"b_error={self.b_error:.3g}, c_error={self.c_error:.3g}, "
               if self.b_error or self.c_error else "")
            + f"matched={self.n_matched}/{self.n_true})"
        )


def normalize_units(U, V, degree: float = 1.0):
    """Scale rows of ``V`` to unit norm and push ``norm**degree`` into ``U``'s columns.

    Step 1 of the alignment of docs/algorithms.md, section 0.2. Valid for
    positively homogeneous activations of that degree (ReLU: 1): ``f(c t) =
    c**degree f(t)`` for ``c > 0``, so the network is unchanged.

    Parameters
    ----------
    U : array-like of shape (m, k)
        Output weights.
    V : array-like of shape (k, d)
        Hidden weights; zero rows are left as they are.
    degree : float, default=1.0
        Degree of positive homogeneity of the activation.

    Returns
    -------
    U : ndarray of shape (m, k)
        ``U diag(||v_i||**degree)``.
    V : ndarray of shape (k, d)
        ``V`` with unit-norm rows.
    """
    U = np.asarray(U, dtype=float)
    V = np.asarray(V, dtype=float)
    # scaled by each row's largest entry, so that rows near under/overflow
    # (weights of data given at 1e+-300) keep a finite, exact-as-possible norm
    top = np.abs(V).max(axis=1, initial=0.0)
    top = np.where(top > 0, top, 1.0)
    with np.errstate(over="ignore"):
        norms = top * np.linalg.norm(V / top[:, None], axis=1)
        safe = np.where(norms > 0, norms, 1.0)
        return U * safe**degree, V / safe[:, None]


def align(U_found, V_found, U_true, V_true, degree: float | None = 1.0) -> Alignment:
    """Normalise both networks and match found units to true ones.

    Step 2 of the alignment of docs/algorithms.md, section 0.2. Both networks are
    normalised (:func:`normalize_units`), then units are matched by the Hungarian
    algorithm on the cost ``||v_f - v_t|| / max|V_t|`` plus, when the output
    dimensions agree, ``||u_f - u_t|| / max|U_t|``.

    Parameters
    ----------
    U_found, V_found : array-like of shape (m, k_found) and (k_found, d)
        The network found.
    U_true, V_true : array-like of shape (m', k_true) and (k_true, d)
        The truth (``m' != m`` is allowed; then only ``V`` enters the cost).
    degree : float or None, default=1.0
        Degree of positive homogeneity of the activation. None (an activation
        that is not positively homogeneous) compares units as they are, without
        rescaling.

    Returns
    -------
    Alignment
        ``.U_found``, ``.V_found``, ``.U_true``, ``.V_true``: the four matrices
        after normalisation (same shapes as given); ``.permutation[i]``: the true
        unit matched to found unit ``i``, -1 when ``k_found > k_true`` leaves it
        unmatched.

    Examples
    --------
    >>> V = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> a = align(np.ones((1, 2)), V[::-1], np.ones((1, 2)), V)
    >>> a.permutation.tolist(), a.U_found.tolist()
    ([1, 0], [[2.0, 1.0]])
    """
    if degree is not None:
        U_found, V_found = normalize_units(U_found, V_found, degree)
        U_true, V_true = normalize_units(U_true, V_true, degree)
    # cost: distance between unit directions plus output columns, both normalised
    # (differences scaled before their norms: weights near overflow stay finite)
    scale_u = max(np.abs(U_true).max(initial=0.0), _TINY)
    scale_v = max(np.abs(V_true).max(initial=0.0), _TINY)
    with np.errstate(over="ignore", invalid="ignore"):
        cost = np.linalg.norm(V_found[:, None, :] / scale_v - V_true[None, :, :] / scale_v,
                              axis=2)
        if U_found.shape[0] == U_true.shape[0]:
            cost = cost + np.linalg.norm(
                U_found.T[:, None, :] / scale_u - U_true.T[None, :, :] / scale_u, axis=2)
    cost = np.where(np.isfinite(cost), cost, 1e300)  # a non-finite unit matches nothing well
    rows, cols = linear_sum_assignment(cost)
    perm = np.full(V_found.shape[0], -1)
    perm[rows] = cols
    return Alignment(U_found=U_found, V_found=V_found, U_true=U_true, V_true=V_true,
                     permutation=perm)


def compare(found, truth) -> Comparison:
    """Aligned errors of ``found`` against ``truth`` (two ``TwoLayerNetwork``).

    Step 3 of the alignment of docs/algorithms.md, section 0.2. Units
    ``(v_i, b_i)`` are normalised jointly with the truth's degree of homogeneity
    (``f(a (v.x + b)) = a^p f(v.x + b)``) and matched as in :func:`align`; missing
    units count as full error, and so do extra found units that match nothing.
    ``max_error`` covers ``V``, ``U``, ``b`` and ``c``.

    Parameters
    ----------
    found : TwoLayerNetwork
        The recovered network.
    truth : TwoLayerNetwork
        The planted network (its activation decides the normalisation).

    Returns
    -------
    Comparison
        Relative Frobenius errors of ``V`` and ``U``, the largest entry error,
        bits of precision and the matching.

    Examples
    --------
    >>> from relurecover import TwoLayerNetwork
    >>> t = TwoLayerNetwork.random(6, 3, 4, rng=0)
    >>> f = TwoLayerNetwork(t.U[:, ::-1] / 2, 2 * t.V[::-1])  # permuted and rescaled
    >>> compare(f, t).max_error < 1e-15
    True
    """
    from .activations import canonical_units

    degree = truth.activation.degree
    # a point-symmetric activation has two forms of each biased unit: compare one
    Uf0, Vf0, bf0, cf0 = canonical_units(found.U, found.V, found.b, found.c,
                                         truth.activation)
    Ut0, Vt0, bt0, ct0 = canonical_units(truth.U, truth.V, truth.b, truth.c,
                                         truth.activation)
    Af = np.hstack([Vf0, bf0[:, None]])
    At = np.hstack([Vt0, bt0[:, None]])
    a = align(Uf0, Af, Ut0, At, degree)
    Uf, Vf, Ut, Vt, perm = a.U_found, a.V_found, a.U_true, a.V_true, a.permutation
    # (V, b) were aligned jointly; the errors of V and of b are reported apart
    scale_a = max(np.abs(Vt).max(), _TINY)
    bf, bt = Vf[:, -1], Vt[:, -1]
    Vf, Vt = Vf[:, :-1], Vt[:, :-1]
    k_true, k_found = Vt.shape[0], Vf.shape[0]
    matched = perm >= 0
    dV = np.zeros_like(Vt)
    dV[perm[matched]] = Vf[matched] - Vt[perm[matched]]
    missing = np.setdiff1d(np.arange(k_true), perm[matched])
    dV[missing] = Vt[missing]
    v_err = safe_norm(dV) / max(safe_norm(Vt), _TINY)
    vmax = np.abs(dV).max(initial=0.0) / scale_a
    db = bt.copy()
    db[perm[matched]] = bf[matched] - bt[perm[matched]]
    b_err = float(np.abs(db).max(initial=0.0) / scale_a) if (np.any(bt) or np.any(bf)) else 0.0
    if Uf.shape[0] == Ut.shape[0]:
        dU = np.zeros_like(Ut)
        dU[:, perm[matched]] = Uf[:, matched] - Ut[:, perm[matched]]
        dU[:, missing] = Ut[:, missing]
        u_err = safe_norm(dU) / max(safe_norm(Ut), _TINY)
        umax = np.abs(dU).max() / max(np.abs(Ut).max(), _TINY)
    else:
        u_err = umax = np.inf
    if cf0.shape == ct0.shape:
        dc = np.abs(cf0 - ct0).max(initial=0.0)
        c_err = float(dc / max(np.abs(ct0).max(initial=0.0),
                               np.abs(Ut).max(initial=0.0), _TINY)) if dc else 0.0
    else:
        c_err = np.inf
    # extra found units that match nothing are an error too
    extra = Vf[~matched]
    if extra.size:
        vmax = max(vmax, 1.0)
        v_err = float(np.hypot(v_err, safe_norm(extra) / max(safe_norm(Vt), _TINY)))
    max_err = float(max(vmax, umax, b_err, c_err))
    bits = float(min(_FLOAT64_BITS, -np.log2(max_err))) if max_err > 0 else _FLOAT64_BITS
    return Comparison(
        v_error=float(v_err), u_error=float(u_err), max_error=max_err, bits=bits,
        permutation=perm, n_matched=int(matched.sum()), n_true=k_true, n_found=k_found,
        b_error=b_err, c_error=c_err,
    )


def principal_angles(A, B) -> np.ndarray:
    """Principal angles (radians, descending) between ``span(A)`` and ``span(B)``.

    When the spans have different dimensions the missing directions count as
    angles of ``pi / 2``, so the largest angle is small only when the two
    subspaces are close *and* of the same dimension. Used to score a first layer
    (or a subspace found by :func:`relurecover.deep.filtered_pca`) against the
    truth: rows of ``W_1`` are passed as ``W_1.T``.

    Parameters
    ----------
    A : array-like of shape (d, p)
        Columns spanning the first subspace (need not be orthonormal).
    B : array-like of shape (d, q)
        Columns spanning the second subspace.

    Returns
    -------
    ndarray of shape (max(p, q),)
        The angles in ``[0, pi / 2]``, largest first (for rank-deficient inputs,
        ``|rank A - rank B|`` angles of ``pi / 2`` come first).

    Examples
    --------
    >>> e = np.eye(3)
    >>> principal_angles(e[:, :2], e[:, [1, 0]]).round(12).tolist()
    [0.0, 0.0]
    >>> float(principal_angles(e[:, :1], e[:, :2])[0].round(6))
    1.570796
    """
    from scipy.linalg import subspace_angles

    A = np.asarray(A, dtype=float)
    B = np.asarray(B, dtype=float)
    for name, M in (("A", A), ("B", B)):
        if M.ndim != 2:
            raise ValueError(f"`{name}` must be a 2-D array of shape (d, p) whose columns "
                             f"span the subspace, got shape {M.shape}.")
        if not np.all(np.isfinite(M)):
            raise ValueError(f"`{name}` contains NaN or infinite values.")
    if A.shape[0] != B.shape[0]:
        raise ValueError(f"`A` and `B` must have the same number of rows (the dimension "
                         f"d), got {A.shape[0]} and {B.shape[0]}; pass W_1.T, not W_1.")
    if A.shape[1] == 0 or B.shape[1] == 0:
        return np.full(max(A.shape[1], B.shape[1]), np.pi / 2)
    ang = np.sort(subspace_angles(A, B))[::-1]
    missing = abs(np.linalg.matrix_rank(A) - np.linalg.matrix_rank(B))
    return np.concatenate([np.full(missing, np.pi / 2), ang])
