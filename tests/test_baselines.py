"""Tests of the Adam baseline (relurecover.baselines); each fit is a few hundred steps."""

import numpy as np
import pytest

pytest.importorskip("torch")

from relurecover import DeepNetwork, TwoLayerNetwork, compare, gaussian_inputs  # noqa: E402
import dataclasses  # noqa: E402

from relurecover.baselines import BaselineResult, fit_adam, relative_loss  # noqa: E402
from relurecover.baselines import _fit_adam_iv, _FitArgs  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    truth = TwoLayerNetwork.random(5, 2, 3, rng=0)
    X = gaussian_inputs(400, 5, rng=1)
    return truth, X, truth.predict(X)


def test_learns_tiny_network(tiny):
    truth, X, Y = tiny
    res = fit_adam(X, Y, [2], lr=3e-2, steps=600, batch_size=128, restarts=2, rng=0)
    assert isinstance(res, BaselineResult)
    assert isinstance(res.network, TwoLayerNetwork)
    assert res.network.U.shape == (3, 2) and res.network.V.shape == (2, 5)
    # a realisable 2-unit problem: 1200 Adam steps in float64 fit it far below
    # the 1 of a zero predictor (typically ~1e-6); 1e-2 leaves room for any seed
    assert res.loss < 1e-2
    # the reported loss is the returned network's loss in the original scales
    assert res.loss == pytest.approx(relative_loss(res.network, X, Y), rel=1e-6, abs=1e-14)
    assert res.restarts == 2 and len(res.restart_losses) == 2
    assert res.loss == min(res.restart_losses)
    assert res.steps == 1200 and res.time > 0
    assert res.tuning == {} and res.lr == 3e-2


def test_same_seed_same_bits(tiny):
    _, X, Y = tiny
    kw = dict(lr=1e-2, steps=80, batch_size=64, restarts=2)
    a = fit_adam(X, Y, [2], rng=7, **kw)
    b = fit_adam(X, Y, [2], rng=np.random.default_rng(7), **kw)
    c = fit_adam(X, Y, [2], rng=8, **kw)
    np.testing.assert_array_equal(a.network.V, b.network.V)
    np.testing.assert_array_equal(a.network.U, b.network.U)
    assert a.loss == b.loss
    assert not np.array_equal(a.network.V, c.network.V)


def test_lr_tuning_picks_best_of_grid(tiny):
    _, X, Y = tiny
    grid = (1e-4, 3e-2)
    res = fit_adam(X, Y, [2], steps=100, tune_steps=50, restarts=1, lr_grid=grid, rng=0)
    assert set(res.tuning) == set(grid)
    assert res.lr == min(res.tuning, key=res.tuning.get)
    assert res.steps == 2 * 50 + 100
    assert 0 < res.tuning_time <= res.time


def test_default_tune_steps(tiny):
    # tune_steps=None: max(100, min(steps // 10, 2000)) = 100 steps per candidate
    _, X, Y = tiny
    res = fit_adam(X, Y, [2], steps=100, restarts=1, lr_grid=(1e-2, 3e-2), rng=0)
    assert res.steps == 2 * 100 + 100 and set(res.tuning) == {1e-2, 3e-2}


def _iv(**kw):
    args = dict(X=np.ones((10, 3)), Y=np.ones(10), widths=2, lr=None, steps=50_000,
                batch_size=256, restarts=1, schedule="cosine", time_limit=None,
                eval_fn=None, eval_every=500, target=None, stop_at_target=True,
                lr_grid=[1e-3, 1e-2], tune_steps=None, dtype="float64", n_threads=1)
    args.update(kw)
    return _fit_adam_iv(**args)


def test_validated_arguments():
    a = _iv()
    assert isinstance(a, _FitArgs)
    assert a.widths == (2,) and a.Y.shape == (10, 1)
    assert a.batch_size == 10  # capped at the number of rows
    assert a.tune_steps == 2000  # min(50000 // 10, 2000)
    assert a.lr_grid == (1e-3, 1e-2) and a.lr is None and a.deadline == np.inf
    b = _iv(lr=1, steps=30, tune_steps=None, time_limit=2)
    assert b.lr == 1.0 and isinstance(b.lr, float) and b.lr_grid == ()
    assert b.tune_steps == 100 and b.deadline == 2.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.steps = 1
    with pytest.raises(TypeError):
        _FitArgs(*(getattr(a, f.name) for f in dataclasses.fields(a)))


def test_result_is_frozen_and_keyword_only(tiny):
    _, X, Y = tiny
    res = fit_adam(X, Y, [2], lr=1e-2, steps=5, restarts=1, rng=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.loss = 0.0
    with pytest.raises(TypeError):
        BaselineResult(res.network, res.loss, res.time, res.steps, res.restarts,
                       res.best_restart, res.lr)
    assert dataclasses.replace(res, loss=2.0).loss == 2.0
    # the times are the stages' own: tuning within the whole fit, no double count
    assert res.tuning_time <= res.time and not hasattr(res, "timings")


def test_eval_fn_history_and_target(tiny):
    truth, X, Y = tiny
    calls = []

    def err(net):
        calls.append(net)
        return compare(net, truth).max_error

    res = fit_adam(X, Y, [2], lr=3e-2, steps=200, restarts=3, eval_fn=err,
                   eval_every=50, target=np.inf, rng=0)
    # an infinite target is met at the first evaluation, which stops the fit
    assert res.reached_target and res.restarts == 1 and res.steps == 50
    assert len(res.history) == 1 and res.history[0][1] == 50
    assert res.time_to_target == res.history[0][0]
    assert all(isinstance(n, TwoLayerNetwork) for n in calls)

    res = fit_adam(X, Y, [2], lr=3e-2, steps=120, restarts=2, eval_fn=err,
                   eval_every=50, target=-1.0, rng=0)
    # evaluations at steps 50, 100 and the end of each restart (120)
    assert [h[1] for h in res.history] == [50, 100, 120, 170, 220, 240]
    assert not res.reached_target and res.time_to_target is None


def test_time_limit_stops_the_fit(tiny):
    _, X, Y = tiny
    res = fit_adam(X, Y, [2], lr=1e-2, steps=10**7, restarts=2, time_limit=0.3, rng=0)
    assert res.time < 2.0 and res.restarts == 2
    assert "time limit" in res.message


def test_deep_network_and_1d_labels():
    net = DeepNetwork.random(6, [4, 3], rng=0)
    X = gaussian_inputs(300, 6, rng=1)
    Y = net.predict(X)[:, 0]
    res = fit_adam(X, Y, [4, 3], lr=1e-2, steps=50, restarts=1, rng=0, dtype="float32")
    assert isinstance(res.network, DeepNetwork)
    assert res.network.widths == [4, 3] and res.network.n_outputs == 1
    assert res.network.weights[0].dtype == np.float64
    assert res.network.predict(X).shape == (300, 1)
    assert np.isfinite(res.loss)
    # an int width is the two-layer case
    assert isinstance(fit_adam(X, Y, 3, lr=1e-2, steps=5, restarts=1).network,
                      TwoLayerNetwork)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(X=np.full((10, 3), np.nan)), "NaN or infinite"),
        (dict(Y=np.ones((9, 2))), "same number of rows"),
        (dict(X=np.ones(10)), "2-D array"),
        (dict(widths=[]), "at least one hidden layer"),
        (dict(widths=[0]), "widths"),
        (dict(widths="ab"), "widths"),
        (dict(lr=-1.0), "`lr` must be a positive number"),
        (dict(lr=None, lr_grid=()), "`lr_grid`"),
        (dict(steps=0), "`steps` must be a positive integer"),
        (dict(batch_size=1.5), "`batch_size`"),
        (dict(restarts=0), "`restarts`"),
        (dict(schedule="linear"), "`schedule` must be one of"),
        (dict(time_limit=0), "`time_limit`"),
        (dict(eval_fn=3), "`eval_fn` must be callable"),
        (dict(target=1e-3), "`target` needs `eval_fn`"),
        (dict(dtype="float16"), "`dtype` must be one of"),
        (dict(n_threads=0), "`n_threads`"),
    ],
)
def test_bad_input(kwargs, match):
    args = dict(X=np.ones((10, 3)), Y=np.ones((10, 2)), widths=[2], lr=1e-2, steps=5)
    args.update(kwargs)
    X, Y, widths = args.pop("X"), args.pop("Y"), args.pop("widths")
    with pytest.raises(ValueError, match=match):
        fit_adam(X, Y, widths, **args)
