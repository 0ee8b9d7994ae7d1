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

import numpy as np
from _common import Timer, aligned_error, print_table, write_json

from relurecover import TwoLayerNetwork, gaussian_inputs, get_activation, recover_two_layer

USER_LAMBDAS = {
    "lambda: relu(t)**1.5": lambda t: np.maximum(t, 0.0) ** 1.5,
    "lambda: sqrt(log1p(relu t))": lambda t: np.sqrt(np.log1p(np.maximum(t, 0.0))),
    "lambda: tanh(relu t)": lambda t: np.tanh(np.maximum(t, 0.0)),
}
REFUSED = {
    "leaky relu": lambda t: np.where(t > 0, t, 0.01 * t),
    "tanh": np.tanh,
    "gelu-like t*sigmoid(1.7t)": lambda t: t / (1 + np.exp(-np.clip(1.7 * t, -700, 700))),
    "shifted relu(t - 1)": lambda t: np.maximum(t - 1.0, 0.0),
}


def run_activation(name, f, seeds, d, k, m):
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        net = TwoLayerNetwork.random(d, k, m, activation=f, rng=rng)
        X = gaussian_inputs(10 * d * k, d, rng=rng)
        Y = net.predict(X)
        with Timer() as t:
            res = recover_two_layer(X, Y, activation=f, rng=seed)
        err = aligned_error(res.network, net)
        rows.append(dict(seed=seed, exact=bool(res.exact), max_error=err,
                         time=t.seconds, success=bool(res.exact and err <= 1e-9),
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
    args = ap.parse_args(argv)
    seeds = 3 if args.quick else args.seeds
    d, k, m = 30, 6, 8
    cases = [(name, name) for name in ["relu", "relu2", "clipped", "log1p", "step-linear"]]
    cases += list(USER_LAMBDAS.items())
    results = [run_activation(name, f, seeds, d, k, m) for name, f in cases]
    print_table(
        f"Exact recovery, d={d} k={k} m={m} n={10 * d * k}, {seeds} seeds",
        ["activation", "exact", "median error", "worst error", "median s"],
        [[r["activation"], f"{r['successes']}/{seeds}", r["median_error"],
          r["worst_error"], r["median_time"]] for r in results],
    )
    refused = {}
    for name, f in REFUSED.items():
        try:
            get_activation(f)
            refused[name] = "ACCEPTED (should be refused)"
        except ValueError as exc:
            refused[name] = str(exc)
    print_table("Non-rectified activations", ["activation", "refused with"],
                [[name, msg[:90]] for name, msg in refused.items()])
    passed = all(r["successes"] >= int(np.ceil(0.95 * seeds)) for r in results) and all(
        not m.startswith("ACCEPTED") for m in refused.values()
    ) and not any(r["false_certificates"] for r in results)
    print(f"acceptance (>= 95% exact for every activation, refusals, no false certificates): "
          f"{'PASS' if passed else 'FAIL'}")
    write_json("activations" + ("_quick" if args.quick else ""),
               dict(seeds=seeds, results=results, refused=refused, passed=passed))
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
