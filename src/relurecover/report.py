"""Pictures of the benchmark results and of one recovery (``relurecover report``).

Plain functions that return a :class:`matplotlib.figure.Figure` (no pyplot, no
global state, headless: each figure draws on its own Agg canvas), and
:func:`write_report`, which reads the JSON files that ``bench/`` writes into
``bench/results/`` and saves one PNG per picture:

- ``phase_transition.png`` (``exact_recovery_samples.json``): the fraction of
  seeds recovered exactly against the number of samples, relurecover and Adam;
- ``noisy_error.png`` (``noisy.json``): the aligned error against ``n`` with noisy
  labels, log-log, with the ``n^-1/2`` slope, the oracle and Adam;
- ``speed.png`` (``deep_scaling.json``, ``exact_recovery_speed.json``): seconds
  against the input dimension, log-log;
- ``weights.png`` (no file needed): a planted network recovered, its true against
  its recovered weights after alignment.

Needs matplotlib (``pip install 'relurecover[plot]'``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["plot_phase_transition", "plot_noisy", "plot_speed", "plot_weights",
           "write_report", "FIGURES"]

#: each picture of :func:`write_report`: its name and the JSON files it reads
#: (the speed picture needs one of its two).
FIGURES = {
    "phase_transition": ("exact_recovery_samples.json",),
    "noisy_error": ("noisy.json",),
    "speed": ("deep_scaling.json", "exact_recovery_speed.json"),
    "weights": (),
}

#: the hint of the ImportError raised without matplotlib.
MATPLOTLIB_HINT = "relurecover report needs matplotlib: pip install 'relurecover[plot]'"


def _figure(figsize=(5.6, 4.0)):
    """A Figure on its own Agg canvas (headless, whatever the backend setting)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(MATPLOTLIB_HINT) from exc
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_phase_transition(data: dict):
    """Success fraction against the number of samples: the phase transition.

    Parameters
    ----------
    data : dict
        The content of ``bench/results/exact_recovery_samples.json``:
        ``exact_levels`` (each ``n``, ``successes``, ``seeds_run``), ``d``, ``k``,
        ``m``, ``seeds``, optionally ``exact_smallest_n`` and ``adam`` (its
        ``levels`` alike).

    Returns
    -------
    matplotlib.figure.Figure
        One axis: log ``n`` against the fraction of the seeds run that were
        recovered (exact for relurecover; aligned error at most 1e-6 for Adam).
    """
    fig = _figure()
    ax = fig.add_subplot()
    levels = sorted(data["exact_levels"], key=lambda lv: lv["n"])
    ax.plot([lv["n"] for lv in levels],
            [lv["successes"] / max(lv["seeds_run"], 1) for lv in levels], "o-",
            label="relurecover (exact, certified)")
    adam = data.get("adam") or {}
    if adam.get("levels"):
        lv_a = sorted(adam["levels"], key=lambda lv: lv["n"])
        ax.plot([lv["n"] for lv in lv_a],
                [lv["successes"] / max(lv["seeds_run"], 1) for lv in lv_a], "s--",
                label=f"Adam ({adam.get('success', 'aligned error <= 1e-06')})")
    if data.get("exact_smallest_n"):
        ax.axvline(data["exact_smallest_n"], color="grey", ls=":",
                   label=f"smallest n exact on {data.get('need', '?')} of "
                         f"{data.get('seeds', '?')} seeds: {data['exact_smallest_n']}")
    ax.set_xscale("log")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("samples n")
    ax.set_ylabel("fraction of seeds recovered")
    ax.set_title(f"Exact recovery against samples (d={data.get('d')}, k={data.get('k')}, "
                 f"m={data.get('m')})", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_noisy(data: dict):
    """Aligned error against the number of samples with noisy labels, log-log.

    Parameters
    ----------
    data : dict
        The content of ``bench/results/noisy.json``: ``consistency`` (each ``n``,
        ``median_error``, optionally ``median_oracle_error`` and
        ``median_estimated_error``), optionally ``adam`` (runs with ``n`` and
        ``adam_error``), ``d``, ``k``, ``m``, ``level``, ``slope``.

    Returns
    -------
    matplotlib.figure.Figure
        One log-log axis: the median aligned error of relurecover, the oracle,
        the error relurecover estimates for itself, Adam (median over its seeds)
        and the slope ``-1/2`` of ``n^-1/2``.
    """
    fig = _figure()
    ax = fig.add_subplot()
    rows = sorted(data["consistency"], key=lambda r: r["n"])
    n = np.array([r["n"] for r in rows], dtype=float)
    err = np.array([r["median_error"] for r in rows], dtype=float)
    slope = data.get("slope")
    ax.loglog(n, err, "o-", label="relurecover (median)"
              + (f", slope {slope:.2f}" if isinstance(slope, (int, float)) else ""))
    if all("median_oracle_error" in r for r in rows):
        ax.loglog(n, [r["median_oracle_error"] for r in rows], "x--",
                  label="oracle (refined from the truth)")
    if all("median_estimated_error" in r for r in rows):
        ax.loglog(n, [r["median_estimated_error"] for r in rows], "+:",
                  label="estimated by relurecover")
    adam = [r for r in data.get("adam") or [] if r.get("adam_error") is not None]
    if adam:
        ns = sorted({r["n"] for r in adam})
        ax.loglog(ns, [np.median([r["adam_error"] for r in adam if r["n"] == v])
                       for v in ns], "s-.", label="Adam (median)")
    ax.loglog(n, err[0] * (n / n[0]) ** -0.5, "k:", lw=1, label="slope -1/2")
    ax.set_xlabel("samples n")
    ax.set_ylabel("aligned relative error")
    ax.set_title(f"Noisy labels (d={data.get('d')}, k={data.get('k')}, m={data.get('m')}, "
                 f"noise {data.get('level')} x std(Y))", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def plot_speed(deep_scaling: dict | None = None, speed: dict | None = None):
    """Seconds against the input dimension, log-log.

    Parameters
    ----------
    deep_scaling : dict, default=None
        The content of ``bench/results/deep_scaling.json``: ``runs`` (each ``d``,
        ``pass_time``, ``pca_time`` and ``learn["time"]``), ``n``, ``widths``.
    speed : dict, default=None
        The content of ``bench/results/exact_recovery_speed.json`` (``d``, ``k``,
        ``n``, ``recover_median_time``, ``pass_time``): two-layer recovery at one
        ``d``, drawn as points.

    Returns
    -------
    matplotlib.figure.Figure
        One log-log axis with a line per timed step.

    Raises
    ------
    ValueError
        When both are None.
    """
    if deep_scaling is None and speed is None:
        raise ValueError("plot_speed needs deep_scaling or speed (or both).")
    fig = _figure()
    ax = fig.add_subplot()
    parts = []
    if deep_scaling is not None:
        runs = sorted(deep_scaling["runs"], key=lambda r: r["d"])
        d = [r["d"] for r in runs]
        ax.loglog(d, [r["learn"]["time"] for r in runs], "o-", label="learn_deep (deep fit)")
        ax.loglog(d, [r["pca_time"] for r in runs], "s-", label="filtered PCA")
        ax.loglog(d, [r["pass_time"] for r in runs], "^-", label="one pass over X")
        parts.append(f"deep widths {deep_scaling.get('widths')}, "
                     f"n = {deep_scaling.get('n')}")
    if speed is not None:
        ax.loglog([speed["d"]], [speed["recover_median_time"]], "D", ms=8,
                  label=f"recover_two_layer (k={speed.get('k')}, n={speed.get('n')})")
        if speed.get("pass_time"):
            ax.loglog([speed["d"]], [speed["pass_time"]], "v", ms=8,
                      label="one pass over X (two-layer run)")
        if deep_scaling is None:
            parts.append(f"two-layer k = {speed.get('k')}, n = {speed.get('n')}")
    ax.set_xlabel("input dimension d")
    ax.set_ylabel("seconds")
    ax.set_title("Time against d (" + "; ".join(parts) + ")", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def plot_weights(truth, found):
    """True against recovered weights after alignment (permutation and scaling).

    Parameters
    ----------
    truth : TwoLayerNetwork
        The planted network.
    found : TwoLayerNetwork
        The recovered one (same ``d`` and ``m``).

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: each matched entry of ``V`` (rows of unit norm; left) and of
        ``U`` (norms pushed in; right), true on x and recovered on y, each with the
        line ``y = x``.
    """
    from .metrics import align, compare

    al = align(found.U, found.V, truth.U, truth.V, truth.activation.degree)
    perm = np.asarray(al.permutation)
    i = np.flatnonzero(perm >= 0)
    j = perm[i]
    fig = _figure(figsize=(9.0, 4.0))
    c = compare(found, truth)
    pairs = ((al.V_true[j].ravel(), al.V_found[i].ravel(), "o", "V (rows of unit norm)"),
             (al.U_true[:, j].ravel(), al.U_found[:, i].ravel(), "x",
              "U (norms pushed in)"))
    for true, rec, marker, what in pairs:
        ax = fig.add_subplot(1, 2, len(fig.axes) + 1)
        ax.scatter(true, rec, s=14, marker=marker, label=f"{true.size} entries of {what}")
        both = np.concatenate([true, rec, [0.0]])
        ax.plot([both.min(), both.max()], [both.min(), both.max()], "k:", lw=1,
                label="y = x")
        ax.set_xlabel("true weight (aligned)")
        ax.set_ylabel("recovered weight")
        ax.set_title(what.split()[0], fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(f"Recovered against true weights: {c.n_matched} of {truth.n_hidden} units "
                 f"(d={truth.n_inputs}, m={truth.n_outputs}), max aligned error "
                 f"{c.max_error:.1e}", fontsize=10)
    return fig


def _read_json(path: Path):
    """The JSON object of ``path``, or the reason it cannot be read."""
    if not path.is_file():
        return None, f"{path} is missing"
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (OSError, ValueError) as exc:
        return None, f"{path} is not readable JSON ({exc})"


def _planted_recovery(seed: int):
    """A planted network (d=20, k=5, m=6, 2000 Gaussian samples) and what was recovered."""
    from .networks import TwoLayerNetwork, gaussian_inputs
    from .twolayer import recover_two_layer

    rng = np.random.default_rng(seed)
    truth = TwoLayerNetwork.random(20, 5, 6, rng=rng)
    X = gaussian_inputs(2000, 20, rng=rng)
    return truth, recover_two_layer(X, truth.predict(X), rng=rng)


def write_report(results_dir, out_dir, *, seed: int = 0, progress=None) -> dict:
    """Save the PNGs of :data:`FIGURES` into ``out_dir``; skip those whose JSON is missing.

    Parameters
    ----------
    results_dir : str or path-like
        Where the benchmark JSON files are (``bench/results``).
    out_dir : str or path-like
        An existing folder for the PNGs.
    seed : int, default=0
        Seeds the planted network of ``weights.png``.
    progress : callable, default=None
        Called as ``progress(name, fraction)`` after each picture.

    Returns
    -------
    dict
        ``figures``: a list of ``{"name", "path", "sources"}`` for the PNGs
        written; ``skipped``: a list of ``{"name", "reason"}`` for those not.
    """
    results, out = Path(results_dir), Path(out_dir)
    figures, skipped = [], []

    def save(name, fig, sources):
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110)
        figures.append({"name": name, "path": str(path), "sources": sources})

    for done, (name, files) in enumerate(FIGURES.items(), start=1):
        loaded, reasons = {}, []
        for fname in files:
            data, why = _read_json(results / fname)
            if data is None:
                reasons.append(why)
            else:
                loaded[fname] = data
        sources = [str(results / f) for f in loaded]
        try:
            if name == "weights":
                truth, res = _planted_recovery(seed)
                if res.network is None:
                    skipped.append({"name": name, "reason": "the planted network was "
                                    f"not recovered ({res.message})"})
                else:
                    save(name, plot_weights(truth, res.network), sources)
            elif name == "speed" and loaded:
                save(name, plot_speed(loaded.get("deep_scaling.json"),
                                      loaded.get("exact_recovery_speed.json")), sources)
            elif loaded and len(loaded) == len(files):
                plot = plot_phase_transition if name == "phase_transition" else plot_noisy
                save(name, plot(loaded[files[0]]), sources)
            else:
                skipped.append({"name": name, "reason": "; ".join(reasons)})
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            skipped.append({"name": name, "reason": f"{', '.join(sources)} lacks what the "
                            f"picture needs ({type(exc).__name__}: {exc})"})
        if progress is not None:
            progress(name, done / len(FIGURES))
    return {"figures": figures, "skipped": skipped}
