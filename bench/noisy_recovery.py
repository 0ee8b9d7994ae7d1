"""Noisy labels (issue 4, docs/algorithms.md 2): consistency, efficiency, continuity, Adam.

Instances: ``(d, k, m) = (20, 5, 8)``, planted Gaussian weights, Gaussian inputs,
labels ``Y = relu(X V^T) U^T + E`` with i.i.d. Gaussian ``E`` of standard deviation
``level * std(Y)``. The error is ``compare(found, truth).error``: the largest of the
relative Frobenius errors of ``V`` and ``U`` and the errors of the biases ``b`` and
``c`` after alignment (``max_error`` is stored too). The recovery fits biases (the
truth has none), and so does the oracle, so both are compared alike.

Parts (acceptance of issue 4):

1-2. ``consistency``: ``recover_two_layer(X, Y, n_hidden=5)`` at level 0.1 for
     n = 1e4 ... 1e6, 20 seeds; the log-log slope of the median error against n,
     and the ratio to the *oracle*: the same refinement
     (``twolayer._noisy.refine_least_squares``) started from the true weights.
3.   ``continuity``: level 1e-2 ... 1e-8 at n = 1e5.
4.   ``adam``: ``relurecover.baselines.fit_adam`` on the same data, with a wall-clock
     budget of 10 times relurecover's time (at least 10 s), stopped early if it
     reaches relurecover's error (``time_to_target``); 2 seeds, 1 at n = 1e6.

``--large-seeds`` sets the seeds at n = 1e6; ``--ns 1000000 --resume`` adds a size
to a stored result.

BLAS runs single-threaded (``OPENBLAS_NUM_THREADS=1`` unless set): on the shared
2-core machine two BLAS threads under contention were up to 100 times slower.
Results: ``bench/results/noisy[_quick].json`` and ``noisy_loglog[_quick].png``.

    python bench/noisy_recovery.py --quick
    nice python bench/noisy_recovery.py
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from _common import RESULTS, Timer, print_table, read_json, write_json  # noqa: E402
from relurecover import TwoLayerNetwork, compare, gaussian_inputs, recover_two_layer  # noqa: E402
from relurecover.twolayer._noisy import refine_least_squares  # noqa: E402

D, K, M = 20, 5, 8
LEVEL = 0.1
NS = [10_000, 30_000, 100_000, 300_000, 1_000_000]
QUICK_NS = [10_000, 30_000, 100_000]
CONT_LEVELS = [1e-2, 1e-4, 1e-6, 1e-8]
ADAM_NS = [10_000, 100_000, 1_000_000]
TAG = 4  # issue number: instances differ from the other benchmarks'


def instance(n: int, seed: int, level: float):
    """Planted truth, inputs, noisy labels and the noise std; reproducible one by one."""
    truth = TwoLayerNetwork.random(D, K, M, rng=np.random.default_rng([TAG, D, K, M, seed]))
    X = gaussian_inputs(n, D, rng=np.random.default_rng([TAG, D, K, M, seed, n]))
    Y = truth.predict(X)
    sigma = level * float(Y.std())
    Y += sigma * np.random.default_rng([TAG, D, K, M, seed, n, 1]).standard_normal(Y.shape)
    return truth, X, Y, sigma


def run_ours(X, Y, seed):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Timer() as t:
            res = recover_two_layer(X, Y, n_hidden=K, rng=seed)
    return res, t.seconds, [str(w.message)[:120] for w in caught]


def consistency(ns, seeds, out, large_seeds):
    rows = [r for r in out.get("consistency", []) if r["n"] not in ns]  # --resume
    for n in ns:
        recs = []
        for seed in range(seeds if n < 1_000_000 else min(seeds, large_seeds)):
            truth, X, Y, sigma = instance(n, seed, LEVEL)
            res, secs, warns = run_ours(X, Y, seed)
            with Timer() as t:
                orc = refine_least_squares(X, Y, truth.U, truth.V, rng=seed)
            orc_net = TwoLayerNetwork(orc.U, orc.V, b=orc.b, c=orc.c)
            c, co = compare(res.network, truth), compare(orc_net, truth)
            recs.append({
                "seed": seed, "error": c.error, "max_error": c.max_error,
                "oracle_error": co.error, "oracle_max_error": co.max_error,
                "ratio": c.error / co.error, "time": secs, "oracle_time": t.seconds,
                "noise_level": res.noise_level, "true_noise": sigma,
                "estimated_error": res.standard_errors.estimated_error,
                "iterations": res.diagnostics["refinement"]["iterations"],
                "warnings": warns,
            })
            del X, Y
            print(f"  n={n:>8} seed={seed:>2} err={c.error:.3e} oracle={co.error:.3e} "
                  f"ratio={c.error / co.error:.4f} t={secs:.2f}s", flush=True)
        e = np.array([r["error"] for r in recs])
        row = {
            "n": n, "seeds": len(recs), "median_error": float(np.median(e)),
            "median_oracle_error": float(np.median([r["oracle_error"] for r in recs])),
            "median_ratio": float(np.median([r["ratio"] for r in recs])),
            "max_ratio": float(np.max([r["ratio"] for r in recs])),
            "median_estimated_error": float(np.median([r["estimated_error"] for r in recs])),
            "median_time": float(np.median([r["time"] for r in recs])),
            "median_noise_ratio": float(np.median(
                [r["noise_level"] / r["true_noise"] for r in recs])),
            "runs": recs,
        }
        rows.append(row)
        rows.sort(key=lambda r: r["n"])
        out["consistency"] = rows
        out["slope"] = slope(rows)
        write_json(out["name"], out)
    return rows


def slope(rows):
    if len(rows) < 2:
        return None
    x = np.log([r["n"] for r in rows])
    y = np.log([r["median_error"] for r in rows])
    return float(np.polyfit(x, y, 1)[0])


def continuity(n, seeds, out):
    rows = []
    for level in CONT_LEVELS:
        errs, maxes = [], []
        for seed in range(seeds):
            truth, X, Y, _ = instance(n, seed, level)
            res, _, _ = run_ours(X, Y, seed)
            c = compare(res.network, truth)
            errs.append(c.error)
            maxes.append(c.max_error)
        rows.append({"level": level, "n": n, "seeds": seeds,
                     "median_error": float(np.median(errs)), "max_error": float(np.max(maxes))})
        print(f"  level={level:.0e} median err={np.median(errs):.2e} "
              f"worst max_error={np.max(maxes):.2e}", flush=True)
        out["continuity"] = rows
        write_json(out["name"], out)
    return rows


def adam(ns, seeds, out):
    try:
        from relurecover.baselines import fit_adam
    except ImportError:
        print("  relurecover.baselines.fit_adam not available: skipped")
        return []
    rows = []
    for n in ns:
        for seed in range(seeds if n < 1_000_000 else 1):  # 1e6: one seed (time)
            truth, X, Y, _ = instance(n, seed, LEVEL)
            res, secs, _ = run_ours(X, Y, seed)
            ours = compare(res.network, truth).error
            budget = max(10 * secs, 10.0)
            fit = fit_adam(X, Y, [K], rng=seed, time_limit=budget,
                           eval_fn=lambda net: compare(net, truth).error,
                           target=ours, stop_at_target=True)
            err = compare(fit.network, truth).error
            rows.append({
                "n": n, "seed": seed, "ours_error": ours, "ours_time": secs,
                "adam_error": err, "adam_time": fit.time, "adam_budget": budget,
                "adam_reached_ours": bool(fit.reached_target),
                "adam_time_to_ours": fit.time_to_target, "adam_lr": fit.lr,
                "error_ratio": err / ours,
                "speedup": (fit.time_to_target if fit.reached_target else fit.time) / secs,
            })
            print(f"  n={n:>8} seed={seed} ours {ours:.2e} in {secs:.2f}s; adam {err:.2e} "
                  f"in {fit.time:.1f}s (budget {budget:.0f}s, reached ours: "
                  f"{fit.reached_target})", flush=True)
            out["adam"] = rows
            write_json(out["name"], out)
    return rows


def plot(out, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = out["consistency"]
    n = np.array([r["n"] for r in rows], float)
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for key, label, mk in (("median_error", "relurecover", "o-"),
                           ("median_oracle_error", "oracle (refined from the truth)", "x--")):
        ax[0].loglog(n, [r[key] for r in rows], mk, label=label)
    for r in rows:
        e = [x["error"] for x in r["runs"]]
        ax[0].loglog([r["n"]] * len(e), e, ".", color="grey", alpha=0.4)
    ref = rows[0]["median_error"] * (n / n[0]) ** -0.5
    ax[0].loglog(n, ref, ":", color="k", label="slope -1/2")
    ax[0].set(xlabel="samples n", ylabel="aligned relative error",
              title=f"(d,k,m)=({D},{K},{M}), noise {LEVEL} x std(Y); slope {out['slope']:.3f}")
    ax[0].legend()
    if out.get("continuity"):
        c = out["continuity"]
        ax[1].loglog([r["level"] for r in c], [r["median_error"] for r in c], "o-")
        ax[1].axhline(1e-6, color="r", ls=":", label="1e-6")
        ax[1].set(xlabel="noise level (x std(Y))", ylabel="aligned relative error",
                  title=f"continuity, n = {c[0]['n']}")
        ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3 sizes, 4 seeds, small Adam run")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--large-seeds", type=int, default=20,
                   help="seeds at n = 1e6 (fewer when time forces)")
    p.add_argument("--ns", type=int, nargs="*", default=None, help="sizes of part 1-2")
    p.add_argument("--resume", action="store_true",
                   help="keep the stored rows of the other sizes and parts")
    p.add_argument("--parts", nargs="*", default=["consistency", "continuity", "adam"])
    args = p.parse_args(argv)
    q = args.quick
    name = "noisy_quick" if q else "noisy"
    out = {"name": name, "d": D, "k": K, "m": M, "level": LEVEL,
           "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS")}
    if args.resume and read_json(name):
        old = read_json(name)
        out.update({key: old[key] for key in ("consistency", "continuity", "adam", "slope")
                    if key in old})
    seeds = args.seeds or (4 if q else 20)
    if "consistency" in args.parts:
        print("consistency and efficiency (noise 0.1 x std(Y))")
        consistency(args.ns or (QUICK_NS if q else NS), seeds, out, args.large_seeds)
    if "continuity" in args.parts:
        print("continuity")
        continuity(30_000 if q else 100_000, 2 if q else 5, out)
    if "adam" in args.parts:
        print("Adam baseline")
        adam([10_000] if q else ADAM_NS, 1 if q else 2, out)
    write_json(name, out)
    if out.get("consistency"):
        plot(out, RESULTS / (("noisy_loglog_quick" if q else "noisy_loglog") + ".png"))
        print_table(
            f"noisy labels, (d,k,m)=({D},{K},{M}), noise {LEVEL} x std(Y); "
            f"log-log slope {out['slope']:.3f} (acceptance: [-0.6, -0.4])",
            ["n", "seeds", "median error", "oracle", "median ratio", "max ratio",
             "est. error", "sigma_hat/sigma", "time (s)"],
            [[r["n"], r["seeds"], r["median_error"], r["median_oracle_error"],
              format(r["median_ratio"], ".4f"), format(r["max_ratio"], ".4f"),
              r["median_estimated_error"], format(r["median_noise_ratio"], ".4f"),
              r["median_time"]] for r in out["consistency"]])
    if out.get("continuity"):
        print_table("continuity (acceptance: error < 1e-6 at 1e-8)",
                    ["noise level", "n", "seeds", "median error", "worst max_error"],
                    [[format(r["level"], ".0e"), r["n"], r["seeds"], r["median_error"],
                      r["max_error"]] for r in out["continuity"]])
    if out.get("adam"):
        print_table("Adam (PyTorch) on the same data; budget 10x relurecover's time",
                    ["n", "seed", "ours error", "ours time", "Adam error", "Adam time",
                     "Adam reached ours", "Adam/ours error", "speedup"],
                    [[r["n"], r["seed"], r["ours_error"], r["ours_time"], r["adam_error"],
                      r["adam_time"], r["adam_reached_ours"], r["error_ratio"],
                      r["speedup"]] for r in out["adam"]])


if __name__ == "__main__":
    main()
