"""Round trips through PyTorch, scikit-learn and ONNX (relurecover.formats):
every network, with and without biases, predicts the same to 1e-12 relative."""

import sys

import numpy as np
import pytest

from relurecover import DeepNetwork, TwoLayerNetwork, gaussian_inputs
from relurecover.deep import MissingDependencyError
from relurecover.formats import from_mlp, from_torch, to_mlp, to_onnx, to_torch

D = 6


def _networks():
    deep = DeepNetwork.random(D, [5, 4], 3, rng=3)
    g = np.random.default_rng(4)
    return {
        "2l": TwoLayerNetwork.random(D, 3, 4, rng=0),
        "2l-bias": TwoLayerNetwork.random(D, 3, 4, bias_scale=0.5, rng=1),
        "2l-m1-bias": TwoLayerNetwork.random(D, 3, 1, bias_scale=0.5, rng=2),
        "deep": deep,
        "deep-bias": DeepNetwork(deep.weights, [g.standard_normal(5), g.standard_normal(4),
                                                g.standard_normal(3)]),
    }


NETWORKS = _networks()
IDS = list(NETWORKS)
X = gaussian_inputs(200, D, rng=9)


def _assert_same(out, net, X=X):
    """``out`` equals ``net.predict(X)`` to 1e-12 relative (entrywise, with the
    scale of the outputs as the floor)."""
    Y = net.predict(X)
    out = np.asarray(out).reshape(Y.shape)
    np.testing.assert_allclose(out, Y, rtol=1e-12, atol=1e-12 * np.abs(Y).max())


@pytest.mark.parametrize("name", IDS)
def test_torch_round_trip(name):
    torch = pytest.importorskip("torch")
    net = NETWORKS[name]
    mod = to_torch(net)
    with torch.no_grad():
        _assert_same(mod(torch.as_tensor(X)).numpy(), net)
    back = from_torch(mod)
    assert type(back) is type(net) and back.has_biases == net.has_biases
    _assert_same(back.predict(X), net)


@pytest.mark.parametrize("name", IDS)
def test_mlp_round_trip(name):
    pytest.importorskip("sklearn")
    net = NETWORKS[name]
    mlp = to_mlp(net)
    _assert_same(mlp.predict(X), net)
    back = from_mlp(mlp)
    assert type(back) is type(net) and back.has_biases == net.has_biases
    _assert_same(back.predict(X), net)


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    """Each network written once to ONNX (an export takes about a second)."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    where = tmp_path_factory.mktemp("onnx")
    return {name: to_onnx(net, where / f"{name}.onnx") for name, net in NETWORKS.items()}


def _session(path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", IDS)
def test_onnx_runs_in_onnxruntime_in_float64(name, onnx_files):
    import onnx

    net = NETWORKS[name]
    model = onnx.load(str(onnx_files[name]))
    onnx.checker.check_model(model)
    ops = [node.op_type for node in model.graph.node]
    n_linear = 2 if isinstance(net, TwoLayerNetwork) else len(net.weights)
    assert ops.count("Relu") == n_linear - 1, ops
    sess = _session(onnx_files[name])
    (inp,), (outp,) = sess.get_inputs(), sess.get_outputs()
    assert (inp.name, inp.type, outp.name, outp.type) == ("X", "tensor(double)", "Y",
                                                           "tensor(double)")
    assert isinstance(inp.shape[0], str) and inp.shape[1] == D  # a dynamic batch
    for n in (1, 2, 200):  # any number of rows, one included
        (Y,) = sess.run(None, {"X": X[:n]})
        assert Y.dtype == np.float64 and Y.shape == (n, net.n_outputs)
        _assert_same(Y, net, X[:n])


def test_onnx_method_float32_and_errors(tmp_path, onnx_files):
    net = NETWORKS["2l-bias"]
    path = net.to_onnx(tmp_path / "f32.onnx", dtype=np.float32)  # the _Formats method
    assert path == tmp_path / "f32.onnx"
    sess = _session(path)
    assert sess.get_inputs()[0].type == "tensor(float)"
    (Y,) = sess.run(None, {"X": X.astype(np.float32)})
    assert Y.dtype == np.float32
    np.testing.assert_allclose(Y, net.predict(X), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="`dtype` must be float64 or float32"):
        to_onnx(net, tmp_path / "bad.onnx", dtype=np.int64)
    with pytest.raises(ValueError, match="only ReLU networks"):
        to_onnx(TwoLayerNetwork.random(D, 2, 2, activation="relu2", rng=0),
                tmp_path / "relu2.onnx")
    with pytest.raises(TypeError, match="expected a TwoLayerNetwork or DeepNetwork"):
        to_onnx("not a network", tmp_path / "none.onnx")


class _Blocked:
    """A meta-path finder under which ``import <name>`` fails as if not installed."""

    def __init__(self, name):
        self.name = name

    def find_spec(self, name, path=None, target=None):
        if name == self.name or name.startswith(self.name + "."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None


@pytest.mark.parametrize("missing", ["torch", "onnx", "onnxscript"])
def test_to_onnx_without_an_extra(missing, monkeypatch, tmp_path):
    for mod in [m for m in sys.modules if m == missing or m.startswith(missing + ".")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(sys, "meta_path", [_Blocked(missing), *sys.meta_path])
    with pytest.raises(MissingDependencyError,
                       match=rf"relurecover\[torch,onnx\].*Missing: {missing}\."):
        to_onnx(NETWORKS["2l"], tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
