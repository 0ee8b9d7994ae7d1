"""The ``relurecover`` command line, through typer's CliRunner."""

import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from relurecover import TwoLayerNetwork, compare
from relurecover.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "data.npz"
    res = run("generate", path, "--d", 12, "--k", 3, "--m", 4, "--seed", 1)
    assert res.exit_code == 0, res.output
    return path


def test_demo_is_exact():
    res = run("demo", "--d", 12, "--k", 3, "--m", 4, "--seed", 0)
    assert res.exit_code == 0, res.output
    assert "exact" in res.output and "NOT exact" not in res.output
    assert "bits of precision" in res.output
    assert "time: rounding" in res.output and "V[i, 0]" in res.output


def test_demo_defaults_are_fast_and_exact():
    res = run("demo")  # d = 50, k = 10, m = 12, n = 5000: about a second
    assert res.exit_code == 0, res.output
    assert "d=50, k=10, m=12" in res.output and "n = 5000" in res.output
    assert "10 of 10" in res.output


def test_generate_contents(dataset):
    with np.load(dataset) as f:
        assert f["X"].shape == (360, 12) and f["Y"].shape == (360, 4)  # n = 10 d k
        assert f["V"].shape == (3, 12) and f["U"].shape == (4, 3)
        assert str(f["activation"]) == "relu"
        truth = TwoLayerNetwork(f["U"], f["V"])
        np.testing.assert_allclose(truth.predict(f["X"]), f["Y"], atol=1e-12)


def test_generate_is_seeded_and_appends_suffix(tmp_path):
    assert run("generate", tmp_path / "a", "--d", 5, "--k", 2, "--m", 2, "--n", 20).exit_code == 0
    assert run("generate", tmp_path / "b.npz", "--d", 5, "--k", 2, "--m", 2,
               "--n", 20).exit_code == 0
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    np.testing.assert_array_equal(a["X"], b["X"])
    np.testing.assert_array_equal(a["V"], b["V"])


def test_generate_activation(tmp_path):
    res = run("generate", tmp_path / "r2.npz", "--d", 5, "--k", 2, "--m", 2,
              "--activation", "relu2")
    assert res.exit_code == 0, res.output
    assert TwoLayerNetwork.load(tmp_path / "r2.npz").activation.name == "relu2"


def _split(dataset, fmt):
    """Write X and Y of ``dataset`` as two files of format ``fmt``."""
    with np.load(dataset) as f:
        X, Y = f["X"], f["Y"]
    d = dataset.parent
    if fmt == "npy":
        np.save(d / "X.npy", X), np.save(d / "Y.npy", Y)
    elif fmt == "npz":  # the only array in each file, under any name
        np.savez(d / "X.npz", inputs=X), np.savez(d / "Y.npz", labels=Y)
    elif fmt == "csv":  # X without header, Y with one
        np.savetxt(d / "X.csv", X, delimiter=",")
        np.savetxt(d / "Y.csv", Y, delimiter=",", header="y0,y1,y2,y3", comments="")
    return d / f"X.{fmt}", d / f"Y.{fmt}"


@pytest.mark.parametrize("fmt", ["npy", "npz", "csv"])
def test_generate_fit_compare_round_trip(dataset, fmt):
    X, Y = _split(dataset, fmt)
    model = dataset.parent / "model.npz"
    res = run("fit", X, Y, "--hidden", 3, "--out", model, "--seed", 0)
    assert res.exit_code == 0, res.output
    assert "exact" in res.output and "NOT exact" not in res.output
    assert "3 of 3" in res.output and "certificate" in res.output
    assert model.is_file()
    res = run("compare", model, dataset)
    assert res.exit_code == 0, res.output
    assert "3 of 3 (found 3)" in res.output
    bits = float(res.output.split("bits of precision")[1].split()[1])
    assert bits > 30  # exact: max aligned error below 1e-9


def test_fit_single_npz_infers_hidden(dataset, tmp_path):
    res = run("fit", dataset, "-o", tmp_path / "m")
    assert res.exit_code == 0, res.output
    assert TwoLayerNetwork.load(tmp_path / "m.npz").n_hidden == 3


def test_fit_not_exact_exits_1(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "X.npy", rng.standard_normal((200, 8)))
    np.save(tmp_path / "Y.npy", rng.standard_normal((200, 4)))
    res = run("fit", tmp_path / "X.npy", tmp_path / "Y.npy", "--hidden", 2)
    assert res.exit_code == 1, res.output
    assert "NOT exact" in res.output


def _error_line(res):
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    return lines[0]


def test_missing_file(tmp_path):
    line = _error_line(run("fit", tmp_path / "nope.npy", tmp_path / "nope2.npy"))
    assert "nope.npy: no such file" in line
    assert "no such file" in _error_line(run("compare", tmp_path / "a.npz", tmp_path / "b.npz"))


@pytest.mark.parametrize("content, match", [
    ("1,2,nan\n3,4,5\n", "contains 1 NaN or infinite"),
    ("1,2,3\n3,x,5\n6,7,8\n", "not a numeric table"),
    ("a,b,c\n3,4,5\n6,x,8\n", "not a numeric table"),
    ("", "the file is empty"),
])
def test_bad_csv(tmp_path, content, match):
    (tmp_path / "bad.csv").write_text(content)
    np.save(tmp_path / "Y.npy", np.ones((2, 1)))
    assert match in _error_line(run("fit", tmp_path / "bad.csv", tmp_path / "Y.npy"))


def test_bad_shapes(tmp_path, dataset):
    np.save(tmp_path / "x1.npy", np.ones(5))
    np.save(tmp_path / "y5.npy", np.ones((5, 2)))
    X, Y = _split(dataset, "npy")
    assert "must be a 2-D array" in _error_line(run("fit", tmp_path / "x1.npy", Y))
    assert "X has 360 rows but Y has 5" in _error_line(run("fit", X, tmp_path / "y5.npy"))
    line = _error_line(run("fit", X, Y, "--hidden", 9, "--method", "gaussian"))
    assert "method='few-outputs'" in line


def test_unreadable_files(tmp_path, dataset):
    (tmp_path / "g.npy").write_text("garbage")
    (tmp_path / "g.npz").write_text("garbage")
    (tmp_path / "g.parquet").write_text("garbage")
    X, Y = _split(dataset, "npy")
    assert "not a readable .npy" in _error_line(run("fit", tmp_path / "g.npy", Y))
    assert "not an .npz archive" in _error_line(run("fit", tmp_path / "g.npz"))
    assert "unknown file type" in _error_line(run("fit", tmp_path / "g.parquet", Y))
    assert "not an .npz file" in _error_line(run("compare", X, dataset))


def test_npz_ambiguities(tmp_path, dataset):
    np.savez(tmp_path / "two.npz", a=np.ones((3, 2)), b=np.ones((3, 2)))
    X, Y = _split(dataset, "npy")
    assert "expected one named 'X'" in _error_line(run("fit", tmp_path / "two.npz", Y))
    assert "not both X and Y" in _error_line(run("fit", tmp_path / "two.npz"))
    assert "give the labels as a second file" in _error_line(run("fit", X))


def test_compare_rejects_other_dimension(tmp_path, dataset):
    TwoLayerNetwork.random(5, 3, 4, rng=0).save(tmp_path / "small.npz")
    assert "different input dimensions" in _error_line(
        run("compare", tmp_path / "small.npz", dataset))


def test_help_and_version():
    res = run("--help")
    assert res.exit_code == 0
    for cmd in ("demo", "generate", "fit", "compare"):
        assert cmd in res.output
    res = run("--version")
    assert res.exit_code == 0 and res.output.startswith("relurecover ")


@pytest.mark.parametrize("method, shown", [("auto", "general"), ("general", "general"),
                                           ("gaussian", "gaussian")])
def test_fit_method_on_uniform_inputs(tmp_path, method, shown):
    # uniform inputs: 'auto' must say it left the Gaussian path, and why
    from relurecover.instances import input_family, planted_on

    X = input_family("uniform", 400, 10, rng=0)
    truth = planted_on(X, 3, 4, rng=1)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", truth.predict(X))
    res = run("fit", tmp_path / "X.npy", tmp_path / "Y.npy", "--hidden", 3,
              "--method", method, "--out", tmp_path / "m.npz")
    assert res.exit_code == 0, res.output
    rows = [[c.strip() for c in ln.split("│") if c.strip()] for ln in res.output.splitlines()]
    assert ["method", shown] in rows, res.output
    if method == "auto":
        assert "why this method" in res.output
    assert compare(TwoLayerNetwork.load(tmp_path / "m.npz"), truth).max_error < 1e-9


# --------------------------------------------------------------------------- deep, no PyTorch

#: what a deep command prints, alone, when PyTorch (the [torch] extra) is missing.
TORCH_LINE = "error: learn_deep needs PyTorch: pip install 'relurecover[torch]'"

_BLOCK_TORCH = '''
import sys

class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

for _m in [m for m in sys.modules if m == "torch" or m.startswith("torch.")]:
    del sys.modules[_m]
sys.meta_path.insert(0, _NoTorch())
'''




@pytest.mark.parametrize("command", ["deep-demo", "fit --deep"])
def test_deep_commands_without_torch_print_one_line(no_torch, tmp_path, command):
    if command == "deep-demo":
        args = ("deep-demo", "--d", 5, "--n", 1000)
    else:
        rng = np.random.default_rng(0)
        np.save(tmp_path / "X.npy", rng.standard_normal((1000, 5)))
        np.save(tmp_path / "Y.npy", rng.standard_normal((1000, 1)))
        args = ("fit", tmp_path / "X.npy", tmp_path / "Y.npy", "--deep")
    assert _error_line(run(*args)) == TORCH_LINE


def test_deep_demo_without_torch_in_a_fresh_process():
    code = _BLOCK_TORCH + (
        "from relurecover.cli import main\n"
        "sys.argv = ['relurecover', 'deep-demo', '--d', '5', '--n', '1000']\n"
        "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.strip() == TORCH_LINE
    assert proc.stdout == ""


@pytest.mark.parametrize("args", [("deep-demo", "--tol", "0"),
                                  ("deep-demo", "--tol", "nan")])
def test_deep_tol_must_be_positive(args):
    assert "--tol must be a positive number" in _error_line(run(*args))
