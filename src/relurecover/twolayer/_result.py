"""The result object of two-layer recovery."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..networks import TwoLayerNetwork

__all__ = ["Recovery"]


@dataclass(frozen=True)
class Recovery:
    """What :func:`recover_two_layer` found, and how sure it is.

    Attributes
    ----------
    network : TwoLayerNetwork or None
        The recovered network (``V`` of shape ``(k, d)``, ``U`` of shape ``(m, k)``);
        with fewer than ``k`` certified units it holds the units found, with ``U``
        fitted by least squares; None when no unit was found.
    exact : bool
        True only when every unit passed its rounding certificate and the
        network reproduces the labels to ``certificate <= tol``.
    certificate : float
        Relative residual ``||Y - U f(V X)||_F / ||Y||_F`` on the data (inf if no
        network).
    message : str
        The verdict in words, with the reason when not exact.
    n_found, n_hidden : int
        Units certified, and units sought.
    method : str
        The path that ran (``"gaussian"`` ...).
    timings : dict of str to float
        Seconds per stage.
    diagnostics : dict
        Everything else worth knowing (ranks, starts used, passes over the data, ...).
    """

    network: TwoLayerNetwork | None
    exact: bool
    certificate: float
    message: str
    n_found: int
    n_hidden: int
    method: str = "gaussian"
    timings: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)

    @property
    def success(self) -> bool:
        """Alias of :attr:`exact`, as in SciPy's result objects."""
        return self.exact

    def __repr__(self) -> str:
        verdict = "exact" if self.exact else "NOT exact"
        net = repr(self.network) if self.network is not None else "None"
        total = sum(self.timings.values())
        return (
            f"Recovery({verdict}, certificate={self.certificate:.2e}, "
            f"found {self.n_found} of {self.n_hidden} units, method={self.method!r}, "
            f"network={net}, time={total:.3g}s)\n  message: {self.message}"
        )
