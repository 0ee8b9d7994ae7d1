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
