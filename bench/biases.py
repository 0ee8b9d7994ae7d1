"""Acceptance benchmark for biases (docs/algorithms.md 6): ``y = U relu(V x + b) + c``.

Every call is ``recover_two_layer(X, Y, rng=seed)``: no ``n_hidden``, method
``"auto"``, nothing said about biases. A run is *exact* when ``.exact`` is True and
``compare(found, truth).max_error <= 1e-9`` (``max_error`` covers V, U, b and c
after the joint alignment of ``(v_i, b_i)``); a *false certificate* is ``.exact``
True with ``max_error > 1e-9``. Crashes are recorded as failed runs (the
traceback's last line as message), never stop the run.

Parts (``--part``), with the acceptance each measures:

1. ``planted``: Gaussian inputs, ``TwoLayerNetwork.random(d, k, m, bias_scale=0.5)``
   (``b_i ~ N(0, 0.5^2) ||v_i||``, ``c ~ N(0, 1)``), (d, k, m) in (20, 5, 6),
   (50, 10, 12), (100, 20, 25), n = 10 d k, 20 seeds: >= 19/20 exact per size, and
   median time <= 2 x that of the bias-free network with the same V, U and X
   (also: max b/c errors, one pass ``X @ V.T`` and times in passes).
2. ``large-biases``: ``b_i = beta_i ||v_i||``, ``beta_i ~ U[-2.5, 2.5]``, n = 10 d k,
   20 seeds: >= 18/20 exact at (100, 20, 25) and 0 false certificates; for each
   run not exact, whether a unit is active on < d + 1 samples (or inactive on
   < d + 1) and whether the result says so (message mentions "not identifiable"
   or ``diagnostics["rarely_active_rows"]``). The same at (20, 5, 6) is
   informative. Then a samples sweep at (100, 20, 25) with the part-1 biases,
   n / d in 4 ... 40: the smallest n with >= 19/20 exact, beside the bias-free
   figure stored in ``bench/results/exact_recovery_samples.json``. A level stops
   once 19/20 is out of reach (``--full-levels``: run every seed).
3. ``inputs``: planted biases (bias_scale 0.5) on inputs uniform on
   ``[-sqrt 3, sqrt 3]^d`` and Student-t(3) (not rescaled: variance 3, as
   ``relurecover.instances.input_family``), (20, 5, 6), n = 10 d k, and on
   scikit-learn's digits (all 1,797 rows, columns centred and scaled to unit
   variance, constant columns left at 0; rows span 61 of 64 dims, so V is compared
   after projection on that span), (64, 5, 6): >= 19/20 exact each; the path
   ``"auto"`` took is recorded.
4. ``mlp``: ``MLPRegressor((8,), activation="relu", solver="lbfgs")`` trained on
   standardised digits with one-hot targets (m = 10), queried with ``mlp.predict``
   on n = 20 d k = 10,240 Gaussian inputs, 5 random states: aligned error <= 1e-9
   against ``TwoLayerNetwork(coefs_[1].T, coefs_[0].T, intercepts_[0],
   intercepts_[1])``; units dead or always active on the queries are shown.
5. ``noisy``: (20, 5, 8), bias_scale 0.5, noise 0.1 x std(Y) (overall std, as
   ``bench/noisy_recovery.py``), n = 1e4 ... 1e6, 3 seeds: ``compare(...).error``
   over the oracle's (``refine_least_squares`` from the truth, same data), median
   ratio <= 1.1 at every n, and log-log slope of the median error in -0.5 +- 0.1.
6. ``false-certificates``: labels of no biased ReLU network, (20, 5, 6),
   n = 10 d k, 20 seeds each: leaky ReLU (slope 0.01) with biases, softplus
   (beta = 10) with biases, biased ReLU labels + 1e-8 x std(Y) Gaussian noise:
   ``.exact`` True on 0 of 20 each (messages' first words and certificates kept).

Results: one file, ``bench/results/biases.json`` (``--quick``:
``biases_quick.json``), ``{"benchmark", "environment", "quick", "exact_tol",
"parts": {<part>: {...}}}``. Each part holds its own ``environment``, a
``complete`` flag, per-setting ``runs`` (seed, exact, success, max_error, b_error,
c_error, time, method, message[:200], ...) and a ``summary`` with the figures a
README line quotes. The file is rewritten after every setting (so a killed run
leaves what it did), and parts not run this time are kept as stored.

``--quick`` (under a minute on one thread): (20, 5, 6) only, 3 seeds, sweep
n / d in {4, 8, 16}, one MLP (500 lbfgs iterations), noisy n in {1e4, 3e4}, 1 seed.
BLAS runs single-threaded unless set (as ``bench/noisy_recovery.py``).

Usage::

    OMP_NUM_THREADS=1 python bench/biases.py --quick --part all
    OMP_NUM_THREADS=1 python bench/biases.py --part planted
    OMP_NUM_THREADS=1 python bench/biases.py --part large-biases --full-levels
    OMP_NUM_THREADS=1 python bench/biases.py --part inputs --seeds 20
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _biases_parts import PARTS  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="all", choices=["all", *PARTS])
    ap.add_argument("--quick", action="store_true", help="small sizes, few seeds")
    ap.add_argument("--seeds", type=int, default=None,
                    help="seeds per setting (default 20; mlp 5, noisy 3)")
    ap.add_argument("--full-levels", action="store_true",
                    help="large-biases sweep: run every seed at each n (no early stop)")
    args = ap.parse_args(argv)
    for name, run in PARTS.items():
        if args.part in ("all", name):
            print(f"== part {name}{' (quick)' if args.quick else ''}", flush=True)
            run(args)


if __name__ == "__main__":
    main()
