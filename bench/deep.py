"""Issue 6's acceptance benchmark: deep ReLU networks by filtered PCA [CKM].

Parts (``--part``):

- ``subspace`` (acceptance 1 and 2): depth 3, widths (4, 4), d in {50, 200},
  n = 2e5, ``--seeds`` planted instances (``DeepNetwork.random``). For each: the
  largest principal angle between the true first-layer span and (a) the span
  filtered PCA finds (the moment step, docs/algorithms.md 5.1-5.2) and (b) the row span
  of the learned first layer (after 5.3-5.4); the held-out relative square error
  of ``learn_deep``. Acceptance: angle < 0.1 rad on >= 9 of 10, held-out < 1e-3.
- ``pca-samples`` (acceptance 1, filtered PCA alone): d = 200, n from 1e5 to
  8e5, ``--seeds`` instances: the angle of the span filtered PCA finds, and the
  smallest n at which it is below 0.1 rad on 9 of 10 seeds.
- ``alternating`` (acceptance 3): ``F(x) = sum_{j<q} (-1)^j |<u cos(j pi/q) +
  v sin(j pi/q), x>|`` in d = 100 (q = 4: 8 units), n = 2e5: plain PCA's count of
  directions above its floor, filtered PCA's, the angle to the plane, and the
  held-out error of ``learn_deep``.
- ``scaling`` (acceptance 4): fixed network widths (4, 4), n = 2e5, d from 50 to
  1000: seconds of filtered PCA and of the whole ``learn_deep``, and of one pass
  ``X @ W_1^T`` over the same data; the log-log slope of time against d; a plot.
- ``adam`` (acceptance 5): Adam on the full architecture (5 restarts, tuned
  learning rate, the same training rows, a time budget of ``--adam-factor`` times
  ``learn_deep``'s time, used in full: it does not stop at the target) against ``learn_deep`` on: the instances of ``subspace``
  at d = 50, and the alternating family with q = 4 and q = 6 directions.
  Success: held-out relative square error < 1e-3.

- ``widths-unknown`` (issue 13, acceptance 1): ``learn_deep(X, y)`` with no widths (the
  architecture search, docs/algorithms.md 5.5) on the 12-unit blind plane (six
  ``|<w_j, x>|`` terms, d = 60), depth 3 (4, 4) at d = 50 and 200, and depth 3 (3, 3) at
  d = 80, n = 2e5: held-out <= 1e-3 on at least 9 of 10 per family, the widths found.

- ``biases`` (issue 13, acceptance 2): depth 3, widths (4, 4), d = 50, biases
  ``N(0, 0.5^2) ||row||`` in every layer, n = 2e5, ``learn_deep(..., biases=True)``:
  held-out <= 1e-3 on at least 9 of 10.

- ``engines`` (issue 13, acceptance 3 and 4): the numpy engine of the fits against the
  torch engine (``learn_deep(engine=...)``) on the instances of ``subspace`` (d = 50, 200)
  and of ``biases``, 5 seeds: held-out error, seconds and passes of ``X @ W_1^T``.

Results go to ``bench/results/deep_<part>[_quick].json`` (and
``deep_scaling.png``). ``--quick`` runs small sizes and few seeds.

Usage::

    python bench/deep.py --part subspace --seeds 10
    python bench/deep.py --part alternating
    python bench/deep.py --part scaling
    python bench/deep.py --part adam
    python bench/deep.py --quick --part all
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (RESULTS, Timer, git_commit, pass_time, print_table,  # noqa: E402
                     read_json, write_json)

from relurecover import DeepNetwork, gaussian_inputs  # noqa: E402
from relurecover.deep import (  # noqa: E402
    alternating_network,
    filtered_pca,
    learn_deep,
    plain_pca,
    principal_angles,
)

ANGLE_TOL = 0.1
HELDOUT_TOL = 1e-3
WIDTHS = (4, 4)


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _name(part: str, quick: bool) -> str:
    return f"deep_{part}" + ("_quick" if quick else "")


def _instance(d: int, n: int, seed: int, tag: int = 6):
    net = DeepNetwork.random(d, list(WIDTHS), rng=np.random.default_rng([tag, d, seed]))
    X = gaussian_inputs(n, d, rng=np.random.default_rng([tag, d, seed, n]))
    return net, X, net.predict(X)


def _learned_angle(fit, truth) -> float:
    return float(principal_angles(fit.network.weights[0].T, truth.weights[0].T).max())


def _one_learn(truth, X, y, seed, widths, **kw) -> dict:
    """Filtered PCA, then ``learn_deep`` on the same training rows, scored."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Timer() as t:
            fit = learn_deep(X, y, list(widths), rng=seed, **kw)
    plane = truth.weights[0].T
    return {
        "seed": seed,
        "pca_found": fit.subspace.n_found,
        "pca_angle": float(principal_angles(fit.subspace.basis, plane).max()),
        "pca_time": fit.timings.get("subspace"),
        "learned_angle": _learned_angle(fit, truth),
        "heldout_error": fit.heldout_error,
        "train_error": fit.train_error,
        "time": t.seconds,
        "timings": fit.timings,
        "warnings": [str(w.message) for w in caught],
        "pca_message": fit.subspace.message,
    }


# --------------------------------------------------------------------------- parts


def part_subspace(args) -> dict:
    dims = [50] if args.quick else [50, 200]
    n = 50_000 if args.quick else args.n
    seeds = min(args.seeds, 2) if args.quick else args.seeds
    out = {"n": n, "widths": WIDTHS, "seeds": seeds, "angle_tol": ANGLE_TOL,
           "heldout_tol": HELDOUT_TOL, "runs": {}}
    rows = []
    for d in dims:
        runs = []
        for seed in range(seeds):
            truth, X, y = _instance(d, n, seed)
            r = _one_learn(truth, X, y, seed, WIDTHS)
            runs.append(r)
            _progress(f"  d={d} seed={seed}: pca angle {r['pca_angle']:.3f} "
                      f"({r['pca_found']} found), learned angle {r['learned_angle']:.2e}, "
                      f"held-out {r['heldout_error']:.2e}, {r['time']:.1f}s")
        out["runs"][str(d)] = runs
        pa = np.array([r["pca_angle"] for r in runs])
        la = np.array([r["learned_angle"] for r in runs])
        he = np.array([r["heldout_error"] for r in runs])
        rows.append([d, n, seeds, int((pa < ANGLE_TOL).sum()), float(np.median(pa)),
                     int((la < ANGLE_TOL).sum()), float(np.median(la)),
                     int((he < HELDOUT_TOL).sum()), float(np.median(he)),
                     float(np.median([r["time"] for r in runs]))])
    cols = ["d", "n", "seeds", "PCA angle<0.1", "median PCA angle", "learned angle<0.1",
            "median learned angle", "held-out<1e-3", "median held-out", "median s"]
    out["table"] = {"columns": cols, "rows": rows}
    print_table("Deep (4, 4): subspace and learning [acceptance 1, 2]", cols, rows)
    return out


def part_pca_samples(args) -> dict:
    """Filtered PCA alone (5.1-5.2): largest angle against n at d = 200, per seed.

    The smallest n at which the angle is below 0.1 rad on at least 9 of 10 seeds
    (angles fall like sqrt(d / n)); no learning, so it is cheap.
    """
    d = 50 if args.quick else 200
    ns = [50_000, 100_000] if args.quick else [100_000, 200_000, 400_000, 800_000]
    seeds = min(args.seeds, 3) if args.quick else args.seeds
    out = {"d": d, "ns": ns, "widths": WIDTHS, "seeds": seeds, "angle_tol": ANGLE_TOL,
           "runs": {}}
    rows = []
    for n in ns:
        runs = []
        for seed in range(seeds):
            truth, X, y = _instance(d, n, seed)
            with Timer() as t:
                sub = filtered_pca(X, y)
            ang = float(principal_angles(sub.basis, truth.weights[0].T).max())
            runs.append({"seed": seed, "found": sub.n_found, "angle": ang,
                         "time": t.seconds})
            del X, y
        out["runs"][str(n)] = runs
        a = np.array([r["angle"] for r in runs])
        _progress(f"  d={d} n={n}: angles {np.round(a, 3)}")
        rows.append([d, n, seeds, int((a < ANGLE_TOL).sum()), float(np.median(a)),
                     float(np.median(a) * np.sqrt(n / d)),
                     float(np.median([r["time"] for r in runs]))])
    ok = [r[1] for r in rows if r[3] >= int(np.ceil(0.9 * seeds))]
    out["smallest_n_9_of_10"] = min(ok) if ok else None
    cols = ["d", "n", "seeds", "angle<0.1", "median angle", "angle x sqrt(n/d)", "median s"]
    out["table"] = {"columns": cols, "rows": rows}
    print_table(f"Filtered PCA alone, widths {WIDTHS}: angle against n (smallest n with "
                f"9 of 10 below {ANGLE_TOL}: {out['smallest_n_9_of_10']})", cols, rows)
    return out


def part_alternating(args) -> dict:
    d = 30 if args.quick else 100
    n = 100_000 if args.quick else args.n
    seeds = min(args.seeds, 2) if args.quick else min(args.seeds, 5)
    out = {"d": d, "n": n, "q": 4, "runs": []}
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng([7, d, seed])
        truth = alternating_network(d, 4, rng=rng)
        X = gaussian_inputs(n, d, rng=rng)
        y = truth.predict(X)
        plane = truth.weights[0].T
        with Timer() as tp:
            plain = plain_pca(X, y, rng=seed)
        with Timer() as tf:
            filt = filtered_pca(X, y)
        r = _one_learn(truth, X, y, seed, (8,), subspace=None)
        plain_angle = (float(principal_angles(plain.basis, plane).max())
                       if plain.n_found else None)
        row = {"seed": seed, "plain_found": plain.n_found,
               "plain_best_evidence": plain.diagnostics["best_ratio"],
               "plain_angle": plain_angle, "plain_time": tp.seconds,
               "filtered_found": filt.n_found,
               "filtered_evidence": filt.evidence,
               "filtered_angle": float(principal_angles(filt.basis, plane).max())
               if filt.n_found else None,
               "filtered_time": tf.seconds, "learn": r}
        out["runs"].append(row)
        _progress(f"  seed={seed}: plain {plain.n_found} found (best "
                  f"{row['plain_best_evidence']:.2f} x floor), filtered "
                  f"{filt.n_found} found, angle {row['filtered_angle']}, held-out "
                  f"{r['heldout_error']:.2e}")
        rows.append([seed, plain.n_found, row["plain_best_evidence"], filt.n_found,
                     row["filtered_angle"], float(filt.evidence.min()) if filt.n_found
                     else None, r["heldout_error"], r["time"]])
    cols = ["seed", "plain found", "plain best/floor", "filtered found",
            "filtered angle", "filtered min evidence", "learn held-out", "learn s"]
    out["table"] = {"columns": cols, "rows": rows}
    print_table(f"Alternating instance (q = 4, 8 units), d = {d}, n = {n} "
                "[acceptance 3]", cols, rows)
    return out


def part_scaling(args) -> dict:
    dims = [20, 40, 80] if args.quick else [50, 100, 200, 500, 1000]
    n = 50_000 if args.quick else args.n
    out = {"n": n, "widths": WIDTHS, "runs": []}
    rows = []
    for d in dims:
        truth, X, y = _instance(d, n, 0, tag=8)
        one_pass = pass_time(X, truth.weights[0])
        with Timer() as tp:
            sub = filtered_pca(X, y)
        r = _one_learn(truth, X, y, 0, WIDTHS)
        run = {"d": d, "pass_time": one_pass, "pca_time": tp.seconds,
               "pca_angle": float(principal_angles(sub.basis, truth.weights[0].T).max()),
               "learn": r}
        out["runs"].append(run)
        _progress(f"  d={d}: pass {one_pass:.3f}s, pca {tp.seconds:.2f}s, learn "
                  f"{r['time']:.1f}s, held-out {r['heldout_error']:.1e}")
        rows.append([d, n, one_pass, tp.seconds, tp.seconds / one_pass, r["time"],
                     r["time"] / one_pass, r["heldout_error"]])
        del X, y
    ds = np.log([r["d"] for r in out["runs"]])
    slopes = {
        "pca": float(np.polyfit(ds, np.log([r["pca_time"] for r in out["runs"]]), 1)[0]),
        "learn": float(np.polyfit(ds, np.log([r["learn"]["time"] for r in out["runs"]]),
                                  1)[0]),
        "pass": float(np.polyfit(ds, np.log([r["pass_time"] for r in out["runs"]]), 1)[0]),
    }
    out["loglog_slopes"] = slopes
    cols = ["d", "n", "pass s", "PCA s", "PCA / pass", "learn s", "learn / pass",
            "held-out"]
    out["table"] = {"columns": cols, "rows": rows}
    print_table(f"Scaling in d (widths {WIDTHS}, n = {n}) [acceptance 4]; log-log "
                f"slopes: PCA {slopes['pca']:.2f}, learn {slopes['learn']:.2f}, "
                f"pass {slopes['pass']:.2f}", cols, rows)
    _plot_scaling(out, _name("scaling", args.quick))
    return out


def _plot_scaling(out, name):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        return
    d = [r["d"] for r in out["runs"]]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.loglog(d, [r["learn"]["time"] for r in out["runs"]], "o-", label="learn_deep (all)")
    ax.loglog(d, [r["pca_time"] for r in out["runs"]], "s-", label="filtered PCA")
    ax.loglog(d, [r["pass_time"] for r in out["runs"]], "^-", label="one pass X @ W1.T")
    ref = np.array(d, dtype=float)
    ax.loglog(d, ref / ref[0] * out["runs"][0]["pca_time"], "k:", label="slope 1")
    ax.set_xlabel("d")
    ax.set_ylabel("seconds")
    ax.set_title(f"Deep (4, 4), n = {out['n']:.0e}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    out["plot"] = str(path.relative_to(RESULTS.parent.parent))


def _adam_heldout(X, y, widths, seed, budget, n_ho, args):
    """Adam on the full architecture, scored by held-out relative square error."""
    from relurecover.baselines import fit_adam

    X_tr, y_tr, X_ho, y_ho = X[n_ho:], y[n_ho:], X[:n_ho], y[:n_ho]
    den = float((y_ho**2).sum())

    def heldout(net):
        return float(((net.predict(X_ho) - y_ho) ** 2).sum() / den)

    res = fit_adam(X_tr, y_tr, list(widths), rng=seed, restarts=5,
                   steps=10**9 if not args.quick else 2000, time_limit=budget,
                   tune_steps=1000 if not args.quick else 200, eval_fn=heldout,
                   eval_every=500 if not args.quick else 200, target=HELDOUT_TOL,
                   stop_at_target=False)
    return {"heldout_error": heldout(res.network), "best_heldout_seen":
            min((h[2] for h in res.history), default=None), "time": res.time,
            "steps": res.steps, "restarts": res.restarts, "lr": res.lr,
            "reached": res.reached_target, "time_to_target": res.time_to_target,
            "restart_losses": res.restart_losses}


def part_adam(args) -> dict:
    n = 50_000 if args.quick else args.n
    seeds = 1 if args.quick else min(args.seeds, 3)
    fams = [("deep (4, 4)", 30 if args.quick else 50, None)] + [
        (f"alternating q={q}", 30 if args.quick else 100, q) for q in (4, 6)]
    out = {"n": n, "adam_factor": args.adam_factor, "runs": []}
    rows = []
    for fam, d, q in fams:
        for seed in range(seeds):
            if q is None:
                truth, X, y = _instance(d, n, seed)
                widths = WIDTHS
            else:
                rng = np.random.default_rng([9, d, q, seed])
                truth = alternating_network(d, q, rng=rng)
                X = gaussian_inputs(n, d, rng=rng)
                y = truth.predict(X)
                widths = (2 * q,)
            ours = _one_learn(truth, X, y, seed, widths)
            budget = max(args.adam_factor * ours["time"], 30.0)
            n_ho = min(int(0.1 * n), 50_000)
            adam = _adam_heldout(X, y, widths, seed, budget, n_ho, args)
            run = {"family": fam, "d": d, "seed": seed, "widths": widths, "ours": ours,
                   "adam": adam, "adam_budget": budget}
            out["runs"].append(run)
            _progress(f"  {fam} d={d} seed={seed}: ours held-out "
                      f"{ours['heldout_error']:.2e} in {ours['time']:.1f}s; Adam "
                      f"{adam['heldout_error']:.2e} in {adam['time']:.1f}s")
            rows.append([fam, d, seed, ours["heldout_error"], ours["time"],
                         adam["heldout_error"], adam["best_heldout_seen"],
                         adam["time_to_target"], adam["time"], adam["restarts"]])
    cols = ["family", "d", "seed", "ours held-out", "ours s", "Adam held-out",
            "Adam best seen", "Adam s to 1e-3", "Adam s", "Adam restarts"]
    out["table"] = {"columns": cols, "rows": rows}
    print_table(f"learn_deep against Adam (5 restarts, budget {args.adam_factor} x ours, "
                f"at least 30 s), n = {n} [acceptance 5]", cols, rows)
    return out


def part_widths_unknown(args) -> dict:
    """Issue 13, acceptance 1: ``learn_deep(X, y)`` without widths (the search, 5.5)."""
    n = 50_000 if args.quick else args.n
    seeds = min(args.seeds, 2) if args.quick else args.seeds
    families = [("blind plane, 12 units, d=60", None, 60), ("depth 3 (4, 4), d=50", (4, 4), 50),
                ("depth 3 (4, 4), d=200", (4, 4), 200), ("depth 3 (3, 3), d=80", (3, 3), 80)]
    if args.quick:
        families = families[:2]
    out = {"n": n, "seeds": seeds, "heldout_tol": HELDOUT_TOL, "runs": {}}
    chosen = families
    if args.families:  # run only these (0-based) and keep the stored runs of the rest
        stored = read_json(_name("widths-unknown", args.quick)) or {}
        out["runs"] = stored.get("runs", {})
        then = (stored.get("environment") or {}).get("commit")
        for runs in out["runs"].values():  # runs stored before runs named their commit
            for r in runs:
                r.setdefault("commit", then)
        chosen = [families[int(i)] for i in args.families.split(",")]
    rows = []
    for name, widths, d in families:
        runs = out["runs"].get(name, [])
        if (name, widths, d) not in chosen:
            if runs:
                rows.append(_widths_row(name, n, runs))
            continue
        done = {r["seed"] for r in runs}
        for seed in range(seeds):
            if seed in done:
                continue
            if widths is None:
                truth = alternating_network(d, 6, rng=np.random.default_rng([13, d, seed]))
            else:
                truth = DeepNetwork.random(d, list(widths),
                                           rng=np.random.default_rng([13, d, seed]))
            X = gaussian_inputs(n, d, rng=np.random.default_rng([13, d, seed, n]))
            y = truth.predict(X)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Timer() as t:
                    fit = learn_deep(X, y, rng=seed)
            archs = [a for r in fit.diagnostics["rounds"] for a in r["architectures"]]
            runs.append({"seed": seed, "heldout_error": fit.heldout_error,
                         "widths_found": list(fit.widths), "architectures": archs,
                         "subspace_dim": fit.subspace.n_found, "time": t.seconds,
                         "commit": git_commit()})
            _progress(f"  {name} seed={seed}: held-out {fit.heldout_error:.2e}, widths "
                      f"{fit.widths}, {len(archs)} architectures, {t.seconds:.1f}s")
            out["runs"][name] = runs
            write_json(_name("widths-unknown", args.quick), {"part": "widths-unknown",
                                                             "quick": args.quick, **out})
        rows.append(_widths_row(name, n, runs))
    cols = ["family", "n", "seeds", "held-out<=1e-3", "median held-out", "widths found",
            "median s"]
    out["table"] = {"columns": cols, "rows": rows}
    print_table("learn_deep without widths: the architecture search", cols, rows)
    return out


def _widths_row(name, n, runs):
    he = np.array([r["heldout_error"] for r in runs])
    found = sorted({tuple(r["widths_found"]) for r in runs})
    return [name, n, len(runs), int((he <= HELDOUT_TOL).sum()), float(np.median(he)),
            ", ".join(map(str, found)), float(np.median([r["time"] for r in runs]))]


def part_biases(args) -> dict:
    """Issue 13, acceptance 2: depth 3, (4, 4), d = 50, biases in every layer."""
    n = 50_000 if args.quick else args.n
    seeds = min(args.seeds, 2) if args.quick else args.seeds
    d = 50
    out = {"n": n, "d": d, "widths": WIDTHS, "seeds": seeds, "heldout_tol": HELDOUT_TOL,
           "runs": []}
    for seed in range(seeds):
        truth, X, y = _biased_instance(d, n, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Timer() as t:
                fit = learn_deep(X, y, list(WIDTHS), rng=seed, biases=True)
        out["runs"].append({"seed": seed, "heldout_error": fit.heldout_error,
                            "time": t.seconds})
        _progress(f"  biases seed={seed}: held-out {fit.heldout_error:.2e}, {t.seconds:.1f}s")
        write_json(_name("biases", args.quick), {"part": "biases", "quick": args.quick,
                                                 **out})
    he = np.array([r["heldout_error"] for r in out["runs"]])
    cols = ["d", "n", "seeds", "held-out<=1e-3", "median held-out", "median s"]
    rows = [[d, n, seeds, int((he <= HELDOUT_TOL).sum()), float(np.median(he)),
             float(np.median([r["time"] for r in out["runs"]]))]]
    out["table"] = {"columns": cols, "rows": rows}
    print_table("learn_deep(biases=True), depth 3 (4, 4), biases in every layer", cols, rows)
    return out


def _biased_instance(d: int, n: int, seed: int):
    """Depth 3, (4, 4), biases ``N(0, 0.5^2) ||row||`` in every layer (part biases)."""
    rng = np.random.default_rng([13, 2, d, seed])
    base = DeepNetwork.random(d, list(WIDTHS), rng=rng)
    biases = [0.5 * rng.standard_normal(W.shape[0]) * np.linalg.norm(W, axis=1)
              for W in base.weights]
    truth = DeepNetwork(base.weights, biases)
    X = gaussian_inputs(n, d, rng=np.random.default_rng([13, 2, d, seed, n]))
    return truth, X, truth.predict(X)


def part_engines(args) -> dict:
    """The two engines of the fits (numpy + SciPy, PyTorch) on the same instances.

    Depth 3, (4, 4), widths given, d = 50 and 200 (the instances of ``subspace``), and
    d = 50 with biases (those of ``biases``), n = 2e5, ``min(--seeds, 5)`` seeds:
    held-out error, seconds and passes of ``X @ W_1^T`` (measured on the same data).
    Issue 13 acceptance 3 (median at most 250 passes at d = 200) and 4 (torch-free).
    """
    n = 50_000 if args.quick else args.n
    seeds = min(args.seeds, 2) if args.quick else min(args.seeds, 5)
    engines = ["numpy", "torch"]
    families = [("(4, 4)", 50, False), ("(4, 4)", 200, False),
                ("(4, 4), biases", 50, True)]
    out = {"n": n, "seeds": seeds, "engines": engines, "heldout_tol": HELDOUT_TOL,
           "runs": []}
    rows = []
    for label, d, biased in families:
        for seed in range(seeds):
            truth, X, y = _biased_instance(d, n, seed) if biased else _instance(d, n, seed)
            one_pass = pass_time(X, truth.weights[0])
            for eng in engines:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    with Timer() as t:
                        fit = learn_deep(X, y, list(WIDTHS), rng=seed, engine=eng,
                                         biases=biased)
                run = {"family": label, "d": d, "seed": seed, "engine": eng,
                       "heldout_error": fit.heldout_error, "time": t.seconds,
                       "pass_time": one_pass, "passes": t.seconds / one_pass,
                       "timings": fit.timings}
                out["runs"].append(run)
                _progress(f"  {label} d={d} seed={seed} {eng}: held-out "
                          f"{fit.heldout_error:.2e}, {t.seconds:.1f}s = "
                          f"{run['passes']:.0f} passes")
                write_json(_name("engines", args.quick), {"part": "engines",
                                                          "quick": args.quick, **out})
        for eng in engines:
            rs = [r for r in out["runs"] if r["family"] == label and r["d"] == d
                  and r["engine"] == eng]
            he = np.array([r["heldout_error"] for r in rs])
            rows.append([label, d, eng, len(rs), int((he <= HELDOUT_TOL).sum()),
                         float(np.median(he)), float(he.max()),
                         float(np.median([r["time"] for r in rs])),
                         float(np.median([r["passes"] for r in rs]))])
    cols = ["family", "d", "engine", "seeds", "held-out<=1e-3", "median held-out",
            "worst held-out", "median s", "median passes"]
    out["table"] = {"columns": cols, "rows": rows}
    print_table("learn_deep: the numpy engine against the torch engine", cols, rows)
    return out


PARTS = {"subspace": part_subspace, "pca-samples": part_pca_samples,
         "biases": part_biases,
         "widths-unknown": part_widths_unknown,
         "alternating": part_alternating,
         "scaling": part_scaling, "adam": part_adam, "engines": part_engines}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=[*PARTS, "all"], default="all")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--adam-factor", type=float, default=3.0,
                   help="Adam's time budget as a multiple of learn_deep's time")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--families", default=None,
                   help="widths-unknown: run only these families (0-based, e.g. 2,3) and "
                   "the seeds they lack, keeping the stored runs")
    args = p.parse_args(argv)
    for part in (PARTS if args.part == "all" else [args.part]):
        _progress(f"part {part}")
        data = PARTS[part](args)
        path = write_json(_name(part, args.quick), {"part": part, "quick": args.quick,
                                                     **data})
        _progress(f"  -> {path}")


if __name__ == "__main__":
    main()
