"""Benchmark: exact recovery with every rectified activation (issue 5).

Acceptance: for each built-in activation, d = 30, k = 6, m = 8, n = 10 d k,
20 seeds: exact (``.exact`` and aligned error <= 1e-9) on at least 19 of 20 with
Gaussian inputs; a user-defined lambda works the same way; non-rectified
activations are refused with a message that says why.

Usage: ``python bench/activations.py [--seeds 20] [--quick]``. Prints a table and
writes ``bench/results/activations.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from relurecover import TwoLayerNetwork, compare, gaussian_inputs, get_activation, recover_two_layer

USER_LAMBDAS = {
    "lambda: relu(t)**1.5": lambda t: np.maximum(t, 0.0) ** 1.5,
    "lambda: sqrt(log1p(relu t))": lambda t: np.sqrt(np.log1p(np.maximum(t, 0.0))),
    "lambda: tanh(relu t)": lambda t: np.tanh(np.maximum(t, 0.0)),
}
REFUSED = {
    "leaky relu": lambda t: np.where(t > 0, t, 0.01 * t),
    "tanh": np.tanh,
    "gelu-like t*sigmoid(1.7t)": lambda t: t / (1 + np.exp(-1.7 * t)),
    "shifted relu(t - 1)": lambda t: np.maximum(t - 1.0, 0.0),
}


def run_activation(name, f, seeds, d, k, m):
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        net = TwoLayerNetwork.random(d, k, m, activation=f, rng=rng)
        X = gaussian_inputs(10 * d * k, d, rng=rng)
        Y = net.predict(X)
        t0 = time.perf_counter()
        res = recover_two_layer(X, Y, activation=f, rng=seed)
        elapsed = time.perf_counter() - t0
        err = compare(res.network, net).max_error if res.network is not None else np.inf
        rows.append(dict(seed=seed, exact=bool(res.exact), max_error=float(err),
                         time=elapsed, success=bool(res.exact and err <= 1e-9),
                         false_certificate=bool(res.exact and err > 1e-6)))
    return dict(
        activation=name, d=d, k=k, m=m, n=10 * d * k, seeds=seeds,
        successes=sum(r["success"] for r in rows),
        false_certificates=sum(r["false_certificate"] for r in rows),
        median_error=float(np.median([r["max_error"] for r in rows])),
        worst_error=float(np.max([r["max_error"] for r in rows])),
        median_time=float(np.median([r["time"] for r in rows])),
        runs=rows,
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="3 seeds")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "activations.json"))
    args = ap.parse_args(argv)
    seeds = 3 if args.quick else args.seeds
    d, k, m = 30, 6, 8
    results = []
    cases = [(name, name) for name in ["relu", "relu2", "clipped", "log1p", "step-linear"]]
    cases += list(USER_LAMBDAS.items())
    print(f"{'activation':32s} {'exact':>8s} {'median err':>11s} {'worst err':>10s} {'median s':>9s}")
    for name, f in cases:
        r = run_activation(name, f, seeds, d, k, m)
        results.append(r)
        print(f"{name:32s} {r['successes']:>3d}/{seeds:<4d} {r['median_error']:11.1e} "
              f"{r['worst_error']:10.1e} {r['median_time']:9.3f}")
    refused = {}
    for name, f in REFUSED.items():
        try:
            get_activation(f)
            refused[name] = "ACCEPTED (should be refused)"
        except ValueError as exc:
            refused[name] = str(exc)
    print("\nnon-rectified activations:")
    for name, msg in refused.items():
        print(f"  {name:28s} -> {msg[:110]}")
    passed = all(r["successes"] >= int(np.ceil(0.95 * seeds)) for r in results) and all(
        not m.startswith("ACCEPTED") for m in refused.values()
    ) and not any(r["false_certificates"] for r in results)
    print(f"\nacceptance (>= 95% exact for every activation, refusals, no false certificates): "
          f"{'PASS' if passed else 'FAIL'}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(dict(benchmark="activations", seeds=seeds, results=results,
                       refused=refused, passed=passed), fh, indent=1)
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
