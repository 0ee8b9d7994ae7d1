"""The result object of two-layer recovery."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..networks import TwoLayerNetwork

__all__ = ["Recovery", "StandardErrors", "unit_verdict"]


@dataclass(frozen=True, kw_only=True)
class StandardErrors:
    """Standard errors of a least-squares estimate, per weight (docs/algorithms.md 2).

    From the Gauss-Newton covariance ``sigma^2 (J^T J)^+`` of the normalised
    weights (rows of ``[V, b]`` of unit norm, their norms pushed into ``U``), so
    they apply to ``Recovery.network`` as returned.

    Attributes
    ----------
    V : ndarray of shape (k, d)
        Standard error of each entry of ``V`` (row ``i``: unit ``i``).
    U : ndarray of shape (m, k)
        Standard error of each entry of ``U`` (column ``i``: unit ``i``).
    estimated_error : float
        Expected aligned relative error, ``max(||se_[V, b]||_F / ||[V, b]||_F,
        ||se_U||_F / ||U||_F)``, comparable to ``compare(...).error``.
    b : ndarray of shape (k,) or None
        Standard error of each hidden bias.
    c : ndarray of shape (m,) or None
        Standard error of each output bias.
    """

    V: np.ndarray
    U: np.ndarray
    estimated_error: float
    b: np.ndarray | None = None
    c: np.ndarray | None = None

    @property
    def per_unit(self) -> np.ndarray:
        """Root sum of squares over each unit's row of ``V`` and column of ``U``, shape (k,)."""
        b2 = 0.0 if self.b is None else self.b**2
        return np.sqrt((self.V**2).sum(axis=1) + b2 + (self.U**2).sum(axis=0))

    def __repr__(self) -> str:
        k, d = self.V.shape
        return (f"StandardErrors(V: ({k}, {d}), U: {self.U.shape}, "
                f"estimated_error={self.estimated_error:.2e})")


@dataclass(frozen=True, kw_only=True)
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
        Relative residual ``||Y - U f(V X)||_F / ||Y||_F`` on the data, in the form
        no single row can dominate (the larger of the plain residual and that of
        the rows capped at 16 median row norms), computed without under- or
        overflow (inf if no network).
    message : str
        The verdict in words, with the reason when not exact.
    n_found, n_hidden : int
        Units certified (exact path) or estimated (noisy labels), and units sought.
    method : str
        The path that ran (``"gaussian"`` ...).
    timings : dict of str to float
        Seconds per stage; the stages do not overlap, so their sum is the time of
        the call (validation and the ``auto`` checks included).
    diagnostics : dict
        Everything else worth knowing (ranks, starts used, passes over the data, ...).
    noise_level : float or None
        With noisy labels: the estimated standard deviation of the noise ``E`` in
        ``Y = f(X V^T) U^T + E`` (from the least-squares residuals, corrected for
        the degrees of freedom). None on the exact path.
    standard_errors : StandardErrors or None
        With noisy labels: per-weight standard errors of ``network`` (units
        normalised) and the estimated aligned error. None on the exact path.
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
    noise_level: float | None = None
    standard_errors: StandardErrors | None = None

    @property
    def success(self) -> bool:
        """Alias of :attr:`exact`, as in SciPy's result objects."""
        return self.exact

    def __repr__(self) -> str:
        verdict = "exact" if self.exact else "NOT exact"
        net = repr(self.network) if self.network is not None else "None"
        total = sum(self.timings.values())
        noisy = ""
        if self.noise_level is not None:
            noisy = f", noise_level={self.noise_level:.3g}"
        if self.standard_errors is not None:
            noisy += f", estimated_error={self.standard_errors.estimated_error:.2e}"
        return (
            f"Recovery({verdict}, certificate={self.certificate:.2e}, "
            f"found {self.n_found} of {self.n_hidden} units, method={self.method!r}, "
            f"network={net}{noisy}, time={total:.3g}s)\n  message: {self.message}"
        )


def unit_verdict(*, exact: bool, k: int, n_found: int, certificate: float, tol: float,
                 stop_reason: str = "", problems=(), detail: str = "") -> str:
    """The message of a two-layer result, the same words on every path.

    Parameters
    ----------
    exact : bool
        The verdict.
    k : int
        Units sought.
    n_found : int
        Units certified.
    certificate : float
        Relative residual on the data (inf: no network).
    tol : float
        The threshold of ``exact``.
    stop_reason : str, default=""
        Why the search stopped, when it stopped short.
    problems : sequence of str, default=()
        Further reasons the network is not exact (appended, joined by "; ").
    detail : str, default=""
        A parenthesised note after "certified" in an exact verdict (e.g. the path).

    Returns
    -------
    str
        ``"exact: all k units certified ...; relative residual c <= tol=..."`` or
        ``"not exact: found j of k units (reason) with relative residual c > tol."``
        / ``"not recovered: found 0 of k units (reason)."``.
    """
    if exact:
        note = f" ({detail})" if detail else ""
        return (f"exact: all {k} units certified{note}; relative residual "
                f"{certificate:.1e} <= tol={tol:g}.")
    if not np.isfinite(certificate):
        text = (f"not recovered: found {n_found} of {k} units "
                f"({stop_reason or 'no start converged to a certified unit'}).")
    else:
        text = f"not exact: found {n_found} of {k} units"
        if stop_reason:
            text += f" ({stop_reason})"
        text += f" with relative residual {certificate:.1e}"
        if certificate > tol:
            text += f" > tol={tol:g}"
        text += "."
    if problems:
        text += " " + "; ".join(problems) + "."
    return text
