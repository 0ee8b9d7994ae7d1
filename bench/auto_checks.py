"""Gaussian checks of ``method="auto"``: false rejections, power, cost (docs/algorithms.md 3.3).

Parts, in this order, each printing a table; everything goes to
``bench/results/auto_checks[_quick].json``, rewritten after every chunk of draws so
that a partial run leaves its numbers:

- ``cost``: ``twolayer._auto.gaussian_checks`` on ``X`` of shape ``(2e5, 1000)``
  against one pass ``X @ V.T`` with ``V`` of shape ``(50, 1000)`` (the unit of cost).
- ``families``: the non-Gaussian families of ``relurecover.instances.input_family``
  ("uniform", "student-t", "sparse-nonnegative", "heavy-tailed") at d = 10, 50, 100
  with n = 10 d k (k = 8), 20 draws each, and scikit-learn's digits: how often the
  checks refuse them (they should every time) and the weakest refusal.
- ``gaussian``: standard Gaussian inputs of ``CHECK_ROWS`` (20,000) rows at d = 10,
  100 and 1000, 1,000 draws each: false rejections and each statistic's largest
  z-score over the draws; the mean and variance of Mardia's ``b_2`` over the draws
  against the exact finite-sample ones (``_auto.mardia_null_moments``) and the z-score
  the old asymptotic test (``d (d + 2)``, ``8 d (d + 2) / n``) would have given.
  The statistics alone are computed (``gaussian_checks`` directly, no recovery).
  One draw at d = 1000 is timed first; when all the draws would take longer than
  ``--budget-minutes``, as many as fit are run and the JSON says so
  (``time_boxed``, ``projected_seconds_all``).

Usage::

    OMP_NUM_THREADS=1 python bench/auto_checks.py              # about 30 minutes
    OMP_NUM_THREADS=1 python bench/auto_checks.py --quick      # a minute
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timer, pass_time, print_table, read_json, write_json  # noqa: E402

from relurecover import gaussian_inputs  # noqa: E402
from relurecover.instances import input_family, sklearn_inputs  # noqa: E402
from relurecover.twolayer._auto import (  # noqa: E402
    CHECK_ROWS,
    Z_MAX,
    gaussian_checks,
    mardia_null_moments,
)

FAMILIES = ["uniform", "student-t", "sparse-nonnegative", "heavy-tailed"]
#: the z-scores of ``gaussian_checks``; Mardia's is signed, the others are not.
STATS = ["mean_z", "mardia_z", "max_marginal_kurtosis_z", "max_marginal_skewness_z"]


def _largest_z(c: dict) -> float:
    """The largest of a check result's z-scores (Mardia's by absolute value)."""
    return max(c["mean_z"], abs(c["mardia_z"]), c["max_marginal_kurtosis_z"],
               c["max_marginal_skewness_z"])


def part_cost(out: dict, save, quick: bool) -> None:
    """Time ``gaussian_checks`` against passes ``X @ V.T`` at d = 1000, k = 50."""
    n, d, k = (40_000, 500, 50) if quick else (200_000, 1000, 50)
    X = gaussian_inputs(n, d, rng=0)
    V = np.random.default_rng(1).standard_normal((k, d))
    t_pass = pass_time(X, V)
    best, inner = np.inf, np.inf
    for rep in range(2):
        with Timer() as t:
            c = gaussian_checks(X, rng=np.random.default_rng(rep))
        best, inner = min(best, t.seconds), min(inner, c["seconds"])
    out["cost"] = {"n": n, "d": d, "k": k, "rows_checked": c["n_checked"],
                   "pass_seconds": t_pass, "checks_seconds": best,
                   "checks_seconds_reported": inner, "passes": best / t_pass,
                   "is_gaussian": c["is_gaussian"]}
    save()
    print_table(f"cost of the checks at n = {n}, d = {d} (single-threaded)",
                ["pass X@V.T (s)", "checks (s)", "passes", "Gaussian"],
                [[t_pass, best, best / t_pass, c["is_gaussian"]]])


def part_families(out: dict, save, quick: bool) -> None:
    """How often the checks refuse the non-Gaussian families and digits."""
    draws, kk = (3 if quick else 20), 8
    rows, res = [], {}
    for fam in FAMILIES:
        for d in (10, 50, 100):
            n = 10 * d * kk
            refused, weakest, failed_counts = 0, np.inf, {}
            with Timer() as t:
                for seed in range(draws):
                    X = input_family(fam, n, d, rng=np.random.default_rng([3, d, seed]))
                    c = gaussian_checks(X, rng=np.random.default_rng(seed))
                    refused += not c["is_gaussian"]
                    weakest = min(weakest, _largest_z(c))
                    for f in c["failed"]:
                        failed_counts[f] = failed_counts.get(f, 0) + 1
            res[f"{fam} d={d}"] = {"family": fam, "d": d, "n": n, "draws": draws,
                                   "refused": refused, "weakest_largest_z": weakest,
                                   "failed_counts": failed_counts, "seconds": t.seconds}
            rows.append([fam, d, n, f"{refused}/{draws}", weakest,
                         ", ".join(f"{f} {v}" for f, v in failed_counts.items())])
            out["families"] = res
            save()
    try:
        X = sklearn_inputs("digits")
    except ValueError as exc:  # scikit-learn missing
        res["digits"] = {"skipped": str(exc)}
    else:
        c = gaussian_checks(X, rng=np.random.default_rng(0))
        res["digits"] = {"n": X.shape[0], "d": X.shape[1], "refused": not c["is_gaussian"],
                         "failed": c["failed"]}
        rows.append(["digits", X.shape[1], X.shape[0], f"{int(not c['is_gaussian'])}/1",
                     None, "; ".join(c["failed"])])
    out["families"] = res
    save()
    print_table(f"non-Gaussian inputs refused (largest z over checks; refused at > {Z_MAX})",
                ["family", "d", "n", "refused", "weakest largest z", "failed checks"], rows)


def _gaussian_summary(d: int, n: int, recs: list[dict], seconds: float) -> dict:
    """Summary of the per-draw records of one dimension."""
    R = {s: np.array([r[s] for r in recs]) for s in
         STATS + ["b2", "cov_ratio", "old_mardia_z", "rejected", "standard"]}
    mean, var, _ = mardia_null_moments(d, n)
    draws = len(recs)
    b2 = R["b2"]
    return {
        "d": d, "n": n, "draws": draws, "seconds": seconds,
        "seconds_per_draw": seconds / max(draws, 1),
        "false_rejections": int(R["rejected"].sum()),
        "not_standard": int(draws - R["standard"].sum()),
        "largest_z": {"mean_z": float(R["mean_z"].max()),
                      "abs_mardia_z": float(np.abs(R["mardia_z"]).max()),
                      "max_marginal_kurtosis_z": float(R["max_marginal_kurtosis_z"].max()),
                      "max_marginal_skewness_z": float(R["max_marginal_skewness_z"].max())},
        "mardia_z_range": [float(R["mardia_z"].min()), float(R["mardia_z"].max())],
        "covariance_deviation_over_tolerance_max": float(R["cov_ratio"].max()),
        "b2": {"mean": float(b2.mean()), "exact_mean": mean, "asymptotic_mean": d * (d + 2.0),
               "mean_minus_exact_in_se": float((b2.mean() - mean) / np.sqrt(var / draws)),
               "var": float(b2.var(ddof=1)) if draws > 1 else None, "exact_var": var,
               "asymptotic_var": 8 * d * (d + 2.0) / n,
               "var_ratio_to_exact": float(b2.var(ddof=1) / var) if draws > 1 else None},
        "old_asymptotic_mardia_z": {"mean": float(R["old_mardia_z"].mean()),
                                    "min": float(R["old_mardia_z"].min()),
                                    "refused_at_5": int(np.sum(np.abs(R["old_mardia_z"])
                                                               > Z_MAX))},
    }


def part_gaussian(out: dict, save, quick: bool, draws: int, budget_s: float) -> None:
    """False rejections of standard Gaussian inputs at d = 10, 100, 1000."""
    n = 2000 if quick else CHECK_ROWS
    dims = (10, 100) if quick else (10, 100, 1000)
    res = out.setdefault("gaussian", {})
    rows = []
    for d in dims:
        recs, t0, note = [], time.perf_counter(), {}
        target = draws
        for seed in range(draws):
            X = gaussian_inputs(n, d, rng=np.random.default_rng([7, d, seed]))
            c = gaussian_checks(X, rng=np.random.default_rng(seed))
            recs.append({**{s: c[s] for s in STATS}, "b2": c["mardia_b2"],
                         "cov_ratio": c["covariance_deviation"] / c["covariance_tolerance"],
                         "old_mardia_z": (c["mardia_b2"] - d * (d + 2))
                         / np.sqrt(8 * d * (d + 2) / n),
                         "rejected": not c["is_gaussian"], "standard": c["is_standard"]})
            if seed == 0:
                one = time.perf_counter() - t0
                note = {"first_draw_seconds": one, "projected_seconds_all": one * draws}
                if one * draws > budget_s:
                    target = max(2, int(budget_s / one))
                    note.update(time_boxed=True, draws_planned=target,
                                why=(f"{draws} draws would take about {one * draws / 60:.0f} "
                                     f"min single-threaded; {target} fit in the budget of "
                                     f"{budget_s / 60:.0f} min"))
            done = len(recs)
            if done == target or done % (10 if d >= 1000 else 100) == 0:
                res[f"d={d}"] = {**_gaussian_summary(d, n, recs, time.perf_counter() - t0),
                                 **note}
                save()
            if done == target:
                break
        s = res[f"d={d}"]
        rows.append([d, n, s["draws"], s["false_rejections"], s["largest_z"]["mean_z"],
                     s["largest_z"]["abs_mardia_z"], s["largest_z"]["max_marginal_kurtosis_z"],
                     s["largest_z"]["max_marginal_skewness_z"],
                     s["covariance_deviation_over_tolerance_max"],
                     s["b2"]["mean_minus_exact_in_se"], s["b2"]["var_ratio_to_exact"],
                     s["old_asymptotic_mardia_z"]["mean"],
                     s["old_asymptotic_mardia_z"]["refused_at_5"], s["seconds_per_draw"]])
    print_table("standard Gaussian inputs: false rejections and the largest z over the draws",
                ["d", "n", "draws", "refused", "mean z", "|Mardia z|", "marg. kurt z",
                 "marg. skew z", "cov dev/tol", "b2 mean - exact (se)", "b2 var / exact",
                 "old Mardia z mean", "old refused", "s/draw"], rows)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few draws")
    ap.add_argument("--draws", type=int, default=None, help="Gaussian draws per d")
    ap.add_argument("--budget-minutes", type=float, default=20.0,
                    help="most time for the Gaussian draws of one d")
    ap.add_argument("--parts", default="cost,families,gaussian")
    args = ap.parse_args(argv)
    draws = args.draws or (50 if args.quick else 1000)
    name = "auto_checks_quick" if args.quick else "auto_checks"
    out: dict = {"settings": {"check_rows": CHECK_ROWS, "z_max": Z_MAX, "draws": draws,
                              "budget_minutes": args.budget_minutes, "complete": False}}
    if args.parts != "cost,families,gaussian":  # keep the stored parts not re-run
        stored = read_json(name) or {}
        stored.pop("benchmark", None)
        stored.pop("environment", None)
        out = {**stored, "settings": {**stored.get("settings", {}), **out["settings"]}}
    t_all = time.perf_counter()

    def save():
        out["settings"]["elapsed_seconds"] = time.perf_counter() - t_all
        write_json(name, out)

    parts = args.parts.split(",")
    if "cost" in parts:
        part_cost(out, save, args.quick)
    if "families" in parts:
        part_families(out, save, args.quick)
    if "gaussian" in parts:
        part_gaussian(out, save, args.quick, draws, 60 * args.budget_minutes)
    out["settings"]["complete"] = True
    save()
    print(f"\nwrote bench/results/{name}.json")


if __name__ == "__main__":
    main()
