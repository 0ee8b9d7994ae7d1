"""Acceptance benchmark for black-box extraction (docs/algorithms.md 7).

Every call is ``extract(oracle, d, rng=seed)`` on an oracle that holds its network in a
closure (nothing but its answers is read). A run is *exact* when ``.exact`` is True,
the max output error on 10,000 fresh inputs ``N(0, I)`` is at most ``2^-40`` of
``max |f|``, and every row of ``[V, b]`` matches one row of the truth one-to-one
(normalised, up to sign) within ``1e-9``; a *false certificate* is ``.exact`` True
without that. Queries are reported in all and without the 10,000 of the certificate
("extraction queries").

Parts (``--part``):

1. ``sizes``: one output, biases (``TwoLayerNetwork.random(d, k, 1, bias_scale=0.5)``),
   784-128-1, 100-50-1, 40-20-1, 10-30-1, 20-50-1, 10 seeds: 10/10 exact, the width
   found, queries and seconds per size; at 784-128-1 at most ``2^18.5`` queries and
   120 s. Published: Carlini et al. 2020, 784-128-1 in ``2^21.5`` queries at worst-case
   error ``2^-25``; a 4,000-parameter network in ``2^18.5`` queries at ``2^-40.4``.
2. ``digits``: a PyTorch MLP 64-32-10 with biases, float64, trained on scikit-learn's
   digits, saved as a state dict, TorchScript and ONNX; ``extract(path)`` then
   ``save_like`` in the same format; the written model reopened: max error on the
   1,797 digit images relative to ``max |f|`` (<= ``2^-40``) and the same class on
   every image.
3. ``outputs``: m = 10 < k = 64, d = 100, biases, 5 seeds: exact; m >= k through
   Gaussian queries, (50, 20, 25) and (100, 20, 25), 5 seeds: exact within
   ``20 d k`` extraction queries.
4. ``float32``: the networks of part 1 (10 seeds) evaluated in float32: certified with
   the right width and max output error at most ``2^-18`` relative to ``max |f|``
   (issue 14, acceptance 4), the precision reached, queries and seconds.
5. ``failures``: budgets of 10%, 50% and 90% of the queries a 40-20-1 run needs for its
   units (probe, kink search, locate, measure): never over budget, "found j of k", no
   wrong unit; a tanh network, a random function and a
   two-hidden-layer network, each with ``time_limit=60``: the verdict and the time.

Writes ``bench/results/extract[_quick].json`` as it goes; ``--quick`` runs 2 seeds and
drops 784-128-1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, print_table, write_json  # noqa: E402

from relurecover import DeepNetwork, TwoLayerNetwork  # noqa: E402
from relurecover.extract import extract, open_model, save_like  # noqa: E402

PUBLISHED = {
    "carlini2020_784_128_1": {"queries_log2": 21.5, "max_error_log2": -25},
    "carlini2020_4000_params": {"queries_log2": 18.5, "max_error_log2": -40.4},
}


def hidden(net, dtype=np.float64):
    """The network's function in a closure (float64 or float32 arithmetic)."""
    V, U, b, c = (np.asarray(a, dtype=dtype) for a in (net.V, net.U, net.b, net.c))
    one = net.U.shape[0] == 1

    def oracle(X):
        X = np.asarray(X, dtype=dtype)
        out = np.maximum(X @ V.T + b, 0) @ U.T + c
        return out[:, 0] if one else out

    return oracle


def _row_distances(found, truth):
    """Distance of each found row of [V, b] to each true one (normalised, up to sign)."""
    Hf = np.c_[found.V, found.b] / np.linalg.norm(found.V, axis=1)[:, None]
    Ht = np.c_[truth.V, truth.b] / np.linalg.norm(truth.V, axis=1)[:, None]
    return np.minimum(np.linalg.norm(Hf[:, None] - Ht[None], axis=2),
                      np.linalg.norm(Hf[:, None] + Ht[None], axis=2))


def rows_match(found, truth, tol=1e-9):
    """Whether the rows of [V, b] match one-to-one (normalised, up to sign) within tol."""
    if found is None or found.n_hidden != truth.n_hidden:
        return False
    dist = _row_distances(found, truth)
    best = dist.argmin(axis=1)
    return bool(np.all(dist.min(axis=1) <= tol) and len(set(best)) == len(best))


def rows_error(found, truth):
    """Largest distance of a found row of [V, b] to its nearest true row (normalised)."""
    if found is None:
        return float("inf")
    return float(_row_distances(found, truth).min(axis=1).max())


def one_run(net, seed, **kw):
    rec = {"seed": seed}
    try:
        with Timer() as t:
            ex = extract(hidden(net), net.V.shape[1], rng=seed, **kw)
        fid = ex.fidelity
        rec.update(
            exact_flag=ex.exact, seconds=t.seconds, n_queries=ex.n_queries,
            extraction_queries=ex.n_queries - ex.queries.get("fidelity", 0),
            queries=ex.queries, width=ex.n_hidden, method=ex.method,
            max_error=None if fid is None else fid.max_error,
            rows_error=rows_error(ex.network, net), rows_match=rows_match(ex.network, net),
            message=ex.message)
        rec["exact"] = bool(ex.exact and fid is not None and fid.max_error <= 2.0**-40
                            and rec["rows_match"])
        rec["false_certificate"] = bool(ex.exact and not rec["rows_match"])
    except Exception as exc:  # a crash is a failed run, never stops the benchmark
        rec.update(exact=False, exact_flag=False, false_certificate=False,
                   message="crash: " + traceback.format_exc().strip().splitlines()[-1])
        print(rec["message"])
    return rec


#: the one-output sizes of parts 1 and 4 (``--quick`` drops the first)
SIZES = [(784, 128, 1), (100, 50, 1), (40, 20, 1), (10, 30, 1), (20, 50, 1)]


def _planted(d, k, m, s):
    return TwoLayerNetwork.random(d, k, m, bias_scale=0.5, rng=np.random.default_rng([d, k, m, s]))


def part_sizes(seeds, quick):
    sizes = SIZES[1:] if quick else SIZES
    out = {}
    rows = []
    for d, k, m in sizes:
        runs = []
        for s in seeds:
            net = _planted(d, k, m, s)
            runs.append(one_run(net, s))
        ok = [r for r in runs if r.get("exact")]
        q = [r["n_queries"] for r in runs if "n_queries" in r]
        eq = [r["extraction_queries"] for r in runs if "extraction_queries" in r]
        secs = [r["seconds"] for r in runs if "seconds" in r]
        errs = [r["max_error"] for r in runs if r.get("max_error") is not None]
        widths = sorted({r.get("width") for r in runs})
        key = f"{d}-{k}-{m}"
        out[key] = {
            "d": d, "k": k, "m": m, "runs": runs, "exact": len(ok), "of": len(runs),
            "false_certificates": sum(r.get("false_certificate", False) for r in runs),
            "widths_found": widths,
            "max_queries": max(q) if q else None,
            "max_queries_log2": float(np.log2(max(q))) if q else None,
            "max_extraction_queries": max(eq) if eq else None,
            "max_extraction_queries_log2": float(np.log2(max(eq))) if eq else None,
            "median_seconds": float(np.median(secs)) if secs else None,
            "max_seconds": max(secs) if secs else None,
            "worst_max_error": max(errs) if errs else None,
            "worst_max_error_log2": float(np.log2(max(errs))) if errs else None,
            "worst_rows_error": max(r.get("rows_error", np.inf) for r in runs),
        }
        o = out[key]
        rows.append([key, f"{o['exact']}/{o['of']}", o["false_certificates"], str(widths),
                     o["max_queries_log2"], o["max_extraction_queries_log2"],
                     o["median_seconds"], o["max_seconds"], o["worst_max_error_log2"],
                     o["worst_rows_error"]])
        print_table("extraction, one output, biases", [
            "size", "exact", "false cert.", "width", "log2 queries", "log2 w/o cert.",
            "median s", "max s", "log2 max err", "row err"], rows)
    return out


def _train_digits_mlp(seed=0):
    import torch
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 10)).double()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(Xt), yt)
        loss.backward()
        opt.step()
    acc = float((model(Xt).argmax(1) == yt).double().mean())
    return model, X, acc


def part_digits():
    import torch

    model, X, acc = _train_digits_mlp()
    out = {"train_accuracy": acc}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = {"state-dict": tmp / "digits.pt", "torchscript": tmp / "digits_ts.pt",
                 "onnx": tmp / "digits.onnx"}
        torch.save(model.state_dict(), files["state-dict"])
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.jit.script(model).save(str(files["torchscript"]))
        from relurecover.formats import to_onnx

        to_onnx(TwoLayerNetwork.from_torch(model), files["onnx"])
        with torch.no_grad():
            F = model(torch.as_tensor(X)).numpy()
        for kind, path in files.items():
            rec = {}
            try:
                back = tmp / f"back_{path.name}"
                # the command line, as a user runs it
                with Timer() as t:
                    proc = subprocess.run(
                        [sys.executable, "-m", "relurecover.cli", "extract", str(path),
                         "--out", str(back), "--json", "--seed", "0"],
                        capture_output=True, text=True, check=False)
                obj = json.loads(proc.stdout)
                r = obj["result"]
                fn, _, info = open_model(back)
                G = np.asarray(fn(X))
                err = float(np.max(np.abs(F - G)) / np.max(np.abs(F)))
                rec = {"exact": r["exact"], "exit_code": proc.returncode,
                       "seconds": t.seconds, "n_queries": r["n_queries"],
                       "width": r["n_hidden"], "written_as": info.kind,
                       "digits_max_error": err,
                       "digits_max_error_log2": float(np.log2(err)) if err > 0 else None,
                       "same_class_every_image": bool(np.all(F.argmax(1) == G.argmax(1))),
                       "fidelity_max_error": (r["fidelity"] or {}).get("max_error"),
                       "message": obj["message"]}
            except Exception:
                rec = {"exact": False,
                       "message": "crash: " + traceback.format_exc().strip().splitlines()[-1]}
                print(rec["message"])
            out[kind] = rec
            rows.append([kind, rec.get("exact"), rec.get("width"), rec.get("written_as"),
                         rec.get("n_queries"), rec.get("seconds"),
                         rec.get("digits_max_error"), rec.get("same_class_every_image")])
    print_table(f"digits MLP 64-32-10 (train accuracy {acc:.3f})", [
        "format", "exact", "width", "written as", "queries", "s", "max err (digits)",
        "same class"], rows)
    return out


def part_outputs(seeds):
    out = {}
    rows = []
    for d, k, m in [(100, 64, 10), (50, 20, 25), (100, 20, 25)]:
        runs = []
        for s in seeds:
            net = _planted(d, k, m, s)
            runs.append(one_run(net, s))
        eq = [r["extraction_queries"] for r in runs if "extraction_queries" in r]
        key = f"{d}-{k}-{m}"
        out[key] = {"runs": runs, "exact": sum(r.get("exact", False) for r in runs),
                    "of": len(runs), "methods": sorted({r.get("method") for r in runs}),
                    "max_extraction_queries": max(eq) if eq else None,
                    "budget_20dk": 20 * d * k}
        o = out[key]
        rows.append([key, f"{o['exact']}/{o['of']}", ", ".join(map(str, o["methods"])),
                     o["max_extraction_queries"], o["budget_20dk"]])
    print_table("several outputs", ["size", "exact", "path", "max queries (w/o cert.)",
                                    "20 d k"], rows)
    return out


def part_float32(seeds, quick, on_size=None):
    sizes = SIZES[1:] if quick else SIZES
    out = {}
    rows = []
    for d, k, m in sizes:
        runs = []
        for s in seeds:
            net = _planted(d, k, m, s)
            rec = {"seed": s}
            try:
                with Timer() as t:
                    ex = extract(hidden(net, np.float32), d, rng=s)
                fid = ex.fidelity
                rec.update(width=ex.n_hidden, width_right=ex.n_hidden == k,
                           precision=ex.precision, exact_flag=ex.exact,
                           max_error=None if fid is None else fid.max_error,
                           rows_error=rows_error(ex.network, net),
                           seconds=t.seconds, n_queries=ex.n_queries, queries=ex.queries,
                           message=ex.message)
                # the figure: the precision reached (>= 2^-18) with the right width
                rec["ok"] = bool(ex.exact and rec["width_right"] and fid is not None
                                 and fid.max_error <= 2.0**-18)
                rec["false_certificate"] = bool(ex.exact and (fid is None
                                                              or fid.max_error > 2.0**-18))
            except Exception:
                rec["message"] = "crash: " + traceback.format_exc().strip().splitlines()[-1]
                rec["ok"] = False
            runs.append(rec)
            print(f"  float32 {d}-{k}-{m} seed {s}: {rec['message'][:110]}", flush=True)
        errs = [r["max_error"] for r in runs if r.get("max_error") is not None and r["ok"]]
        q = [r["n_queries"] for r in runs if "n_queries" in r]
        key = f"{d}-{k}-{m}"
        out[key] = {"runs": runs, "width_right": sum(r.get("width_right", False) for r in runs),
                    "ok": sum(r["ok"] for r in runs), "of": len(runs),
                    "false_certificates": sum(r.get("false_certificate", False) for r in runs),
                    "worst_max_error": max(errs) if errs else None,
                    "worst_max_error_log2": float(np.log2(max(errs))) if errs else None,
                    "median_max_error_log2": float(np.log2(np.median(errs))) if errs else None,
                    "median_queries_log2": float(np.log2(np.median(q))) if q else None,
                    "median_seconds": float(np.median([r["seconds"] for r in runs
                                                       if "seconds" in r]))}
        o = out[key]
        rows.append([key, f"{o['ok']}/{o['of']}", f"{o['width_right']}/{o['of']}",
                     o["worst_max_error_log2"], o["median_max_error_log2"],
                     o["median_queries_log2"], o["median_seconds"]])
        if on_size is not None:
            on_size(out)
    print_table("float32 oracles", ["size", "certified 2^-18, width right", "width right",
                                    "worst log2 err (certified)", "median log2 err",
                                    "median log2 queries", "median s"], rows)
    return out


def part_failures():
    out = {}
    rows = []
    net = _planted(40, 20, 1, 0)
    full = extract(hidden(net), 40, rng=0)
    # the queries the units need (the optional refinement, polish and certificate aside)
    need = sum(v for k, v in full.queries.items()
               if k in ("probe", "kink search", "locate", "measure"))
    for frac in (0.1, 0.5, 0.9):
        budget = int(frac * need)
        calls = {"rows": 0}
        f = hidden(net)

        def counted(X, f=f, calls=calls):
            calls["rows"] += X.shape[0]
            return f(X)

        ex = extract(counted, 40, rng=0, max_queries=budget)
        rec = {"budget": budget, "rows_sent": calls["rows"], "over": calls["rows"] > budget,
               "exact": ex.exact, "units_returned": ex.n_hidden,
               "wrong_unit": bool(ex.network is not None and not _subset(ex.network, net)),
               "message": ex.message}
        out[f"budget_{frac}"] = rec
        rows.append([f"budget {frac:.0%} of {need}", rec["rows_sent"], rec["over"],
                     rec["units_returned"], rec["wrong_unit"], ex.message[:70]])
    rng = np.random.default_rng(0)
    Vt, ut = rng.standard_normal((20, 40)), rng.standard_normal(20)
    rs = np.random.default_rng(1)
    deep = DeepNetwork.random(40, (20, 10), 1, rng=2)
    cases = {"tanh network": lambda X: np.tanh(X @ Vt.T / 6.0) @ ut,
             "random function": lambda X: rs.standard_normal(X.shape[0]),
             "two hidden layers": deep.predict}
    for name, fn in cases.items():
        with Timer() as t:
            ex = extract(fn, 40, rng=0, time_limit=60)
        out[name] = {"exact": ex.exact, "seconds": t.seconds, "n_queries": ex.n_queries,
                     "message": ex.message}
        rows.append([name, ex.n_queries, "-", ex.n_hidden, ex.exact, ex.message[:70]])
        out[name]["within_time_limit"] = t.seconds <= 60 + 5
    print_table("budgets and bad oracles", ["case", "queries", "over budget", "units",
                                            "wrong / exact", "verdict"], rows)
    return out


def _subset(found, truth, tol=1e-9):
    """Whether every found row of [V, b] is one of the truth's (a budget's partial result)."""
    return bool(np.all(_row_distances(found, truth).min(axis=1) <= tol))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--part", action="append",
                    choices=["sizes", "digits", "outputs", "float32", "failures"])
    args = ap.parse_args(argv)
    parts = args.part or ["sizes", "digits", "outputs", "float32", "failures"]
    seeds = list(range(2 if args.quick else 10))
    name = "extract_quick" if args.quick else "extract"
    results = {"published": PUBLISHED, "quick": args.quick}
    from _common import read_json

    old = read_json(name)
    if old and args.part:  # keep the parts not re-run
        results.update({k: v for k, v in old.items()
                        if k not in ("benchmark", "environment") and k not in parts})
    t0 = time.time()
    for part in parts:
        if part == "sizes":
            results["sizes"] = part_sizes(seeds, args.quick)
        elif part == "digits":
            results["digits"] = part_digits()
        elif part == "outputs":
            results["outputs"] = part_outputs(seeds[:5])
        elif part == "float32":
            def partial(out):
                results["float32"] = out
                write_json(name, results)

            results["float32"] = part_float32(seeds, args.quick, on_size=partial)
        elif part == "failures":
            results["failures"] = part_failures()
        results["seconds"] = time.time() - t0
        write_json(name, results)


if __name__ == "__main__":
    main()
