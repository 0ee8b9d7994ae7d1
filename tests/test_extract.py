"""Black-box extraction (docs/algorithms.md 7): exact recovery from queries, honest failure."""

import time
import warnings

import numpy as np
import pytest

from relurecover import DeepNetwork, TwoLayerNetwork, compare
from relurecover.extract import (BudgetExhausted, NotAnOracle, QueryOracle, as_oracle,
                                 extract, fidelity)
from relurecover.extract._lines import NotPiecewiseLinear, find_kinks


def hidden(d, k, m, seed, bias_scale=0.5):
    """An oracle that holds its network in a closure, counting every row it answers."""
    net = TwoLayerNetwork.random(d, k, m, bias_scale=bias_scale, rng=seed)
    calls = {"rows": 0}

    def oracle(X):
        calls["rows"] += X.shape[0]
        out = np.maximum(X @ net.V.T + net.b, 0.0) @ net.U.T + net.c
        return out[:, 0] if m == 1 else out

    return oracle, net, calls


def units_match(found, truth, tol=1e-9):
    """Every row of [V, b] of ``found`` equals one of ``truth``'s (normalised, up to sign)."""
    Hf = np.c_[found.V, found.b] / np.linalg.norm(found.V, axis=1)[:, None]
    Ht = np.c_[truth.V, truth.b] / np.linalg.norm(truth.V, axis=1)[:, None]
    dist = np.minimum(np.linalg.norm(Hf[:, None] - Ht[None], axis=2),
                      np.linalg.norm(Hf[:, None] + Ht[None], axis=2))
    return bool(np.all(dist.min(axis=1) <= tol)) and len(set(dist.argmin(axis=1))) == len(Hf)


@pytest.mark.parametrize("d,k,m", [(12, 6, 1), (6, 14, 1), (20, 12, 3)])
def test_chosen_queries_exact(d, k, m):
    oracle, truth, calls = hidden(d, k, m, seed=d + k)
    ex = extract(oracle, d, rng=1)
    assert ex.exact, ex.message
    assert ex.method == "chosen-queries"
    assert ex.n_hidden == k
    assert ex.fidelity.max_error <= 2.0**-40
    assert compare(ex.network, truth).max_error <= 1e-9
    assert units_match(ex.network, truth)
    # every query is counted, none hidden
    assert ex.n_queries == calls["rows"] == sum(ex.queries.values())


def test_many_outputs_take_gaussian_queries():
    oracle, truth, calls = hidden(15, 5, 7, seed=3)
    ex = extract(oracle, 15, rng=0, n_fidelity=2000)
    assert ex.exact and ex.method == "gaussian-queries"
    assert compare(ex.network, truth).max_error <= 1e-9
    assert ex.queries["gaussian queries"] <= 20 * 15 * 5


def test_bias_free_and_k1():
    oracle, truth, _ = hidden(5, 1, 1, seed=4, bias_scale=0.0)
    ex = extract(oracle, 5, rng=0, n_fidelity=1000)
    assert ex.exact and ex.n_hidden == 1
    assert compare(ex.network, truth).max_error <= 1e-9


def test_reproducible():
    oracle, _, _ = hidden(8, 4, 1, seed=5)
    a = extract(oracle, 8, rng=7, n_fidelity=500)
    b = extract(oracle, 8, rng=7, n_fidelity=500)
    assert a.n_queries == b.n_queries
    np.testing.assert_array_equal(a.network.V, b.network.V)


def test_width_given_is_checked_not_required():
    oracle, _, _ = hidden(8, 4, 1, seed=6)
    ex = extract(oracle, 8, rng=0, n_hidden=5, n_fidelity=500)
    assert ex.n_hidden == 4 and "you expected 5" in ex.message


@pytest.mark.parametrize("budget", [50, 300, 500, 900])
def test_budget_never_exceeded_and_no_wrong_unit(budget):
    oracle, truth, calls = hidden(16, 8, 1, seed=8)
    ex = extract(oracle, 16, rng=0, max_queries=budget)
    assert calls["rows"] <= budget and ex.n_queries <= budget
    if ex.exact:  # enough for every unit; the certificate then uses what is left
        assert budget == 900 and compare(ex.network, truth).max_error <= 1e-9
        assert ex.fidelity.n_inputs == budget - (ex.n_queries - ex.fidelity.n_inputs)
    else:
        assert budget < 900
        assert ("found" in ex.message and " of " in ex.message) or "probing" in ex.message
    if ex.network is not None:
        assert units_match(ex.network, truth)


def test_time_limit_bounds_the_run():
    oracle, _, _ = hidden(30, 10, 1, seed=9)

    def slow(X):
        time.sleep(0.02)
        return oracle(X)

    t = time.perf_counter()
    ex = extract(slow, 30, rng=0, time_limit=0.1)
    assert time.perf_counter() - t < 5.0
    assert not ex.exact and "time limit" in ex.message


def test_tanh_network_gets_a_verdict():
    rng = np.random.default_rng(0)
    V, u = rng.standard_normal((6, 10)), rng.standard_normal(6)
    ex = extract(lambda X: np.tanh(X @ V.T) @ u, 10, rng=0, time_limit=30)
    assert not ex.exact and ex.network is None
    assert "not a piecewise-linear" in ex.message


def test_random_function_gets_a_verdict():
    rs = np.random.default_rng(1)
    ex = extract(lambda X: rs.standard_normal(X.shape[0]), 10, rng=0)
    assert not ex.exact and ex.network is None
    assert "random, noisy or not piecewise linear" in ex.message


def test_two_hidden_layers_are_detected():
    deep = DeepNetwork.random(10, (5, 4), 1, rng=3)
    ex = extract(deep.predict, 10, rng=0, time_limit=60)
    assert not ex.exact
    assert "not a one-hidden-layer" in ex.message or "not certified" in ex.message


def test_affine_oracle():
    ex = extract(lambda X: X.sum(axis=1) + 1.0, 4, rng=0)
    assert not ex.exact and ex.network is None and "no kink" in ex.message


def test_bad_oracles_are_refused_clearly():
    with pytest.raises(ValueError, match="input dimension"):
        extract(lambda X: X[:, 0], rng=0)
    ex = extract(lambda X: np.full(X.shape[0], np.nan), 3, rng=0)
    assert not ex.exact and "non-finite" in ex.message
    ex = extract(lambda X: np.zeros((X.shape[0] + 1, 2)), 3, rng=0)
    assert not ex.exact and "shape" in ex.message
    with pytest.raises(TypeError):
        extract(42, 3)
    with pytest.raises(ValueError, match="input_scale"):
        extract(lambda X: X[:, 0], 3, input_scale=-1.0)


def test_query_oracle_budget_and_checks():
    Q = QueryOracle(lambda X: X.sum(axis=1), 2, max_queries=5)
    assert Q(np.ones((3, 2))).shape == (3, 1)
    with pytest.raises(BudgetExhausted):
        Q(np.ones((3, 2)))
    assert Q.n_queries == 3
    Q = QueryOracle(lambda X: X[:, :1] if X.shape[0] == 1 else X, 2)
    Q(np.ones((1, 2)))
    with pytest.raises(NotAnOracle, match="width"):
        Q(np.ones((2, 2)))


def test_find_kinks_exact_positions_and_close_pairs():
    # kinks at 0.3, 1.2250 and 1.2265 (a close pair whose middle slope is not between
    # the outer ones: the false-kink trap of the 2-linear test), and at -40
    kinks = np.array([-40.0, 0.3, 1.2250, 1.2265])
    slopes = np.array([0.7, -1.1, 0.45, -0.2])

    def g(t):
        t = np.asarray(t, dtype=float)
        return 0.5 + 0.1 * t + (np.maximum(t[:, None] - kinks, 0) * slopes).sum(axis=1)

    lk = find_kinks(g, 5.0, precision=2**-53, f_scale=1.0)
    np.testing.assert_allclose(lk.t, kinks, atol=1e-10)


def test_find_kinks_refuses_smooth():
    with pytest.raises(NotPiecewiseLinear):
        find_kinks(lambda t: np.sin(np.asarray(t)), 3.0, precision=2**-53, f_scale=1.0,
                   max_kinks=64)


def test_fidelity_report():
    net = TwoLayerNetwork.random(4, 3, 2, bias_scale=0.5, rng=0)
    X = np.random.default_rng(1).standard_normal((50, 4))
    fid = fidelity(net.predict, net, X)
    assert fid.max_error == 0 and fid.bits == np.inf and fid.class_agreement == 1.0
    other = TwoLayerNetwork(net.U * 1.01, net.V, b=net.b, c=net.c)
    fid = fidelity(net.predict, other, X)
    assert 1e-4 < fid.max_error < 0.1 and fid.class_agreement <= 1.0


def test_as_oracle_sklearn_object():
    sk = pytest.importorskip("sklearn")  # noqa: F841
    net = TwoLayerNetwork.random(6, 4, 1, bias_scale=0.5, rng=2)
    mlp = net.to_mlp()
    fn, d, info = as_oracle(mlp)
    assert d == 6 and info.kind == "sklearn"
    ex = extract(mlp, rng=0, n_fidelity=500)
    assert ex.exact and compare(ex.network, net).max_error <= 1e-9


def test_torch_module_and_files(tmp_path):
    torch = pytest.importorskip("torch")
    from relurecover.extract import open_model, save_like

    net = TwoLayerNetwork.random(8, 5, 2, bias_scale=0.5, rng=3)
    module = net.to_torch()
    ex = extract(module, rng=0, n_fidelity=500)
    assert ex.exact and compare(ex.network, net).max_error <= 1e-9
    # a state dict, read by its keys with weights_only=True
    sd = tmp_path / "model.pt"
    torch.save(module.state_dict(), sd)
    fn, d, info = open_model(sd)
    assert info.kind == "state-dict" and d == 8
    ex = extract(sd, rng=0, n_fidelity=500)
    assert ex.exact
    out = save_like(ex.network, tmp_path / "back.pt", info)
    fn2, _, info2 = open_model(out)
    X = np.random.default_rng(0).standard_normal((20, 8))
    np.testing.assert_allclose(fn2(X), net.predict(X), rtol=1e-10, atol=1e-10)
    # TorchScript
    ts = tmp_path / "model_ts.pt"
    torch.jit.script(module).save(str(ts))
    fn, d, info = open_model(ts)
    assert info.kind == "torchscript" and d == 8
    ex = extract(ts, rng=0, n_fidelity=500)
    assert ex.exact
    out = save_like(ex.network, tmp_path / "back_ts.pt", info)
    assert open_model(out)[2].kind == "torchscript"
    # a pickled module needs allow_pickle
    pk = tmp_path / "full.pt"
    torch.save(module, pk)
    with pytest.raises(ValueError, match="allow_pickle"):
        open_model(pk)
    fn, d, info = open_model(pk, allow_pickle=True)
    assert info.kind == "pickle"


@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_outputs_far_from_unit_scale(scale):
    net = TwoLayerNetwork.random(10, 5, 1, bias_scale=0.5, rng=21)
    big = TwoLayerNetwork(net.U * scale, net.V, b=net.b, c=net.c * scale)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or underflow on the way
        ex = extract(big.predict, 10, rng=0, n_fidelity=1000)
    assert ex.exact and compare(ex.network, big).max_error <= 1e-9


def test_almost_a_network_is_not_exact():
    net = TwoLayerNetwork.random(10, 5, 1, bias_scale=0.5, rng=22)
    for eps in (1e-9, 1e-6):
        ex = extract(lambda X: net.predict(X)[:, 0] + eps * np.tanh(X[:, 0]), 10, rng=0,
                     n_fidelity=1000, time_limit=60)
        assert not ex.exact


def test_square_shapes():
    net = TwoLayerNetwork.random(5, 5, 5, bias_scale=0.5, rng=23)
    ex = extract(net.predict, 5, rng=0, n_fidelity=1000)
    assert ex.exact and compare(ex.network, net).max_error <= 1e-9
    net = TwoLayerNetwork.random(5, 5, 1, bias_scale=0.5, rng=24)
    ex = extract(net.predict, 5, rng=0, n_fidelity=1000)
    assert ex.exact and compare(ex.network, net).max_error <= 1e-9


def test_low_precision_runs_are_reproducible_across_processes():
    # every random step is seeded: no dependence on Python's per-process hash salt
    import os
    import subprocess
    import sys

    code = ("import numpy as np\n"
            "from relurecover import TwoLayerNetwork\n"
            "from relurecover.extract import extract\n"
            "net = TwoLayerNetwork.random(6, 4, 1, bias_scale=0.5, rng=5)\n"
            "V, U, b, c = (a.astype(np.float32) for a in (net.V, net.U, net.b, net.c))\n"
            "f = lambda X: (np.maximum(X.astype(np.float32) @ V.T + b, 0) @ U.T + c)[:, 0]\n"
            "ex = extract(f, 6, rng=0, n_fidelity=200)\n"
            "print(ex.n_queries, ex.n_hidden)\n")
    outs = []
    for salt in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=salt)
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, check=True)
        outs.append(res.stdout)
    assert outs[0] == outs[1]


def test_onnx_and_skops_files(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    from relurecover.extract import open_model, save_like

    net = TwoLayerNetwork.random(7, 5, 3, bias_scale=0.5, rng=31)
    path = tmp_path / "m.onnx"
    net.to_onnx(path)
    fn, d, info = open_model(path)
    assert info.kind == "onnx" and info.dtype == "float64" and d == 7
    ex = extract(path, rng=0, n_fidelity=500)
    assert ex.exact and compare(ex.network, net).max_error <= 1e-9
    back = save_like(ex.network, tmp_path / "back.onnx", info)
    X = np.random.default_rng(0).standard_normal((30, 7))
    np.testing.assert_allclose(open_model(back)[0](X), net.predict(X), rtol=1e-10,
                               atol=1e-10)
    sio = pytest.importorskip("skops.io")
    sk = tmp_path / "m.skops"
    sio.dump(net.to_mlp(), sk)
    fn, d, info = open_model(sk)
    assert info.kind == "skops" and d == 7
    ex = extract(sk, rng=0, n_fidelity=500)
    assert ex.exact and compare(ex.network, net).max_error <= 1e-9


def test_float32_module_is_reported_as_such():
    torch = pytest.importorskip("torch")
    net = TwoLayerNetwork.random(6, 3, 1, bias_scale=0.5, rng=32)
    module = net.to_torch(dtype=torch.float32)
    ex = extract(module, rng=0, n_fidelity=500)
    assert ex.precision >= 2.0**-25  # the answers are float32
    if ex.exact:  # certified means reproduced to 2^-18
        assert ex.fidelity.max_error <= 2.0**-18
    else:
        assert "not" in ex.message
