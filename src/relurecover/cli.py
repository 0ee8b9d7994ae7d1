"""The ``relurecover`` command line: plant, fit and compare networks.

Commands: ``demo`` (plant, sample, recover, print a table), ``generate`` (write a
planted dataset), ``fit`` (recover a network from ``X`` and ``Y`` files) and
``compare`` (aligned errors between two saved networks). Each command is a plain
function registered with ``@app.command()``; add a new one the same way. A
``ValueError`` or ``OSError`` raised by any command (bad file, bad shape, NaN)
becomes a one-line ``error: ...`` on stderr and exit code 2; exit code 1 means the
command ran but the answer is not exact.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from . import __version__
from ._validation import as_2d_float
from .metrics import align, compare as compare_networks
from .networks import TwoLayerNetwork, gaussian_inputs
from .twolayer import Recovery, recover_two_layer

__all__ = ["app", "main", "load_array", "load_xy"]

#: what a user's mistake raises (missing or unreadable file, bad shape, NaN ...).
USER_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile)


class _Group(TyperGroup):
    """Turns a user's mistake in any command into one line and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            text = " ".join(str(exc).split()) or type(exc).__name__
            typer.echo(f"error: {text}", err=True)
            raise typer.Exit(code=2) from None


app = typer.Typer(
    cls=_Group,
    help="Recover two-layer ReLU networks y = U relu(V x) exactly from samples [BJW].",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _console() -> Console:
    return Console(highlight=False)


def _version(value: bool):
    if value:
        typer.echo(f"relurecover {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
):
    """Recover two-layer ReLU networks y = U relu(V x) exactly from samples [BJW]."""


# --------------------------------------------------------------------------- files

def _read_csv(path: Path) -> np.ndarray:
    """Numeric CSV (or whitespace-separated text); a non-numeric first line is a header."""
    with open(path) as fh:
        first = next((line for line in fh if line.strip()), "")
    if not first:
        raise ValueError(f"{path}: the file is empty.")
    delim = "," if "," in first else (";" if ";" in first else None)
    try:
        [float(tok) for tok in first.split(delim)]
        header = 0
    except ValueError:
        header = 1
    try:
        return np.loadtxt(path, delimiter=delim, skiprows=header, ndmin=2, dtype=float)
    except ValueError as exc:
        raise ValueError(f"{path}: not a numeric table ({exc})") from None


def load_array(path, name: str) -> np.ndarray:
    """Read the array ``name`` (``"X"`` or ``"Y"``) from ``.npy``, ``.npz`` or ``.csv``.

    An ``.npz`` must hold an array called ``name`` or exactly one array. The
    result is checked to be a finite 2-D float array (a 1-D ``Y`` is a column).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file.")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f"{path}: not a readable .npy array ({exc})") from None
    elif suffix == ".npz":
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path}: not an .npz archive.")
        with np.load(path, allow_pickle=False) as f:
            if name in f.files:
                arr = f[name]
            elif len(f.files) == 1:
                arr = f[f.files[0]]
            else:
                raise ValueError(
                    f"{path}: holds arrays {sorted(f.files)}; expected one named "
                    f"{name!r} or a single array."
                )
    elif suffix in (".csv", ".txt", ".tsv"):
        arr = _read_csv(path)
    else:
        raise ValueError(
            f"{path}: unknown file type {suffix!r}; use .npy, .npz or .csv."
        )
    try:
        return as_2d_float(arr, name, allow_1d_column=(name == "Y"))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def load_xy(x_path, y_path=None):
    """``X`` and ``Y`` from two files, or from one ``.npz`` holding both."""
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
    X, Y = load_array(x_path, "X"), load_array(y_path, "Y")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X has {X.shape[0]} rows but Y has {Y.shape[0]}: one sample per row in both."
        )
    return X, Y


def _npz_path(path: Path) -> Path:
    """The file ``numpy.savez`` really writes (it appends ``.npz`` when missing)."""
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def _load_network(path) -> TwoLayerNetwork:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not an .npz file (a network is saved as .npz with U, V).")
    return TwoLayerNetwork.load(path)


# --------------------------------------------------------------------------- tables

def _fmt(x: float) -> str:
    return f"{x:.2e}"


def _verdict(res: Recovery) -> str:
    return "[green]exact[/green]" if res.exact else "[red]NOT exact[/red]"


def _recovery_table(res: Recovery, title: str = "Recovery") -> Table:
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_row("verdict", _verdict(res))
    t.add_row("certificate", _fmt(res.certificate) + "  (‖Y − U f(V X)‖ / ‖Y‖)")
    t.add_row("units found", f"{res.n_found} of {res.n_hidden}")
    t.add_row("message", escape(res.message))
    for stage, sec in res.timings.items():
        t.add_row(f"time: {stage}", f"{sec:.3f} s")
    t.add_row("time: total", f"{sum(res.timings.values()):.3f} s")
    return t


def _comparison_table(found: TwoLayerNetwork, truth: TwoLayerNetwork) -> Table:
    c = compare_networks(found, truth)
    t = Table(title="Aligned errors", show_header=False, title_justify="left")
    t.add_row("units matched", f"{c.n_matched} of {c.n_true} (found {c.n_found})")
    t.add_row("V relative error", _fmt(c.v_error))
    t.add_row("U relative error", _fmt(c.u_error))
    t.add_row("max relative error", _fmt(c.max_error))
    t.add_row("bits of precision", f"{c.bits:.1f}")
    return t


def _units_table(found: TwoLayerNetwork, truth: TwoLayerNetwork, rows: int = 10) -> Table:
    """True against recovered units, after alignment: ``V`` rows unit norm."""
    Uf, Vf, Ut, Vt, perm = align(found.U, found.V, truth.U, truth.V,
                                 truth.activation.degree)
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
        t.caption = f"... and {len(perm) - rows} more units"
    return t


# --------------------------------------------------------------------------- commands

def _planted(d: int, k: int, m: int, n: Optional[int], seed: int, activation: str):
    """A planted network, Gaussian inputs and its labels, from one seeded generator."""
    rng = np.random.default_rng(seed)
    truth = TwoLayerNetwork.random(d, k, m, activation=activation, rng=rng)
    X = gaussian_inputs(10 * d * k if n is None else n, d, rng=rng)
    return truth, X, truth.predict(X), rng


@app.command()
def demo(
    d: int = typer.Option(50, "--d", help="Input dimension."),
    k: int = typer.Option(10, "--k", help="Hidden units."),
    m: int = typer.Option(12, "--m", help="Outputs (m >= k)."),
    n: Optional[int] = typer.Option(None, "--n", help="Samples [default: 10 d k]."),
    seed: int = typer.Option(0, "--seed", help="Seeds the network, the data and the search."),
):
    """Plant a random network, sample Gaussian inputs, recover it, print the errors."""
    truth, X, Y, rng = _planted(d, k, m, n, seed, "relu")
    typer.echo(f"planted {truth!r}, n = {X.shape[0]} Gaussian samples, seed {seed}")
    out = _console()
    res = recover_two_layer(X, Y, n_hidden=k, rng=rng)
    if res.network is not None:
        out.print(_units_table(res.network, truth))
        out.print(_comparison_table(res.network, truth))
    out.print(_recovery_table(res))
    raise typer.Exit(code=0 if res.exact else 1)


@app.command()
def generate(
    out: Path = typer.Argument(..., help="Output .npz: X, Y, U, V, activation."),
    d: int = typer.Option(50, "--d", help="Input dimension."),
    k: int = typer.Option(10, "--k", help="Hidden units."),
    m: int = typer.Option(12, "--m", help="Outputs."),
    n: Optional[int] = typer.Option(None, "--n", help="Samples [default: 10 d k]."),
    seed: int = typer.Option(0, "--seed", help="Seeds the network and the data."),
    activation: str = typer.Option("relu", "--activation",
                                   help="relu, relu2, clipped, log1p or step-linear."),
):
    """Write a planted dataset: Gaussian X, labels Y and the true network in one .npz."""
    truth, X, Y, _ = _planted(d, k, m, n, seed, activation)
    path = _npz_path(out)
    np.savez(path, X=X, Y=Y, U=truth.U, V=truth.V,
             activation=np.array(truth.activation.name), kind=np.array("two-layer"))
    typer.echo(f"wrote {path}: X {X.shape}, Y {Y.shape}, truth {truth!r}")


@app.command()
def fit(
    x: Path = typer.Argument(..., help="Inputs X (n, d): .npy, .npz or .csv; or one "
                             ".npz holding X and Y."),
    y: Optional[Path] = typer.Argument(None, help="Labels Y (n, m): .npy, .npz or .csv."),
    hidden: Optional[int] = typer.Option(None, "--hidden", "-k",
                                         help="Hidden units k [default: rank of Y]."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Save the network here (.npz)."),
    seed: int = typer.Option(0, "--seed", help="Seeds the random steps of the search."),
    activation: str = typer.Option("relu", "--activation", help="The rectified activation."),
):
    """Recover a two-layer network from samples; exit code 0 when exact, 1 when not."""
    X, Y = load_xy(x, y)
    t0 = time.perf_counter()  # another model family (a --deep flag) branches here
    res = recover_two_layer(X, Y, n_hidden=hidden, activation=activation, rng=seed)
    typer.echo(f"fitted X {X.shape}, Y {Y.shape} in {time.perf_counter() - t0:.2f} s")
    _console().print(_recovery_table(res))
    if out is not None and res.network is not None:
        path = _npz_path(out)
        res.network.save(path)
        typer.echo(f"saved {res.network!r} to {path}")
    elif out is not None:
        typer.echo("no network to save.")
    raise typer.Exit(code=0 if res.exact else 1)


@app.command()
def compare(
    model: Path = typer.Argument(..., help="A saved network (.npz with U, V)."),
    truth: Path = typer.Argument(..., help="The true network, or a generated dataset .npz."),
):
    """Aligned errors between a found network and the truth."""
    found, true = _load_network(model), _load_network(truth)
    if found.n_inputs != true.n_inputs:
        raise ValueError(
            f"the networks have different input dimensions: d = {found.n_inputs} "
            f"({model}) and d = {true.n_inputs} ({truth})."
        )
    typer.echo(f"found {found!r}\ntruth {true!r}")
    _console().print(_comparison_table(found, true))


def main() -> None:
    """Entry point of the ``relurecover`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
