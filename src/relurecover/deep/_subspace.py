"""What filtered (and plain) PCA return: a basis with the evidence for each direction."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Subspace"]


@dataclass(frozen=True)
class Subspace:
    """An orthonormal basis found by (filtered) PCA, with the evidence for each direction.

    Attributes
    ----------
    basis : ndarray of shape (d, k_found)
        Orthonormal columns, in the order found (strongest evidence first per round).
    eigenvalues : ndarray of shape (k_found,)
        Eigenvalue of the moment matrix ``E[1{filter} (x x^T - I)]`` (or
        ``E[y (x x^T - I)]`` for plain PCA, in the units of ``y``) along each
        direction.
    floors : ndarray of shape (k_found,)
        The noise floor that eigenvalue was compared with (same units, same sign side).
    filters : tuple of str
        Which filter found each direction (label interval, cell of the part found before).
    rounds : ndarray of shape (k_found,)
        The round of the iteration (0 = no conditioning on cells) that found it.
    method : str
        ``"filtered"``, ``"plain"`` or ``"given"``.
    message : str
        Why the search stopped.
    timings : dict of str to float
        Seconds per stage.
    diagnostics : dict
        Per round: the best filter tried and its evidence ratio, sizes of the cells;
        ``input_scale``: what ``X`` was divided by to have unit mean square.
    """

    basis: np.ndarray
    eigenvalues: np.ndarray
    floors: np.ndarray
    filters: tuple
    rounds: np.ndarray
    method: str
    message: str
    timings: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)

    @property
    def n_found(self) -> int:
        """Number of directions found (columns of :attr:`basis`)."""
        return int(self.basis.shape[1])

    @property
    def evidence(self) -> np.ndarray:
        """``|eigenvalue| / floor`` per direction (> 1: above the noise floor)."""
        return np.abs(self.eigenvalues) / np.maximum(self.floors, np.finfo(float).tiny)

    def __repr__(self) -> str:
        ev = ", ".join(f"{e:.3g}" for e in self.evidence)
        total = sum(self.timings.values())
        return (
            f"Subspace({self.method}: found {self.n_found} direction(s) in d="
            f"{self.basis.shape[0]}, evidence/floor=[{ev}], time={total:.3g}s)\n"
            f"  message: {self.message}"
        )


def scale_note(factor: float) -> str:
    """The sentence a message gets when the inputs were rescaled (empty when not)."""
    if factor == 1.0:
        return ""
    return (f" X was divided by {factor:.6g}, its root mean square (the method assumes "
            "x ~ N(0, I)).")
