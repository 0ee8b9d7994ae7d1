"""Two-layer networks ``y = U f(V x)`` [BJW]: exact recovery and its extensions.

The public entry point is :func:`recover_two_layer` (``_recover``: validation,
units, dispatch and fallback); the steps live in their own modules
(``_gaussian``: the moment pipeline; ``_rounding``: the exact rounding;
``_general``: any inputs; ``_few_outputs``: rank(U) < k; ``_noisy``: noisy
labels; ``_output``: the output layer and the certificate).
"""

from ._recover import recover_two_layer
from ._result import Recovery, StandardErrors

__all__ = ["recover_two_layer", "Recovery", "StandardErrors"]
