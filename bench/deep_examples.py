"""The deep-network examples of the README, re-run on the current code (their recipes here).

Each example's figures in the README come from this script's JSON
(``bench/results/deep_examples.json``), so that they can be re-run when a default of
``learn_deep`` changes:

- ``quickstart``: the README's first deep example (d = 50, widths (4, 4), n = 2e5).
- ``outlier``: the same with row 0 of ``X`` scaled by ``1e4`` (docs/algorithms.md 5.1).
- ``biases``: ``DeepNetwork.random(20, [4, 4], rng=0)`` with biases ``0.5 N(0, 1)`` in
  every layer (``default_rng(1)``), n = 5e4 (``gaussian_inputs(..., rng=2)``):
  ``learn_deep(biases=True)`` against the bias-free fit (docs/algorithms.md 5.6).
- ``pruning``: (3, 2) networks in d = 12 (``DeepNetwork.random(12, [3, 2], rng=t)``,
  t = 0..4), 30,000 samples (``rng=3``), fitted as (6, 4) with ``rng=2``
  (docs/algorithms.md 5.5): the widths pruning returns.

Run: ``python bench/deep_examples.py``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _common import Timer, print_table, write_json  # noqa: E402

from relurecover import DeepNetwork, gaussian_inputs  # noqa: E402
from relurecover.deep import filtered_pca, learn_deep, principal_angles  # noqa: E402


def _fit(X, y, widths, rng, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Timer() as t:
            fit = learn_deep(X, y, widths, rng=rng, **kw)
    return fit, t.seconds


def main():
    out, rows = {}, []
    truth = DeepNetwork.random(d=50, widths=[4, 4], rng=0)
    X = gaussian_inputs(200_000, 50, rng=1)
    y = truth.predict(X)
    sub = filtered_pca(X, y)
    fit, sec = _fit(X, y, [4, 4], 2)
    out["quickstart"] = {"pca_directions": int(sub.n_found),
                         "pca_angle": float(principal_angles(sub.basis,
                                                             truth.weights[0].T).max()),
                         "heldout_error": fit.heldout_error, "widths": list(fit.widths),
                         "engine": fit.diagnostics["engine"], "seconds": sec}
    rows.append(["quickstart", fit.heldout_error, str(list(fit.widths)), sec])
    Xo = X.copy()
    Xo[0] *= 1e4
    fit, sec = _fit(Xo, truth.predict(Xo), [4, 4], 2)
    out["outlier"] = {"heldout_error": fit.heldout_error, "seconds": sec,
                      "outliers": None if fit.diagnostics.get("outliers") is None else
                      {k: v for k, v in fit.diagnostics["outliers"].items()
                       if k != "rows"}}
    rows.append(["outlier (row 0 x 1e4)", fit.heldout_error, str(list(fit.widths)), sec])
    base = DeepNetwork.random(20, [4, 4], rng=0)
    brng = np.random.default_rng(1)
    truth_b = DeepNetwork(base.weights, [0.5 * brng.standard_normal(W.shape[0])
                                         for W in base.weights])
    Xb = gaussian_inputs(50_000, 20, rng=2)
    yb = truth_b.predict(Xb)
    fit_b, sec_b = _fit(Xb, yb, [4, 4], 0, biases=True)
    fit_n, sec_n = _fit(Xb, yb, [4, 4], 0)
    out["biases"] = {"with_biases": fit_b.heldout_error, "bias_free": fit_n.heldout_error,
                     "seconds": [sec_b, sec_n]}
    rows.append(["biases=True", fit_b.heldout_error, str(list(fit_b.widths)), sec_b])
    rows.append(["bias-free on the same", fit_n.heldout_error, str(list(fit_n.widths)),
                 sec_n])
    out["pruning"] = []
    Xp = gaussian_inputs(30_000, 12, rng=3)
    for t in range(5):
        truth_p = DeepNetwork.random(12, [3, 2], rng=t)
        fit_p, sec_p = _fit(Xp, truth_p.predict(Xp), [6, 4], 2)
        out["pruning"].append({"truth_rng": t, "heldout_error": fit_p.heldout_error,
                               "widths": list(fit_p.widths),
                               "fitted_widths": list(fit_p.diagnostics["fitted_widths"]),
                               "seconds": sec_p})
        rows.append([f"(6, 4) fit of (3, 2), truth rng={t}", fit_p.heldout_error,
                     str(list(fit_p.widths)), sec_p])
    print_table("README deep examples", ["example", "held-out", "widths", "s"], rows)
    write_json("deep_examples", out)


if __name__ == "__main__":
    main()
