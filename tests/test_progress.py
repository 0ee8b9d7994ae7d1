"""The ``progress=`` callbacks of recover_two_layer and learn_deep."""

import numpy as np
import pytest

from relurecover import DeepNetwork, TwoLayerNetwork, gaussian_inputs, recover_two_layer
from relurecover._progress import report, reporting
from relurecover.instances import input_family, planted_on


def _calls():
    calls = []
    return calls, lambda stage, fraction: calls.append((stage, fraction))


def _check_calls(calls, stages):
    assert calls, "the callback was never called"
    assert all(isinstance(s, str) and 0.0 <= f <= 1.0 for s, f in calls), calls
    assert calls[-1] == ("done", 1.0)
    seen = [s for s, _ in calls]
    for stage in stages:
        assert stage in seen, (stage, seen)
        assert (stage, 1.0) in calls, f"{stage} never reported done: {calls}"


@pytest.mark.parametrize("method, stages", [
    ("gaussian", ["validation", "rounding", "output layer"]),
    ("auto", ["validation", "auto checks", "rounding"]),
])
def test_recover_two_layer_reports_its_stages(method, stages):
    truth = TwoLayerNetwork.random(10, 3, 4, rng=0)
    X = gaussian_inputs(600, 10, rng=1)
    calls, cb = _calls()
    res = recover_two_layer(X, truth.predict(X), method=method, rng=2, progress=cb)
    _check_calls(calls, stages)
    rounding = [f for s, f in calls if s == "rounding"]
    assert rounding == sorted(rounding)  # units certified only grow
    # the callback changes nothing: same bits as without it
    ref = recover_two_layer(X, truth.predict(X), method=method, rng=2)
    assert res.exact and ref.exact
    np.testing.assert_array_equal(res.network.V, ref.network.V)
    np.testing.assert_array_equal(res.network.U, ref.network.U)


def test_general_and_noisy_paths_report():
    X = input_family("uniform", 400, 8, rng=0)
    truth = planted_on(X, 3, 4, rng=1)
    calls, cb = _calls()
    recover_two_layer(X, truth.predict(X), n_hidden=3, method="general", rng=0, progress=cb)
    _check_calls(calls, ["rounding", "output layer"])

    rng = np.random.default_rng(0)
    truth = TwoLayerNetwork.random(8, 3, 5, rng=rng)
    X = gaussian_inputs(5000, 8, rng=rng)
    Y = truth.predict(X) + 0.01 * rng.standard_normal((5000, 5))
    calls, cb = _calls()
    res = recover_two_layer(X, Y, rng=0, progress=cb)
    assert res.noise_level is not None
    _check_calls(calls, ["noisy: moment start", "noisy: refinement"])


def test_progress_must_be_callable_and_may_stop_the_call():
    X = gaussian_inputs(200, 5, rng=0)
    Y = TwoLayerNetwork.random(5, 2, 3, rng=1).predict(X)
    with pytest.raises(TypeError, match="`progress` must be None or a callable"):
        recover_two_layer(X, Y, progress="yes")

    class Stop(Exception):
        pass

    def stop(stage, fraction):
        if stage == "rounding":
            raise Stop(stage)

    with pytest.raises(Stop):
        recover_two_layer(X, Y, rng=0, progress=stop)


def test_reporting_nests_without_silencing_the_caller():
    outer, cb = _calls()
    report("nobody listens", 0.5)  # no callback: a no-op
    with reporting(cb):
        with reporting(None):  # an inner call without a callback keeps the outer one
            report("inner", 2.0)  # clipped to [0, 1]
        report("outer", -1.0)
    report("after", 1.0)
    assert outer == [("inner", 1.0), ("outer", 0.0)]


def test_learn_deep_reports_its_stages():
    pytest.importorskip("torch")
    from relurecover.deep import learn_deep

    truth = DeepNetwork.random(5, [2], rng=0)
    X = gaussian_inputs(3000, 5, rng=1)
    calls, cb = _calls()
    fit = learn_deep(X, truth.predict(X), [2], rng=2, restarts=2, progress=cb)
    _check_calls(calls, ["subspace", "fit", "refine", "lm", "polish"])
    fits = [f for s, f in calls if s == "fit"]
    assert fits[0] == 0.0 and fits[-1] == 1.0 and len(fits) >= 3  # one per restart
    ref = learn_deep(X, truth.predict(X), [2], rng=2, restarts=2)
    assert fit.heldout_error == ref.heldout_error  # the callback changes nothing
    with pytest.raises(TypeError, match="progress"):
        learn_deep(X, truth.predict(X), [2], rng=2, progress=3)
