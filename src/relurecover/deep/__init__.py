"""Deep ReLU networks from Gaussian samples [CKM]: filtered PCA, then learning.

``F(x) = W_{L+1} relu(W_L ... relu(W_1 x))`` depends on ``x`` only through the
``k``-dimensional span of ``W_1``. :func:`filtered_pca` finds that span from
filtered second moments (docs/algorithms.md 5.1-5.2); :func:`learn_deep` fits a small
network in it and refines in full dimension (5.3-5.4). Only :func:`learn_deep` needs
PyTorch (``pip install 'relurecover[torch]'``); without it, it raises
:class:`MissingDependencyError` (an ``ImportError``) before any work.
"""

from ..metrics import principal_angles
from ._filtered_pca import filtered_pca
from ._instances import alternating_network
from ._learn import DeepFit, MissingDependencyError, learn_deep
from ._plain_pca import plain_pca
from ._subspace import Subspace

__all__ = [
    "filtered_pca",
    "learn_deep",
    "DeepFit",
    "plain_pca",
    "Subspace",
    "principal_angles",
    "alternating_network",
    "MissingDependencyError",
]
