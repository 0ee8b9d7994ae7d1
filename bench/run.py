"""The performance suite: every speed and memory figure of the README, measured.

Each case runs in a fresh child process (so its peak memory is its own), 5 times
(``--repeats``) unless said otherwise, and the medians go to ``bench/results.json``
(with the machine and the versions); the README's performance table, between the
markers ``<!-- bench/run.py:start -->`` and ``<!-- bench/run.py:end -->``, is then
regenerated from that file, so no figure there can go stale. Time is given as a
multiple of one pass ``X @ V.T`` (``V`` the true first layer) over the same data,
measured in the same child.

Cases (full / ``--quick``), all the default call ``recover_two_layer(X, Y, rng=seed)``
unless said otherwise (docs/algorithms.md 8):

- ``memory``: d = 1000, k = 50, m = 64, Gaussian inputs in memory (float64), n = 1e6 /
  2e5: exact, wall time in passes, peak resident memory of the call over the size of
  ``X`` and ``Y``.
- ``adam``: :func:`relurecover.baselines.fit_adam` on the data of ``memory`` (one
  BLAS thread, like the rest): its time to aligned error 1e-3 (budget 600 s / 120 s,
  one run) and the ratio to the median time of ``memory``.
- ``out_of_core``: d = 100, k = 10, m = 12, ``X`` a float32 Zarr store on disk (no
  compression) and ``Y`` a float64 one, n = 2e7 (8 GB) / 2e6: exact, peak resident
  memory, time over one chunked read of the store (every chunk of ``X`` and ``Y``
  read into memory once); then ``relurecover fit X.zarr Y.zarr`` once, with its
  progress bar (its time and exit code).
- ``distributed``: the same family, n = 2e6 / 2e5, as Dask arrays on a
  ``dask.distributed`` ``LocalCluster`` with 2 single-threaded workers, against
  the in-memory call on the same rows: the largest difference of the two
  networks' aligned weights.
- ``noisy``: labels plus Gaussian noise of 0.1 times their standard deviation,
  ``n_hidden`` given: (50, 10, 12) at n = 1e5 / 2e4 and (100, 20, 25) at n = 1e6 /
  5e4 (3 runs at 1e6): error against the oracle (the same refinement started from
  the true weights) and time in passes.

The stores of ``out_of_core`` are written once to ``$RELURECOVER_BENCH_DATA``
(default ``bench/data/``, ignored by git) and reused.

    python bench/run.py --quick            # minutes
    nice python bench/run.py               # about an hour
    python bench/run.py --cases memory     # one case (merged into results.json)
    python bench/run.py --readme-only      # the README table from results.json
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from _common import _jsonable, aligned_error as error, print_table  # noqa: E402
from _common import environment as _environment  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS_JSON = HERE / "results.json"
README = ROOT / "README.md"
START, END = "<!-- bench/run.py:start -->", "<!-- bench/run.py:end -->"
CASES = ("memory", "adam", "distributed", "noisy", "out_of_core")
TAG = 15  # the issue: instances differ from the other benchmarks'

SIZES = {
    "memory": {"full": dict(d=1000, k=50, m=64, n=1_000_000),
               "quick": dict(d=1000, k=50, m=64, n=200_000)},
    "out_of_core": {"full": dict(d=100, k=10, m=12, n=20_000_000),
                    "quick": dict(d=100, k=10, m=12, n=2_000_000)},
    "distributed": {"full": dict(d=100, k=10, m=12, n=2_000_000),
                    "quick": dict(d=100, k=10, m=12, n=200_000)},
    "noisy": {"full": [dict(d=50, k=10, m=12, n=100_000, repeats=5),
                       dict(d=100, k=20, m=25, n=1_000_000, repeats=3)],
              "quick": [dict(d=50, k=10, m=12, n=20_000, repeats=5),
                        dict(d=100, k=20, m=25, n=50_000, repeats=3)]},
}
ADAM_BUDGET = {"full": 600.0, "quick": 120.0}
ROW_CHUNK = 65536  # rows per Zarr chunk (26 MB of float32 X at d = 100)


# ----------------------------------------------------------------- measuring
class PeakRSS:
    """Peak resident memory of this process inside a ``with`` block: the kernel's
    high-water mark is reset on entry (``/proc/self/clear_refs``) and read on exit,
    with a 20 ms sampler as a fallback where the reset is not allowed."""

    def __enter__(self):
        self.reset = False
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.reset = True
        except OSError:
            pass
        self._stop = threading.Event()
        self.sampled = _rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self.sampled = max(self.sampled, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        hwm = _status_bytes("VmHWM") if self.reset else 0
        self.bytes = max(self.sampled, hwm)
        return False


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _rss() -> int:
    return _status_bytes("VmRSS")


def planted(d, k, m, n, seed=0):
    from relurecover import TwoLayerNetwork

    return TwoLayerNetwork.random(d, k, m, rng=np.random.default_rng([TAG, d, k, m, seed]))


def gaussian_rows(n, d, seed, dtype=np.float64, start=0):
    """Rows ``start .. start + n`` of a reproducible Gaussian design, generated in
    blocks of ``ROW_CHUNK`` rows (each block its own stream)."""
    out = np.empty((n, d), dtype=dtype)
    for s in range(0, n, ROW_CHUNK):
        b = (start + s) // ROW_CHUNK
        rows = min(ROW_CHUNK, n - s)
        out[s:s + rows] = np.random.default_rng([TAG, d, seed, b]).standard_normal(
            (rows, d), dtype=dtype)
    return out


def labels(net, X):
    """``net.predict`` in blocks (float64 labels from the stored inputs)."""
    Y = np.empty((X.shape[0], net.U.shape[0]))
    for s in range(0, X.shape[0], ROW_CHUNK):
        Y[s:s + ROW_CHUNK] = net.predict(np.asarray(X[s:s + ROW_CHUNK], dtype=float))
    return Y


def pass_seconds(X, V, repeats):
    """Median wall time of one pass ``X @ V.T`` (in blocks for data on disk)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        if isinstance(X, np.ndarray) and not isinstance(X, np.memmap):
            out = X @ V.T
            del out
        else:
            for s in range(0, X.shape[0], ROW_CHUNK):
                np.asarray(X[s:s + ROW_CHUNK], dtype=float) @ V.T
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def call(X, Y, seed, **kw):
    from relurecover import recover_two_layer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        res = recover_two_layer(X, Y, rng=seed, **kw)
        return res, time.perf_counter() - t0


# ----------------------------------------------------------------- the cases
def case_memory(size, repeats):
    d, k, m, n = size["d"], size["k"], size["m"], size["n"]
    net = planted(d, k, m, n)
    X = gaussian_rows(n, d, seed=0)
    Y = labels(net, X)
    unit = pass_seconds(X, net.V, repeats)
    runs = []
    for seed in range(repeats):
        with PeakRSS() as mem:
            base = _rss()
            res, secs = call(X, Y, seed)
        runs.append({"seed": seed, "exact": bool(res.exact), "error": error(res.network, net),
                     "seconds": secs, "method": res.method, "peak_rss": mem.bytes,
                     "rss_before": base, "timings": res.timings})
        print(f"  memory seed={seed} exact={res.exact} err={runs[-1]['error']:.1e} "
              f"t={secs:.2f}s ({secs / unit:.1f} passes) peak={mem.bytes / 2**30:.2f} GiB",
              flush=True)
    secs = float(np.median([r["seconds"] for r in runs]))
    peak = max(r["peak_rss"] for r in runs)
    data = X.nbytes + Y.nbytes
    return {"size": size, "runs": runs, "pass_seconds": unit, "median_seconds": secs,
            "passes": secs / unit, "exact": sum(r["exact"] for r in runs),
            "max_error": max(r["error"] for r in runs), "peak_rss": peak,
            "data_bytes": data, "peak_over_data": peak / data,
            "targets": {"passes": 10, "peak_over_data": 1.3}}


def case_adam(size, budget, ours_seconds):
    from relurecover.baselines import fit_adam

    d, k, m, n = size["d"], size["k"], size["m"], size["n"]
    net = planted(d, k, m, n)
    X = gaussian_rows(n, d, seed=0)
    Y = labels(net, X)
    t0 = time.perf_counter()
    res = fit_adam(X, Y, [k], rng=0, eval_fn=lambda found: error(found, net), target=1e-3,
                   time_limit=budget, n_threads=1)
    wall = time.perf_counter() - t0
    reached = bool(res.reached_target)
    best = float(min((h[2] for h in res.history), default=error(res.network, net)))
    out = {"size": size, "budget": budget, "wall_seconds": wall, "reached": bool(reached),
           "time_to_target": float(res.time_to_target) if reached else None,
           "best_error": best, "final_error": error(res.network, net),
           "ours_seconds": ours_seconds}
    if reached and ours_seconds:
        out["ratio"] = out["time_to_target"] / ours_seconds
    elif ours_seconds:
        out["ratio_at_least"] = budget / ours_seconds
    print(f"  adam reached={reached} t={out['time_to_target']} best={best:.2e}", flush=True)
    return out


def _store(size, data_dir):
    """The float32 ``X`` and float64 ``Y`` Zarr stores of a size (written once)."""
    import zarr

    d, k, m, n = size["d"], size["k"], size["m"], size["n"]
    folder = Path(data_dir) / f"gauss_d{d}_k{k}_m{m}_n{n}"
    xs, ys, done = folder / "X.zarr", folder / "Y.zarr", folder / "complete"
    net = planted(d, k, m, n)
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        zx = zarr.create_array(str(xs), shape=(n, d), chunks=(ROW_CHUNK, d), dtype="float32",
                               compressors=None, overwrite=True)
        zy = zarr.create_array(str(ys), shape=(n, m), chunks=(ROW_CHUNK, m), dtype="float64",
                               compressors=None, overwrite=True)
        for s in range(0, n, ROW_CHUNK):
            rows = min(ROW_CHUNK, n - s)
            Xc = gaussian_rows(rows, d, seed=0, dtype=np.float32, start=s)
            zx[s:s + rows] = Xc
            zy[s:s + rows] = net.predict(Xc.astype(np.float64))
        done.write_text("ok\n")
        print(f"  wrote {folder} in {time.perf_counter() - t0:.0f} s", flush=True)
    return net, xs, ys


def drop_caches() -> bool:
    """Empty the page cache (root only), so that the next read comes from the disk."""
    try:
        subprocess.run(["sync"], check=False)
        Path("/proc/sys/vm/drop_caches").write_text("1")
        return True
    except OSError:
        return False


def chunked_read_seconds(zx, zy, repeats, cold=False):
    """Median time to read every chunk of ``X`` and ``Y`` into memory once (from
    the disk when ``cold``: the page cache emptied before each read)."""
    times = []
    for _ in range(repeats):
        if cold:
            drop_caches()
        t0 = time.perf_counter()
        for s in range(0, zx.shape[0], ROW_CHUNK):
            np.asarray(zx[s:s + ROW_CHUNK])
            np.asarray(zy[s:s + ROW_CHUNK])
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def case_out_of_core(size, repeats, data_dir):
    import zarr

    net, xs, ys = _store(size, data_dir)
    zx, zy = zarr.open_array(str(xs), mode="r"), zarr.open_array(str(ys), mode="r")
    can_drop = drop_caches()
    cold_read = chunked_read_seconds(zx, zy, repeats, cold=True) if can_drop else None
    read = chunked_read_seconds(zx, zy, repeats)
    unit = pass_seconds(zx, net.V, 1)
    runs = []
    for seed in range(repeats):
        for cold in ((True, False) if can_drop else (False,)):
            if cold:
                drop_caches()
            with PeakRSS() as mem:
                res, secs = call(str(xs), str(ys), seed)
            base = cold_read if cold else read
            runs.append({"seed": seed, "cold": cold, "exact": bool(res.exact),
                         "error": error(res.network, net), "seconds": secs,
                         "reads": secs / base, "peak_rss": mem.bytes, "timings": res.timings,
                         "method": res.method})
            print(f"  out_of_core seed={seed} {'cold' if cold else 'warm'} exact={res.exact} "
                  f"err={runs[-1]['error']:.1e} t={secs:.1f}s ({secs / base:.2f} reads) "
                  f"peak={mem.bytes / 2**30:.2f} GiB", flush=True)
    warm = [r for r in runs if not r["cold"]]
    cold_runs = [r for r in runs if r["cold"]]
    t0 = time.perf_counter()
    cli = subprocess.run([sys.executable, "-c", "from relurecover.cli import main; main()",
                          "fit", str(xs), str(ys), "--json"], capture_output=True, text=True)
    cli_secs = time.perf_counter() - t0
    try:
        cli_json = json.loads(cli.stdout)
    except json.JSONDecodeError:
        cli_json = {"stdout": cli.stdout[-2000:], "stderr": cli.stderr[-2000:]}
    secs = float(np.median([r["seconds"] for r in warm]))
    cold_secs = float(np.median([r["seconds"] for r in cold_runs])) if cold_runs else None
    return {"size": size, "store_bytes": int(zx.nbytes + zy.nbytes), "x_bytes": int(zx.nbytes),
            "runs": runs, "read_seconds": read, "pass_seconds": unit,
            "cold_read_seconds": cold_read, "cold_median_seconds": cold_secs,
            "cold_reads": None if cold_secs is None else cold_secs / cold_read,
            "median_seconds": secs, "reads": secs / read, "passes": secs / unit,
            "exact": sum(r["exact"] for r in runs), "max_error": max(r["error"] for r in runs),
            "peak_rss": max(r["peak_rss"] for r in runs),
            "cli": {"seconds": cli_secs, "exit_code": cli.returncode,
                    "exact": ((cli_json.get("result") or {}).get("recovery") or {}).get(
                        "exact")},
            "targets": {"reads": 5, "peak_rss": 2 * 2**30}}


def case_distributed(size, repeats, data_dir):
    import dask.array as da
    from dask.distributed import Client, LocalCluster
    from relurecover import compare

    net, xs, ys = _store(size, data_dir)
    import zarr

    X = np.asarray(zarr.open_array(str(xs), mode="r")[:], dtype=np.float64)
    Y = np.asarray(zarr.open_array(str(ys), mode="r")[:])
    runs = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        Xd, Yd = da.from_zarr(str(xs)), da.from_zarr(str(ys))
        for seed in range(repeats):
            ref, t_mem = call(X, Y, seed)
            res, secs = call(Xd, Yd, seed)
            diff = float(compare(res.network, ref.network).max_error) if (
                res.network is not None and ref.network is not None) else float("inf")
            runs.append({"seed": seed, "exact": bool(res.exact), "exact_in_memory": bool(ref.exact),
                         "difference": diff, "seconds": secs, "seconds_in_memory": t_mem,
                         "error": error(res.network, net)})
            print(f"  distributed seed={seed} exact={res.exact} diff={diff:.1e} "
                  f"t={secs:.1f}s (in memory {t_mem:.1f}s)", flush=True)
    return {"size": size, "runs": runs, "workers": 2,
            "median_seconds": float(np.median([r["seconds"] for r in runs])),
            "median_seconds_in_memory": float(np.median([r["seconds_in_memory"] for r in runs])),
            "exact": sum(r["exact"] for r in runs),
            "max_difference": max(r["difference"] for r in runs),
            "targets": {"difference": 1e-9}}


def case_noisy(sizes):
    from relurecover import TwoLayerNetwork, compare
    from relurecover.twolayer._noisy import refine_least_squares

    rows = []
    for size in sizes:
        d, k, m, n = size["d"], size["k"], size["m"], size["n"]
        recs = []
        for seed in range(size["repeats"]):
            net = planted(d, k, m, n, seed)
            X = gaussian_rows(n, d, seed=seed)
            Y = labels(net, X)
            Y += 0.1 * float(Y.std()) * np.random.default_rng([TAG, seed, 1]).standard_normal(
                Y.shape)
            unit = pass_seconds(X, net.V, 3)
            res, secs = call(X, Y, seed, n_hidden=k)
            t0 = time.perf_counter()
            orc = refine_least_squares(X, Y, net.U, net.V, rng=seed)
            t_orc = time.perf_counter() - t0
            e = float(compare(res.network, net).error) if res.network is not None else np.inf
            eo = float(compare(TwoLayerNetwork(orc.U, orc.V, b=orc.b, c=orc.c), net).error)
            recs.append({"seed": seed, "error": e, "oracle_error": eo, "ratio": e / eo,
                         "seconds": secs, "oracle_seconds": t_orc, "pass_seconds": unit,
                         "passes": secs / unit, "timings": res.timings})
            print(f"  noisy {d},{k},{m} n={n} seed={seed} ratio={e / eo:.3f} t={secs:.1f}s "
                  f"({secs / unit:.0f} passes)", flush=True)
            del X, Y
        rows.append({"size": size, "runs": recs,
                     "median_ratio": float(np.median([r["ratio"] for r in recs])),
                     "max_ratio": float(max(r["ratio"] for r in recs)),
                     "median_seconds": float(np.median([r["seconds"] for r in recs])),
                     "median_passes": float(np.median([r["passes"] for r in recs])),
                     "targets": {"ratio": 1.1, "passes": 300}})
    return {"sizes": rows}


# ----------------------------------------------------------------- driver
def environment():
    out = _environment()
    for mod in ("dask", "distributed", "zarr", "relurecover"):
        try:
            out[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):
            out[mod] = None
    return out


def child(case, mode, repeats, data_dir, extra):
    size = SIZES.get(case, SIZES["memory"])[mode] if case != "adam" else SIZES["memory"][mode]
    if case == "memory":
        return case_memory(size, repeats)
    if case == "adam":
        return case_adam(size, ADAM_BUDGET[mode], extra.get("ours_seconds"))
    if case == "out_of_core":
        return case_out_of_core(size, repeats, data_dir)
    if case == "distributed":
        return case_distributed(size, repeats, data_dir)
    if case == "noisy":
        return case_noisy(size)
    raise ValueError(case)


def run_child(case, mode, repeats, data_dir, extra):
    """Run one case in a fresh interpreter; its result is the last line of stdout."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", case, "--repeats",
           str(repeats), "--data", str(data_dir), "--extra", json.dumps(extra)]
    if mode == "quick":
        cmd.append("--quick")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    last = None
    for line in proc.stdout:
        if line.startswith("RESULT "):
            last = json.loads(line[7:])
        else:
            print(line, end="", flush=True)
    proc.wait()
    if proc.returncode != 0 or last is None:
        return {"failed": f"exit code {proc.returncode}"}
    return last


def gib(x):
    return f"{x / 2**30:.2f} GiB"


def table_rows(results):
    """The README's performance table: one line per figure, with its target."""
    rows = []
    mode = results.get("mode", "full")
    c = results.get("cases", {})
    mem = c.get("memory")
    if mem and "failed" not in mem:
        s = mem["size"]
        rows.append([f"in memory, d={s['d']}, k={s['k']}, m={s['m']}, n={s['n']:,}",
                     f"{mem['exact']}/{len(mem['runs'])} exact (max error {mem['max_error']:.1e})",
                     f"{mem['median_seconds']:.1f} s = **{mem['passes']:.1f} passes** of `X @ V.T` "
                     f"({mem['pass_seconds']:.2f} s)",
                     f"peak {gib(mem['peak_rss'])} = **{mem['peak_over_data']:.2f} x** X and Y",
                     "<= 10 passes, <= 1.3 x"])
    ad = c.get("adam")
    if ad and "failed" not in ad:
        if ad.get("reached"):
            txt = (f"aligned error 1e-3 after {ad['time_to_target']:.0f} s: "
                   f"**{ad['ratio']:.0f} x** our time")
        else:
            txt = (f"did not reach 1e-3 in {ad['budget']:.0f} s (best {ad['best_error']:.1e}): "
                   f"**> {ad.get('ratio_at_least', float('nan')):.0f} x** our time")
        rows.append(["Adam (PyTorch, 1 thread) on the same data", txt, "", "", "ratio reported"])
    ooc = c.get("out_of_core")
    if ooc and "failed" not in ooc:
        s = ooc["size"]
        rows.append([f"out of core, float32 Zarr, d={s['d']}, k={s['k']}, m={s['m']}, "
                     f"n={s['n']:,} ({ooc['x_bytes'] / 1e9:.1f} GB)",
                     f"{ooc['exact']}/{len(ooc['runs'])} exact (max error {ooc['max_error']:.1e})",
                     (f"from disk (page cache emptied): {ooc['cold_median_seconds']:.0f} s = "
                      f"**{ooc['cold_reads']:.2f} x** one chunked read "
                      f"({ooc['cold_read_seconds']:.0f} s); " if ooc.get("cold_reads") else "")
                     + f"cached: {ooc['median_seconds']:.1f} s = **{ooc['reads']:.1f} x** one "
                     f"read ({ooc['read_seconds']:.1f} s); `relurecover fit` on the stores "
                     f"{ooc['cli']['seconds']:.0f} s, exit {ooc['cli']['exit_code']}",
                     f"peak {gib(ooc['peak_rss'])}", "<= 5 reads, < 2 GB"])
    dist = c.get("distributed")
    if dist and "failed" not in dist:
        s = dist["size"]
        rows.append([f"Dask LocalCluster, 2 workers, d={s['d']}, k={s['k']}, m={s['m']}, "
                     f"n={s['n']:,}",
                     f"{dist['exact']}/{len(dist['runs'])} exact; weights within "
                     f"**{dist['max_difference']:.1e}** of in memory",
                     f"{dist['median_seconds']:.1f} s (in memory "
                     f"{dist['median_seconds_in_memory']:.1f} s)", "", "<= 1e-9"])
    noisy = c.get("noisy")
    if noisy and "failed" not in noisy:
        for r in noisy["sizes"]:
            s = r["size"]
            rows.append([f"noisy (0.1 std), d={s['d']}, k={s['k']}, m={s['m']}, n={s['n']:,}",
                         f"error **{r['median_ratio']:.3f} x** the oracle (max "
                         f"{r['max_ratio']:.3f}, {len(r['runs'])} runs)",
                         f"{r['median_seconds']:.1f} s = **{r['median_passes']:.0f} passes**",
                         "", "<= 1.1 x, <= 300 passes"])
    return mode, rows


def write_readme(results):
    mode, rows = table_rows(results)
    env = results.get("environment", {})
    by_commit = {}
    for name, case in results.get("cases", {}).items():
        by_commit.setdefault(case.get("commit", "?"), []).append(name)
    commits = "; ".join(f"{', '.join(names)} at {c}" for c, names in by_commit.items())
    lines = [START, "",
             f"Generated by `python bench/run.py{' --quick' if mode == 'quick' else ''}` on "
             f"{env.get('date', '?')} ({commits}; {env.get('cpus', '?')} CPUs, one BLAS "
             "thread; medians of the runs listed in `bench/results.json`):", "",
             "| case | result | time | memory | target |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", END]
    text = README.read_text()
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        README.write_text(head + "\n".join(lines) + tail)
        print(f"updated the table in {README}")
    else:
        print(f"{README} has no markers {START} ... {END}; table not written")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--data", default=os.environ.get("RELURECOVER_BENCH_DATA",
                                                     str(HERE / "data")))
    ap.add_argument("--readme-only", action="store_true")
    ap.add_argument("--child")
    ap.add_argument("--extra", default="{}")
    a = ap.parse_args(argv)
    mode = "quick" if a.quick else "full"
    if a.child:
        out = child(a.child, mode, a.repeats, a.data, json.loads(a.extra))
        print("RESULT " + json.dumps(_jsonable(out)), flush=True)
        return 0
    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    if a.readme_only:
        write_readme(results)
        return 0
    if results.get("mode") != mode:
        results = {"mode": mode, "cases": {}}
    results["environment"] = environment()
    for case in [c.strip() for c in a.cases.split(",") if c.strip()]:
        if case not in CASES:
            raise SystemExit(f"unknown case {case!r}; choose from {CASES}")
        print(f"== {case} ({mode})", flush=True)
        extra = {}
        if case == "adam":
            mem = results["cases"].get("memory", {})
            extra["ours_seconds"] = mem.get("median_seconds")
        t0 = time.perf_counter()
        results["cases"][case] = run_child(case, mode, a.repeats, a.data, extra)
        results["cases"][case]["case_seconds"] = time.perf_counter() - t0
        results["cases"][case]["commit"] = results["environment"].get("commit")
        results["cases"][case]["src_dirty"] = results["environment"].get("src_dirty")
        RESULTS_JSON.write_text(json.dumps(_jsonable(results), indent=1) + "\n")
    write_readme(results)
    mode_, rows = table_rows(results)
    print_table(f"bench/run.py ({mode_})", ["case", "result", "time", "memory", "target"],
                rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
