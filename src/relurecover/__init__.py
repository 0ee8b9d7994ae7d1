"""relurecover: learn ReLU networks from samples with algorithms that come with proofs.

Two-layer networks ``y = U f(V x)`` are recovered exactly from Gaussian samples
[Bakshi, Jayaram, Woodruff, COLT 2019]. See ``docs/algorithms.md`` for the mathematics.
"""

from .activations import get_activation
from .metrics import Comparison, compare
from .networks import DeepNetwork, TwoLayerNetwork, gaussian_inputs, load_network
from .twolayer import Recovery, recover_two_layer

__all__ = [
    "TwoLayerNetwork",
    "DeepNetwork",
    "gaussian_inputs",
    "load_network",
    "recover_two_layer",
    "Recovery",
    "compare",
    "Comparison",
    "get_activation",
]

__version__ = "0.1.0"

#: names imported on first use, so that ``import relurecover`` needs neither
#: scikit-learn nor PyTorch; not in ``__all__`` (a star import would need them).
_LAZY = {"TwoLayerReLURegressor": "estimators", "DeepReLURegressor": "estimators"}


def __getattr__(name):
    """``relurecover.TwoLayerReLURegressor`` and ``DeepReLURegressor``, imported from
    :mod:`relurecover.estimators` on first use (an ImportError that names the extra
    without scikit-learn)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
