"""The pictures of relurecover.report: axes, scales, labels, legends, PNG files."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from relurecover import TwoLayerNetwork, gaussian_inputs, recover_two_layer  # noqa: E402
from relurecover.report import (  # noqa: E402
    FIGURES,
    plot_noisy,
    plot_phase_transition,
    plot_speed,
    plot_weights,
    write_report,
)

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"


def _load(name):
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def _legend(ax):
    legend = ax.get_legend()
    assert legend is not None, "no legend"
    return [t.get_text() for t in legend.get_texts()]


def test_phase_transition_figure():
    data = _load("exact_recovery_samples.json")
    ax = plot_phase_transition(data).axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    assert ax.get_xlabel() == "samples n"
    assert ax.get_ylabel() == "fraction of seeds recovered"
    labels = _legend(ax)
    assert any("relurecover" in t for t in labels) and any("Adam" in t for t in labels)
    assert any(str(data["exact_smallest_n"]) in t for t in labels)
    ours = ax.get_lines()[0]
    levels = sorted(data["exact_levels"], key=lambda lv: lv["n"])
    np.testing.assert_array_equal(ours.get_xdata(), [lv["n"] for lv in levels])
    np.testing.assert_allclose(ours.get_ydata(),
                               [lv["successes"] / lv["seeds_run"] for lv in levels])
    assert "d=100" in ax.get_title()


def test_phase_transition_without_adam():
    data = {k: v for k, v in _load("exact_recovery_samples.json").items() if k != "adam"}
    labels = _legend(plot_phase_transition(data).axes[0])
    assert not any("Adam" in t for t in labels)


def test_noisy_figure_is_log_log():
    data = _load("noisy.json")
    ax = plot_noisy(data).axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "samples n" and ax.get_ylabel() == "aligned relative error"
    labels = _legend(ax)
    for word in ("relurecover", "oracle", "Adam", "slope -1/2"):
        assert any(word in t for t in labels), (word, labels)
    ref = [ln for ln in ax.get_lines() if ln.get_label() == "slope -1/2"][0]
    x, y = ref.get_xdata(), ref.get_ydata()
    assert np.polyfit(np.log(x), np.log(y), 1)[0] == pytest.approx(-0.5)


def test_speed_figure():
    ax = plot_speed(_load("deep_scaling.json"), _load("exact_recovery_speed.json")).axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "input dimension d" and ax.get_ylabel() == "seconds"
    labels = _legend(ax)
    assert any("learn_deep" in t for t in labels)
    assert any("recover_two_layer" in t for t in labels)
    only_two_layer = plot_speed(speed=_load("exact_recovery_speed.json")).axes[0]
    assert only_two_layer.get_xscale() == "log" and len(_legend(only_two_layer)) == 2
    with pytest.raises(ValueError, match="needs deep_scaling or speed"):
        plot_speed()


def test_weights_figure_lies_on_the_diagonal():
    truth = TwoLayerNetwork.random(10, 3, 4, rng=0)
    X = gaussian_inputs(600, 10, rng=1)
    found = recover_two_layer(X, truth.predict(X), rng=2).network
    fig = plot_weights(truth, found)
    assert len(fig.axes) == 2
    for ax, what, count in zip(fig.axes, ("V", "U"), (30, 12)):
        assert ax.get_xlabel() == "true weight (aligned)"
        assert ax.get_ylabel() == "recovered weight"
        assert ax.get_xscale() == "linear" and ax.get_title() == what
        labels = _legend(ax)
        assert labels == [f"{count} entries of " + ("V (rows of unit norm)" if what == "V"
                                                    else "U (norms pushed in)"), "y = x"]
        xy = ax.collections[0].get_offsets()  # recovered equals true: on y = x
        np.testing.assert_allclose(xy[:, 1], xy[:, 0], atol=1e-9)
    assert "3 of 3 units" in fig.get_suptitle()
    # a wrong network is off the diagonal
    ax = plot_weights(truth, TwoLayerNetwork.random(10, 3, 4, rng=5)).axes[0]
    xy = ax.collections[0].get_offsets()
    assert np.abs(xy[:, 1] - xy[:, 0]).max() > 0.1


def test_write_report_files(tmp_path):
    from matplotlib.image import imread

    rep = write_report(RESULTS, tmp_path, seed=0)
    assert rep["skipped"] == []
    assert [f["name"] for f in rep["figures"]] == list(FIGURES)
    for f in rep["figures"]:
        assert imread(f["path"]).shape[2] == 4  # RGBA PNG
    calls = []
    empty = tmp_path / "empty"
    empty.mkdir()
    rep = write_report(empty, tmp_path, progress=lambda *a: calls.append(a))
    assert [f["name"] for f in rep["figures"]] == ["weights"]
    assert {s["name"] for s in rep["skipped"]} == {"phase_transition", "noisy_error", "speed"}
    assert all("is missing" in s["reason"] for s in rep["skipped"])
    assert calls[-1] == ("weights", 1.0) and len(calls) == len(FIGURES)


def test_write_report_skips_a_json_without_the_fields(tmp_path):
    (tmp_path / "res").mkdir()
    (tmp_path / "res" / "noisy.json").write_text(json.dumps({"benchmark": "noisy"}))
    rep = write_report(tmp_path / "res", tmp_path)
    reason = {s["name"]: s["reason"] for s in rep["skipped"]}["noisy_error"]
    assert "lacks what the picture needs" in reason and "consistency" in reason
