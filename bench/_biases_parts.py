"""The parts of ``bench/biases.py`` (biases, docs/algorithms.md 6); that file only dispatches.

Each part is ``fn(args)`` (``args.quick``, ``args.seeds``, ``args.full_levels``):
it prints its table and stores its results under ``parts[<part>]`` of
``bench/results/biases[_quick].json``, after every setting, keeping the other
parts already stored there.
"""

from __future__ import annotations

import math
import traceback
import warnings

import numpy as np
from _common import Timer, environment, pass_time, print_table, read_json, write_json

from relurecover import TwoLayerNetwork, compare, gaussian_inputs, recover_two_layer
from relurecover._linalg import row_span
from relurecover.instances import input_family

#: a run is exact when ``.exact`` and ``compare(...).max_error <= EXACT_TOL``
EXACT_TOL = 1e-9
#: instances depend only on (TAG, part number, shape, seed[, n]): they differ from
#: the other benchmarks' and are reproducible one by one (6: docs/algorithms.md 6)
TAG = 6
PLANTED_SIZES = [(20, 5, 6), (50, 10, 12), (100, 20, 25)]
LARGE_SIZES = [(100, 20, 25), (20, 5, 6)]  # the first has the acceptance
SWEEP_RATIOS = [4.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0, 30.0, 40.0]
QUICK_SWEEP_RATIOS = [4.0, 8.0, 16.0]
NOISY_NS = [10_000, 30_000, 100_000, 300_000, 1_000_000]
QUICK_NOISY_NS = [10_000, 30_000]
NOISE_LEVEL = 0.1


# --- storage and one recovery ---------------------------------------------------------


def result_name(quick: bool) -> str:
    return "biases_quick" if quick else "biases"


def store(args, part: str, data: dict) -> None:
    """Put ``data`` under ``parts[part]`` of the JSON, keeping the other parts stored."""
    name = result_name(args.quick)
    old = read_json(name) or {}
    parts = old.get("parts", {})
    parts[part] = data
    write_json(name, {"quick": bool(args.quick), "exact_tol": EXACT_TOL,
                      "parts": {p: parts[p] for p in sorted(parts)}})


def seeds_of(args, full: int, quick: int) -> int:
    return args.seeds or (quick if args.quick else full)


def need_of(seeds: int, rate: float) -> int:
    """Runs needed out of ``seeds`` for a rate (19/20 -> 0.95)."""
    return math.ceil(rate * seeds - 1e-9)


def verdict(count: int, need: int, *, at_least: bool = True) -> str:
    ok = count >= need if at_least else count <= need
    return f"{'yes' if ok else 'NO'}"


def first_words(message: str, n: int = 4) -> str:
    return " ".join(message.split()[:n])


def _projected(net, Q):
    """``net`` with ``V`` projected on the span ``Q`` (the same function on data in that span)."""
    if net is None or Q is None:
        return net
    return TwoLayerNetwork(net.U, net.V @ Q @ Q.T, activation=net.activation, b=net.b, c=net.c)


def run_recovery(X, Y, truth, seed, *, Q=None, **kw):
    """One ``recover_two_layer(X, Y, rng=seed, **kw)``, timed, scored, crash-proof.

    Returns ``(record, recovery)``; a crash gives a failed record (method
    ``"crash"``, the traceback's last line as message) and recovery None. With
    ``Q``, both networks are compared after projecting ``V`` on that span.
    """
    rec = {"seed": int(seed), "n": int(X.shape[0])}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = Timer()
        try:
            with t:
                res = recover_two_layer(X, Y, rng=seed, **kw)
        except Exception:  # noqa: BLE001 - recorded, the run goes on
            last = traceback.format_exc().strip().splitlines()[-1]
            rec.update(exact=False, success=False, false_certificate=False,
                       max_error=float("inf"), error=float("inf"), b_error=None,
                       c_error=None, certificate=float("inf"), n_found=0, n_hidden=None,
                       time=t.seconds, method="crash", message=f"crash: {last}"[:200],
                       mentions_not_identifiable=False, crashed=True)
            return rec, None
    rec.update(exact=bool(res.exact), certificate=float(res.certificate),
               n_found=int(res.n_found), n_hidden=int(res.n_hidden), time=t.seconds,
               method=res.method, message=res.message[:200],
               mentions_not_identifiable="not identifiable" in res.message,
               auto=str(res.diagnostics.get("auto", ""))[:300],
               warnings=sorted({type(w.message).__name__ for w in caught}))
    for key in ("rarely_active_rows", "always_active_rank"):
        if key in res.diagnostics:
            rec[key] = res.diagnostics[key]
    if truth is None or res.network is None:
        rec.update(max_error=float("inf"), error=float("inf"), b_error=None, c_error=None)
    else:
        c = compare(_projected(res.network, Q), _projected(truth, Q))
        rec.update(max_error=float(c.max_error), error=float(c.error),
                   b_error=float(c.b_error), c_error=float(c.c_error),
                   v_error=float(c.v_error), u_error=float(c.u_error))
    rec["success"] = bool(rec["exact"] and rec["max_error"] <= EXACT_TOL)
    rec["false_certificate"] = bool(rec["exact"] and rec["max_error"] > EXACT_TOL)
    return rec, res


def _progress(label: str, rec: dict) -> None:
    print(f"  {label} seed={rec['seed']:>2}: exact={rec['exact']} err={rec['max_error']:.2e} "
          f"{rec['time']:.2f}s [{rec['method']}]", flush=True)


def _max(values):
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return max(vals) if vals else None


def _median(values):
    return float(np.median(values)) if len(values) else None


def active_counts(X, net) -> np.ndarray:
    """Samples on which each unit of ``net`` is active (``v_i . x + b_i > 0``)."""
    return np.count_nonzero(X @ net.V.T + net.b > 0, axis=0)


def missed_units(found, truth, tol: float = 1e-6) -> list[int]:
    """True units with no found unit within ``tol`` (rows of ``[V, b]`` normalised)."""
    T = np.hstack([truth.V, truth.b[:, None]])
    T /= np.linalg.norm(T, axis=1, keepdims=True)
    if found is None or found.V.shape[0] == 0:
        return list(range(T.shape[0]))
    F = np.hstack([found.V, found.b[:, None]])
    F /= np.maximum(np.linalg.norm(F, axis=1, keepdims=True), 1e-300)
    dist = np.linalg.norm(T[:, None] - F[None], axis=2).min(axis=1)
    return [int(i) for i in np.flatnonzero(dist > tol)]


def _planted(d, k, m, n, key, *, bias_scale=0.5):
    truth = TwoLayerNetwork.random(d, k, m, bias_scale=bias_scale,
                                   rng=np.random.default_rng([TAG, *key, d, k, m]))
    X = gaussian_inputs(n, d, rng=np.random.default_rng([TAG, *key, d, k, m, n]))
    return truth, X


# --- part 1: planted biases vs bias-free --------------------------------------------


def part_planted(args) -> None:
    """>= 19/20 exact per size with b_i ~ N(0, 0.25) ||v_i||; time <= 2 x bias-free."""
    sizes = PLANTED_SIZES[:1] if args.quick else PLANTED_SIZES
    seeds = seeds_of(args, 20, 3)
    need = need_of(seeds, 0.95)
    out = {"environment": environment(), "complete": False, "seeds": seeds, "need": need,
           "bias_scale": 0.5, "sizes": {}}
    for d, k, m in sizes:
        n = 10 * d * k
        per = {"biased": [], "bias_free": []}
        p_time = None
        for seed in range(seeds):
            for kind, scale in (("biased", 0.5), ("bias_free", 0.0)):
                # same key: the bias-free net has the same V and U, and the same X
                truth, X = _planted(d, k, m, n, (1, seed), bias_scale=scale)
                if p_time is None:
                    p_time = pass_time(X, truth.V)
                rec, _ = run_recovery(X, truth.predict(X), truth, seed)
                per[kind].append(rec)
                _progress(f"planted {d},{k},{m} {kind:>9}", rec)
        bi, bf = per["biased"], per["bias_free"]
        t_b, t_f = _median([r["time"] for r in bi]), _median([r["time"] for r in bf])
        summ = {
            "d": d, "k": k, "m": m, "n": n, "seeds": seeds,
            "exact": sum(r["success"] for r in bi),
            "exact_flag_only": sum(r["exact"] for r in bi),
            "false_certificates": sum(r["false_certificate"] for r in bi + bf),
            "max_b_error": _max([r["b_error"] for r in bi]),
            "max_c_error": _max([r["c_error"] for r in bi]),
            "max_error_of_exact": _max([r["max_error"] for r in bi if r["success"]]),
            "median_time": t_b, "bias_free_exact": sum(r["success"] for r in bf),
            "bias_free_median_time": t_f, "time_ratio": t_b / t_f,
            "pass_time": p_time, "median_passes": t_b / p_time,
            "bias_free_median_passes": t_f / p_time,
            "methods": sorted({r["method"] for r in bi}),
        }
        summ["acceptance"] = bool(summ["exact"] >= need and summ["time_ratio"] <= 2)
        out["sizes"][f"{d},{k},{m}"] = {"summary": summ, "runs": per}
        store(args, "planted", out)
    out["complete"] = True
    out["summary"] = {s: v["summary"] for s, v in out["sizes"].items()}
    store(args, "planted", out)
    rows = []
    for s, v in out["sizes"].items():
        su = v["summary"]
        rows.append([s, su["n"], f"{su['exact']}/{seeds} >= {need}: "
                     f"{verdict(su['exact'], need)}", su["max_b_error"], su["max_c_error"],
                     su["median_time"], f"{su['bias_free_exact']}/{seeds}",
                     su["bias_free_median_time"],
                     f"{su['time_ratio']:.2f} <= 2: {'yes' if su['time_ratio'] <= 2 else 'NO'}",
                     su["pass_time"] * 1e3, su["median_passes"], su["bias_free_median_passes"],
                     su["false_certificates"], su["acceptance"]])
    print_table("1. planted biases b_i ~ N(0, 0.5^2)||v_i||, c ~ N(0, 1), Gaussian inputs, "
                "n = 10 d k (exact: .exact and max_error <= 1e-9)",
                ["d,k,m", "n", "exact (biased)", "max b_err", "max c_err", "median s",
                 "bias-free exact", "bias-free s", "ratio", "pass ms", "passes",
                 "bias-free passes", "false cert", "pass"], rows)


# --- part 2: large biases, rare units, samples ------------------------------------------


def _large_instance(d, k, m, n, seed):
    g = np.random.default_rng([TAG, 2, d, k, m, seed])
    net = TwoLayerNetwork.random(d, k, m, bias_scale=0.5, rng=g)
    beta = g.uniform(-2.5, 2.5, k)
    truth = TwoLayerNetwork(net.U, net.V, b=beta * np.linalg.norm(net.V, axis=1), c=net.c)
    X = gaussian_inputs(n, d, rng=np.random.default_rng([TAG, 2, d, k, m, seed, n]))
    return truth, X


def part_large_biases(args) -> None:
    """|b_i| up to 2.5 ||v_i||: >= 18/20 exact at (100, 20, 25), never a false certificate."""
    sizes = LARGE_SIZES[1:] if args.quick else LARGE_SIZES
    seeds = seeds_of(args, 20, 3)
    need = need_of(seeds, 0.9)
    out = {"environment": environment(), "complete": False, "seeds": seeds, "need": need,
           "beta_range": [-2.5, 2.5], "acceptance_size": "100,20,25",
           "rare": "a unit active on fewer than d + 1 samples",
           "nearly_always": "a unit inactive on fewer than d + 1 samples",
           "honest": "not exact, and the message mentions 'not identifiable' or "
                     "diagnostics has rarely_active_rows", "sizes": {}}
    for d, k, m in sizes:
        n = 10 * d * k
        runs = []
        for seed in range(seeds):
            truth, X = _large_instance(d, k, m, n, seed)
            act = active_counts(X, truth)
            rec, res = run_recovery(X, truth.predict(X), truth, seed)
            rec.update(active_counts=act, active_fraction_min=act.min() / n,
                       active_fraction_max=act.max() / n,
                       rare_unit=bool((act < d + 1).any()),
                       nearly_always_unit=bool((n - act < d + 1).any()))
            if not rec["success"]:
                miss = missed_units(res.network if res is not None else None, truth)
                rec["missed_units_active_counts"] = [int(act[i]) for i in miss]
                rec["specific_diagnosis"] = bool("rarely_active_rows" in rec
                                                 or "always_active_rank" in rec)
                rec["honest"] = bool(not rec["exact"] and (
                    rec.get("mentions_not_identifiable") or "rarely_active_rows" in rec))
            runs.append(rec)
            _progress(f"large-biases {d},{k},{m} act {act.min()}..{act.max()}/{n}", rec)
            out["sizes"][f"{d},{k},{m}"] = {"runs": runs}
            store(args, "large-biases", out)
        bad = [r for r in runs if not r["success"]]
        summ = {
            "d": d, "k": k, "m": m, "n": n, "seeds": seeds,
            "exact": sum(r["success"] for r in runs),
            "false_certificates": sum(r["false_certificate"] for r in runs),
            "median_time": _median([r["time"] for r in runs]),
            "active_fraction_min": min(r["active_fraction_min"] for r in runs),
            "active_fraction_max": max(r["active_fraction_max"] for r in runs),
            "runs_with_rare_unit": sum(r["rare_unit"] for r in runs),
            "not_exact": len(bad),
            "not_exact_with_rare_unit": sum(r["rare_unit"] for r in bad),
            "not_exact_with_nearly_always_unit": sum(r["nearly_always_unit"] for r in bad),
            "not_exact_honest": sum(r["honest"] for r in bad),
            "not_exact_specific_diagnosis": sum(r["specific_diagnosis"] for r in bad),
            "not_exact_without_rare_or_nearly_always_unit": sum(
                not (r["rare_unit"] or r["nearly_always_unit"]) for r in bad),
            "not_exact_seeds": [r["seed"] for r in bad],
            "methods": {meth: sum(r["method"] == meth for r in runs)
                        for meth in sorted({r["method"] for r in runs})},
        }
        summ["acceptance"] = bool(summ["exact"] >= need and summ["false_certificates"] == 0)
        out["sizes"][f"{d},{k},{m}"] = {"summary": summ, "runs": runs}
        store(args, "large-biases", out)
    out["sweep"] = _sweep(args, out)
    out["complete"] = True
    out["summary"] = {**{s: v["summary"] for s, v in out["sizes"].items()},
                      "sweep": {key: val for key, val in out["sweep"].items()
                                if key != "levels"}}
    store(args, "large-biases", out)
    rows = []
    for s, v in out["sizes"].items():
        su = v["summary"]
        tag = "" if s == out["acceptance_size"] else " (info)"
        frac = f"{su['active_fraction_min']:.4f}..{su['active_fraction_max']:.4f}"
        rows.append([s, su["n"], frac,
                     f"{su['exact']}/{seeds} >= {need}: {verdict(su['exact'], need)}{tag}",
                     su["false_certificates"], su["not_exact"], su["not_exact_with_rare_unit"],
                     su["not_exact_with_nearly_always_unit"], su["not_exact_honest"],
                     su["not_exact_specific_diagnosis"],
                     su["not_exact_without_rare_or_nearly_always_unit"], su["median_time"],
                     ",".join(f"{a}:{b}" for a, b in su["methods"].items()),
                     su["acceptance"] if not tag else "-"])
    print_table("2a. large biases b_i = beta_i ||v_i||, beta_i ~ U[-2.5, 2.5], n = 10 d k "
                "(rare: active on < d+1 samples; always: inactive on < d+1)",
                ["d,k,m", "n", "active frac", "exact", "false cert", "not exact", "with rare",
                 "with always", "honest", "specific", "unexplained", "median s", "methods",
                 "pass"], rows)
    sw = out["sweep"]
    rows = [[lv["n"], lv["n_over_d"], f"{lv['successes']}/{lv['seeds_run']} ({seeds})",
             lv["pass"], lv["median_time"], ",".join(lv["methods"])] for lv in sw["levels"]]
    print_table(f"2b. samples sweep at {sw['size']}, b_i ~ N(0, 0.5^2)||v_i||: smallest n "
                f"with >= {sw['need']}/{sw['seeds']} exact = "
                f"{'-' if sw['smallest_n'] is None else sw['smallest_n']} "
                f"({'-' if sw['smallest_n_over_d'] is None else sw['smallest_n_over_d']} d); "
                f"bias-free (stored, {sw['bias_free_size'] or '-'}): "
                f"{'-' if sw['bias_free_n_over_d'] is None else sw['bias_free_n_over_d']} d",
                ["n", "n/d", "exact/run (seeds)", ">= 95%", "median s", "methods"], rows)


def _sweep(args, out) -> dict:
    d, k, m = (20, 5, 6) if args.quick else (100, 20, 25)
    seeds = seeds_of(args, 20, 3)
    need = need_of(seeds, 0.95)
    stored = read_json("exact_recovery_samples") or {}
    free = stored.get("exact_smallest_n_over_d")
    free_size = (f"{stored['d']},{stored['k']},{stored['m']}"
                 if all(key in stored for key in "dkm") else None)
    sw = {"size": f"{d},{k},{m}", "seeds": seeds, "need": need, "bias_scale": 0.5,
          "early_abort": not args.full_levels, "bias_free_n_over_d": free,
          "bias_free_size": free_size,
          "bias_free_source": "bench/results/exact_recovery_samples.json "
                              "(exact_smallest_n_over_d)", "levels": []}
    for ratio in QUICK_SWEEP_RATIOS if args.quick else SWEEP_RATIOS:
        n = int(round(ratio * d))
        runs = []
        for seed in range(seeds):
            truth, X = _planted(d, k, m, n, (3, seed))
            act = active_counts(X, truth)
            rec, _ = run_recovery(X, truth.predict(X), truth, seed)
            rec["min_active"] = int(act.min())
            runs.append(rec)
            _progress(f"sweep n={n} ({ratio:g} d) min active {act.min()}", rec)
            if not args.full_levels and len(runs) - sum(r["success"] for r in runs) > seeds - need:
                break  # 95% is out of reach at this n
        wins = sum(r["success"] for r in runs)
        sw["levels"].append({
            "n": n, "n_over_d": ratio, "successes": wins, "seeds_run": len(runs),
            "pass": wins >= need, "median_time": _median([r["time"] for r in runs]),
            "false_certificates": sum(r["false_certificate"] for r in runs),
            "methods": sorted({r["method"] for r in runs}), "runs": runs})
        passing = [lv for lv in sw["levels"] if lv["pass"]]
        sw["smallest_n"] = passing[0]["n"] if passing else None
        sw["smallest_n_over_d"] = passing[0]["n_over_d"] if passing else None
        first = sw["smallest_n"]
        sw["monotone_above"] = bool(first is not None and all(
            lv["pass"] for lv in sw["levels"] if lv["n"] >= first))
        sw["false_certificates"] = sum(lv["false_certificates"] for lv in sw["levels"])
        out["sweep"] = sw
        store(args, "large-biases", out)
    return sw


# --- part 3: other input laws --------------------------------------------------------


def _digits_standardised():
    from sklearn.datasets import load_digits

    X = np.asarray(load_digits().data, dtype=np.float64)
    sd = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)  # constant columns -> 0


def _identifiable(XQ1, active) -> bool:
    """Whether the rows where a unit is active, with a constant, span the data's r + 1 dims."""
    rows = XQ1[active]
    return rows.shape[0] >= XQ1.shape[1] and np.linalg.matrix_rank(rows) == XQ1.shape[1]


def _identifiable_on(X, truth, g, max_tries: int = 1000):
    """``truth`` with each unit not identifiable on ``X`` redrawn from the same law.

    ``v ~ N(0, I)``, ``b ~ N(0, 0.5^2) ||v||`` until the unit's active rows span the
    data (as ``relurecover.instances.planted_on``); returns the network and the redraws.
    """
    XQ1 = np.hstack([X @ row_span(X)[0], np.ones((X.shape[0], 1))])
    V, b = truth.V.copy(), truth.b.copy()
    redraws = 0
    for i in range(V.shape[0]):
        for _ in range(max_tries):
            if _identifiable(XQ1, X @ V[i] + b[i] > 0):
                break
            V[i] = g.standard_normal(V.shape[1])
            b[i] = 0.5 * g.standard_normal() * np.linalg.norm(V[i])
            redraws += 1
        else:
            raise RuntimeError(f"no identifiable unit in {max_tries} draws")
    return TwoLayerNetwork(truth.U, V, b=b, c=truth.c), redraws


#: name -> (input law, units redrawn until identifiable on the data, acceptance)
INPUT_SETTINGS = {"uniform": ("uniform", False, True), "student-t": ("student-t", False, True),
                  "digits": ("digits", True, True),
                  "digits (raw draw)": ("digits", False, False)}


def part_inputs(args) -> None:
    """Uniform, Student-t(3), standardised digits with planted biases: >= 19/20 exact each."""
    seeds = seeds_of(args, 20, 3)
    need = need_of(seeds, 0.95)
    out = {"environment": environment(), "complete": False, "seeds": seeds, "need": need,
           "bias_scale": 0.5, "method": "auto",
           "laws": {"uniform": "uniform on [-sqrt 3, sqrt 3]^d (unit variance)",
                    "student-t": "i.i.d. Student-t(3) coordinates, not rescaled (variance 3), "
                                 "as relurecover.instances.input_family",
                    "digits": "scikit-learn digits, 1797 x 64, columns centred and scaled to "
                              "unit variance, the 3 constant columns left at 0 (rows span 61 "
                              "dims; V compared after projection on that span); each unit "
                              "whose active rows (with a constant) span fewer than 62 dims "
                              "is redrawn from the same law (acceptance)",
                    "digits (raw draw)": "the same without redraws: most draws have a unit "
                                         "not identifiable on the data (informative: never "
                                         "exact is then the right answer)"},
           "families": {}}
    digits = _digits_standardised()
    rows = []
    for tag, (fam, (law, redraw, accept)) in enumerate(INPUT_SETTINGS.items()):
        d, k, m = (64, 5, 6) if law == "digits" else (20, 5, 6)
        runs = []
        for seed in range(seeds):
            g = np.random.default_rng([TAG, 3, 2 if law == "digits" else tag, seed])
            truth = TwoLayerNetwork.random(d, k, m, bias_scale=0.5, rng=g)
            X = digits if law == "digits" else input_family(law, 10 * d * k, d, rng=g)
            redraws = 0
            if redraw:
                truth, redraws = _identifiable_on(X, truth, g)
            Q = row_span(X)[0]
            XQ1 = np.hstack([X @ Q, np.ones((X.shape[0], 1))])
            act_mask = X @ truth.V.T + truth.b > 0
            rec, _ = run_recovery(X, truth.predict(X), truth, seed,
                                  Q=Q if Q.shape[1] < d else None)
            act = act_mask.sum(axis=0)
            rec.update(active_fraction_min=act.min() / X.shape[0],
                       active_fraction_max=act.max() / X.shape[0], redraws=redraws,
                       unidentifiable_units=sum(not _identifiable(XQ1, act_mask[:, i])
                                                for i in range(k)))
            runs.append(rec)
            _progress(f"inputs {fam}", rec)
            out["families"][fam] = {"runs": runs}
            store(args, "inputs", out)
        summ = {"n": int(X.shape[0]), "d": d, "k": k, "m": m, "data_rank": int(Q.shape[1]),
                "acceptance_applies": accept,
                "exact": sum(r["success"] for r in runs),
                "false_certificates": sum(r["false_certificate"] for r in runs),
                "median_error": _median([r["max_error"] for r in runs]),
                "max_b_error_of_exact": _max([r["b_error"] for r in runs if r["success"]]),
                "median_time": _median([r["time"] for r in runs]),
                "methods": {meth: sum(r["method"] == meth for r in runs)
                            for meth in sorted({r["method"] for r in runs})},
                "runs_with_unidentifiable_unit": sum(r["unidentifiable_units"] > 0
                                                     for r in runs),
                "redraws": sum(r["redraws"] for r in runs),
                "not_exact_seeds": [r["seed"] for r in runs if not r["success"]]}
        summ["acceptance"] = bool(summ["exact"] >= need and summ["false_certificates"] == 0)
        out["families"][fam] = {"summary": summ, "runs": runs}
        store(args, "inputs", out)
        rows.append([fam, f"{summ['n']}x{d} (r={summ['data_rank']})", f"{k},{m}",
                     f"{summ['exact']}/{seeds} >= {need}: {verdict(summ['exact'], need)}"
                     + ("" if accept else " (info)"),
                     summ["median_error"], summ["max_b_error_of_exact"], summ["median_time"],
                     ",".join(f"{a}:{b}" for a, b in summ["methods"].items()),
                     summ["runs_with_unidentifiable_unit"], summ["redraws"],
                     summ["false_certificates"], summ["acceptance"] if accept else "-"])
    out["complete"] = True
    out["summary"] = {f: v["summary"] for f, v in out["families"].items()}
    store(args, "inputs", out)
    print_table("3. other input laws, planted b_i ~ N(0, 0.5^2)||v_i||, method='auto', "
                "n = 10 d k (digits: all rows, standardised)",
                ["inputs", "n x d", "k,m", "exact", "median err", "max b_err", "median s",
                 "path ran", "runs w/ unident. unit", "redraws", "false cert", "pass"], rows)


# --- part 4: a network trained by scikit-learn -----------------------------------------


def part_mlp(args) -> None:
    """An MLPRegressor(8,) trained on digits, queried on Gaussian inputs: error <= 1e-9."""
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor
    from sklearn.preprocessing import StandardScaler

    seeds = seeds_of(args, 5, 1)
    max_iter = 500 if args.quick else 2000
    hidden = 8
    data = load_digits()
    Xtr = StandardScaler().fit_transform(data.data)
    T = np.eye(10)[data.target]
    d, m = Xtr.shape[1], T.shape[1]
    n = 20 * d * hidden
    out = {"environment": environment(), "complete": False, "seeds": seeds,
           "training": f"MLPRegressor(hidden_layer_sizes=({hidden},), activation='relu', "
                       f"solver='lbfgs', max_iter={max_iter}, random_state=seed) on "
                       "StandardScaler(digits), one-hot targets",
           "queries": f"x ~ N(0, I_{d}), n = 20 d k = {n}, labels mlp.predict(x)",
           "train_loss": "sklearn's loss_: squared error / 2 + alpha L2 penalty (alpha=1e-4)",
           "runs": []}
    for seed in range(seeds):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            with Timer() as tt:
                mlp = MLPRegressor(hidden_layer_sizes=(hidden,), activation="relu",
                                   solver="lbfgs", max_iter=max_iter,
                                   random_state=seed).fit(Xtr, T)
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        truth = TwoLayerNetwork(U=mlp.coefs_[1].T, V=mlp.coefs_[0].T, b=mlp.intercepts_[0],
                                c=mlp.intercepts_[1])
        Xq = gaussian_inputs(n, d, rng=np.random.default_rng([TAG, 4, seed]))
        Yq = mlp.predict(Xq)
        act = active_counts(Xq, truth)
        rec, _ = run_recovery(Xq, Yq, truth, seed)
        rec.update(train_loss=float(mlp.loss_), n_iter=int(mlp.n_iter_),
                   lbfgs_converged=converged, train_time=tt.seconds,
                   train_accuracy=float(np.mean(mlp.predict(Xtr).argmax(1) == data.target)),
                   truth_vs_predict=float(np.abs(truth.predict(Xq) - Yq).max()),
                   active_fractions=act / n, dead_units=int(np.sum(act == 0)),
                   always_active_units=int(np.sum(act == n)),
                   units_not_identifiable_on_queries=int(np.sum((act < d + 1)
                                                                | (n - act < d + 1))))
        out["runs"].append(rec)
        _progress(f"mlp loss={mlp.loss_:.4f} act {act.min() / n:.3f}..{act.max() / n:.3f}", rec)
        store(args, "mlp", out)
    runs = out["runs"]
    out["summary"] = {
        "seeds": seeds, "n": n, "exact": sum(r["success"] for r in runs),
        "max_error": _max([r["max_error"] for r in runs]),
        "max_b_error": _max([r["b_error"] for r in runs]),
        "max_c_error": _max([r["c_error"] for r in runs]),
        "median_time": _median([r["time"] for r in runs]),
        "median_train_loss": _median([r["train_loss"] for r in runs]),
        "runs_with_dead_or_always_active_unit": sum(
            r["dead_units"] + r["always_active_units"] > 0 for r in runs),
        "methods": sorted({r["method"] for r in runs}),
        "false_certificates": sum(r["false_certificate"] for r in runs)}
    out["summary"]["acceptance"] = bool(out["summary"]["exact"] == seeds)
    out["complete"] = True
    store(args, "mlp", out)
    rows = [[r["seed"], r["train_loss"], r["n_iter"], r["train_accuracy"],
             f"{min(r['active_fractions']):.3f}..{max(r['active_fractions']):.3f}",
             f"{r['dead_units']}/{r['always_active_units']}", r["exact"], r["max_error"],
             r["b_error"], r["c_error"], r["time"], r["method"],
             f"<= 1e-9: {'yes' if r['success'] else 'NO'}"] for r in runs]
    print_table(f"4. MLPRegressor({hidden},) trained on digits (lbfgs), queried on {n} "
                f"Gaussian inputs; exact {out['summary']['exact']}/{seeds}",
                ["seed", "train loss", "iters", "train acc", "active frac", "dead/always",
                 "exact", "max err", "b err", "c err", "time s", "path", "pass"], rows)


# --- part 5: noisy labels ---------------------------------------------------------------


def _slope(rows):
    if len(rows) < 2:
        return None
    return float(np.polyfit(np.log([r["n"] for r in rows]),
                            np.log([r["median_error"] for r in rows]), 1)[0])


def part_noisy(args) -> None:
    """Noise 0.1 std(Y): error / oracle <= 1.1 at every n; log-log slope -0.5 +- 0.1."""
    from relurecover.twolayer._noisy import refine_least_squares

    d, k, m = 20, 5, 8
    ns = QUICK_NOISY_NS if args.quick else NOISY_NS
    seeds = seeds_of(args, 3, 1)
    out = {"environment": environment(), "complete": False, "d": d, "k": k, "m": m,
           "bias_scale": 0.5, "level": NOISE_LEVEL, "seeds": seeds,
           "noise": "i.i.d. Gaussian, std level * Y.std() (overall std of the clean labels, "
                    "as bench/noisy_recovery.py)",
           "error": "compare(found, truth).error (max of the relative errors of V, U, b, c)",
           "oracle": "refine_least_squares from the true U, V, b, c on the same data",
           "ratio_acceptance": "median over seeds of error / oracle error <= 1.1 at every n",
           "levels": []}
    for n in ns:
        recs = []
        for seed in range(seeds):
            truth = TwoLayerNetwork.random(d, k, m, bias_scale=0.5,
                                           rng=np.random.default_rng([TAG, 5, seed]))
            X = gaussian_inputs(n, d, rng=np.random.default_rng([TAG, 5, seed, n]))
            Y = truth.predict(X)
            sigma = NOISE_LEVEL * float(Y.std())
            Y += sigma * np.random.default_rng([TAG, 5, seed, n, 1]).standard_normal(Y.shape)
            rec, res = run_recovery(X, Y, truth, seed)
            try:
                with Timer() as t:
                    orc = refine_least_squares(X, Y, truth.U, truth.V, truth.b, truth.c,
                                               rng=seed)
                co = compare(TwoLayerNetwork(orc.U, orc.V, b=orc.b, c=orc.c), truth)
                rec.update(oracle_error=float(co.error), oracle_time=t.seconds)
            except Exception:  # noqa: BLE001
                rec.update(oracle_error=float("nan"), oracle_time=float("nan"),
                           oracle_crash=traceback.format_exc().strip().splitlines()[-1])
            rec.update(ratio=rec["error"] / rec["oracle_error"], true_noise=sigma,
                       noise_level=None if res is None else res.noise_level,
                       estimated_error=None if res is None or res.standard_errors is None
                       else float(res.standard_errors.estimated_error))
            recs.append(rec)
            del X, Y
            print(f"  noisy n={n:>8} seed={seed}: err={rec['error']:.3e} "
                  f"oracle={rec['oracle_error']:.3e} ratio={rec['ratio']:.4f} "
                  f"{rec['time']:.2f}s [{rec['method']}]", flush=True)
        out["levels"].append({
            "n": n, "seeds": len(recs), "median_error": _median([r["error"] for r in recs]),
            "median_oracle_error": _median([r["oracle_error"] for r in recs]),
            "median_ratio": _median([r["ratio"] for r in recs]),
            "max_ratio": float(np.max([r["ratio"] for r in recs])),
            "median_time": _median([r["time"] for r in recs]),
            "median_oracle_time": _median([r["oracle_time"] for r in recs]),
            "median_estimated_error": _median([r["estimated_error"] for r in recs
                                               if r["estimated_error"] is not None]),
            "median_noise_ratio": _median([r["noise_level"] / r["true_noise"] for r in recs
                                           if r["noise_level"] is not None]),
            "methods": sorted({r["method"] for r in recs}), "runs": recs})
        out["slope"] = _slope(out["levels"])
        store(args, "noisy", out)
    lv = out["levels"]
    slope = out["slope"]
    ratio_ok = all(r["median_ratio"] <= 1.1 for r in lv)
    slope_ok = slope is not None and abs(slope + 0.5) <= 0.1
    out["summary"] = {"ns": ns, "seeds": seeds, "slope": slope, "slope_ok": slope_ok,
                      "max_median_ratio": max(r["median_ratio"] for r in lv),
                      "max_ratio": max(r["max_ratio"] for r in lv), "ratio_ok": ratio_ok,
                      "median_error_by_n": {r["n"]: r["median_error"] for r in lv},
                      "median_time_by_n": {r["n"]: r["median_time"] for r in lv},
                      "acceptance": bool(ratio_ok and slope_ok)}
    out["complete"] = True
    store(args, "noisy", out)
    print_table(f"5. noisy labels, (d,k,m)=({d},{k},{m}), b_i ~ N(0, 0.5^2)||v_i||, noise "
                f"{NOISE_LEVEL} x std(Y); log-log slope "
                f"{'-' if slope is None else format(slope, '.3f')} in [-0.6, -0.4]: "
                f"{'yes' if slope_ok else 'NO'}",
                ["n", "seeds", "median error", "oracle", "median ratio", "max ratio",
                 "est. error", "sigma_hat/sigma", "time s", "oracle s", "path",
                 "ratio <= 1.1"],
                [[r["n"], r["seeds"], r["median_error"], r["median_oracle_error"],
                  format(r["median_ratio"], ".4f"), format(r["max_ratio"], ".4f"),
                  r["median_estimated_error"],
                  None if r["median_noise_ratio"] is None else format(r["median_noise_ratio"],
                                                                      ".4f"),
                  r["median_time"], r["median_oracle_time"], ",".join(r["methods"]),
                  "yes" if r["median_ratio"] <= 1.1 else "NO"] for r in lv])


# --- part 6: labels of no biased ReLU network -------------------------------------------


def _near_labels(case, truth, X, g):
    T = X @ truth.V.T + truth.b
    if case == "leaky relu 0.01":
        return np.where(T > 0, T, 0.01 * T) @ truth.U.T + truth.c
    if case == "softplus beta=10":
        return np.logaddexp(0.0, 10.0 * T) / 10.0 @ truth.U.T + truth.c
    Y = truth.predict(X)
    return Y + 1e-8 * float(Y.std()) * g.standard_normal(Y.shape)


def part_false_certificates(args) -> None:
    """Labels near a biased ReLU network but of none: ``.exact`` True on 0 of 20 each."""
    d, k, m = 20, 5, 6
    n = 10 * d * k
    seeds = seeds_of(args, 20, 3)
    cases = ["leaky relu 0.01", "softplus beta=10", "relu + 1e-8 std noise"]
    out = {"environment": environment(), "complete": False, "d": d, "k": k, "m": m, "n": n,
           "seeds": seeds, "bias_scale": 0.5,
           "residual_when_exact": "||Y - net.predict(X)||_F / ||Y||_F recomputed here for "
                                  "runs that claim exact", "cases": {}}
    rows = []
    for ci, case in enumerate(cases):
        runs = []
        for seed in range(seeds):
            g = np.random.default_rng([TAG, 6, ci, seed])
            truth = TwoLayerNetwork.random(d, k, m, bias_scale=0.5, rng=g)
            X = gaussian_inputs(n, d, rng=g)
            Y = _near_labels(case, truth, X, g)
            rec, res = run_recovery(X, Y, None, seed)
            rec["first_words"] = first_words(rec["message"])
            if rec["exact"] and res is not None and res.network is not None:
                rec["residual_recomputed"] = float(np.linalg.norm(Y - res.network.predict(X))
                                                   / np.linalg.norm(Y))
            runs.append(rec)
            _progress(f"false-cert {case}", rec)
            out["cases"][case] = {"runs": runs}
            store(args, "false-certificates", out)
        certs = [r["certificate"] for r in runs]
        summ = {"runs": len(runs), "exact_true": sum(r["exact"] for r in runs),
                "min_certificate": float(np.min(certs)),
                "median_certificate": float(np.median(certs)),
                "first_words": {w: sum(r["first_words"] == w for r in runs)
                                for w in sorted({r["first_words"] for r in runs})},
                "methods": sorted({r["method"] for r in runs}),
                "median_time": _median([r["time"] for r in runs])}
        summ["acceptance"] = summ["exact_true"] == 0
        out["cases"][case] = {"summary": summ, "runs": runs}
        store(args, "false-certificates", out)
        rows.append([case, len(runs), f"{summ['exact_true']} == 0: "
                     f"{verdict(summ['exact_true'], 0, at_least=False)}",
                     summ["min_certificate"], summ["median_certificate"],
                     " | ".join(f"{w} ({c})" for w, c in summ["first_words"].items())[:60],
                     ",".join(summ["methods"]), summ["median_time"], summ["acceptance"]])
    out["complete"] = True
    out["summary"] = {c: v["summary"] for c, v in out["cases"].items()}
    store(args, "false-certificates", out)
    print_table(f"6. labels of no biased ReLU network, (d,k,m)=({d},{k},{m}), n = {n}: "
                ".exact must stay False", ["labels", "runs", "exact True", "min certificate",
                                           "median certificate", "message starts",
                                           "path", "median s", "pass"], rows)


PARTS = {"planted": part_planted, "large-biases": part_large_biases, "inputs": part_inputs,
         "mlp": part_mlp, "noisy": part_noisy, "false-certificates": part_false_certificates}
