"""Warnings raised by relurecover.

Following scikit-learn, each warning has its own class so that users can filter
them precisely (``warnings.simplefilter("error", AssumptionWarning)``).
"""

__all__ = ["ConvergenceWarning", "AssumptionWarning"]


class ConvergenceWarning(UserWarning):
    """An iterative step stopped at its budget before it converged."""


class AssumptionWarning(UserWarning):
    """The data break an assumption under which the method's guarantee holds.

    The computation still returns an honest result (``exact=False`` and a
    ``message`` that says which assumption failed), never a false certificate.
    """
