"""The ``relurecover`` command line: plant, fit, compare, predict and report.

Commands: ``demo`` (plant, sample, recover, print a table), ``deep-demo`` (the
same for a deep network [CKM]: filtered PCA, then learning), ``generate`` (write a
planted dataset), ``fit`` (recover a network from ``X`` and ``Y`` files; ``--deep``
learns a deep one), ``compare`` (aligned errors between two saved networks),
``predict`` (a saved network on new inputs) and ``report`` (PNG pictures of the
benchmark results).

Every command takes ``--json`` (one JSON object on stdout, nothing else; schema in
``docs/cli.md``), ``--quiet`` and ``--verbose``, and exits with 0 (done and
certified; ``compare``: the networks agree within ``--tol``), 1 (done but not
certified; ``compare``: they disagree) or 2 (bad input: one line ``error: ...`` on
stderr, nothing written). Warnings are one line ``warning: ...`` on stderr;
progress bars go to stderr when it is a terminal. Each command is a plain
function registered with ``@app.command(epilog=epilog(...))`` that speaks
through :class:`relurecover._cli_common.Output`; add a new one the same way (that
module says how). ``deep-demo`` and ``fit --deep`` need PyTorch: without it they
print ``error: learn_deep needs PyTorch: pip install 'relurecover[torch]'`` (exit
code 2) before any work.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from . import __version__
from ._cli_common import (
    EXIT_BAD_INPUT,
    EXIT_NOT_CERTIFIED,
    EXIT_OK,
    SCHEMA_VERSION,
    USER_ERRORS,
    CliGroup,
    Output,
    check_out_dir,
    check_out_file,
    epilog,
    json_option,
    jsonable,
    network_summary,
    quiet_option,
    verbose_option,
)
from ._validation import as_2d_float, check_positive_int
from .activations import get_activation
from .metrics import align, compare as compare_networks
from .networks import (
    DeepNetwork,
    TwoLayerNetwork,
    _metadata_entry,
    gaussian_inputs,
    load_network,
    read_metadata,
)
from .twolayer import Recovery, recover_two_layer
from .twolayer._noisy import WARN_ERROR
from .twolayer._recover import check_problem_size

__all__ = ["app", "main", "load_array", "load_xy"]

#: rows per block where the command line samples or predicts (one progress step).
ROW_BLOCK = 65536
#: the default ``--tol`` of a two-layer ``fit`` (``recover_two_layer``'s ``tol``).
TWO_LAYER_TOL = 1e-9
#: the default ``--tol`` of ``compare``: the largest aligned error (two layers) or
#: the relative square prediction error (deep) at which two networks agree.
COMPARE_TOL = 1e-6

app = typer.Typer(
    cls=CliGroup,
    help="Recover two-layer ReLU networks y = U relu(V x + b) + c exactly from samples "
    "[BJW]; learn deep ones by filtered PCA [CKM].",
    epilog="**Exit codes** (every command): 0 done and certified (compare: the networks "
    "agree within --tol); 1 done but not certified (compare: they disagree); 2 bad input. "
    "Every command takes --json (one JSON object on stdout, schema in docs/cli.md), "
    "--quiet and --verbose.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _version(value: bool):
    if value:
        typer.echo(f"relurecover {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
):
    """Recover two-layer ReLU networks y = U relu(V x + b) + c exactly from samples [BJW]."""


# --------------------------------------------------------------------------- files

#: header cells that name a row index (pandas writes an empty one, or "Unnamed: 0"
#: when a CSV with an index is read and written again).
INDEX_HEADERS = ("", "index", "unnamed: 0")
#: ``index_col`` of :func:`load_array` that means "no index column, keep every column".
NO_INDEX = False


def _parse_index_col(text: Optional[str]):
    """``--index-col``: None (detect), ``"none"`` (no index column) or a column number."""
    if text is None:
        return None
    if text.strip().lower() == "none":
        return NO_INDEX
    try:
        col = int(text)
    except ValueError:
        col = -1
    if col < 0:
        raise ValueError(f"--index-col must be a column number (0 for the first) or "
                         f"'none', got {text!r}.")
    return col


def _looks_like_index(col: np.ndarray) -> bool:
    """A column holding 0, 1, ..., n-1 (or 1, ..., n), in any order: a row index."""
    n = col.shape[0]
    if n < 3 or not np.all(np.isfinite(col)) or not np.all(col == np.round(col)):
        return False
    s = np.sort(col)
    return bool(np.array_equal(s, np.arange(n)) or np.array_equal(s, np.arange(1, n + 1)))


def _apply_index_col(arr: np.ndarray, path: Path, index_col, header_cells) -> np.ndarray:
    """Drop the index column ``index_col``; with None refuse one that looks like it."""
    if index_col is NO_INDEX:
        return arr
    if index_col is None:
        if arr.shape[1] < 2:
            return arr
        why = None
        if header_cells is not None and header_cells[0].strip().lower() in INDEX_HEADERS:
            why = f"its header cell is {header_cells[0].strip()!r}"
        elif _looks_like_index(arr[:, 0]):
            why = f"it holds 0, 1, ..., {arr.shape[0] - 1} (or 1, ..., {arr.shape[0]})"
        if why is None:
            return arr
        raise ValueError(
            f"{path}: the first column looks like a row index ({why}), as pandas' "
            "to_csv writes one. Pass --index-col 0 to drop it, or --index-col none to "
            "use it as a feature.")
    if index_col >= arr.shape[1]:
        raise ValueError(f"{path}: --index-col {index_col} but the table has "
                         f"{arr.shape[1]} columns (0 is the first).")
    return np.delete(arr, index_col, axis=1)


def _read_csv(path: Path, header=None, index_col=None) -> np.ndarray:
    """Numeric CSV (or whitespace-separated text).

    ``header``: None reads a first line that is not all numbers as a header,
    True always skips the first line, False reads it as data. ``index_col``: see
    :func:`load_array`.
    """
    with open(path) as fh:
        first = next((line for line in fh if line.strip()), "")
    if not first:
        raise ValueError(f"{path}: the file is empty.")
    delim = "," if "," in first else (";" if ";" in first else None)
    cells = first.rstrip("\r\n").split(delim)
    try:
        [float(tok) for tok in cells]
        numeric = True
    except ValueError:
        numeric = False
    if header is None:
        skip = 0 if numeric else 1
    elif header:
        skip = 1
    else:
        if not numeric:
            raise ValueError(f"{path}: --no-header, but the first line "
                             f"{first.strip()[:60]!r} is not numbers; drop --no-header "
                             "(or pass --header) to read it as a header.")
        skip = 0
    try:
        arr = np.loadtxt(path, delimiter=delim, skiprows=skip, ndmin=2, dtype=float)
    except ValueError as exc:
        raise ValueError(f"{path}: not a numeric table ({exc})") from None
    if arr.size == 0:
        raise ValueError(f"{path}: no data rows after the header.")
    return _apply_index_col(arr, path, index_col, cells if skip else None)


def _read_parquet(path: Path, index_col=None) -> np.ndarray:
    """A Parquet table of numeric columns, through pyarrow (pandas' stored index
    columns ``__index_level_N__`` are dropped)."""
    try:
        import pyarrow.parquet as pq
        import pyarrow.types as pat
    except ImportError:
        raise ValueError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow "
                         "(or pip install 'relurecover[parquet]').") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow's own errors (ArrowInvalid, ...) for a bad file
        raise ValueError(f"{path}: not a readable Parquet file ({exc}).") from None
    names = [c for c in table.column_names if not c.startswith("__index_level_")]
    bad = [c for c in names if not (pat.is_integer(table.schema.field(c).type)
                                    or pat.is_floating(table.schema.field(c).type)
                                    or pat.is_boolean(table.schema.field(c).type))]
    if bad:
        raise ValueError(f"{path}: columns {bad} are not numeric; keep only numeric "
                         "columns (an index column can be dropped with --index-col N).")
    if not names:
        raise ValueError(f"{path}: the table has no data columns.")
    arr = np.column_stack([np.asarray(table.column(c).to_numpy(zero_copy_only=False),
                                      dtype=float) for c in names])
    return _apply_index_col(arr, path, index_col, names)


def _open_chunked(path: Path, name: str, dask: bool):
    """A ``.npy`` file, Zarr store or shard folder opened without being read (as
    a Dask array with ``dask``), its shape and dtype checked."""
    from .data import ChunkedArray, check_structure, open_array, open_dask

    try:
        opened = ChunkedArray(open_dask(path, name=name), name=name) if dask else \
            open_array(path, name=name)
        return check_structure(opened, name, allow_1d_column=(name == "Y"))
    except ImportError as exc:
        raise ValueError(f"{path}: reading it needs the dask extra ({exc}): "
                         "pip install 'relurecover[dask]'.") from None
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(msg if str(path) in msg else f"{path}: {msg}") from None


def load_array(path, name: str, *, header=None, index_col=None, chunked: bool = False,
               dask: bool = False):
    """Read the array ``name`` (``"X"`` or ``"Y"``) from ``.npy``, ``.npz``, ``.csv``,
    ``.parquet``, a Zarr store or a folder of ``.npy`` shards.

    An ``.npz`` must hold an array called ``name`` or exactly one array. The
    result is checked to be a finite 2-D float array (a 1-D ``Y`` is a column).
    ``header`` (CSV: None detects a non-numeric first line, True skips the first
    line, False reads it as data) and ``index_col`` (CSV and Parquet: None refuses
    a first column that looks like a row index, False keeps every column, an
    int drops that column) say how tables are read.

    With ``chunked``, a ``.npy`` file, a Zarr store or a shard folder is opened
    without being read (a :class:`relurecover.data.ChunkedArray`; the fit
    validates it in its first pass, docs/algorithms.md 8); with ``dask`` too, as
    a Dask array whose tasks read the file by path (for a cluster). Otherwise
    it is read into memory.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder.")
    if path.is_dir() or (chunked and suffix == ".npy"):  # a store, shards, or .npy
        opened = _open_chunked(path, name, dask)
        if chunked:
            return opened
        arr = np.asarray(opened)
    elif not path.is_file():
        raise ValueError(f"{path}: no such file.")
    elif suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f"{path}: not a readable .npy array ({exc})") from None
    elif suffix == ".npz":
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path}: not an .npz archive.")
        with np.load(path, allow_pickle=False) as f:
            files = [k for k in f.files if k != "metadata"]
            if name in f.files:
                arr = f[name]
            elif len(files) == 1:
                arr = f[files[0]]
            else:
                raise ValueError(
                    f"{path}: holds arrays {sorted(f.files)}; expected one named "
                    f"{name!r} or a single array."
                )
    elif suffix in (".csv", ".txt", ".tsv"):
        arr = _read_csv(path, header, index_col)
    elif suffix in (".parquet", ".pq"):
        arr = _read_parquet(path, index_col)
    else:
        raise ValueError(
            f"{path}: unknown file type {suffix!r}; use .npy, .npz, .csv, .parquet, a "
            ".zarr store or a folder of .npy shards."
        )
    try:
        return as_2d_float(arr, name, allow_1d_column=(name == "Y"))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def load_xy(x_path, y_path=None, *, header=None, index_col=None, chunked: bool = False,
            dask: bool = False):
    """``X`` and ``Y`` from two files, or from one ``.npz`` holding both
    (``header``, ``index_col``, ``chunked`` and ``dask`` as in :func:`load_array`)."""
    if y_path is None:
        if Path(x_path).suffix.lower() != ".npz":
            raise ValueError(
                f"{x_path}: give the labels as a second file (fit X Y ...), or one "
                ".npz holding arrays X and Y."
            )
        if not Path(x_path).is_file():
            raise ValueError(f"{x_path}: no such file.")
        if not zipfile.is_zipfile(x_path):
            raise ValueError(f"{x_path}: not an .npz archive.")
        with np.load(x_path, allow_pickle=False) as f:
            if not {"X", "Y"} <= set(f.files):
                raise ValueError(
                    f"{x_path}: holds arrays {sorted(f.files)}, not both X and Y; "
                    "give the labels as a second file."
                )
        y_path = x_path
    X = load_array(x_path, "X", header=header, index_col=index_col, chunked=chunked,
                   dask=dask)
    Y = load_array(y_path, "Y", header=header, index_col=index_col, chunked=chunked,
                   dask=dask)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X has {X.shape[0]} rows but Y has {Y.shape[0]}: one sample per row in both."
        )
    return X, Y


def _load_network(path):
    """A saved :class:`TwoLayerNetwork` or :class:`DeepNetwork` (or a generated dataset)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not an .npz file (networks are saved as .npz).")
    try:
        return load_network(path)
    except KeyError as exc:
        raise ValueError(f"{path}: not a saved network (missing array {exc}).") from None


def _parse_widths(text: Optional[str]):
    """``"4,4"`` -> ``[4, 4]``; None stays None."""
    if text is None:
        return None
    try:
        widths = [int(tok) for tok in text.replace(" ", "").split(",") if tok]
    except ValueError:
        raise ValueError(f"--widths must be comma-separated integers like 4,4; got {text!r}."
                         ) from None
    if not widths or min(widths) < 1:
        raise ValueError(f"--widths must be positive integers like 4,4; got {text!r}.")
    return widths


def _positive(value, option: str):
    """An int option that must be at least 1 (``--d``, ``--n``, ...)."""
    try:
        return check_positive_int(value, option, allow_none=True)
    except ValueError:
        raise ValueError(f"{option} must be a positive integer, got {value!r}.") from None


def _positive_seconds(value, option: str = "--time-limit"):
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ValueError(f"{option} must be a positive number of seconds, got {value}.")
    return value


def _sample_gaussian(n: int, d: int, rng, progress) -> np.ndarray:
    """``gaussian_inputs(n, d, rng=rng)`` in blocks of rows (the same numbers)."""
    X = np.empty((n, d))
    for s in range(0, n, ROW_BLOCK):
        rng.standard_normal(out=X[s:s + ROW_BLOCK])
        if progress:
            progress("sampling X", min(s + ROW_BLOCK, n) / n)
    return X


def _predict_blocks(net, X: np.ndarray, progress, stage: str) -> np.ndarray:
    """``net.predict(X)`` in blocks of rows, with progress."""
    n = X.shape[0]
    if n <= ROW_BLOCK:
        Y = net.predict(X)
        if progress:
            progress(stage, 1.0)
        return Y
    Y = np.empty((n, net.n_outputs))
    for s in range(0, n, ROW_BLOCK):
        Y[s:s + ROW_BLOCK] = net.predict(X[s:s + ROW_BLOCK])
        if progress:
            progress(stage, min(s + ROW_BLOCK, n) / n)
    return Y


# --------------------------------------------------------------------------- tables

def _fmt(x: float) -> str:
    return f"{x:.2e}"


def _verdict(res: Recovery) -> str:
    return "[green]exact[/green]" if res.exact else "[red]NOT exact[/red]"


def _recovery_table(res: Recovery, title: str = "Recovery") -> Table:
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_row("verdict", _verdict(res))
    t.add_row("certificate", _fmt(res.certificate) + "  (‖Y − U f(V X + b) − c‖ / ‖Y‖)")
    t.add_row("units found", f"{res.n_found} of {res.n_hidden}")
    t.add_row("method", res.method)
    if "auto" in res.diagnostics:
        t.add_row("why this method", escape(str(res.diagnostics["auto"])))
    if res.noise_level is not None:
        t.add_row("noise level", f"{res.noise_level:.3g}")
    if res.standard_errors is not None:
        t.add_row("estimated aligned error", _fmt(res.standard_errors.estimated_error))
    t.add_row("message", escape(res.message))
    for stage, sec in res.timings.items():
        t.add_row(f"time: {escape(stage)}", f"{sec:.3f} s")
    t.add_row("time: total", f"{sum(res.timings.values()):.3f} s")
    return t


def _comparison_table(c, found, truth) -> Table:
    t = Table(title="Aligned errors", show_header=False, title_justify="left")
    t.add_row("units matched", f"{c.n_matched} of {c.n_true} (found {c.n_found})")
    t.add_row("V relative error", _fmt(c.v_error))
    t.add_row("U relative error", _fmt(c.u_error))
    if found.has_biases or truth.has_biases:
        t.add_row("b error", _fmt(c.b_error))
        t.add_row("c error", _fmt(c.c_error))
    t.add_row("max relative error", _fmt(c.max_error))
    t.add_row("bits of precision", f"{c.bits:.1f}")
    return t


def _units_table(found: TwoLayerNetwork, truth: TwoLayerNetwork, rows: int = 10) -> Table:
    """True against recovered units, after alignment: ``V`` rows unit norm."""
    al = align(found.U, found.V, truth.U, truth.V, truth.activation.degree)
    Uf, Vf, Ut, Vt, perm = al.U_found, al.V_found, al.U_true, al.V_true, al.permutation
    t = Table(title=escape("Units, aligned (‖V[i]‖ = 1, scale pushed into U)"),
              title_justify="left")
    for col in ("found", "true", "‖U[:, i]‖ true", "‖U[:, i]‖ found",
                "V[i, 0] true", "V[i, 0] found", "rel. error"):
        t.add_column(escape(col), justify="right")
    for i in np.argsort(perm)[:rows]:
        j = perm[i]
        if j < 0:
            t.add_row(str(i), "-", "", f"{np.linalg.norm(Uf[:, i]):.6f}", "",
                      f"{Vf[i, 0]:+.6f}", "unmatched")
            continue
        err = np.sqrt(np.sum((Vf[i] - Vt[j]) ** 2) + np.sum((Uf[:, i] - Ut[:, j]) ** 2)
                      ) / np.sqrt(np.sum(Vt[j] ** 2) + np.sum(Ut[:, j] ** 2))
        t.add_row(str(i), str(j), f"{np.linalg.norm(Ut[:, j]):.6f}",
                  f"{np.linalg.norm(Uf[:, i]):.6f}", f"{Vt[j, 0]:+.6f}",
                  f"{Vf[i, 0]:+.6f}", _fmt(err))
    if len(perm) > rows:
        t.caption = f"... and {len(perm) - rows} more units (--verbose shows all)"
    return t


def _short(value) -> str:
    """A diagnostic value in at most a line."""
    if isinstance(value, np.ndarray):
        if value.size <= 8:
            return np.array2string(value, precision=3, separator=", ")
        return f"array of shape {value.shape}"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        text = ", ".join(f"{k}={_short(v)}" for k, v in value.items())
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= 160 else text[:157] + "..."


def _diagnostics_table(diag: dict, title: str = "Diagnostics") -> Table:
    t = Table(title=title, show_header=False, title_justify="left")
    for key, value in diag.items():
        t.add_row(escape(str(key)), escape(_short(value)))
    return t


def _subspace_table(subs, plane) -> Table:
    """Plain against filtered PCA: directions above the floor, evidence, angle."""
    from .deep import principal_angles

    t = Table(title="First-layer subspace (docs/algorithms.md 5.1-5.2)", title_justify="left")
    for col in ("method", "directions", "evidence (x floor)", "largest angle to truth"):
        t.add_column(col, justify="right")
    for sub in subs:
        ev = ", ".join(f"{e:.1f}" for e in sub.evidence[:6]) or "-"
        ang = (f"{principal_angles(sub.basis, plane).max():.3f} rad" if sub.n_found
               else "-")
        t.add_row(sub.method, str(sub.n_found), ev, ang)
    t.caption = "\n".join(f"{sub.method}: {escape(sub.message)}" for sub in subs)
    t.caption_justify = "left"
    return t


def _check_deep(tol: float, engine: str) -> str:
    """Check ``--tol`` and ``--engine`` of the deep commands, before any work.

    ``--engine torch`` without PyTorch is bad input (one line, exit code 2); ``auto``
    is numpy. Returns the engine.
    """
    from .deep._engine import resolve_engine
    from .deep._learn import MissingDependencyError

    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"--tol must be a positive number (a held-out relative square "
                         f"error), got {tol}.")
    try:
        return resolve_engine(engine)
    except MissingDependencyError as exc:
        raise ValueError(str(exc)) from None


def _engine_option():
    return typer.Option("auto", "--engine", help="Who does the arithmetic of the deep "
                        "fits: numpy (and SciPy), torch, or auto (the default engine of "
                        "learn_deep).")


def _first_layer_angle(fit, truth) -> float:
    from .deep import principal_angles

    return float(principal_angles(fit.network.weights[0].T, truth.weights[0].T).max())


def _deep_fit_table(fit, truth=None) -> Table:
    t = Table(title="Learned network (docs/algorithms.md 5.3-5.4)", show_header=False,
              title_justify="left")
    tol = fit.success_tol
    t.add_row("verdict", f"[green]held-out error <= {tol:g}[/green]" if fit.success
              else f"[red]held-out error > {tol:g}[/red]")
    t.add_row("network", escape(repr(fit.network)))
    t.add_row("held-out error", _fmt(fit.heldout_error) + "  (‖y − F(x)‖² / ‖y‖², rows "
              "never fitted)")
    t.add_row("training error", _fmt(fit.train_error))
    t.add_row("subspace dimension", str(fit.subspace.n_found))
    t.add_row("engine", str(fit.diagnostics.get("engine", "")))
    if truth is not None:
        t.add_row("first-layer span vs truth",
                  f"{_first_layer_angle(fit, truth):.2e} rad (largest principal angle)")
    t.add_row("message", escape(fit.message))
    for stage, sec in fit.timings.items():
        t.add_row(f"time: {stage}", f"{sec:.2f} s")
    return t


# --------------------------------------------------------------------------- JSON blocks

def _recovery_json(res: Recovery, tol: float) -> dict:
    """The ``recovery`` object of docs/cli.md."""
    ref = res.diagnostics.get("refinement") if res.noise_level is not None else None
    se = res.standard_errors
    return {
        "exact": bool(res.exact), "certificate": float(res.certificate), "tol": float(tol),
        "method": res.method, "n_found": int(res.n_found), "n_hidden": int(res.n_hidden),
        "message": res.message,
        "noise_level": None if res.noise_level is None else float(res.noise_level),
        "estimated_error": None if se is None else float(se.estimated_error),
        "converged": None if ref is None else bool(ref.get("converged")),
        "timings": {k: float(v) for k, v in res.timings.items()},
        "network": None if res.network is None else network_summary(res.network),
    }


def _deep_json(fit, truth=None) -> dict:
    """The ``deep_fit`` object of docs/cli.md."""
    return {
        "success": bool(fit.success), "heldout_error": float(fit.heldout_error),
        "train_error": float(fit.train_error), "tol": float(fit.success_tol),
        "subspace_dimension": int(fit.subspace.n_found),
        "widths": [int(w) for w in fit.widths],
        "engine": str(fit.diagnostics.get("engine", "numpy")), "message": fit.message,
        "timings": {k: float(v) for k, v in fit.timings.items()},
        "first_layer_angle": None if truth is None else _first_layer_angle(fit, truth),
        "network": network_summary(fit.network),
    }


def _comparison_json(c) -> dict:
    """The ``comparison`` object of docs/cli.md."""
    return {"n_matched": int(c.n_matched), "n_true": int(c.n_true),
            "n_found": int(c.n_found), "v_error": float(c.v_error),
            "u_error": float(c.u_error), "b_error": float(c.b_error),
            "c_error": float(c.c_error), "max_error": float(c.max_error),
            "bits": float(c.bits)}


# --------------------------------------------------------------------------- commands

def _planted(d: int, k: int, m: int, n: Optional[int], seed: int, activation: str,
             progress=None):
    """A planted network, Gaussian inputs and its labels, from one seeded generator."""
    rng = np.random.default_rng(seed)
    truth = TwoLayerNetwork.random(d, k, m, activation=activation, rng=rng)
    X = _sample_gaussian(10 * d * k if n is None else n, d, rng, progress)
    return truth, X, _predict_blocks(truth, X, progress, "labels"), rng


@app.command(epilog=epilog("the planted network was recovered exactly (certified)",
                           "it was not"))
def demo(
    d: int = typer.Option(50, "--d", help="Input dimension."),
    k: int = typer.Option(10, "--k", help="Hidden units."),
    m: int = typer.Option(12, "--m", help="Outputs (m >= k)."),
    n: Optional[int] = typer.Option(None, "--n", help="Samples [default: 10 d k]."),
    seed: int = typer.Option(0, "--seed", help="Seeds the network, the data and the search."),
    as_json: bool = json_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
):
    """Plant a random network, sample Gaussian inputs, recover it, print the errors."""
    out = Output("demo", as_json=as_json, quiet=quiet, verbose=verbose)
    d, k, m, n = (_positive(v, o) for v, o in ((d, "--d"), (k, "--k"), (m, "--m"), (n, "--n")))
    check_problem_size(10 * d * k if n is None else n, d, m, k)
    with out.progress("demo") as cb:
        truth, X, Y, rng = _planted(d, k, m, n, seed, "relu", cb)
        res = recover_two_layer(X, Y, n_hidden=k, rng=rng, progress=cb)
    out.info(f"planted {truth!r}, n = {X.shape[0]} Gaussian samples, seed {seed}")
    c = None
    if res.network is not None:
        c = compare_networks(res.network, truth)
        out.print(_units_table(res.network, truth, rows=k if verbose else 10))
        out.print(_comparison_table(c, res.network, truth))
    out.print(_recovery_table(res))
    out.detail(_diagnostics_table(res.diagnostics))
    code = EXIT_OK if res.exact else EXIT_NOT_CERTIFIED
    out.finish(code, res.message, {
        "planted": network_summary(truth), "n_samples": int(X.shape[0]), "seed": seed,
        "recovery": _recovery_json(res, TWO_LAYER_TOL),
        "comparison": None if c is None else _comparison_json(c)})


@app.command("deep-demo", epilog=epilog("the held-out error is at most --tol",
                                        "it is above --tol"))
def deep_demo(
    d: int = typer.Option(30, "--d", help="Input dimension."),
    widths: str = typer.Option("4,4", "--widths", help="Hidden widths, e.g. 4,4."),
    n: int = typer.Option(100_000, "--n", help="Samples."),
    alternating: bool = typer.Option(
        False, "--alternating",
        help="Plant the instance where plain PCA is blind: sum_j (-1)^j |<a_j, x>| "
        "over 4 directions of a plane (8 units; --widths is ignored)."),
    seed: int = typer.Option(0, "--seed", help="Seeds the network, the data and the fit."),
    tol: float = typer.Option(1e-3, "--tol", help="Held-out error counted as success."),
    restarts: int = typer.Option(24, "--restarts", help="Random starts of the subspace fit."),
    time_limit: Optional[float] = typer.Option(
        None, "--time-limit", help="Seconds after which the refinement stops [default: "
        "none]."),
    engine: str = _engine_option(),
    as_json: bool = json_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
):
    """Plant a deep ReLU network, find its subspace by filtered PCA, learn it [CKM]."""
    from .deep import alternating_network, filtered_pca, learn_deep, plain_pca

    out = Output("deep-demo", as_json=as_json, quiet=quiet, verbose=verbose)
    d, n, restarts = _positive(d, "--d"), _positive(n, "--n"), _positive(restarts,
                                                                          "--restarts")
    _positive_seconds(time_limit)
    rng = np.random.default_rng(seed)
    if alternating:
        truth = alternating_network(d, 4, rng=rng)
    else:
        truth = DeepNetwork.random(d, _parse_widths(widths), rng=rng)
    if n < 20 * d:
        raise ValueError(f"--n = {n} is too few samples for d = {d}: use n >= 20 d "
                         "(filtered PCA's noise floor is of order sqrt(d / n)).")
    engine = _check_deep(tol, engine)
    with out.progress("deep-demo") as cb:
        X = _sample_gaussian(n, d, rng, cb)
        y = _predict_blocks(truth, X, cb, "labels")
        if cb:
            cb("plain and filtered PCA", 0.0)
        subs = [plain_pca(X, y, rng=rng), filtered_pca(X, y)]
        fit = learn_deep(X, y, truth.widths, rng=rng, restarts=restarts, success_tol=tol,
                         time_limit=time_limit, progress=cb, engine=engine)
    out.info(f"planted {truth!r}, n = {n} Gaussian samples, seed {seed}")
    out.print(_subspace_table(subs, truth.weights[0].T))
    out.print(_deep_fit_table(fit, truth))
    out.detail(_diagnostics_table(fit.diagnostics))
    from .deep import principal_angles

    sub_json = [{"method": s.method, "directions": int(s.n_found),
                 "largest_angle": (float(principal_angles(s.basis, truth.weights[0].T).max())
                                   if s.n_found else None), "message": s.message}
                for s in subs]
    out.finish(EXIT_OK if fit.success else EXIT_NOT_CERTIFIED, fit.message, {
        "planted": network_summary(truth), "n_samples": n, "seed": seed,
        "subspaces": sub_json, "deep_fit": _deep_json(fit, truth)})


@app.command(epilog=epilog("the data set was written", None))
def generate(
    out_path: Path = typer.Argument(..., metavar="OUT",
                                    help="Output .npz: X, Y, U, V, activation."),
    d: int = typer.Option(50, "--d", help="Input dimension."),
    k: int = typer.Option(10, "--k", help="Hidden units."),
    m: int = typer.Option(12, "--m", help="Outputs."),
    n: Optional[int] = typer.Option(None, "--n", help="Samples [default: 10 d k; deep: "
                                    "100 000]."),
    seed: int = typer.Option(0, "--seed", help="Seeds the network and the data."),
    activation: str = typer.Option("relu", "--activation",
                                   help="relu, relu2, clipped, log1p or step-linear."),
    widths: Optional[str] = typer.Option(
        None, "--widths", help="Plant a deep ReLU network with these hidden widths "
        "(e.g. 4,4; --k is then ignored, n defaults to 100 000)."),
    noise: float = typer.Option(0.0, "--noise", help="Add Gaussian noise to Y of this "
                                "many standard deviations of each output (0: none)."),
    as_json: bool = json_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
):
    """Write a planted dataset: Gaussian X, labels Y and the true network in one .npz.

    Its sizes are checked as `fit` checks them: a data set that `fit` (or `fit
    --deep`) would refuse is not written.
    """
    from .deep._learn import check_deep_sample_size

    out = Output("generate", as_json=as_json, quiet=quiet, verbose=verbose)
    path = check_out_file(out_path, (".npz",), option="OUT", what="a data set",
                          default_suffix=".npz")
    d, k, m, n = (_positive(v, o) for v, o in ((d, "--d"), (k, "--k"), (m, "--m"), (n, "--n")))
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"--noise must be a number >= 0 (standard deviations), got {noise}.")
    deep = widths is not None
    if deep:
        hidden = _parse_widths(widths)
        n = 100_000 if n is None else n
        try:
            check_deep_sample_size(n, d)
        except ValueError as exc:
            raise ValueError(f"fit --deep would refuse this data set: {exc}") from None
    else:
        get_activation(activation)
        n = 10 * d * k if n is None else n
        try:
            check_problem_size(n, d, m, k)
        except ValueError as exc:
            raise ValueError(f"fit would refuse this data set (--n {n}, --d {d}, --k {k}, "
                             f"--m {m}): {exc}") from None
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    if deep:
        truth = DeepNetwork.random(d, hidden, m, rng=rng)
    else:
        truth = TwoLayerNetwork.random(d, k, m, activation=activation, rng=rng)
    with out.progress("generate") as cb:
        X = _sample_gaussian(n, d, rng, cb)
        Y = _predict_blocks(truth, X, cb, "labels")
        if noise > 0:
            Y = Y + noise * Y.std(axis=0) * rng.standard_normal(Y.shape)
    kind = "deep" if deep else "two-layer"
    meta = {"schema_version": SCHEMA_VERSION, "relurecover": __version__,
            "command": "generate", "kind": kind, "seed": seed, "noise": float(noise),
            "n": n, "d": d, "m": m, "truth": network_summary(truth)}
    if deep:
        arrays = {f"W{i}": W for i, W in enumerate(truth.weights)}
    else:
        arrays = dict(U=truth.U, V=truth.V, activation=np.array(truth.activation.name))
    np.savez(path, X=X, Y=Y, kind=np.array(kind), **arrays, **_metadata_entry(meta))
    message = f"wrote {path}: X {X.shape}, Y {Y.shape}, truth {truth!r}" + (
        f", noise {noise:g} x std(Y)" if noise else "")
    out.info(message)
    out.detail(f"took {time.perf_counter() - t0:.2f} s")
    out.finish(EXIT_OK, message, {"path": str(path), "kind": kind, "n_samples": n, "d": d,
                                  "m": m, "seed": seed, "noise": float(noise),
                                  "truth": network_summary(truth)})


def _two_layer_verdict(res: Recovery, noisy: bool):
    """``(exit code, verdict, text)`` of a two-layer fit (docs/cli.md, "Exit codes")."""
    if res.exact:
        return EXIT_OK, "exact", (f"exact: every unit certified, certificate "
                                  f"{res.certificate:.1e}")
    if res.noise_level is not None:
        est = (res.standard_errors.estimated_error if res.standard_errors is not None
               else math.inf)
        converged = bool(res.diagnostics.get("refinement", {}).get("converged"))
        if noisy and converged and est <= WARN_ERROR:
            return EXIT_OK, "noisy-estimate", (
                f"least-squares estimate for noisy labels (--noisy): converged, estimated "
                f"aligned error {est:.1e} <= {WARN_ERROR:g}")
        if noisy:
            why = ("the refinement did not converge" if not converged else
                   f"its estimated aligned error {est:.2g} > {WARN_ERROR:g}: too few samples "
                   "for this noise level")
            return EXIT_NOT_CERTIFIED, "not-certified", (
                f"not certified: the least-squares estimate is not good enough ({why})")
        return EXIT_NOT_CERTIFIED, "not-certified", (
            "not certified: the labels look noisy and no network fits them exactly; pass "
            "--noisy to accept a converged least-squares estimate (exit code 0)")
    return EXIT_NOT_CERTIFIED, "not-certified", f"not certified: {res.message}"


@app.command(epilog=epilog(
    "the network is exact (certified), or with --noisy a least-squares estimate that "
    "converged with an estimated aligned error <= 0.1, or with --deep the held-out "
    "error is at most --tol", "the fit is not certified (the network, if saved, is an "
    "estimate)"))
def fit(
    x: Path = typer.Argument(..., metavar="X", help="Inputs X (n, d): .npy, .npz, .csv, "
                             ".parquet, a .zarr store or a folder of .npy shards (.npy, "
                             "Zarr and shards are read in chunks, never whole); or one "
                             ".npz holding X and Y."),
    y: Optional[Path] = typer.Argument(None, metavar="Y", help="Labels Y (n, m): as X."),
    hidden: Optional[int] = typer.Option(None, "--hidden", "-k",
                                         help="Hidden units k [default: rank of Y]."),
    out_path: Optional[Path] = typer.Option(None, "--out", "-o", help="Save the network "
                                            "here (.npz), with its verdict as metadata."),
    seed: int = typer.Option(0, "--seed", help="Seeds the random steps of the search."),
    activation: str = typer.Option("relu", "--activation", help="The rectified activation."),
    method: str = typer.Option("auto", "--method",
                               help="auto, gaussian, general or few-outputs (two layers)."),
    noisy: bool = typer.Option(False, "--noisy", help="The labels are noisy: a converged "
                               "least-squares estimate is a good fit (exit code 0)."),
    tol: Optional[float] = typer.Option(
        None, "--tol", help="Two layers: the relative residual certified as exact "
        "[default: 1e-9]. With --deep: the held-out error counted as success "
        "[default: 1e-3]."),
    max_starts: Optional[int] = typer.Option(
        None, "--max-starts", help="Budget of rounding starts (two layers) [default: "
        "chosen by the method]."),
    time_limit: Optional[float] = typer.Option(
        None, "--time-limit", help="Seconds after which the search (two layers) or the "
        "refinement (--deep) stops [default: none]."),
    deep: bool = typer.Option(False, "--deep", help="Learn a deep ReLU network by filtered "
                              "PCA and a fit in its subspace [CKM] (Gaussian inputs)."),
    widths: Optional[str] = typer.Option(
        None, "--widths", help="With --deep: hidden widths, e.g. 4,4 [default: tried "
        "from the subspace dimension]."),
    restarts: Optional[int] = typer.Option(None, "--restarts", help="With --deep: random "
                                           "starts of the subspace fit [default: 24]."),
    header: Optional[bool] = typer.Option(
        None, "--header/--no-header", help="CSV: the first line is (or is not) a header "
        "[default: a first line that is not all numbers is one]."),
    index_col: Optional[str] = typer.Option(
        None, "--index-col", help="CSV and Parquet: drop this column (0 the first), a "
        "row index; 'none' keeps every column [default: refuse a first column that "
        "looks like an index]."),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", help="Two layers: run the passes over the data on this "
        "running dask.distributed scheduler (tcp://host:port); the workers read the "
        "files by path."),
    workers: Optional[int] = typer.Option(
        None, "--workers", help="Two layers: start a dask.distributed LocalCluster with "
        "this many single-threaded workers for the passes over the data (stopped at "
        "the end)."),
    engine: str = _engine_option(),
    as_json: bool = json_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
):
    """Recover a network from samples; exit code 0 when certified, 1 when not."""
    out = Output("fit", as_json=as_json, quiet=quiet, verbose=verbose)
    _positive_seconds(time_limit)
    if deep:
        from .deep._learn import DEFAULT_SUCCESS_TOL

        for flag, given in (("--hidden", hidden is not None),
                            ("--max-starts", max_starts is not None),
                            ("--noisy", noisy), ("--method", method != "auto"),
                            ("--activation", activation != "relu")):
            if given:
                raise ValueError(f"{flag} is for two-layer fits; with --deep use --widths, "
                                 "--restarts, --tol and --time-limit.")
        tol = DEFAULT_SUCCESS_TOL if tol is None else tol
        restarts = 24 if restarts is None else _positive(restarts, "--restarts")
        engine = _check_deep(tol, engine)
        hidden_widths = _parse_widths(widths)
    else:
        hidden_widths = None
        if widths is not None:
            raise ValueError("--widths needs --deep (a two-layer fit takes --hidden).")
        if engine != "auto":
            raise ValueError("--engine needs --deep (the engine of the deep fits).")
        if restarts is not None:
            raise ValueError("--restarts needs --deep (a two-layer fit takes --max-starts).")
        tol = TWO_LAYER_TOL if tol is None else tol
        if not (math.isfinite(tol) and 0 < tol < 1):
            raise ValueError(f"--tol must be a number in (0, 1) (the relative residual "
                             f"certified as exact), got {tol}.")
        _positive(hidden, "--hidden")
        _positive(max_starts, "--max-starts")
        get_activation(activation)
        if method not in ("auto", "gaussian", "general", "few-outputs"):
            raise ValueError(f"--method must be auto, gaussian, general or few-outputs, "
                             f"got {method!r}.")
    save_path = None if out_path is None else check_out_file(
        out_path, (".npz",), what="a network", default_suffix=".npz")
    use_dask = _check_cluster(scheduler, workers, deep)
    with _dask_client(scheduler, workers, out):
        _fit_body(out, x, y, hidden, save_path, seed, activation, method, noisy, tol,
                  max_starts, time_limit, deep, restarts, header, index_col, use_dask,
                  hidden_widths, engine)


def _check_cluster(scheduler, workers, deep) -> bool:
    """Validate ``--scheduler`` and ``--workers``; whether the fit runs on Dask."""
    if scheduler is not None and workers is not None:
        raise ValueError("give --scheduler (a running cluster) or --workers (a local one "
                         "started for this fit), not both.")
    if scheduler is None and workers is None:
        return False
    if deep:
        raise ValueError("--scheduler and --workers are for two-layer fits (the passes "
                         "of --deep run in this process).")
    if workers is not None:
        _positive(workers, "--workers")
    if scheduler is not None and "://" not in scheduler:
        raise ValueError(f"--scheduler must be an address like tcp://host:8786, got "
                         f"{scheduler!r}.")
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        raise ValueError("--scheduler and --workers need dask.distributed: pip install "
                         "'relurecover[dask]'.") from None
    return True


@contextlib.contextmanager
def _dask_client(scheduler, workers, out):
    """A ``dask.distributed`` client for the block (a LocalCluster of ``workers``
    started and closed here, or the running ``scheduler``), or nothing when
    neither is given."""
    if scheduler is None and workers is None:
        yield None
        return
    from dask.distributed import Client, LocalCluster

    if workers is not None:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            out.info(f"started a LocalCluster of {workers} workers")
            yield client
        return
    try:
        client = Client(scheduler, timeout=10)
    except OSError as exc:
        raise ValueError(f"--scheduler {scheduler}: could not connect ({exc}).") from None
    out.info(f"connected to {scheduler}")
    with client:
        yield client


def _fit_body(out, x, y, hidden, save_path, seed, activation, method, noisy, tol,
              max_starts, time_limit, deep, restarts, header, index_col, use_dask,
              hidden_widths, engine="auto"):
    """The work of :func:`fit` once its options are checked."""
    X, Y = load_xy(x, y, header=header, index_col=_parse_index_col(index_col),
                   chunked=not deep, dask=use_dask)
    if use_dask:
        X, Y = _as_dask(X, "X"), _as_dask(Y, "Y")
    t0 = time.perf_counter()
    if deep:
        from .deep import learn_deep

        with out.progress("fit --deep") as cb:
            res = learn_deep(X, Y, hidden_widths, rng=seed, restarts=restarts,
                             success_tol=tol, time_limit=time_limit, progress=cb,
                             engine=engine)
        out.info(f"fitted X {X.shape}, Y {Y.shape} in {time.perf_counter() - t0:.2f} s")
        out.print(_deep_fit_table(res, None))
        out.detail(_diagnostics_table(res.diagnostics))
        code = EXIT_OK if res.success else EXIT_NOT_CERTIFIED
        verdict = "within-tol" if res.success else "not-certified"
        text = (f"held-out error {res.heldout_error:.1e} <= --tol {tol:g}" if res.success
                else f"not certified: held-out error {res.heldout_error:.1e} > --tol {tol:g}")
        block = {"recovery": None, "deep_fit": _deep_json(res)}
        meta = {"exact": False, "certificate": float(res.heldout_error),
                "certificate_meaning": "held-out relative square error ||y - F(x)||^2 / "
                "||y||^2 on rows never fitted",
                "method": "learn_deep (filtered PCA, then a fit in the subspace) [CKM]",
                "message": res.message}
    else:
        with out.progress("fit") as cb:
            res = recover_two_layer(X, Y, n_hidden=hidden, activation=activation, rng=seed,
                                    method=method, tol=tol, max_starts=max_starts,
                                    time_limit=time_limit, progress=cb)
        out.info(f"fitted X {X.shape}, Y {Y.shape} in {time.perf_counter() - t0:.2f} s")
        out.print(_recovery_table(res))
        out.detail(_diagnostics_table(res.diagnostics))
        code, verdict, text = _two_layer_verdict(res, noisy)
        if not res.exact:
            out.info(text)
        block = {"recovery": _recovery_json(res, tol), "deep_fit": None}
        se = res.standard_errors
        meta = {"exact": bool(res.exact), "certificate": float(res.certificate),
                "certificate_meaning": "relative residual ||Y - U f(V X + b) - c|| / ||Y|| "
                "on the data (row-capped)",
                "method": res.method, "message": res.message,
                "n_found": int(res.n_found), "n_hidden": int(res.n_hidden),
                "noise_level": None if res.noise_level is None else float(res.noise_level),
                "estimated_error": None if se is None else float(se.estimated_error)}
    saved = None
    if save_path is not None:
        saved = _save_fit(out, res.network, save_path, code, verdict, text, meta, tol=tol,
                          noisy=noisy, deep=deep, x=x, y=y, X=X, Y=Y)
    out.finish(code, text, {"deep": deep, "noisy": noisy, "verdict": verdict,
                            "data": {"X": str(x), "Y": None if y is None else str(y),
                                     "n": int(X.shape[0]), "d": int(X.shape[1]),
                                     "m": int(Y.shape[1])},
                            **block, "saved": saved,
                            "seconds": time.perf_counter() - t0})


def _as_dask(A, name):
    """An in-memory array as a Dask array (its chunks shipped to the workers); a
    Dask-backed ChunkedArray as it is."""
    from .data import DEFAULT_CHUNK, ChunkedArray

    if isinstance(A, ChunkedArray) and A.is_dask:
        return A
    import dask.array as da

    A = np.asarray(A)
    return ChunkedArray(da.from_array(A, chunks=(DEFAULT_CHUNK,) + (-1,) * (A.ndim - 1)),
                        name=name)


def _save_fit(out: Output, net, path: Path, code: int, verdict: str, text: str,
              meta: dict, *, tol, noisy, deep, x, y, X, Y):
    """Save the fitted network with its verdict as metadata; say what was saved."""
    if net is None:
        out.warn(f"no network to save: {path} was not written ({text}).")
        return None
    meta = {"schema_version": SCHEMA_VERSION, "relurecover": __version__, "command": "fit",
            "kind": "deep" if deep else "two-layer", "verdict": verdict,
            "accepted": code == EXIT_OK, **jsonable(meta), "tol": float(tol),
            "noisy": bool(noisy),
            "data": {"X": str(x), "Y": None if y is None else str(y), "n": int(X.shape[0]),
                     "d": int(X.shape[1]), "m": int(Y.shape[1])}}
    net.save(path, metadata=meta)
    if verdict == "exact":
        out.info(f"saved exact network {net!r} to {path} (certificate "
                 f"{meta['certificate']:.1e})")
    elif verdict == "within-tol":
        out.info(f"saved network {net!r} to {path} (held-out error "
                 f"{meta['certificate']:.1e} <= --tol {tol:g}; learned, not certified exact)")
    elif verdict == "noisy-estimate":
        out.info(f"saved least-squares estimate {net!r} to {path} (noisy labels: not "
                 f"certified exact; estimated aligned error {meta['estimated_error']:.1e})")
    else:
        out.warn(f"saved an estimate that is NOT certified to {path} ({text}); its "
                 "metadata records accepted = false")
    return {"path": str(path), "verdict": verdict, "accepted": code == EXIT_OK}


@app.command(epilog=epilog("the networks agree within --tol", "they disagree"))
def compare(
    model: Path = typer.Argument(..., metavar="MODEL", help="A saved network (.npz)."),
    truth: Path = typer.Argument(..., metavar="TRUTH", help="The true network, or a "
                                 "generated dataset .npz."),
    tol: float = typer.Option(COMPARE_TOL, "--tol", help="Agreement: two layers, every "
                              "unit matched and the largest aligned error at most this; "
                              "deep, the relative square prediction error at most this."),
    n: int = typer.Option(20_000, "--n", help="Deep networks: Gaussian inputs on which "
                          "the predictions are compared."),
    as_json: bool = json_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
):
    """Aligned errors between a found network and the truth (deep networks: the angle
    between first-layer spans and the relative prediction error)."""
    out = Output("compare", as_json=as_json, quiet=quiet, verbose=verbose)
    if not (math.isfinite(tol) and tol > 0):
        raise ValueError(f"--tol must be a positive number, got {tol}.")
    n = _positive(n, "--n")
    found, true = _load_network(model), _load_network(truth)
    if found.n_inputs != true.n_inputs:
        raise ValueError(
            f"the networks have different input dimensions: d = {found.n_inputs} "
            f"({model}) and d = {true.n_inputs} ({truth})."
        )
    if found.n_outputs != true.n_outputs:
        raise ValueError(f"the networks have different numbers of outputs: "
                         f"{found.n_outputs} and {true.n_outputs}.")
    out.info(f"found {found!r}\ntruth {true!r}")
    result = {"model": str(model), "truth": str(truth), "found": network_summary(found),
              "true": network_summary(true), "tol": float(tol), "comparison": None,
              "deep": None}
    if isinstance(found, TwoLayerNetwork) and isinstance(true, TwoLayerNetwork):
        c = compare_networks(found, true)
        out.print(_comparison_table(c, found, true))
        out.detail(_diagnostics_table({"permutation (found -> true)": c.permutation},
                                      "Matching"))
        error = float(max(c.max_error, c.error))
        matched = c.n_matched == c.n_true == c.n_found
        agree = bool(matched and error <= tol)
        what = (f"largest aligned error {error:.2e}" + ("" if matched else
                f", {c.n_matched} of {c.n_true} units matched ({c.n_found} found)"))
        result["comparison"] = _comparison_json(c)
    else:
        from .deep import principal_angles

        first = [net.weights[0] if isinstance(net, DeepNetwork) else net.V
                 for net in (found, true)]
        Xs = gaussian_inputs(n, true.n_inputs, rng=0)
        yt = true.predict(Xs)
        error = float(((found.predict(Xs) - yt) ** 2).sum() / max((yt**2).sum(), 1e-300))
        angle = float(principal_angles(first[0].T, first[1].T).max())
        t = Table(title="Deep comparison", show_header=False, title_justify="left")
        t.add_row("first-layer span: largest angle", f"{angle:.2e} rad")
        t.add_row("relative prediction error", f"{_fmt(error)}  (‖F − F*‖² / ‖F*‖² on {n} "
                  "Gaussian inputs)")
        out.print(t)
        agree = error <= tol
        what = f"relative prediction error {error:.2e}"
        result["deep"] = {"largest_angle": angle, "prediction_error": error, "n": n}
    result.update(agree=agree, error=error)
    text = (f"agree: {what} <= --tol {tol:g}" if agree
            else f"DISAGREE: {what}, above --tol {tol:g}" if error > tol
            else f"DISAGREE: {what}")
    out.info(text)
    out.finish(EXIT_OK if agree else EXIT_NOT_CERTIFIED, text, result,
               status=None if agree else "disagree")


@app.command(epilog=epilog("the predictions were computed (and written with --out)",
                           None))
def predict(
    model: Path = typer.Argument(..., metavar="MODEL", help="A saved network (.npz)."),
    data: Path = typer.Argument(..., metavar="DATA", help="Inputs X (n, d): .npy, .npz "
                                "(array X or a single array), .csv or .parquet."),
    out_path: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Write the predictions (n, m) here: .npy, .csv or .npz "
        "(array Y) [default: CSV on stdout]."),
    header: Optional[bool] = typer.Option(
        None, "--header/--no-header", help="CSV: the first line is (or is not) a header "
        "[default: a first line that is not all numbers is one]."),
    index_col: Optional[str] = typer.Option(
        None, "--index-col", help="CSV and Parquet: drop this column (0 the first); "
        "'none' keeps every column [default: refuse a first column that looks like an "
        "index]."),
    as_json: bool = json_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
):
    """Predict with a saved network: one output row per input row.

    Without --out the predictions are printed as CSV on stdout (with --json: only
    their shape and a summary).
    """
    out = Output("predict", as_json=as_json, quiet=quiet, verbose=verbose)
    dest = None if out_path is None else check_out_file(
        out_path, (".npy", ".csv", ".npz"), what="the predictions")
    ic = _parse_index_col(index_col)
    net = _load_network(model)
    meta = read_metadata(model)
    if meta.get("accepted") is False:
        out.warn(f"{model} holds an estimate that is not certified "
                 f"({meta.get('verdict', 'not-certified')}): {meta.get('message', '')}")
    X = load_array(data, "X", header=header, index_col=ic)
    if X.shape[1] != net.n_inputs:
        raise ValueError(f"{data} has {X.shape[1]} columns but the network in {model} "
                         f"takes d = {net.n_inputs} inputs.")
    with out.progress("predict") as cb:
        P = _predict_blocks(net, X, cb, "predicting")
    if dest is not None:
        suffix = dest.suffix.lower()
        if suffix == ".npy":
            np.save(dest, P)
        elif suffix == ".npz":
            np.savez(dest, Y=P)
        else:
            np.savetxt(dest, P, delimiter=",", fmt="%.17g")
        out.info(f"wrote predictions {P.shape} to {dest}")
    elif not as_json:
        np.savetxt(sys.stdout, P, delimiter=",", fmt="%.17g")
    summary = {"mean": float(P.mean()), "std": float(P.std()), "min": float(P.min()),
               "max": float(P.max())}
    if dest is not None:
        out.detail(_diagnostics_table(summary, "Predictions"))
    out.finish(EXIT_OK, f"predicted {P.shape[0]} rows x {P.shape[1]} outputs"
               + (f", written to {dest}" if dest is not None else ""),
               {"model": str(model), "data": str(data), "network": network_summary(net),
                "shape": [int(P.shape[0]), int(P.shape[1])],
                "out": None if dest is None else str(dest), "summary": summary})


@app.command(epilog=epilog("the pictures were written (those whose benchmark file is "
                           "missing are skipped, each with a warning)", None))
def report(
    results: Path = typer.Option(Path("bench") / "results", "--results",
                                 help="The benchmark JSON files."),
    out_dir: Path = typer.Option(Path("report"), "--out", "-o", help="The folder for the "
                                 "PNGs (created when its parent exists)."),
    seed: int = typer.Option(0, "--seed", help="Seeds the planted network of weights.png."),
    as_json: bool = json_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
):
    """Draw the benchmark results and one recovery as PNGs (matplotlib, headless).

    phase_transition.png (exact_recovery_samples.json), noisy_error.png
    (noisy.json), speed.png (deep_scaling.json, exact_recovery_speed.json) and
    weights.png (a planted network recovered: true against recovered weights).
    """
    from .report import FIGURES, MATPLOTLIB_HINT, write_report

    out = Output("report", as_json=as_json, quiet=quiet, verbose=verbose)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError(MATPLOTLIB_HINT) from None
    dest = check_out_dir(out_dir)
    if not results.is_dir():
        out.warn(f"--results {results}: no such folder; only the pictures that need no "
                 "benchmark file are drawn.")
    with out.progress("report") as cb:
        rep = write_report(results, dest, seed=seed, progress=cb)
    for s in rep["skipped"]:
        out.warn(f"skipped {s['name']}.png: {s['reason']}")
    for f in rep["figures"]:
        out.info(f"wrote {f['path']}"
                 + (f"  (from {', '.join(f['sources'])})" if f["sources"] else ""))
    out.detail(_diagnostics_table({name: ", ".join(files) or "(none)"
                                   for name, files in FIGURES.items()},
                                  "Pictures and their benchmark files"))
    text = f"wrote {len(rep['figures'])} pictures to {dest}" + (
        f", skipped {len(rep['skipped'])}" if rep["skipped"] else "")
    out.finish(EXIT_OK, text, {"results": str(results), "out": str(dest), **rep})


def main() -> None:
    """Entry point of the ``relurecover`` console script."""
    app()



def _load_truth_network(path: Path):
    """The true network for ``extract --truth``: a saved ``.npz`` or a PyTorch file."""
    if path.suffix.lower() == ".npz":
        return _load_network(path)
    if path.suffix.lower() in (".pt", ".pth"):
        from .extract._models import _is_torchscript, _need, _sequential_from_state_dict

        torch = _need("torch", "torch")
        if _is_torchscript(path):
            raise ValueError(f"--truth {path}: give the truth as a state dict or .npz "
                             f"(a TorchScript file's weights are not read).")
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
        if not isinstance(sd, dict):
            raise ValueError(f"--truth {path} is not a state dict.")
        return TwoLayerNetwork.from_torch(_sequential_from_state_dict(sd, torch))
    raise ValueError(f"--truth {path}: expected a saved network (.npz) or a PyTorch state "
                     f"dict (.pt).")


@app.command(epilog=epilog("the oracle is reproduced to the certificate's tolerance on "
                           "fresh random queries (exact)",
                           "a network was recovered but not certified, or none was"))
def extract(
    model: Path = typer.Argument(..., metavar="MODEL", help="The model to query: a PyTorch "
                                 "state dict or TorchScript file (.pt, .pth), ONNX (.onnx), "
                                 "scikit-learn (.skops) or a saved network (.npz)."),
    out_path: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Write the recovered network here, in the format of its "
        "suffix (.pt: as MODEL, a state dict or TorchScript; .onnx; .skops; .npz)."),
    max_queries: Optional[int] = typer.Option(None, "--max-queries", help="Never send more "
                                              "queries than this."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Seconds; no "
                                               "query is sent after them."),
    truth: Optional[Path] = typer.Option(None, "--truth", help="The true network (.npz or "
                                         "a state dict): also print the aligned weight "
                                         "errors."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Accept a fully "
                                      "pickled PyTorch module. Unpickling runs whatever "
                                      "code the file holds: only for files you trust."),
    input_scale: float = typer.Option(1.0, "--input-scale", help="Scale of the inputs of "
                                      "interest (the certificate's fresh inputs are "
                                      "N(0, scale^2 I))."),
    seed: int = typer.Option(0, "--seed", help="Seeds the lines, cells and fresh inputs."),
    as_json: bool = json_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
):
    """Recover the one-hidden-layer ReLU network behind a model you can only query.

    Only the model's answers are read (docs/algorithms.md 7): kinks along random lines,
    the jumps of the Jacobian across them, the orientation by a linear or integer
    program; the result is certified on fresh random queries. Prints the fidelity
    report (max and mean output error, bits, class agreement) and the queries per stage.
    """
    from .deep._learn import MissingDependencyError
    from .extract import extract as _extract, open_model, save_like
    from .extract._models import check_writer

    out = Output("extract", as_json=as_json, quiet=quiet, verbose=verbose)
    dest = None if out_path is None else check_out_file(
        out_path, (".pt", ".pth", ".onnx", ".npz", ".skops"), what="the recovered network")
    if max_queries is not None and max_queries < 1:
        raise ValueError(f"--max-queries must be a positive integer, got {max_queries}.")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"--time-limit must be a positive number of seconds, got "
                         f"{time_limit}.")
    if not (math.isfinite(input_scale) and input_scale > 0):
        raise ValueError(f"--input-scale must be a positive number, got {input_scale}.")
    try:  # a missing extra is bad input (exit 2), found before any query
        if dest is not None:
            check_writer(dest)
        true_net = None if truth is None else _load_truth_network(truth)
        fn, d, info = open_model(model, allow_pickle=allow_pickle)
    except MissingDependencyError as exc:
        raise ValueError(f"{model}: {exc}") from None
    if d is None:
        raise ValueError(f"{model}: the input width is not declared in the file.")
    t0 = time.perf_counter()
    with out.progress("extract") as cb:
        ex = _extract(fn, d, max_queries=max_queries, time_limit=time_limit,
                      input_scale=input_scale, rng=seed, progress=cb)
    seconds = time.perf_counter() - t0
    table = Table(title="Extraction", show_header=False)
    table.add_row("verdict", "exact" if ex.exact else "not certified")
    table.add_row("model", f"{model} ({info.kind}, {info.dtype})")
    table.add_row("units found", str(ex.n_hidden))
    table.add_row("queries", f"{ex.n_queries}  (2^{math.log2(max(ex.n_queries, 1)):.1f})")
    for stage, q in ex.queries.items():
        table.add_row(f"  {stage}", str(q))
    if ex.fidelity is not None:
        fid = ex.fidelity
        table.add_row("max output error", f"{fid.max_error:.2e}  ({fid.bits:.1f} bits, "
                      f"relative to max |f|, {fid.n_inputs} fresh inputs)")
        table.add_row("mean output error", f"{fid.mean_error:.2e}")
        if fid.class_agreement is not None:
            table.add_row("class agreement", f"{fid.class_agreement:.4f}")
    table.add_row("precision of the oracle", f"{ex.precision:.1e}")
    table.add_row("time", f"{seconds:.2f} s")
    out.print(table)
    cmp_json = None
    if true_net is not None and ex.network is not None:
        c = compare_networks(ex.network, true_net)
        cmp_json = _comparison_json(c)
        out.print(_comparison_table(c, ex.network, true_net))
    saved = None
    if dest is not None and ex.network is not None:
        if not ex.exact:
            out.warn(f"writing an extraction that is NOT certified to {dest}: {ex.message}")
        save_like(ex.network, dest, info)
        saved = str(dest)
        out.info(f"wrote the recovered network ({ex.n_hidden} units) to {dest}")
    out.info(ex.message)
    result = {
        "model": str(model), "format": info.kind, "dtype": info.dtype, "out": saved,
        "exact": bool(ex.exact), "method": ex.method, "n_hidden": int(ex.n_hidden),
        "n_queries": int(ex.n_queries),
        "queries": {k: int(v) for k, v in ex.queries.items()},
        "fidelity": None if ex.fidelity is None else ex.fidelity.as_dict(),
        "precision": float(ex.precision),
        "network": None if ex.network is None else network_summary(ex.network),
        "comparison": cmp_json, "seconds": seconds,
    }
    out.finish(EXIT_OK if ex.exact else EXIT_NOT_CERTIFIED, ex.message, result)


if __name__ == "__main__":  # pragma: no cover
    main()
