"""The smallest network that computes the same function on the data (docs/algorithms.md 5.5).

The architecture search (5.5) counts widths in units of the subspace dimension, so it
often ends wider than the truth: (8, 8) for a (4, 4) network. The spare units of a fit
are of two kinds that change (almost) nothing on the data and can go:

- **silent**: a hidden unit whose contribution to the next layer, ``||h_j|| ||W_{l+1}[:, j]||``
  over the rows, is at most ``SILENT_RTOL`` times the largest unit's (it never fires,
  or what it sends is negligible); it is removed (its row of ``W_l``, ``b_l`` and its
  column of ``W_{l+1}``);
- **duplicated**: two units of one layer whose incoming weights and bias are positive
  multiples, ``[w', b'] = a [w, b]`` with ``a > 0`` (to ``DUPLICATE_RTOL``), compute
  ``h' = a h`` (``relu`` is positively homogeneous); the second is folded into the
  first, ``W_{l+1}[:, j] += a W_{l+1}[:, j']``, and removed.

Removing one unit can make another redundant (a unit of layer ``l`` whose only
receivers went), so the two rules repeat until nothing changes. The tolerances are
loose on purpose (a fit leaves its spare units near, not at, these cases):
:func:`relurecover.deep.learn_deep` polishes the pruned network and keeps it only when
its held-out error is no worse.
"""

from __future__ import annotations

import numpy as np

from ..networks import DeepNetwork

__all__ = ["prune_network", "DUPLICATE_RTOL", "SILENT_RTOL"]

#: two units are duplicates when their normalised ``[w, b]`` rows differ by at most
#: this (in the 2-norm), and so are positive multiples to that precision.
DUPLICATE_RTOL = 1e-4
#: a unit is silent when its contribution is at most this times the largest's.
SILENT_RTOL = 1e-6


def _layers(net: DeepNetwork):
    Ws = [W.copy() for W in net.weights]
    bs = [b.copy() for b in net.biases]
    return Ws, bs


def _drop(Ws, bs, layer, keep):
    """Keep the units ``keep`` (a boolean mask) of hidden layer ``layer``."""
    Ws[layer], bs[layer] = Ws[layer][keep], bs[layer][keep]
    Ws[layer + 1] = Ws[layer + 1][:, keep]


def _fold_duplicates(Ws, bs, layer) -> int:
    """Fold the units of ``layer`` that are positive multiples of an earlier one."""
    A = np.hstack([Ws[layer], bs[layer][:, None]])
    norms = np.linalg.norm(A, axis=1)
    keep = np.ones(A.shape[0], dtype=bool)
    for j in range(A.shape[0]):
        if not keep[j] or norms[j] == 0:
            continue
        for jj in range(j + 1, A.shape[0]):
            if not keep[jj] or norms[jj] == 0:
                continue
            if np.linalg.norm(A[jj] / norms[jj] - A[j] / norms[j]) <= DUPLICATE_RTOL:
                Ws[layer + 1][:, j] += (norms[jj] / norms[j]) * Ws[layer + 1][:, jj]
                keep[jj] = False
    _drop(Ws, bs, layer, keep)
    return int((~keep).sum())


def prune_network(net: DeepNetwork, X) -> tuple[DeepNetwork, dict]:
    """Remove the silent and fold the duplicated hidden units of ``net`` (on rows ``X``).

    Parameters
    ----------
    net : DeepNetwork
        The network (biases or not).
    X : ndarray of shape (n, d)
        The rows on which the units' contributions are measured.

    Returns
    -------
    network : DeepNetwork
        Nearly the same function on ``X`` (to the tolerances) with fewer hidden
        units; every layer keeps at least one unit.
    report : dict
        ``"silent"`` and ``"duplicates"``: units removed per hidden layer;
        ``"widths_before"`` and ``"widths_after"``.
    """
    Ws, bs = _layers(net)
    L = len(Ws) - 1  # hidden layers
    quiet, dup = [0] * L, [0] * L
    X = np.asarray(X, dtype=float)
    changed = True
    while changed:
        changed = False
        H = X
        for layer in range(L):
            pre = H @ Ws[layer].T + bs[layer]
            sent = (np.linalg.norm(np.maximum(pre, 0.0), axis=0)
                    * np.linalg.norm(Ws[layer + 1], axis=0))
            silent = sent <= SILENT_RTOL * sent.max()
            if silent.any() and (~silent).any():
                _drop(Ws, bs, layer, ~silent)
                pre = pre[:, ~silent]
                quiet[layer] += int(silent.sum())
                changed = True
            folded = _fold_duplicates(Ws, bs, layer) if Ws[layer].shape[0] > 1 else 0
            if folded:
                dup[layer] += folded
                changed = True
                pre = H @ Ws[layer].T + bs[layer]
            H = np.maximum(pre, 0.0)
    pruned = DeepNetwork(Ws, bs)
    return pruned, {"silent": quiet, "duplicates": dup, "widths_before": list(net.widths),
                    "widths_after": list(pruned.widths)}
