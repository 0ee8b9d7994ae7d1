"""The ``relurecover`` command line, through typer's CliRunner."""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from relurecover import TwoLayerNetwork, compare
from relurecover.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def run(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


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
    (tmp_path / "g.xlsx").write_text("garbage")
    X, Y = _split(dataset, "npy")
    assert "not a readable .npy" in _error_line(run("fit", tmp_path / "g.npy", Y))
    assert "not an .npz archive" in _error_line(run("fit", tmp_path / "g.npz"))
    assert "unknown file type" in _error_line(run("fit", tmp_path / "g.xlsx", Y))
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

#: what a deep command prints, alone, when asked for the torch engine without PyTorch.
TORCH_LINE = ("error: learn_deep(engine='torch') needs PyTorch: pip install "
              "'relurecover[torch]'")

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
def test_deep_commands_engine_torch_without_torch_print_one_line(no_torch, tmp_path,
                                                                 command):
    if command == "deep-demo":
        args = ("deep-demo", "--d", 5, "--n", 1000, "--engine", "torch")
    else:
        rng = np.random.default_rng(0)
        np.save(tmp_path / "X.npy", rng.standard_normal((1000, 5)))
        np.save(tmp_path / "Y.npy", rng.standard_normal((1000, 1)))
        args = ("fit", tmp_path / "X.npy", tmp_path / "Y.npy", "--deep", "--engine", "torch")
    assert _error_line(run(*args)) == TORCH_LINE


def test_engine_option_is_checked(tmp_path):
    assert "`engine` must be one of" in _error_line(run("deep-demo", "--engine", "jax"))
    rng = np.random.default_rng(0)
    np.save(tmp_path / "X.npy", rng.standard_normal((100, 3)))
    np.save(tmp_path / "Y.npy", rng.standard_normal((100, 3)))
    assert "--engine needs --deep" in _error_line(
        run("fit", tmp_path / "X.npy", tmp_path / "Y.npy", "--engine", "numpy"))


def test_deep_demo_without_torch_in_a_fresh_process():
    # the base install: deep-demo runs on the numpy engine, no traceback
    code = _BLOCK_TORCH + (
        "from relurecover.cli import main\n"
        "sys.argv = ['relurecover', 'deep-demo', '--d', '6', '--n', '6000', '--widths', "
        "'3', '--restarts', '4', '--json']\n"
        "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["result"]["deep_fit"]["engine"] == "numpy"


@pytest.mark.parametrize("args", [("deep-demo", "--tol", "0"),
                                  ("deep-demo", "--tol", "nan")])
def test_deep_tol_must_be_positive(args):
    assert "--tol must be a positive number" in _error_line(run(*args))


# --------------------------------------------------------------------------- the JSON schema

#: the keywords of JSON Schema that the checker below implements; the schema of
#: docs/cli.md may use no other (so none is silently ignored).
SUPPORTED = {"$schema", "$id", "title", "type", "required", "properties",
             "additionalProperties", "items", "minItems", "maxItems", "enum", "const",
             "minimum", "allOf", "anyOf", "if", "then", "else", "$ref", "$defs"}
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


@functools.lru_cache(maxsize=None)
def _schema_text():
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    block = text.split("## JSON schema", 1)[1].split("```json\n", 1)[1].split("\n```", 1)[0]
    return block


def schema():
    return json.loads(_schema_text())


def _same(a, b):
    """JSON equality (True is not 1)."""
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) \
        else a == b


def check(value, sch, root, path="$"):
    """The violations of ``sch`` by ``value`` (a small JSON Schema checker)."""
    if "$ref" in sch:
        name = sch["$ref"].removeprefix("#/$defs/")
        return check(value, root["$defs"][name], root, path)
    if "type" in sch:
        types = sch["type"] if isinstance(sch["type"], list) else [sch["type"]]
        if not any(_TYPES[t](value) for t in types):
            return [f"{path}: {value!r} is not of type {types}"]
    errors = []
    if "const" in sch and not _same(value, sch["const"]):
        errors.append(f"{path}: {value!r} != {sch['const']!r}")
    if "enum" in sch and not any(_same(value, e) for e in sch["enum"]):
        errors.append(f"{path}: {value!r} not in {sch['enum']}")
    if "minimum" in sch and _TYPES["number"](value) and value < sch["minimum"]:
        errors.append(f"{path}: {value!r} < {sch['minimum']}")
    if isinstance(value, dict):
        errors += [f"{path}: missing {key!r}" for key in sch.get("required", [])
                   if key not in value]
        props, extra = sch.get("properties", {}), sch.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                errors += check(item, props[key], root, f"{path}.{key}")
            elif extra is False:
                errors.append(f"{path}: unexpected field {key!r}")
            elif isinstance(extra, dict):
                errors += check(item, extra, root, f"{path}.{key}")
    if isinstance(value, list):
        if len(value) < sch.get("minItems", 0) or len(value) > sch.get("maxItems", 1e9):
            errors.append(f"{path}: {len(value)} items")
        if "items" in sch:
            for i, item in enumerate(value):
                errors += check(item, sch["items"], root, f"{path}[{i}]")
    for sub in sch.get("allOf", []):
        errors += check(value, sub, root, path)
    if "anyOf" in sch and all(check(value, sub, root, path) for sub in sch["anyOf"]):
        errors.append(f"{path}: matches none of anyOf")
    if "if" in sch:
        branch = "then" if not check(value, sch["if"], root, path) else "else"
        if branch in sch:
            errors += check(value, sch[branch], root, path)
    return errors


def validate(obj, definition=None):
    root = schema()
    sch = root if definition is None else {"$ref": f"#/$defs/{definition}"}
    errors = check(obj, sch, root)
    try:
        import jsonschema
    except ImportError:  # the checker above is enough; jsonschema only confirms it
        return errors
    validator = jsonschema.Draft202012Validator(
        root if definition is None else {**sch, "$defs": root["$defs"]})
    errors += [f"jsonschema: {e.message}" for e in validator.iter_errors(obj)]
    return errors


def run_json(*args, env=None):
    """Run with --json: stdout is one JSON object, valid against docs/cli.md."""
    res = run(*args, "--json", env=env)
    assert res.stdout.count("\n") == 1 and res.stdout.endswith("}\n"), res.output
    obj = json.loads(res.stdout)
    assert validate(obj) == [], (validate(obj), obj)
    assert obj["exit_code"] == res.exit_code, res.output
    assert "Traceback" not in res.output
    return obj, res


def _keywords(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            if key in ("properties", "$defs"):
                for sub in value.values():
                    yield from _keywords(sub)
            else:
                yield from _keywords(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keywords(item)


def test_schema_uses_only_what_the_checker_checks():
    used = set(_keywords(schema()))
    assert used <= SUPPORTED, used - SUPPORTED
    sch = schema()
    assert sch["properties"]["schema_version"] == {"const": 1}
    for name in ("demo", "deep-demo", "generate", "fit", "compare", "predict", "report",
                 "model_metadata"):
        assert name in sch["$defs"], name
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(sch)


def test_schema_checker_catches_violations():
    good = {"schema_version": 1, "command": "predict", "status": "error", "exit_code": 2,
            "message": "x", "warnings": [], "error": "x", "result": None}
    assert validate(good) == []
    bad = [
        {**good, "schema_version": 2},
        {**good, "exit_code": 0},  # status error needs exit code 2
        {**good, "status": "ok"},  # ok needs exit code 0 and a result
        {**good, "extra": 1},
        {**good, "warnings": [1]},
        {k: v for k, v in good.items() if k != "message"},
        {**good, "status": "ok", "exit_code": 0, "error": None,
         "result": {"model": "m.npz"}},  # predict's result lacks its fields
    ]
    for obj in bad:
        assert check(obj, schema(), schema()), obj
    assert check(True, {"type": "integer"}, {}) and check(1, {"const": True}, {})


# --------------------------------------------------------------------------- --json, every command


def test_json_demo_and_quiet_and_verbose():
    obj, res = run_json("demo", "--d", 12, "--k", 3, "--m", 4)
    assert res.exit_code == 0 and obj["status"] == "ok" and obj["command"] == "demo"
    assert obj["result"]["recovery"]["exact"] is True
    assert obj["result"]["comparison"]["n_matched"] == 3
    quiet = run("demo", "--d", 12, "--k", 3, "--m", 4, "--quiet")
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""
    plain = run("demo", "--d", 12, "--k", 3, "--m", 4)
    loud = run("demo", "--d", 12, "--k", 3, "--m", 4, "--verbose")
    assert "Diagnostics" in loud.stdout and "Diagnostics" not in plain.stdout
    assert "rank_Y" in loud.stdout
    line = _error_line(run("demo", "--quiet", "--verbose"))
    assert "--quiet and --verbose exclude each other" in line


def test_fit_quiet_and_verbose(dataset):
    quiet = run("fit", dataset, "-q")
    assert quiet.exit_code == 0 and quiet.stdout == ""
    loud = run("fit", dataset, "-v")
    assert loud.exit_code == 0 and "Diagnostics" in loud.stdout
    assert "starts_used" in loud.stdout and "starts_used" not in run("fit", dataset).stdout


def test_json_generate_fit_compare_predict(dataset, tmp_path):
    obj, _ = run_json("generate", tmp_path / "g.npz", "--d", 8, "--k", 2, "--m", 3,
                      "--n", 200)
    assert obj["result"]["n_samples"] == 200 and obj["result"]["truth"]["widths"] == [2]
    model = tmp_path / "model.npz"
    obj, res = run_json("fit", dataset, "--out", model)
    assert res.exit_code == 0 and obj["result"]["verdict"] == "exact"
    assert obj["result"]["saved"] == {"path": str(model), "verdict": "exact",
                                      "accepted": True}
    assert obj["result"]["recovery"]["certificate"] < 1e-12
    obj, res = run_json("compare", model, dataset)
    assert res.exit_code == 0 and obj["result"]["agree"] is True
    obj, res = run_json("predict", model, dataset)
    assert res.exit_code == 0 and obj["result"]["shape"] == [360, 4]
    assert obj["result"]["out"] is None
    obj, res = run_json("predict", model, dataset, "--out", tmp_path / "p.npy")
    assert obj["result"]["out"] == str(tmp_path / "p.npy")


def test_json_on_bad_input_and_usage_errors(tmp_path):
    obj, res = run_json("fit", tmp_path / "nope.npy", tmp_path / "y.npy")
    assert res.exit_code == 2 and obj["status"] == "error" and obj["result"] is None
    assert "no such file" in obj["error"]
    assert res.stderr.startswith("error: ") and "no such file" in res.stderr
    obj, res = run_json("fit", tmp_path / "x.npy", "--hidden", "three")
    assert res.exit_code == 2 and obj["status"] == "error" and "--hidden" in obj["error"]
    obj, res = run_json("predict")  # missing arguments
    assert res.exit_code == 2 and obj["command"] == "predict"


def test_json_deep_commands(tmp_path):
    pytest.importorskip("torch")
    obj, res = run_json("deep-demo", "--d", 5, "--widths", 2, "--n", 3000, "--restarts", 2,
                        "--seed", 1)
    assert res.exit_code == 0 and obj["result"]["deep_fit"]["success"] is True
    assert [s["method"] for s in obj["result"]["subspaces"]] == ["plain", "filtered"]
    data = tmp_path / "deep.npz"
    run_json("generate", data, "--d", 5, "--widths", 2, "--n", 3000)
    obj, res = run_json("fit", data, "--deep", "--widths", 2, "--restarts", 2,
                        "--time-limit", 60, "--out", tmp_path / "deep_model.npz")
    assert res.exit_code == 0 and obj["result"]["verdict"] == "within-tol"
    assert obj["result"]["recovery"] is None
    from relurecover.networks import read_metadata

    meta = read_metadata(tmp_path / "deep_model.npz")
    assert validate(meta, "model_metadata") == []
    assert meta["exact"] is False and meta["accepted"] is True and meta["kind"] == "deep"
    obj, res = run_json("compare", tmp_path / "deep_model.npz", data)
    assert res.exit_code == 0 and obj["result"]["deep"]["prediction_error"] < 1e-6


# --------------------------------------------------------------------------- progress bars


def test_progress_bar_on_a_terminal_only(dataset, tmp_path):
    tty = {"FORCE_COLOR": "1"}  # rich takes stderr for a terminal
    res = run("fit", dataset, env=tty)
    assert res.exit_code == 0
    assert "fit: " in res.stderr and "100%" in res.stderr, repr(res.stderr)
    assert "fit: " not in res.stdout  # the bar never goes to stdout
    res = run("generate", tmp_path / "g.npz", "--d", 5, "--k", 2, "--m", 2, env=tty)
    assert "generate: " in res.stderr and "100%" in res.stderr
    for flag in ("--json", "--quiet"):
        res = run("fit", dataset, flag, env=tty)
        assert res.exit_code == 0 and res.stderr == "", (flag, res.stderr)
    res = run("fit", dataset)  # stderr not a terminal: no bar
    assert res.exit_code == 0 and res.stderr == ""


# --------------------------------------------------------------------------- fit options


def test_fit_passes_tol_max_starts_time_limit(monkeypatch, dataset):
    import relurecover.cli as cli

    seen = {}
    real = cli.recover_two_layer

    def spy(X, Y, **kw):
        seen.update(kw)
        return real(X, Y, **kw)

    monkeypatch.setattr(cli, "recover_two_layer", spy)
    res = run("fit", dataset, "--tol", 1e-7, "--max-starts", 50, "--time-limit", 30)
    assert res.exit_code == 0, res.output
    assert (seen["tol"], seen["max_starts"], seen["time_limit"]) == (1e-7, 50, 30.0)
    assert seen["progress"] is None  # stderr is no terminal: no bar, no callback


def test_fit_tol_and_max_starts_change_the_verdict(tmp_path, dataset):
    # a tolerance below float64 resolution: the same exact fit is not certified
    res = run("fit", dataset, "--tol", 1e-300)
    assert res.exit_code == 1 and "NOT exact" in res.stdout
    # one rounding start on the general path cannot find 3 units
    from relurecover.instances import input_family, planted_on

    X = input_family("uniform", 400, 10, rng=0)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", planted_on(X, 3, 4, rng=1).predict(X))
    res = run("fit", tmp_path / "X.npy", tmp_path / "Y.npy", "--hidden", 3, "--method",
              "general", "--max-starts", 1)
    assert res.exit_code == 1 and "max_starts=1" in res.stdout


@pytest.mark.parametrize("args, match", [
    (("--tol", 0), "--tol must be a number in (0, 1)"),
    (("--tol", 2), "--tol must be a number in (0, 1)"),
    (("--time-limit", 0), "--time-limit must be a positive number"),
    (("--max-starts", 0), "--max-starts must be a positive integer"),
    (("--restarts", 3), "--restarts needs --deep"),
    (("--widths", "2"), "--widths needs --deep"),
    (("--deep", "--max-starts", 5), "--max-starts is for two-layer fits"),
    (("--deep", "--noisy"), "--noisy is for two-layer fits"),
    (("--deep", "--hidden", 3), "--hidden is for two-layer fits"),
    (("--method", "magic"), "--method must be auto, gaussian"),
])
def test_fit_option_errors(dataset, args, match):
    assert match in _error_line(run("fit", dataset, *args))


def test_deep_fit_passes_time_limit_and_tol(monkeypatch, tmp_path):
    pytest.importorskip("torch")
    import relurecover.deep as deep

    seen = {}

    def fake(X, Y, widths, **kw):
        seen.update(kw, widths=widths)
        raise ValueError("stopped by the test")

    monkeypatch.setattr(deep, "learn_deep", fake)
    rng = np.random.default_rng(0)
    np.save(tmp_path / "X.npy", rng.standard_normal((500, 5)))
    np.save(tmp_path / "Y.npy", rng.standard_normal((500, 1)))
    line = _error_line(run("fit", tmp_path / "X.npy", tmp_path / "Y.npy", "--deep",
                           "--widths", "3", "--tol", 0.01, "--time-limit", 7,
                           "--restarts", 5))
    assert "stopped by the test" in line
    assert (seen["success_tol"], seen["time_limit"], seen["restarts"], seen["widths"]) \
        == (0.01, 7.0, 5, [3])


# --------------------------------------------------------------------------- warnings


def test_warnings_are_one_line(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "X.npy", rng.standard_normal((200, 8)))
    np.save(tmp_path / "Y.npy", rng.standard_normal((200, 4)))
    res = run("fit", tmp_path / "X.npy", tmp_path / "Y.npy", "--hidden", 2)
    assert res.exit_code == 1
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("warning: ") for ln in lines), res.stderr
    assert any("Too few samples for this noise level" in ln for ln in lines)
    for python_format in ("Warning:", ".py:", "warn(", "return callback"):
        assert python_format not in res.stderr, res.stderr
    obj, _ = run_json("fit", tmp_path / "X.npy", tmp_path / "Y.npy", "--hidden", 2)
    assert any("Too few samples" in w for w in obj["warnings"])


# --------------------------------------------------------------------------- --out


def _must_not_fit(monkeypatch):
    import relurecover.cli as cli

    def fail(*a, **k):
        raise AssertionError("fitted before checking --out")

    monkeypatch.setattr(cli, "recover_two_layer", fail)
    monkeypatch.setattr(cli, "load_xy", fail)


@pytest.mark.parametrize("out, match", [
    ("missing/model.npz", "does not exist"),
    ("model.pt", "is written as .npz, not '.pt'"),
    ("folder", "is a folder"),
    ("file.npz/model.npz", "is not a folder"),
])
def test_fit_out_checked_before_the_work(monkeypatch, tmp_path, dataset, out, match):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.npz").write_text("x")
    _must_not_fit(monkeypatch)
    assert match in _error_line(run("fit", dataset, "--out", tmp_path / out))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_out_folder_not_writable(monkeypatch, dataset, tmp_path):
    _must_not_fit(monkeypatch)  # /proc refuses new files, even to root
    assert "cannot write in the folder /proc" in _error_line(
        run("fit", dataset, "--out", "/proc/model.npz"))
    if os.geteuid() != 0:  # a read-only folder stops everyone but root
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        assert "cannot write" in _error_line(run("fit", dataset, "--out", ro / "m.npz"))


def test_other_commands_check_their_outputs(tmp_path, dataset):
    assert "is written as .npz" in _error_line(run("generate", tmp_path / "d.csv", "--d", 3,
                                                   "--k", 1, "--m", 1))
    assert not (tmp_path / "d.csv").exists()
    assert "is written as .npy or .csv or .npz" in _error_line(
        run("predict", dataset, dataset, "--out", tmp_path / "p.txt"))
    (tmp_path / "afile").write_text("x")
    assert "is a file, not a folder" in _error_line(run("report", "--out", tmp_path / "afile"))
    assert "does not exist" in _error_line(run("report", "--out", tmp_path / "a" / "b"))


# --------------------------------------------------------------------------- saved models


def test_saved_exact_model_carries_its_certificate(dataset, tmp_path):
    from relurecover.networks import read_metadata

    res = run("fit", dataset, "--out", tmp_path / "m.npz")
    assert res.exit_code == 0 and "saved exact network" in res.stdout
    meta = read_metadata(tmp_path / "m.npz")
    assert validate(meta, "model_metadata") == []
    assert meta["exact"] is True and meta["accepted"] is True
    assert meta["certificate"] < 1e-12 and meta["method"] == "gaussian"
    assert meta["message"].startswith("exact: all 3 units certified")
    assert meta["data"] == {"X": str(dataset), "Y": None, "n": 360, "d": 12, "m": 4}


def test_uncertified_model_is_saved_as_not_certified(tmp_path):
    from relurecover.networks import read_metadata

    rng = np.random.default_rng(0)
    np.save(tmp_path / "X.npy", rng.standard_normal((200, 8)))
    np.save(tmp_path / "Y.npy", rng.standard_normal((200, 4)))
    res = run("fit", tmp_path / "X.npy", tmp_path / "Y.npy", "--hidden", 2, "--out",
              tmp_path / "m.npz")
    assert res.exit_code == 1
    assert "saved exact" not in res.output and "saved " not in res.stdout
    assert "warning: saved an estimate that is NOT certified" in res.stderr
    meta = read_metadata(tmp_path / "m.npz")
    assert validate(meta, "model_metadata") == []
    assert meta["exact"] is False and meta["accepted"] is False
    assert meta["verdict"] == "not-certified"
    # predict warns about it
    res = run("predict", tmp_path / "m.npz", tmp_path / "X.npy", "--quiet")
    assert res.exit_code == 0 and "holds an estimate that is not certified" in res.stderr


# --------------------------------------------------------------------------- exit codes


@pytest.fixture
def noisy_data(tmp_path):
    path = tmp_path / "noisy.npz"
    res = run("generate", path, "--d", 8, "--k", 3, "--m", 5, "--n", 20000, "--noise",
              0.01, "--seed", 2)
    assert res.exit_code == 0, res.output
    return path


def test_noisy_fit_exits_0_with_noisy_and_1_without(noisy_data, tmp_path):
    from relurecover.networks import read_metadata

    res = run("fit", noisy_data, "--hidden", 3)
    assert res.exit_code == 1 and "pass --noisy" in res.stdout
    obj, res = run_json("fit", noisy_data, "--hidden", 3, "--noisy", "--out",
                        tmp_path / "m.npz")
    assert res.exit_code == 0 and obj["status"] == "ok"
    assert obj["result"]["verdict"] == "noisy-estimate"
    assert obj["result"]["recovery"]["converged"] is True
    assert obj["result"]["recovery"]["estimated_error"] < 0.1
    meta = read_metadata(tmp_path / "m.npz")
    assert meta["verdict"] == "noisy-estimate" and meta["exact"] is False
    res = run("fit", noisy_data, "--hidden", 3, "--noisy", "--out", tmp_path / "m2.npz")
    assert "saved least-squares estimate" in res.stdout and "not certified" in res.stdout
    obj, res = run_json("compare", tmp_path / "m.npz", noisy_data, "--tol", 0.05)
    assert res.exit_code == 0 and obj["result"]["error"] < 0.05


def test_noisy_fit_with_too_few_samples_exits_1(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "X.npy", rng.standard_normal((200, 8)))
    np.save(tmp_path / "Y.npy", rng.standard_normal((200, 4)))
    obj, res = run_json("fit", tmp_path / "X.npy", tmp_path / "Y.npy", "--hidden", 2,
                        "--noisy")
    assert res.exit_code == 1 and obj["status"] == "not_certified"
    assert "estimated aligned error" in obj["message"]


def test_compare_disagreeing_networks_exits_1(dataset, tmp_path):
    other = tmp_path / "other.npz"
    TwoLayerNetwork.random(12, 3, 4, rng=99).save(other)
    obj, res = run_json("compare", other, dataset)
    assert res.exit_code == 1 and obj["status"] == "disagree"
    assert obj["result"]["agree"] is False and obj["result"]["error"] > 0.1
    res = run("compare", other, dataset)
    assert res.exit_code == 1 and "DISAGREE" in res.stdout
    obj, res = run_json("compare", other, dataset, "--tol", 1e3)  # a loose tolerance
    assert res.exit_code == 0 and obj["result"]["agree"] is True
    fewer = tmp_path / "fewer.npz"
    TwoLayerNetwork.random(12, 2, 4, rng=1).save(fewer)  # 2 units against 3
    assert run("compare", fewer, dataset, "--tol", 1e3).exit_code == 1


@pytest.mark.parametrize("command", ["demo", "deep-demo", "generate", "fit", "compare",
                                     "predict", "report"])
def test_help_documents_exit_codes_and_shows_flags_as_flags(command):
    res = run(command, "--help", env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "Exit codes:" in res.stdout and "2 bad input" in res.stdout
    assert "<bool>" not in res.stdout, res.stdout
    for option in ("--json", "--quiet", "--verbose"):
        assert option in res.stdout
    root = run("--help", env={"COLUMNS": "200"})
    assert "<bool>" not in root.stdout and "Exit codes" in root.stdout


def test_flags_take_no_value(tmp_path, dataset):
    X, Y = _split(dataset, "npy")
    res = run("fit", X, Y, "--noisy", "true")
    assert res.exit_code == 2 and "unexpected extra argument" in res.output.lower()
    res = run("fit", X, Y, "--noisy")
    assert res.exit_code == 0


# --------------------------------------------------------------------------- generate


@pytest.mark.parametrize("n, d, k, m", [
    (5, 10, 2, 3),     # n < d
    (100, 4, 5, 6),    # k > d
    (300, 10, 3, 4),   # accepted
    (100, 10, 4, 2),   # k > m: auto goes to the few-outputs path, accepted
])
def test_generate_refuses_what_fit_refuses(tmp_path, n, d, k, m):
    path = tmp_path / "g.npz"
    res = run("generate", path, "--n", n, "--d", d, "--k", k, "--m", m)
    rng = np.random.default_rng(0)
    try:  # the library's verdict on data of these sizes
        from relurecover.twolayer._recover import _recover_two_layer_iv

        _recover_two_layer_iv(rng.standard_normal((n, d)), rng.standard_normal((n, m)), k,
                              "auto", "relu", 1e-9, None, None, None, 16384)
        refused = False
    except ValueError:
        refused = True
    if refused:
        assert "fit would refuse this data set" in _error_line(res)
        assert not path.exists()
    else:
        assert res.exit_code == 0, res.output
        assert run("fit", path, "--hidden", k).exit_code in (0, 1)  # not refused


def test_generate_deep_refuses_too_few_samples(tmp_path):
    line = _error_line(run("generate", tmp_path / "d.npz", "--d", 50, "--widths", 2,
                           "--n", 60))
    assert "fit --deep would refuse this data set: too few samples" in line
    assert not (tmp_path / "d.npz").exists()


def test_generate_noise_and_metadata(tmp_path):
    from relurecover.networks import read_metadata

    assert run("generate", tmp_path / "a.npz", "--d", 5, "--k", 2, "--m", 2, "--n", 500,
               "--noise", 0.1).exit_code == 0
    assert run("generate", tmp_path / "b.npz", "--d", 5, "--k", 2, "--m", 2,
               "--n", 500).exit_code == 0
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    np.testing.assert_array_equal(a["X"], b["X"])  # the noise comes after X
    ratio = (a["Y"] - b["Y"]).std(axis=0) / b["Y"].std(axis=0)
    np.testing.assert_allclose(ratio, 0.1, rtol=0.2)
    meta = read_metadata(tmp_path / "a.npz")
    assert meta["noise"] == 0.1 and meta["command"] == "generate" and meta["seed"] == 0
    assert "--noise must be a number >= 0" in _error_line(
        run("generate", tmp_path / "c.npz", "--noise", -1))


# --------------------------------------------------------------------------- predict


def test_predict_outputs(dataset, tmp_path):
    with np.load(dataset) as f:
        X, truth = f["X"], TwoLayerNetwork(f["U"], f["V"])
    model = tmp_path / "model.npz"
    truth.save(model)
    res = run("predict", model, dataset)  # CSV on stdout, nothing else
    assert res.exit_code == 0 and res.stderr == ""
    np.testing.assert_allclose(np.loadtxt(res.stdout.splitlines(), delimiter=","),
                               truth.predict(X), rtol=1e-15, atol=0)
    for suffix in (".npy", ".csv", ".npz"):
        dest = tmp_path / f"p{suffix}"
        res = run("predict", model, dataset, "--out", dest)
        assert res.exit_code == 0 and str(dest) in res.stdout
        if suffix == ".npz":
            P = np.load(dest)["Y"]
        elif suffix == ".npy":
            P = np.load(dest)
        else:
            P = np.loadtxt(dest, delimiter=",")
        np.testing.assert_allclose(P, truth.predict(X), rtol=1e-15)
    obj, _ = run_json("predict", model, dataset)
    assert obj["result"]["summary"]["max"] == pytest.approx(truth.predict(X).max())
    TwoLayerNetwork.random(5, 2, 2, rng=0).save(tmp_path / "small.npz")
    assert "takes d = 5 inputs" in _error_line(run("predict", tmp_path / "small.npz",
                                                   dataset))


# --------------------------------------------------------------------------- CSV and Parquet


def _pandas_csv(path, A, names):
    """What ``pandas.DataFrame(A, columns=names).to_csv(path)`` writes."""
    lines = ["," + ",".join(names)]
    lines += [f"{i}," + ",".join(repr(float(v)) for v in row) for i, row in enumerate(A)]
    path.write_text("\n".join(lines) + "\n")


def test_csv_index_column_is_refused_then_dropped(dataset, tmp_path):
    with np.load(dataset) as f:
        X, Y = f["X"], f["Y"]
    _pandas_csv(tmp_path / "X.csv", X, [f"x{j}" for j in range(12)])
    _pandas_csv(tmp_path / "Y.csv", Y, [f"y{j}" for j in range(4)])
    line = _error_line(run("fit", tmp_path / "X.csv", tmp_path / "Y.csv"))
    assert "looks like a row index" in line and "--index-col 0" in line
    res = run("fit", tmp_path / "X.csv", tmp_path / "Y.csv", "--index-col", 0)
    assert res.exit_code == 0 and "X (360, 12)" in res.stdout
    res = run("fit", tmp_path / "X.csv", tmp_path / "Y.csv", "--index-col", "none")
    assert "row index" not in res.output and "X (360, 13)" in res.stdout
    # no header at all: an index column 0..n-1 is found by its values
    np.savetxt(tmp_path / "Xn.csv", np.column_stack([np.arange(360), X]), delimiter=",")
    np.savetxt(tmp_path / "Yn.csv", Y, delimiter=",")
    line = _error_line(run("fit", tmp_path / "Xn.csv", tmp_path / "Yn.csv"))
    assert "it holds 0, 1, ..., 359" in line
    assert "--index-col must be a column number" in _error_line(
        run("fit", tmp_path / "Xn.csv", tmp_path / "Yn.csv", "--index-col", "x"))
    assert "the table has 4 columns" in _error_line(
        run("fit", tmp_path / "Yn.csv", tmp_path / "Yn.csv", "--index-col", 7))


def test_csv_header_options(dataset):
    X, Y = _split(dataset, "csv")  # X without header, Y with one
    line = _error_line(run("fit", X, Y, "--no-header"))
    assert "--no-header, but the first line 'y0,y1,y2,y3' is not numbers" in line
    # --header skips the first line of both files: X loses a data row
    assert "X has 359 rows but Y has 360" in _error_line(run("fit", X, Y, "--header"))
    assert run("fit", X, Y).exit_code == 0  # detected: only Y has a header


@pytest.fixture
def no_pyarrow(monkeypatch):
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name == "pyarrow" or name.startswith("pyarrow."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_Block(), *sys.meta_path])


def test_parquet_without_pyarrow_says_so(no_pyarrow, tmp_path, dataset):
    (tmp_path / "X.parquet").write_bytes(b"PAR1")
    X, Y = _split(dataset, "npy")
    line = _error_line(run("fit", tmp_path / "X.parquet", Y))
    assert "reading Parquet needs pyarrow: pip install pyarrow" in line


def test_parquet_with_pyarrow(tmp_path, dataset):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    with np.load(dataset) as f:
        X, Y = f["X"], f["Y"]
    cols = {f"x{j}": X[:, j] for j in range(12)}
    # pandas stores a non-range index as a column of this name: dropped
    cols["__index_level_0__"] = np.arange(360)[::-1].copy()
    pq.write_table(pa.table(cols), tmp_path / "X.parquet")
    pq.write_table(pa.table({f"y{j}": Y[:, j] for j in range(4)}), tmp_path / "Y.parquet")
    res = run("fit", tmp_path / "X.parquet", tmp_path / "Y.parquet")
    assert res.exit_code == 0 and "X (360, 12)" in res.stdout, res.output
    pq.write_table(pa.table({"name": ["a"] * 360, **cols}), tmp_path / "bad.parquet")
    assert "are not numeric" in _error_line(run("fit", tmp_path / "bad.parquet",
                                                tmp_path / "Y.parquet"))
    (tmp_path / "g.parquet").write_text("garbage")
    assert "not a readable Parquet file" in _error_line(run("fit", tmp_path / "g.parquet",
                                                            tmp_path / "Y.parquet"))


# --------------------------------------------------------------------------- report


def test_report_writes_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    out = tmp_path / "rep"
    obj, res = run_json("report", "--results", ROOT / "bench" / "results", "--out", out)
    assert res.exit_code == 0 and obj["result"]["skipped"] == [], obj
    names = {f["name"] for f in obj["result"]["figures"]}
    assert names == {"phase_transition", "noisy_error", "speed", "weights"}
    for f in obj["result"]["figures"]:
        img = imread(f["path"])  # a valid PNG
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300
        assert img.std() > 0.01  # not blank
    assert sorted(p.name for p in out.iterdir()) == [
        "noisy_error.png", "phase_transition.png", "speed.png", "weights.png"]


def test_report_skips_missing_json_with_a_warning(tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "noisy.json").write_text("{not json")
    res = run("report", "--results", tmp_path / "results", "--out", tmp_path / "rep")
    assert res.exit_code == 0, res.output
    assert "warning: skipped phase_transition.png:" in res.stderr
    assert "exact_recovery_samples.json is missing" in res.stderr
    assert "noisy.json is not readable JSON" in res.stderr
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == ["weights.png"]


def test_report_without_matplotlib(monkeypatch, tmp_path):
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name == "matplotlib" or name.startswith("matplotlib."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_Block(), *sys.meta_path])
    line = _error_line(run("report", "--out", tmp_path / "rep"))
    assert "needs matplotlib: pip install 'relurecover[plot]'" in line
    assert not (tmp_path / "rep").exists()


# --------------------------------------------------------------------------- shared helpers


def test_shared_helpers_for_new_commands(tmp_path):
    from relurecover._cli_common import check_out_file, jsonable

    assert jsonable({"a": np.float64("inf"), "b": np.arange(2), "c": (np.int64(3),),
                     "p": tmp_path}) == {"a": None, "b": [0, 1], "c": [3],
                                         "p": str(tmp_path)}
    assert check_out_file(tmp_path / "m", (".npz",), default_suffix=".npz") == \
        tmp_path / "m.npz"
    with pytest.raises(ValueError, match="give the file one of these suffixes"):
        check_out_file(tmp_path / "m", (".npy", ".csv"))


def test_predict_into_a_closed_pipe_is_quiet(tmp_path):
    # `relurecover predict MODEL DATA | head -1`: the reader leaves early
    truth = TwoLayerNetwork.random(6, 2, 4, rng=0)
    truth.save(tmp_path / "m.npz")
    np.save(tmp_path / "X.npy", np.random.default_rng(0).standard_normal((20000, 6)))
    proc = subprocess.Popen([sys.executable, "-m", "relurecover.cli", "predict",
                             str(tmp_path / "m.npz"), str(tmp_path / "X.npy")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert len(first.split(b",")) == 4 and err == ""


# --------------------------------------------------------------------------- extract

def test_extract_state_dict_round_trip_with_truth(tmp_path):
    torch = pytest.importorskip("torch")
    net = TwoLayerNetwork.random(8, 6, 1, bias_scale=0.5, rng=11)
    model = tmp_path / "model.pt"
    torch.save(net.to_torch().state_dict(), model)
    truth = tmp_path / "truth.npz"
    net.save(truth)
    out = tmp_path / "back.pt"
    obj, res = run_json("extract", model, "--out", out, "--truth", truth, "--seed", 1)
    assert res.exit_code == 0 and obj["status"] == "ok", res.output
    r = obj["result"]
    assert r["exact"] and r["n_hidden"] == 6 and r["format"] == "state-dict"
    assert r["out"] == str(out) and r["fidelity"]["max_error"] <= 2.0**-40
    assert r["comparison"]["max_error"] <= 1e-9
    assert sum(r["queries"].values()) == r["n_queries"]
    # the file written back is a state dict of the same network
    sd = torch.load(out, weights_only=True)
    back = TwoLayerNetwork(sd["2.weight"].numpy(), sd["0.weight"].numpy(),
                           b=sd["0.bias"].numpy(), c=sd["2.bias"].numpy())
    assert compare(back, net).max_error <= 1e-9


def test_extract_human_output_and_budget(tmp_path):
    net = TwoLayerNetwork.random(6, 4, 1, bias_scale=0.5, rng=12)
    model = tmp_path / "model.npz"
    net.save(model)
    res = run("extract", model, "--seed", 0)
    assert res.exit_code == 0 and "max output error" in res.stdout and "exact" in res.stdout
    obj, res = run_json("extract", model, "--max-queries", 80)
    assert res.exit_code == 1 and obj["status"] == "not_certified"
    assert obj["result"]["n_queries"] <= 80 and not obj["result"]["exact"]


def test_extract_checks_before_the_work(tmp_path):
    net = TwoLayerNetwork.random(4, 2, 1, rng=13)
    model = tmp_path / "model.npz"
    net.save(model)
    obj, res = run_json("extract", model, "--out", tmp_path / "missing" / "x.pt")
    assert res.exit_code == 2 and "does not exist" in obj["error"]
    obj, res = run_json("extract", model, "--out", tmp_path / "x.txt")
    assert res.exit_code == 2
    obj, res = run_json("extract", model, "--max-queries", 0)
    assert res.exit_code == 2 and "--max-queries" in obj["error"]
    obj, res = run_json("extract", tmp_path / "nope.onnx")
    assert res.exit_code == 2 and obj["result"] is None


def test_python_m_runs_every_command():
    # `python -m relurecover.cli` must see the commands defined at the end of the module
    res = subprocess.run([sys.executable, "-m", "relurecover.cli", "extract", "--help"],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0 and "MODEL" in res.stdout


def test_extract_without_the_extra_its_output_needs(tmp_path):
    # torch blocked: writing a .pt (and reading one) is bad input, said before any query
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from relurecover import TwoLayerNetwork\n"
        "from relurecover.cli import app\n"
        "from typer.testing import CliRunner\n"
        f"TwoLayerNetwork.random(4, 2, 1, rng=0).save(r'{tmp_path / 'm.npz'}')\n"
        f"r = CliRunner().invoke(app, ['extract', r'{tmp_path / 'm.npz'}', '--out', "
        f"r'{tmp_path / 'x.pt'}'])\n"
        "print(r.exit_code, 'torch' in r.output)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert res.stdout.split() == ["2", "True"]
    assert not (tmp_path / "x.pt").exists()


# ------------------------------------------------ data at scale (docs/algorithms.md 8)
def _stores(dataset):
    """X of ``dataset`` as a float64 Zarr store and as a folder of 3 .npy shards."""
    zarr = pytest.importorskip("zarr")
    with np.load(dataset) as f:
        X, Y = f["X"], f["Y"]
    d = dataset.parent
    z = zarr.create_array(str(d / "X.zarr"), shape=X.shape, chunks=(100, X.shape[1]),
                          dtype="float64")
    z[:] = X
    (d / "shards").mkdir()
    for i, part in enumerate(np.array_split(X, 3)):
        np.save(d / "shards" / f"part{i}.npy", part)
    np.save(d / "Y.npy", Y)
    return d / "X.zarr", d / "shards", d / "Y.npy"


def test_fit_reads_zarr_stores_and_shard_folders(dataset):
    zx, shards, Y = _stores(dataset)
    for X in (zx, shards):
        obj, res = run_json("fit", X, Y)
        assert res.exit_code == 0, res.output
        assert obj["result"]["recovery"]["exact"] is True
        assert obj["result"]["data"]["n"] == 360


def test_fit_on_a_local_cluster(dataset):
    pytest.importorskip("dask.distributed")
    zx, _, Y = _stores(dataset)
    obj, res = run_json("fit", zx, Y, "--workers", 2)
    assert res.exit_code == 0, res.output
    assert obj["result"]["recovery"]["exact"] is True


def test_cluster_options_are_checked(dataset, tmp_path):
    X, Y = _split(dataset, "npy")
    assert "not both" in _error_line(run("fit", X, Y, "--workers", 2, "--scheduler",
                                         "tcp://127.0.0.1:1"))
    assert "--workers" in _error_line(run("fit", X, Y, "--workers", 0))
    assert "address like tcp://" in _error_line(run("fit", X, Y, "--scheduler", "nowhere"))
    assert "two-layer fits" in _error_line(run("fit", X, Y, "--deep", "--workers", 1))


def test_chunked_inputs_name_the_row_of_a_nan(dataset):
    X, Y = _split(dataset, "npy")
    A = np.load(X)
    A[200, 1] = np.nan
    np.save(X, A)
    line = _error_line(run("fit", X, Y))
    assert "NaN" in line and "row 200" in line
