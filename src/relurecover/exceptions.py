"""Warnings raised by relurecover.

Following scikit-learn, each warning has its own class so that users can filter
them precisely (``warnings.simplefilter("error", AssumptionWarning)``).
"""

import os
import sys
import warnings

__all__ = ["ConvergenceWarning", "AssumptionWarning", "warn"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class ConvergenceWarning(UserWarning):
    """An iterative step stopped at its budget before it converged."""


class AssumptionWarning(UserWarning):
    """The data break an assumption under which the method's guarantee holds.

    The computation still returns an honest result (``exact=False`` and a
    ``message`` that says which assumption failed), never a false certificate.
    """


def warn(message: str, category: type[Warning]) -> None:
    """Emit ``message`` as ``category``, attributed to the caller's own code.

    The warning points at the first frame outside the relurecover package (the
    user's line that called it), however deep inside the package it was raised,
    so no call site has to count its ``stacklevel``.

    Parameters
    ----------
    message : str
        The text.
    category : type of Warning
        ``ConvergenceWarning``, ``AssumptionWarning``, ...

    Returns
    -------
    None
    """
    level = 2  # warnings.warn's stacklevel of our caller
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _PACKAGE_DIR + os.sep):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
