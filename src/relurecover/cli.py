"""The ``relurecover`` command line: plant, fit and compare networks.

Commands: ``demo`` (plant, sample, recover, print a table), ``deep-demo`` (the
same for a deep network [CKM]: filtered PCA, then learning), ``generate`` (write a
planted dataset), ``fit`` (recover a network from ``X`` and ``Y`` files; ``--deep``
learns a deep one) and ``compare`` (aligned errors between two saved networks). Each command is a plain
function registered with ``@app.command()``; add a new one the same way. A
``ValueError`` or ``OSError`` raised by any command (bad file, bad shape, NaN)
becomes a one-line ``error: ...`` on stderr and exit code 2; exit code 1 means the
command ran but the answer is not exact. ``deep-demo`` and ``fit --deep`` need
PyTorch: without it they print ``error: learn_deep needs PyTorch: pip install
'relurecover[torch]'`` (exit code 2) before any work.
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
from .networks import DeepNetwork, TwoLayerNetwork, gaussian_inputs, load_network
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
    help="Recover two-layer ReLU networks y = U relu(V x + b) + c exactly from samples [BJW]; "
    "learn deep ones by filtered PCA [CKM].",
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
    """Recover two-layer ReLU networks y = U relu(V x + b) + c exactly from samples [BJW]."""


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
        t.caption = f"... and {len(perm) - rows} more units"
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


def _require_torch(tol: float) -> None:
    """The deep commands need PyTorch: without it, one line and exit code 2.

    Also checks ``--tol`` (the held-out error counted as success), before any work.
    """
    from .deep._learn import MissingDependencyError, import_torch

    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"--tol must be a positive number (a held-out relative square "
                         f"error), got {tol}.")
    try:
        import_torch()
    except MissingDependencyError as exc:
        raise ValueError(str(exc)) from None


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
    if truth is not None:
        from .deep import principal_angles

        ang = principal_angles(fit.network.weights[0].T, truth.weights[0].T).max()
        t.add_row("first-layer span vs truth", f"{ang:.2e} rad (largest principal angle)")
    t.add_row("message", escape(fit.message))
    for stage, sec in fit.timings.items():
        t.add_row(f"time: {stage}", f"{sec:.2f} s")
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


@app.command("deep-demo")
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
):
    """Plant a deep ReLU network, find its subspace by filtered PCA, learn it [CKM]."""
    from .deep import alternating_network, filtered_pca, learn_deep, plain_pca

    rng = np.random.default_rng(seed)
    if alternating:
        truth = alternating_network(d, 4, rng=rng)
    else:
        truth = DeepNetwork.random(d, _parse_widths(widths), rng=rng)
    if n < 20 * d:
        raise ValueError(f"--n = {n} is too few samples for d = {d}: use n >= 20 d "
                         "(filtered PCA's noise floor is of order sqrt(d / n)).")
    _require_torch(tol)
    X = gaussian_inputs(n, d, rng=rng)
    y = truth.predict(X)
    typer.echo(f"planted {truth!r}, n = {n} Gaussian samples, seed {seed}")
    out = _console()
    out.print(_subspace_table([plain_pca(X, y, rng=rng), filtered_pca(X, y)],
                              truth.weights[0].T))
    fit = learn_deep(X, y, truth.widths, rng=rng, restarts=restarts, success_tol=tol)
    out.print(_deep_fit_table(fit, truth))
    raise typer.Exit(code=0 if fit.success else 1)


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
    widths: Optional[str] = typer.Option(
        None, "--widths", help="Plant a deep ReLU network with these hidden widths "
        "(e.g. 4,4; --k is then ignored, n defaults to 100 000)."),
):
    """Write a planted dataset: Gaussian X, labels Y and the true network in one .npz."""
    path = _npz_path(out)
    if widths is not None:
        rng = np.random.default_rng(seed)
        truth = DeepNetwork.random(d, _parse_widths(widths), m, rng=rng)
        X = gaussian_inputs(100_000 if n is None else n, d, rng=rng)
        Y = truth.predict(X)
        np.savez(path, X=X, Y=Y, kind=np.array("deep"),
                 **{f"W{i}": W for i, W in enumerate(truth.weights)})
        typer.echo(f"wrote {path}: X {X.shape}, Y {Y.shape}, truth {truth!r}")
        return
    truth, X, Y, _ = _planted(d, k, m, n, seed, activation)
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
    method: str = typer.Option("auto", "--method",
                               help="auto, gaussian, general or few-outputs (two layers)."),
    deep: bool = typer.Option(False, "--deep", help="Learn a deep ReLU network by filtered "
                              "PCA and a fit in its subspace [CKM] (Gaussian inputs)."),
    widths: Optional[str] = typer.Option(
        None, "--widths", help="With --deep: hidden widths, e.g. 4,4 [default: tried "
        "from the subspace dimension]."),
    tol: float = typer.Option(1e-3, "--tol", help="With --deep: held-out error counted "
                              "as success (exit code 0)."),
    restarts: int = typer.Option(24, "--restarts", help="With --deep: random starts of "
                                 "the subspace fit."),
):
    """Recover a network from samples; exit code 0 when exact (--deep: held-out error
    <= --tol), 1 when not."""
    if deep:
        _require_torch(tol)
        hidden_widths = _parse_widths(widths)
    X, Y = load_xy(x, y)
    t0 = time.perf_counter()
    if deep:
        from .deep import learn_deep

        res = learn_deep(X, Y, hidden_widths, rng=seed, restarts=restarts, success_tol=tol)
        typer.echo(f"fitted X {X.shape}, Y {Y.shape} in {time.perf_counter() - t0:.2f} s")
        _console().print(_deep_fit_table(res, None))
        ok = res.success
    else:
        if widths is not None:
            raise ValueError("--widths needs --deep (a two-layer fit takes --hidden).")
        res = recover_two_layer(X, Y, n_hidden=hidden, activation=activation, rng=seed,
                                method=method)
        typer.echo(f"fitted X {X.shape}, Y {Y.shape} in {time.perf_counter() - t0:.2f} s")
        _console().print(_recovery_table(res))
        ok = res.exact
    if out is not None and res.network is not None:
        path = _npz_path(out)
        res.network.save(path)
        if ok:
            what = "exact network" if not deep else "network (held-out error within --tol)"
        elif deep:
            what = "network, NOT within --tol (an estimate)"
        elif res.noise_level is not None:
            what = "least-squares ESTIMATE (noisy labels, not exact)"
        else:
            what = "UNCERTIFIED network (not exact: see the message above)"
        typer.echo(f"saved {what} {res.network!r} to {path}")
    elif out is not None:
        typer.echo("no network to save.")
    raise typer.Exit(code=0 if ok else 1)


@app.command()
def compare(
    model: Path = typer.Argument(..., help="A saved network (.npz)."),
    truth: Path = typer.Argument(..., help="The true network, or a generated dataset .npz."),
    n: int = typer.Option(20_000, "--n", help="Deep networks: Gaussian inputs on which "
                          "the predictions are compared."),
):
    """Aligned errors between a found network and the truth (deep networks: the angle
    between first-layer spans and the relative prediction error)."""
    found, true = _load_network(model), _load_network(truth)
    if found.n_inputs != true.n_inputs:
        raise ValueError(
            f"the networks have different input dimensions: d = {found.n_inputs} "
            f"({model}) and d = {true.n_inputs} ({truth})."
        )
    typer.echo(f"found {found!r}\ntruth {true!r}")
    if isinstance(found, TwoLayerNetwork) and isinstance(true, TwoLayerNetwork):
        _console().print(_comparison_table(found, true))
        return
    from .deep import principal_angles

    first = [net.weights[0] if isinstance(net, DeepNetwork) else net.V
             for net in (found, true)]
    if found.n_outputs != true.n_outputs:
        raise ValueError(f"the networks have different numbers of outputs: "
                         f"{found.n_outputs} and {true.n_outputs}.")
    Xs = gaussian_inputs(n, true.n_inputs, rng=0)
    yt = true.predict(Xs)
    rel = float(((found.predict(Xs) - yt) ** 2).sum() / max((yt**2).sum(), 1e-300))
    t = Table(title="Deep comparison", show_header=False, title_justify="left")
    t.add_row("first-layer span: largest angle",
              f"{principal_angles(first[0].T, first[1].T).max():.2e} rad")
    t.add_row("relative prediction error", f"{_fmt(rel)}  (‖F − F*‖² / ‖F*‖² on {n} "
              "Gaussian inputs)")
    _console().print(t)


def main() -> None:
    """Entry point of the ``relurecover`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
