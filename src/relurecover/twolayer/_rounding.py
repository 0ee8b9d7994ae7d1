"""The rounding step that makes recovery exact (docs/algorithms.md 1.4-1.6).

Because ``rank(U) = k``, the column space of ``Y`` (as vectors in ``R^n``) equals
that of the hidden activations ``f(X V^T)``. For a unit ``i`` and a set ``S`` of
samples where it is inactive, ``z_i = f(X v_i)`` is, up to scale, the only vector
of that column space vanishing on ``S``: the smallest eigenvector ``a`` of
``B_S^T B_S`` (``B`` an orthonormal basis of the column space) gives ``z = B a``.
Its largest entries are surely active, so ``X_R v = z_R`` on those rows gives
``v_i`` exactly. Started from a crude direction, taking ``S`` as the samples with
the most negative scores and iterating is an attractor (1.5).

Everything here trusts its input: validation happens in the public functions.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .._linalg import safe_norm
from ._unit_solve import exact_direction, solve_unit

__all__ = ["UnitSearch", "exact_direction", "rounding_step"]


def rounding_step(scores: np.ndarray, B: np.ndarray, n_null: int):
    """One rounding step for a batch of directions (docs/algorithms.md 1.4).

    Parameters
    ----------
    scores : ndarray of shape (n, b)
        ``F @ W``: each column scores the samples for one direction.
    B : ndarray of shape (n, r)
        Orthonormal basis of the column space of ``Y``.
    n_null : int
        ``|S|``, how many of the most negative samples must vanish.

    Returns
    -------
    A : ndarray of shape (r, b)
        Unit coefficient vectors; ``z = B @ A`` (sign fixed so ``sum(z) > 0``).
    sig : ndarray of shape (2, b)
        ``||z_S||`` of the null vector and of the next one (``sqrt`` of the two
        smallest eigenvalues of ``B_S^T B_S``): the first ~1e-15 when ``S`` is
        truly inactive for one unit, the second not small when that unit is unique.
    Z : ndarray of shape (n, b)
        The vectors ``z = B a``.
    """
    S = np.argpartition(scores, n_null - 1, axis=0)[:n_null]  # (n_null, b)
    BS = B[S]  # (n_null, b, r)
    G = np.einsum("sbr,sbq->brq", BS, BS)
    lam, vecs = np.linalg.eigh(G)  # ascending, batched
    A = vecs[:, :, 0].T.copy()  # (r, b)
    Z = B @ A
    flip = Z.sum(axis=0) < 0
    A[:, flip] *= -1
    Z[:, flip] *= -1
    sig = np.sqrt(np.clip(lam[:, :2].T, 0.0, None))
    # ||z_S|| measured, not read off the eigenvalue: an eigenvalue near zero is
    # known only to eps ||B_S||^2, its square root to sqrt(eps) ||B_S|| (1e-8)
    sig[0] = np.linalg.norm(np.einsum("sbr,rb->sb", BS, A), axis=0)
    if sig.shape[0] == 1:  # one unit (r = 1): its null space is trivially unique
        sig = np.vstack([sig, np.full_like(sig, np.inf)])
    return A, sig, Z


def _batched_lstsq(F: np.ndarray, Z: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Least-squares directions ``w_j = argmin ||F[R_j] w - Z[R_j, j]||`` for a batch.

    ``rows`` has shape ``(r, b)``. These solves only steer the iteration (the
    exact solve is :func:`exact_direction`), so normal equations are accurate enough.
    """
    FR = F[rows]  # (r, b, p)
    zR = np.take_along_axis(Z, rows, axis=0)  # (r, b)
    FRb = FR.transpose(1, 2, 0)  # (b, p, r): batched BLAS products, not einsum
    G = FRb @ FRb.transpose(0, 2, 1)
    rhs = (FRb @ zR.T[:, :, None])[..., 0]
    G += 1e-12 * np.trace(G, axis1=1, axis2=2)[:, None, None] * np.eye(G.shape[1])
    return np.linalg.solve(G, rhs[..., None])[..., 0].T  # (p, b)


#: entries of ``z`` above this fraction of its largest are "active" when a
#: candidate's active rows are counted (below: rounding error of a zero).
RARE_ACTIVE_RTOL = 1e-9


@dataclass
class UnitSearch:
    """Rounding from many starts with de-duplication (docs/algorithms.md 1.5).

    Parameters
    ----------
    F : ndarray of shape (n, p)
        Features the directions live in: ``X`` itself (full dimension) or ``X Q``
        (the ``k``-dim projection, cheap once ``Q`` is good).
    B : ndarray of shape (n, r)
        Orthonormal basis of the column space of ``Y`` (same rows as ``F``).
    X : ndarray of shape (n, d)
        The inputs on the same rows, for the exact full-dimensional solve.
    activation : Activation
        Rectified activation (ReLU: its zero pattern and homogeneity are used).
    n_null : int
        ``|S|`` in the rounding step.
    null_tol : float
        ``||z_S||`` below this is "vanishes on S".
    unit_tol : float
        A unit is certified when ``||f(X v) - z|| / ||z|| <= unit_tol``.
    max_iter : int
        Rounding iterations per start.
    active_tol : float or None
        None: solve for ``v`` on the ``~1.2 d`` rows where ``z`` is largest (fast,
        well conditioned for spread-out inputs such as Gaussian ones). A number:
        solve by least squares on every row with ``z > active_tol * max(z)`` (the
        general path: clustered or sparse inputs make the top rows degenerate).
    min_active_rank : int or None
        With ``active_tol``: reject a candidate whose active rows span fewer than
        this many dimensions -- its weights are then not determined by the data
        (any ``v`` with ``X_A v = z_A`` and ``X_I v <= 0`` fits it).
    sparse_rows : float
        A unit certified while active on at most this fraction of the rows has
        its rows queued in ``rare_supports`` (to be dropped by
        :func:`exclude_rare_units`), as do candidates active on too few rows.
    split_degenerate : bool
        When several units vanish on ``S`` (a null space of dimension ``q >= 2``,
        common with correlated sign patterns), take a vertex of the cone
        ``{z = N c >= 0}`` by a linear program (docs/algorithms.md 1.4: "use an LP
        where it is more robust") -- its extreme rays are single units -- instead
        of steering on a mixture. The candidate is certified as any other.
    deadline : float
        A ``time.perf_counter()`` value after which :meth:`run` stops iterating
        (the caller's ``time_limit``; a search in progress ends within one rounding
        step of it, the reflection search of 6.4 included).
    """

    F: np.ndarray
    B: np.ndarray
    X: np.ndarray
    activation: object
    n_null: int
    null_tol: float = 1e-9
    gap_tol: float = 1e-6
    unit_tol: float = 1e-8
    max_iter: int = 12
    active_tol: float | None = None
    min_active_rank: int | None = None
    split_degenerate: bool = False
    found_A: list = field(default_factory=list)
    found_V: list = field(default_factory=list)
    found_err: list = field(default_factory=list)
    starts_used: int = 0
    rounding_iterations: int = 0
    rejected: int = 0
    last_reject_reason: str = ""
    polished: int = 0
    split: int = 0
    sparse_rows: float = 0.125
    rare_supports: list = field(default_factory=list)
    n_hidden_by_drops: int = 0
    deadline: float = math.inf

    @property
    def n_found(self) -> int:
        return len(self.found_V)

    def _is_known(self, a: np.ndarray, tol: float) -> bool:
        """Whether ``z = B a`` is a unit found already, or ``alpha + beta z_j`` of one.

        ``B``'s first column is the constant vector (docs/algorithms.md 6), whose
        coefficients are ``e_0``: a point-symmetric activation makes the
        reflection ``c0 - z_j`` of a found unit a vector of the span that vanishes
        on a set of its own (:attr:`Activation.reflection`), the same unit in its
        other form. No other unit lies in ``span{1, z_j}``.
        """
        if not self.found_A:
            return False
        A = np.asarray(self.found_A)
        if np.abs(A @ a).max() > 1.0 - tol:
            return True
        Q = A.copy()
        Q[:, 0] = 0.0  # the parts orthogonal to e_0
        nq = np.linalg.norm(Q, axis=1)
        ok = nq > 1e-8
        if not np.any(ok):
            return False
        resid = 1.0 - a[0] ** 2 - ((Q[ok] @ a) / nq[ok]) ** 2
        return bool(resid.min() < 2.0 * tol)

    def run(self, W: np.ndarray) -> int:
        """Iterate the rounding step from the starts ``W`` (shape ``(p, b)``).

        Returns the number of new units certified. Units are stored in
        ``found_V`` (directions in full dimension, scale of ``z``) and ``found_A``.
        """
        n, p = self.F.shape
        d = self.X.shape[1]
        rows_p = min(n, max(int(np.ceil(1.25 * p)), p + 5))
        rows_d = min(n, max(int(np.ceil(1.2 * d)), d + 10))
        W = np.array(W, dtype=float, copy=True)
        self.starts_used += W.shape[1]
        new = 0
        active = np.ones(W.shape[1], dtype=bool)
        for _ in range(self.max_iter):
            idx = np.flatnonzero(active)
            if idx.size == 0 or time.perf_counter() > self.deadline:
                break
            self.rounding_iterations += 1
            scores = self.F @ W[:, idx]
            A, sig, Z = rounding_step(scores, self.B, self.n_null)
            steer = []
            for j, col in enumerate(idx):
                a = A[:, j]
                if self._is_known(a, 1e-3):
                    active[col] = False  # converging to a unit already certified
                elif (self.split_degenerate and sig[1, j] <= self.null_tol
                      and self.B.shape[1] > 2):
                    active[col] = False
                    a = self._extreme_ray(scores[:, j])
                    if a is not None and not self._is_known(a, 1e-3):
                        self.split += 1
                        if self._certify(self.B @ a, a, rows_d):
                            new += 1
                elif sig[0, j] <= self.null_tol and sig[1, j] >= self.gap_tol:
                    active[col] = False
                    if self._certify(Z[:, j], a, rows_d):
                        new += 1
                elif np.count_nonzero(Z[:, j] > 0) < rows_p:
                    active[col] = False  # no longer looks like a unit
                else:
                    steer.append(j)
            if steer:
                steer = np.asarray(steer)
                R = np.argpartition(-Z[:, steer], rows_p - 1, axis=0)[:rows_p]
                W[:, idx[steer]] = _batched_lstsq(self.F, Z[:, steer], R)
        return new

    def _extreme_ray(self, score: np.ndarray):
        """A unit of a degenerate null space: a vertex of ``{z = N c >= 0}`` (1.4, 1.6).

        ``N`` spans the vectors of the column space vanishing on ``S`` (the
        ``n_null`` lowest scores); the linear program maximises ``score . z`` over
        that cone, normalised by ``sum(z) = n``, so the vertex is the unit most
        like the start. Returns the coefficient vector ``a`` (``z = B a``, unit
        norm) or None when the program fails.
        """
        import scipy.optimize

        S = np.argpartition(score, self.n_null - 1)[: self.n_null]
        BS = self.B[S]
        try:
            _, sv, Vh = np.linalg.svd(BS, full_matrices=True)  # accurate small values
        except np.linalg.LinAlgError:
            return None
        sv = np.concatenate([sv, np.zeros(BS.shape[1] - sv.size)])[::-1]
        vecs = Vh[::-1].T  # right singular vectors, smallest first
        q = int(np.count_nonzero(sv <= self.null_tol))
        if q < 2:
            return None
        E = vecs[:, :q]
        N = self.B @ E
        n = N.shape[0]
        sol = scipy.optimize.linprog(
            -(score / max(np.abs(score).max(), 1e-300)) @ N, A_ub=-N, b_ub=np.zeros(n),
            A_eq=N.sum(axis=0)[None, :], b_eq=[float(n)], bounds=[(None, None)] * q,
            method="highs",
        )
        if sol.status != 0:
            return None
        a = E @ sol.x
        return a / np.linalg.norm(a)

    def _unit_error(self, xv: np.ndarray, s: float, z: np.ndarray) -> float:
        """The per-unit certificate ``||f(X v) - s z|| / ||s z||`` (1.4).

        Plain, not row-capped: ``z`` is zero only up to rounding on the inactive
        rows, so it has no robust typical row. Rows of ``X`` far longer than the
        others are shortened before the paths run (homogeneous activations), and
        the network's certificate, which no row can dominate, has the last word.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            ref = safe_norm(s * z)
            return safe_norm(self.activation(xv) - s * z) / ref if ref > 0 else np.inf

    def _solve_rows(self, z: np.ndarray, rows_d: int):
        """How many of the largest entries of ``z`` the exact solve uses, or a reason.

        Returns ``(n_rows, "")`` or ``(None, reason)`` when the candidate's active
        rows do not determine its weights (``min_active_rank``).
        """
        act = self.activation
        if self.active_tol is None or (act.degree is None and act.inverse is None):
            return rows_d, ""  # (not invertible: solve_unit gives the reason)
        big = z > self.active_tol * z.max()
        if act.degree is None and np.isfinite(act.invertible_max):
            big &= z < z.max() * (1.0 - 1e-9)  # a plateau: solve on unsaturated rows
        n_rows = max(rows_d, int(np.count_nonzero(big)))
        if self.min_active_rank is not None:
            rows = np.flatnonzero(big)
            # a few spread-out rows usually have full rank already (cheap); the
            # whole active set is checked only when they do not
            sub = rows[:: max(1, rows.size // (3 * self.X.shape[1]))]
            q = int(np.linalg.matrix_rank(self.X[sub]))
            if q < self.min_active_rank and sub.size < rows.size:
                q = int(np.linalg.matrix_rank(self.X[rows]))
            if q < self.min_active_rank:
                return None, (
                    f"a candidate unit is active on samples spanning only {q} < "
                    f"{self.min_active_rank} dimensions of the data, so its weights "
                    "are not identifiable from these inputs"
                )
        return n_rows, ""

    def _certify(self, z: np.ndarray, a: np.ndarray, rows_d: int) -> bool:
        """Exact solve for ``v`` from ``z``, then the per-unit certificate.

        A candidate active on fewer than ``rows_d`` rows is solved on all of them
        when they can determine it (``X.shape[1]`` rows at least); one active on
        fewer is a unit that these data cannot determine (a rarely active unit,
        docs/algorithms.md 6.4): its rows go to ``rare_supports`` and it is rejected.
        """
        zmax = float(z.max()) if z.size else 0.0
        act = np.flatnonzero(z > RARE_ACTIVE_RTOL * zmax) if zmax > 0 else np.empty(0, int)
        if act.size < rows_d:
            if act.size < self.X.shape[1]:
                self.rejected += 1
                if act.size and z.min() >= -RARE_ACTIVE_RTOL * zmax:
                    self.rare_supports.append(act)  # non-negative: a unit's shape
                    self.last_reject_reason = (
                        f"a candidate unit is active on only {act.size} samples, fewer "
                        f"than the {self.X.shape[1]} its weights need")
                return False
            rows_d = int(act.size)
        rows_d, reason = self._solve_rows(z, rows_d)
        if rows_d is None:
            self.rejected += 1
            self.last_reject_reason = reason
            return False
        solved, reason = solve_unit(self.X, z, self.activation, rows_d)
        if solved is None:
            self.rejected += 1
            self.last_reject_reason = reason
            return False
        v, s = solved
        xv = self.X @ v
        # Polish (1.4): the null vector of B_S is only as accurate as the gap of
        # B_S^T B_S allows; on the whole inactive set of the solved unit the gap is
        # wide, so recompute z there and solve again.
        err = self._unit_error(xv, s, z)
        inactive = xv < -1e-9 * np.abs(xv).max()
        if err > 1e-13 and np.count_nonzero(inactive) >= 4 * self.B.shape[1]:
            self.polished += 1
            BS = self.B[inactive]
            a2 = np.linalg.eigh(BS.T @ BS)[1][:, 0]
            z2 = self.B @ a2
            if z2.sum() < 0:
                a2, z2 = -a2, -z2
            rows2, _ = self._solve_rows(z2, rows_d)
            solved2 = None
            if rows2 is not None:
                solved2, _ = solve_unit(self.X, z2, self.activation, rows2)
            if solved2 is not None:
                xv2 = self.X @ solved2[0]
                err2 = self._unit_error(xv2, solved2[1], z2)
                if err2 < err:
                    a, z, (v, s), err, xv = a2, z2, solved2, err2, xv2
        if not err <= self.unit_tol:
            self.rejected += 1
            return False
        if self._is_known(a, 1e-6):
            return False  # polished onto a unit found already (a start off by a rare unit)
        self.found_A.append(a)
        self.found_V.append(v)
        self.found_err.append(err)
        active = xv > 0
        if np.count_nonzero(active) <= self.sparse_rows * self.X.shape[0]:
            # active on few rows: it would sit in the null space of most B_S
            # beside the unit sought; drop its rows (docs/algorithms.md 6.4)
            self.rare_supports.append(np.flatnonzero(active))
        return True

    def drop_rows(self, keep: np.ndarray, B: np.ndarray) -> None:
        """Continue the search on the rows ``keep`` only, with ``B`` their basis.

        Rows where a rarely active unit is active (``rare_supports``) make two
        units vanish on most sets ``S`` (that unit and the one sought), so no null
        vector is unique; off those rows the rare unit is zero and the span has
        one dimension fewer (docs/algorithms.md 6.4). The units found stay found:
        their coefficient vectors are recomputed in the new basis.
        """
        self.F = self.F[keep]
        self.X = self.X[keep]
        self.B = B
        self.rare_supports = []
        self.n_null = min(self.n_null, max(B.shape[1] + 1, self.F.shape[0] // 4))
        A = []
        hidden = 0
        for v in self.found_V:
            z = self.activation(self.X @ v)
            hidden += not np.any(z > 0)
            a = B.T @ z
            A.append(a / max(np.linalg.norm(a), 1e-300))
        self.found_A = A
        self.n_hidden_by_drops = hidden


def exclude_rare_units(search: UnitSearch, Y: np.ndarray, offset, rows: np.ndarray):
    """Drop the rows where rarely active units are active; return ``(rows, rank)``.

    ``rows`` indexes the rows of ``Y`` (and ``offset``) the search works on; the
    supports recorded in ``search.rare_supports`` index those. The basis is
    recomputed on the rows left (:meth:`UnitSearch.drop_rows`) and ``rank`` is
    the number of units the labels show there (docs/algorithms.md 6.4). Returns
    ``(rows, None)`` when nothing was dropped.
    """
    from .._linalg import affine_column_space

    if not search.rare_supports:
        return rows, None
    # the sparsest first, and never more than half of the rows: the rows left
    # must still determine the other units
    keep = np.ones(rows.size, dtype=bool)
    floor = max(rows.size // 2, 4 * search.B.shape[1] + 10, 2 * search.X.shape[1])
    for sup in sorted(search.rare_supports, key=len):
        trial = keep.copy()
        trial[sup] = False
        if np.count_nonzero(trial) < floor:
            break
        keep = trial
    search.rare_supports = []
    if keep.all():
        return rows, None
    new = rows[keep]
    Bfull, _, rank = affine_column_space(
        np.asarray(Y[new], dtype=float), None if offset is None else offset[new])
    search.drop_rows(keep, Bfull[:, : rank + 1])
    return new, rank


def visible_units(search: UnitSearch) -> int:
    """Found units not identically zero on the rows the search works on."""
    return search.n_found - search.n_hidden_by_drops


def find_by_reflection(search: UnitSearch, starts: np.ndarray, *, rounds: int = 3) -> int:
    """Units active on almost every row, found through their reflection (docs/algorithms.md 6.4).

    ``relu(t) = t + relu(-t)``: a unit active on all but a few rows is, up to an
    affine function of ``x``, the rarely active unit ``relu(-(v . x + b))``. In
    ``span{Y, 1, X}`` that reflection vanishes on almost every row, so the
    rounding finds it easily where the unit itself, which vanishes on few rows
    only, is hidden. A unit certified in that span gives ``+-(v, b)``; the sign
    whose activation lies in ``span{Y, 1}`` (the search's ``B``) is a unit of
    the network and joins ``search``. ReLU only (the identity above).

    Returns the number of units added.
    """
    if not search.activation.is_relu:
        return 0
    X, B = search.X, search.B
    n = X.shape[0]
    B2, _ = np.linalg.qr(np.hstack([B, X]))
    r2 = B2.shape[1]
    if n < 4 * r2 + 10:
        return 0
    sub = UnitSearch(F=search.F, B=B2, X=X, activation=search.activation,
                     n_null=min(2 * r2 + 5, n // 4), sparse_rows=0.0, split_degenerate=True,
                     deadline=search.deadline)
    for v in search.found_V:  # units found, and their reflections, are known
        for w in (v, -v):
            z = search.activation(X @ w)
            a = B2.T @ z
            sub.found_A.append(a / max(np.linalg.norm(a), 1e-300))
    added = 0
    for _ in range(rounds):
        if time.perf_counter() > search.deadline:
            break
        before = len(sub.found_V)  # (sub.found_V holds only what it finds itself)
        sub.run(np.hstack([starts, -starts]))
        search.starts_used += 2 * starts.shape[1]
        for v in sub.found_V[before:]:
            for w in (v, -v):
                z = search.activation(X @ w)
                nz = np.linalg.norm(z)
                if nz == 0:
                    continue
                a = B.T @ z
                if np.linalg.norm(z - B @ a) <= search.unit_tol * nz and not search._is_known(
                        a / np.linalg.norm(a), 1e-6):
                    search.found_A.append(a / np.linalg.norm(a))
                    search.found_V.append(w)
                    search.found_err.append(float(np.linalg.norm(z - B @ a) / nz))
                    added += 1
        if added and search.n_found >= B.shape[1] - 1:
            break
    return added



def complement_starts(search: UnitSearch, rng, n_random: int = 4) -> np.ndarray | None:
    """Starts aimed at the units still missing, from what the found ones leave (1.5, 6).

    The activation vectors of the missing units lie in ``span{Y, 1}`` but outside
    ``span{z_found, 1}``: take vectors ``z = B q`` with ``q`` in the complement of
    the found coefficient vectors (and ``e_0``), regress each on ``[F, z_found]``,
    and keep the part on ``F``. The found units absorb their own share exactly, and
    for Gaussian inputs the regression of ``f(v . x + b)`` on ``[x, 1]`` points
    along ``v`` (Stein: ``E[relu(v . x + b) x] = Phi(beta) v``), so the scores of
    the start rank the samples as the missing unit does. Returns a ``(p, b)``
    array of starts (both signs), or None when nothing is missing.
    """
    r1 = search.B.shape[1]
    A = np.zeros((1, r1))
    A[0, 0] = 1.0
    if search.found_A:
        A = np.vstack([A, np.asarray(search.found_A)])
    # orthonormal complement of the found coefficient vectors and e_0
    _, sv, Vh = np.linalg.svd(A, full_matrices=True)
    rank = int(np.count_nonzero(sv > 1e-8 * max(sv.max(), 1e-300)))
    C = Vh[rank:].T  # (r1, missing)
    if C.shape[1] == 0:
        return None
    Q = np.hstack([C, C @ rng.standard_normal((C.shape[1], n_random))])
    Z = search.B @ Q  # (n, b)
    if search.found_V:
        Hf = search.activation(search.X @ np.asarray(search.found_V).T)
        D = np.hstack([search.F, Hf])
    else:
        D = search.F
    coef, *_ = np.linalg.lstsq(D, Z, rcond=None)
    W = coef[: search.F.shape[1]]
    return np.hstack([W, -W])
