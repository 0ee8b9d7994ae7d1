"""Parts ``inputs`` and ``budget`` of ``bench/general_inputs.py`` (issue 7; docs/algorithms.md 1.5, 3).

- ``inputs``: ``method="general"`` on uniform, Student-t(3), sparse non-negative and
  heavy-tailed inputs (``n = 10 d k``, ``d = 50``) and on the 1,797 rows of
  scikit-learn's digits (``d = 64``, rows spanning 61 dimensions; networks are
  compared after projecting ``V`` on that span), ``(k, m) = (8, 10)``. Beside it,
  ``method="gaussian"`` on the same data and the path ``"auto"`` picks.
- ``stress`` (beyond the acceptance): near-parallel units, an ill-conditioned
  ``U``, and networks planted on scikit-learn's diabetes, wine and breast-cancer data.
- ``budget``: budgets too small to finish (``max_starts``, ``time_limit``), random
  labels, and labels of a ``k + 2``-unit network fitted with ``k`` units: never
  ``exact``, and every unit reported must be within 1e-6 of a true unit.

Each part is ``fn(quick: bool, seeds: int | None)``: it prints a table and writes
``bench/results/general_<part>[_quick].json``.
"""

from __future__ import annotations

import warnings

import numpy as np
from _common import Timer, print_table, write_json

from relurecover import TwoLayerNetwork, compare, recover_two_layer
from relurecover.instances import (
    ill_conditioned,
    input_family,
    near_parallel,
    planted_instance,
    planted_on,
    sklearn_inputs,
)
from relurecover.twolayer._auto import choose_method
from relurecover._linalg import row_span

FALSE_CERT = 1e-6


def _projected(net, Q):
    """The network with ``V`` projected on the span ``Q`` (same function on the data)."""
    return TwoLayerNetwork(net.U, net.V @ Q @ Q.T, activation=net.activation)


def _unit_distance_each(found, truth):
    """Distance of each found unit direction to its nearest true unit direction."""
    Vf = found.V / np.linalg.norm(found.V, axis=1, keepdims=True)
    Vt = truth.V / np.linalg.norm(truth.V, axis=1, keepdims=True)
    return np.linalg.norm(Vf[:, None] - Vt[None], axis=2).min(axis=1)


def _run(X, Y, truth, Q, k, method, seed, **kw):
    """One recovery; returns a dict of outcome, aligned error (projected) and time."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Timer() as t:
                res = recover_two_layer(X, Y, n_hidden=k, method=method, rng=seed, **kw)
        except ValueError as exc:  # e.g. a path refusing the data
            return {"exact": False, "error": float("inf"), "time": float("nan"),
                    "n_found": 0, "method": method, "message": f"ValueError: {exc}"}
    err = float("inf")
    if res.network is not None:
        err = float(compare(_projected(res.network, Q), _projected(truth, Q)).max_error)
    return {"exact": bool(res.exact), "error": err, "time": t.seconds,
            "n_found": int(res.n_found), "method": res.method, "message": res.message,
            "certificate": float(res.certificate),
            "starts": res.diagnostics.get("starts_used")}


def _summary(rows):
    errs = [r["error"] for r in rows]
    return {
        "exact": sum(r["exact"] for r in rows),
        "median_error": float(np.median(errs)),
        "median_time": float(np.median([r["time"] for r in rows])),
        "false_certificates": sum(r["exact"] and r["error"] > FALSE_CERT for r in rows),
    }


def part_inputs(quick: bool, seeds: int | None) -> None:
    """Acceptance 1: exact on >= 19 of 20 seeds per input family (d = 50 / digits)."""
    seeds = seeds or (3 if quick else 20)
    d = 20 if quick else 50
    k, m = (4, 5) if quick else (8, 10)
    n = 10 * d * k
    families = ["uniform", "student-t", "sparse-nonnegative", "heavy-tailed", "digits"]
    table, out = [], {}
    for tag, fam in enumerate(families):
        per = {"general": [], "gaussian": [], "auto": []}
        picks = []
        for seed in range(seeds):
            truth, X = planted_instance(fam, n, d, k, m,
                                        rng=np.random.default_rng([7, tag, seed]))
            Y = truth.predict(X)
            Q = row_span(X)[0]
            picks.append(choose_method(X, Y, k, rng=np.random.default_rng(seed))[0])
            for method in per:
                per[method].append(_run(X, Y, truth, Q, k, method, seed))
        summ = {meth: _summary(rows) for meth, rows in per.items()}
        pick_counts = {p: picks.count(p) for p in sorted(set(picks))}
        out[fam] = {"n": int(X.shape[0]), "d": int(X.shape[1]), "data_rank": int(Q.shape[1]),
                    "summary": summ, "auto_picks": pick_counts, "runs": per}
        g, ga, au = summ["general"], summ["gaussian"], summ["auto"]
        table.append([fam, f"{X.shape[0]}x{X.shape[1]} (r={Q.shape[1]})",
                      f"{g['exact']}/{seeds}", g["median_error"], g["median_time"],
                      g["false_certificates"], f"{ga['exact']}/{seeds}", ga["median_error"],
                      ga["false_certificates"],
                      ",".join(f"{p}:{c}" for p, c in pick_counts.items()),
                      f"{au['exact']}/{seeds}"])
    print_table(
        f"general path on non-Gaussian inputs, (k, m) = ({k}, {m}) [docs/algorithms.md 1.5, 3]",
        ["inputs", "n x d", "general exact", "median err", "median s", "false cert",
         "gaussian exact", "gaussian err", "gaussian false", "auto picks", "auto exact"],
        table,
    )
    write_json("general_inputs" + ("_quick" if quick else ""),
               {"k": k, "m": m, "seeds": seeds, "false_certificate_threshold": FALSE_CERT,
                "families": out})


def part_budget(quick: bool, seeds: int | None) -> None:
    """Acceptance 4: small budgets and impossible labels never certify a wrong unit."""
    seeds = seeds or (3 if quick else 20)
    d = 20 if quick else 50
    k, m = (4, 6) if quick else (8, 10)
    n = 10 * d * k
    settings = [("max_starts=1", {"max_starts": 1}), ("max_starts=4", {"max_starts": 4}),
                ("max_starts=8", {"max_starts": 8}), ("time_limit=1e-9", {"time_limit": 1e-9}),
                ("time_limit=0.02", {"time_limit": 0.02}), ("random labels", {}),
                (f"k+2 = {k + 2} units fitted with k = {k}", {})]
    table, out = [], {}
    for name, kw in settings:
        rows = []
        for seed in range(seeds):
            g = np.random.default_rng([11, seed])
            kk = k + 2 if name.startswith("k+2") else k
            truth, X = planted_instance("uniform", n, d, kk, max(m, kk), rng=g)
            Y = truth.predict(X)
            if name == "random labels":
                Y = g.standard_normal(Y.shape)
            with Timer() as t:
                res = recover_two_layer(X, Y, n_hidden=k, method="general", rng=seed, **kw)
            if res.network is None:
                dist = np.zeros(0)
            elif name == "random labels":  # no true unit: every unit found is false
                dist = np.full(res.n_found, np.inf)
            else:
                dist = _unit_distance_each(res.network, truth)
            rows.append({
                "exact": bool(res.exact), "n_found": int(res.n_found),
                "false_units": int(np.count_nonzero(dist > FALSE_CERT)),
                "max_unit_distance": float(dist.max(initial=0.0)), "time": t.seconds,
                "message": res.message,
            })
        false_units = sum(r["false_units"] for r in rows)
        reasons = sorted({"exact" if r["exact"] else _reason(r["message"]) for r in rows})
        out[name] = {"runs": rows, "exact": sum(r["exact"] for r in rows),
                     "false_units": false_units, "reasons": reasons}
        table.append([name, f"{out[name]['exact']}/{seeds}",
                      float(np.mean([r["n_found"] for r in rows])),
                      min(r["n_found"] for r in rows), max(r["n_found"] for r in rows),
                      false_units, " | ".join(reasons)[:70]])
    print_table(
        f"general path under a budget / impossible labels, uniform inputs d = {d}, "
        f"(k, m) = ({k}, {m}) [docs/algorithms.md 3]",
        ["setting", "exact", "mean found", "min", "max", "false units", "reason"], table,
    )
    write_json("general_budget" + ("_quick" if quick else ""),
               {"k": k, "m": m, "d": d, "n": n, "seeds": seeds,
                "false_unit_threshold": FALSE_CERT, "settings": out})


def _reason(message: str) -> str:
    """The reason part of a Recovery message, without the numbers that vary."""
    if "(" in message and ")" in message:
        return message[message.index("(") + 1: message.index(")")]
    return message.split(".")[0]


def part_stress(quick: bool, seeds: int | None) -> None:
    """Beyond the acceptance: the stress families of ``relurecover.instances``.

    Near-parallel units (pairs 0.05 rad apart), ``cond(U) = 1e4`` (uniform inputs,
    ``d = 30``, ``(k, m) = (6, 8)``, ``n = 10 d k``), and networks planted on the raw
    features of scikit-learn's diabetes, wine and breast-cancer data, ``(k, m) = (3, 4)``.
    """
    seeds = seeds or (3 if quick else 20)
    d, k, m = (12, 4, 6) if quick else (30, 6, 8)
    n = 10 * d * k

    def make(name, g):
        if name == "near-parallel 0.05":
            net = near_parallel(d, k, m, angle=0.05, rng=g)
            return net, input_family("uniform", n, d, rng=g), k
        if name == "cond(U)=1e4":
            net = ill_conditioned(d, k, m, cond_U=1e4, rng=g)
            return net, input_family("uniform", n, d, rng=g), k
        X = sklearn_inputs(name)
        return planted_on(X, 3, 4, rng=g), X, 3

    table, out = [], {}
    for tag, name in enumerate(["near-parallel 0.05", "cond(U)=1e4", "diabetes", "wine",
                                "breast_cancer"]):
        per = {"general": [], "gaussian": []}
        for seed in range(seeds):
            truth, X, kk = make(name, np.random.default_rng([13, tag, seed]))
            Y = truth.predict(X)
            Q = row_span(X)[0]
            for method in per:
                per[method].append(_run(X, Y, truth, Q, kk, method, seed))
        summ = {meth: _summary(rows) for meth, rows in per.items()}
        out[name] = {"n": int(X.shape[0]), "d": int(X.shape[1]), "k": kk,
                     "summary": summ, "runs": per}
        g, ga = summ["general"], summ["gaussian"]
        table.append([name, f"{X.shape[0]}x{X.shape[1]}", kk, f"{g['exact']}/{seeds}",
                      g["median_error"], g["median_time"], g["false_certificates"],
                      f"{ga['exact']}/{seeds}", ga["median_error"], ga["false_certificates"]])
    print_table(
        "general path on the stress families of relurecover.instances [docs/algorithms.md 1.6, 3]",
        ["instance", "n x d", "k", "general exact", "median err", "median s", "false cert",
         "gaussian exact", "gaussian err", "gaussian false"], table,
    )
    write_json("general_stress" + ("_quick" if quick else ""),
               {"seeds": seeds, "false_certificate_threshold": FALSE_CERT, "instances": out})


PARTS = {"inputs": part_inputs, "budget": part_budget, "stress": part_stress}
