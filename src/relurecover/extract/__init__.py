"""Black-box extraction: recover a ReLU network one can only query (docs/algorithms.md 7).

:func:`extract` takes a callable, a PyTorch module, a fitted scikit-learn estimator or a
model file and returns an :class:`Extraction` (the network, ``exact``, the queries per
stage and a fidelity report). Only the oracle's answers are read.
"""

from ._extract import Extraction, Fidelity, extract, fidelity
from ._models import ModelInfo, as_oracle, open_model, save_like
from ._oracle import BudgetExhausted, NotAnOracle, QueryOracle

__all__ = ["extract", "Extraction", "Fidelity", "fidelity", "as_oracle", "open_model",
           "save_like", "ModelInfo", "QueryOracle", "BudgetExhausted", "NotAnOracle"]
