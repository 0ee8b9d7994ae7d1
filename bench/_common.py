"""Helpers shared by the benchmarks: timing, planted instances, JSON, tables."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from relurecover import TwoLayerNetwork, compare, gaussian_inputs

RESULTS = Path(__file__).resolve().parent / "results"


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self._t0 = time.perf_counter()
        self.seconds = float("nan")
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._t0
        return False


def pass_time(X, W, repeats: int = 3) -> float:
    """Best of ``repeats`` wall times of one pass ``X @ W.T`` (the unit of cost)."""
    best = np.inf
    for _ in range(repeats):
        with Timer() as t:
            out = X @ W.T
        del out
        best = min(best, t.seconds)
    return best


def planted(d: int, k: int, m: int, n: int, seed: int, *, tag: int = 0):
    """A planted network with Gaussian weights and ``n`` Gaussian samples.

    The instance depends only on ``(tag, d, k, m, seed)`` for the weights and on
    ``n`` too for the inputs, so runs are reproducible one by one.
    """
    truth = TwoLayerNetwork.random(d, k, m, rng=np.random.default_rng([tag, d, k, m, seed]))
    X = gaussian_inputs(n, d, rng=np.random.default_rng([tag, d, k, m, seed, n]))
    return truth, X, truth.predict(X)


def aligned_error(found, truth) -> float:
    """Max aligned relative error (``compare(...).max_error``); inf without a network."""
    if found is None:
        return float("inf")
    return float(compare(found, truth).max_error)


def environment() -> dict:
    """Machine, versions and commit, stored with every result."""
    import scipy

    env = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    try:
        import torch

        env["torch"] = torch.__version__
    except ImportError:  # pragma: no cover
        pass
    try:
        root = Path(__file__).resolve().parent.parent
        env["commit"] = git_commit()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src"], cwd=root, capture_output=True,
            text=True, check=False).stdout.strip()
        env["src_dirty"] = bool(dirty)
        if dirty:  # identify the uncommitted source that ran
            import hashlib

            diff = subprocess.run(
                ["git", "diff", "HEAD", "--", "src"], cwd=root, capture_output=True,
                check=False).stdout
            h = hashlib.sha1(diff)
            for line in sorted(dirty.splitlines()):
                if line.startswith("??"):
                    f = root / line[3:].strip()
                    for g in sorted(f.rglob("*.py")) if f.is_dir() else [f]:
                        h.update(g.read_bytes())
            env["src_dirty_files"] = dirty.splitlines()
            env["src_diff_sha1"] = h.hexdigest()
    except OSError:  # pragma: no cover
        pass
    return env


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if np.isfinite(v) else str(v)  # JSON has no inf / nan
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def write_json(name: str, data: dict) -> Path:
    """Write ``data`` (plus the environment) to ``bench/results/<name>.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "environment": environment(), **data}
    path.write_text(json.dumps(_jsonable(payload), indent=1) + "\n")
    return path


def git_commit() -> str:
    """The short hash of the checkout's HEAD ("" outside git)."""
    root = Path(__file__).resolve().parent.parent
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                              capture_output=True, text=True, check=False).stdout.strip()
    except OSError:  # pragma: no cover
        return ""


def read_json(name: str):
    """The stored result ``bench/results/<name>.json``, or None."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def fmt(x, spec: str = ".3g") -> str:
    """Format numbers for tables (None -> '-', inf -> 'inf')."""
    if x is None:
        return "-"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return format(float(x), spec)
    return str(x)


def print_table(title: str, columns: list[str], rows: list[list]) -> None:
    """Print a table with rich when installed, as plain text otherwise."""
    cells = [[fmt(c) for c in row] for row in rows]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c)
                  for i, c in enumerate(columns)]
        print(f"\n{title}")
        print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
        for r in cells:
            print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
        return
    table = Table(title=title)
    for c in columns:
        table.add_column(c, justify="right")
    for r in cells:
        table.add_row(*r)
    Console(width=max(100, 14 * len(columns))).print(table)
