"""The scikit-learn estimators (relurecover.estimators): the API checks of
scikit-learn, pipelines, grid search, MLPRegressor export, fallbacks."""

import importlib.util
import inspect
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning  # noqa: E402
from sklearn.exceptions import FitFailedWarning, NotFittedError  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import relurecover  # noqa: E402
from relurecover import DeepNetwork, TwoLayerNetwork, gaussian_inputs, recover_two_layer  # noqa: E402
from relurecover.deep import learn_deep  # noqa: E402
from relurecover.estimators import (  # noqa: E402
    DeepReLURegressor,
    InexactFitWarning,
    TwoLayerReLURegressor,
)
from relurecover.exceptions import ConvergenceWarning  # noqa: E402

#: a DeepReLURegressor small enough for the ~50 API checks (about 10 s in all).
SMALL_DEEP = dict(hidden_layer_sizes=(4,), restarts=2, fit_iter=20, n_screen=1,
                  screen_iter=10, max_iter=50, polish_iter=0, lm_iter=0, rounds=1)


def _expected_failed_checks(estimator):
    """The scikit-learn checks that cannot pass, each with its reason."""
    if isinstance(estimator, DeepReLURegressor):
        return {
            "check_regressor_multioutput": (
                "fits 11 samples in 10 dimensions; learn_deep holds out a tenth of the "
                "rows and needs at least 2 d = 20 training rows, and says so in a "
                "ValueError (n_samples = 11, n_features = 10: too few samples ...)"),
        }
    return {}


def _xfail_strict():
    """Strict xfails (an expected failure that passes is an error) where
    scikit-learn (>= 1.8) offers them."""
    params = inspect.signature(parametrize_with_checks).parameters
    return {"xfail_strict": True} if "xfail_strict" in params else {}


@parametrize_with_checks([TwoLayerReLURegressor(), DeepReLURegressor(**SMALL_DEEP)],
                         expected_failed_checks=_expected_failed_checks, **_xfail_strict())
@pytest.mark.filterwarnings("ignore::relurecover.estimators.InexactFitWarning")
@pytest.mark.filterwarnings("ignore::relurecover.exceptions.AssumptionWarning")
def test_sklearn_api_checks(estimator, check):
    check(estimator)


def _planted(d=10, k=4, m=5, n=2000, *, rng=0):
    truth = TwoLayerNetwork.random(d, k, m, bias_scale=0.5, rng=rng)
    X = gaussian_inputs(n, d, rng=rng + 1)
    return truth, X, truth.predict(X)


def _rel(A, B):
    return np.linalg.norm(np.asarray(A) - np.asarray(B)) / np.linalg.norm(B)


def test_defaults_are_the_functions_defaults():
    """Every parameter shared with recover_two_layer / learn_deep has its default."""
    pairs = [(TwoLayerReLURegressor, recover_two_layer, {"rng": "random_state"}),
             (DeepReLURegressor, learn_deep, {"rng": "random_state",
                                              "widths": "hidden_layer_sizes"})]
    for cls, func, renamed in pairs:
        est = inspect.signature(cls).parameters
        fn = inspect.signature(func).parameters
        shared = [p for p in fn if p not in ("X", "Y", "y")]
        for p in shared:
            name = renamed.get(p, p)
            assert name in est, f"{cls.__name__} lacks {func.__name__}'s `{p}`"
            assert est[name].default == fn[p].default, (cls.__name__, name)
        assert set(est) == {renamed.get(p, p) for p in shared}


def test_pipeline_with_scaler_is_exact():
    """StandardScaler maps x affinely, so the scaled data come from a network with
    biases: recovered exactly, predictions on new inputs to 1e-10."""
    truth, X, Y = _planted(n=3000)
    X = 3.0 * X + 2.0  # not standard: the scaler has work to do
    Y = truth.predict(X)
    pipe = make_pipeline(StandardScaler(), TwoLayerReLURegressor(random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", InexactFitWarning)  # exact: no warning
        pipe.fit(X, Y)
    est = pipe[-1]
    assert est.exact_, est.message_
    assert est.certificate_ < 1e-12
    X_new = 3.0 * gaussian_inputs(500, 10, rng=7) + 2.0
    assert _rel(pipe.predict(X_new), truth.predict(X_new)) < 1e-10
    assert est.network_.n_hidden == 4 and est.n_layers_ == 3
    assert est.out_activation_ == "identity" and est.n_outputs_ == 5
    np.testing.assert_array_equal(est.coefs_[0], est.network_.V.T)
    np.testing.assert_array_equal(est.coefs_[1], est.network_.U.T)
    np.testing.assert_array_equal(est.intercepts_[0], est.network_.b)
    np.testing.assert_array_equal(est.intercepts_[1], est.network_.c)


@pytest.mark.filterwarnings("ignore::relurecover.estimators.InexactFitWarning")
@pytest.mark.filterwarnings("ignore::relurecover.exceptions.AssumptionWarning")
@pytest.mark.parametrize("m", [5, 7], ids=["k+2>m:refused", "k+2<=m:fallback"])
@pytest.mark.parametrize("order", [1, -1], ids=["grid-up", "grid-down"])
def test_grid_search_picks_the_true_width(m, order):
    """GridSearchCV over n_hidden in {k-2, k, k+2} with the Gaussian method picks k
    on its score, whatever the order of the grid (no tie decides it):

    - k-2 units cannot fit the labels: the noisy-label estimate scores below 1;
    - k is exact: score 1;
    - k+2 with m = k+1 < k+2 outputs is refused by the Gaussian path (it needs
      rank(U) = k <= m): a ValueError, which error_score=nan turns into a NaN score
      and a FitFailedWarning; error_score="raise" raises it;
    - k+2 <= m: Y has rank k < k+2, nothing is recovered, and the model is the
      affine fallback, which scores below 1.
    """
    k = 4
    truth, X, Y = _planted(m=m)
    grid = [k - 2, k, k + 2][::order]
    est = TwoLayerReLURegressor(method="gaussian", random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gs = GridSearchCV(est, {"n_hidden": grid}, error_score=np.nan).fit(X, Y)
    assert gs.best_params_ == {"n_hidden": k}
    score = dict(zip(gs.cv_results_["param_n_hidden"], gs.cv_results_["mean_test_score"]))
    assert score[k] > 1 - 1e-12
    assert score[k - 2] < 0.99
    failed = [w for w in caught if issubclass(w.category, FitFailedWarning)]
    if m < k + 2:
        assert np.isnan(score[k + 2])
        assert failed and "rank(U) = k" in str(failed[0].message)
        with pytest.raises(ValueError, match=r"`n_hidden` = 6 > min\(d, m\)"):
            GridSearchCV(est, {"n_hidden": grid}, error_score="raise").fit(X, Y)
    else:
        assert not failed
        assert score[k + 2] < 0.99
        assert "Fallback: the least-squares affine map" in TwoLayerReLURegressor(
            k + 2, method="gaussian", random_state=0).fit(X, Y).message_
    best = gs.best_estimator_
    assert best.exact_ and best.network_.n_hidden == k
    mlp = best.to_mlp()
    X_new = gaussian_inputs(300, 10, rng=8)
    np.testing.assert_allclose(mlp.predict(X_new), gs.predict(X_new), rtol=1e-12,
                               atol=1e-12 * np.abs(Y).max())
    assert _rel(gs.predict(X_new), truth.predict(X_new)) < 1e-10


def test_one_output_is_predicted_1d_as_mlp_does():
    truth, X, Y = _planted(d=6, k=2, m=1, n=1500, rng=3)
    for y in (Y.ravel(), Y):  # 1-d, and a column: 1-d predictions both times
        est = TwoLayerReLURegressor(method="few-outputs", random_state=0).fit(X, y)
        assert est.exact_, est.message_
        pred = est.predict(X[:7])
        assert pred.shape == (7,)
        np.testing.assert_allclose(pred, Y[:7, 0], rtol=1e-10, atol=1e-10)
        mlp = est.to_mlp()
        assert mlp.predict(X[:7]).shape == (7,)
        np.testing.assert_allclose(mlp.predict(X[:7]), pred, rtol=1e-12, atol=1e-14)
        assert est.n_outputs_ == 1


def test_inexact_recovery_warns_and_still_predicts():
    """Noisy labels: the least-squares estimate is the model, exact_ is False and an
    InexactFitWarning (a scikit-learn and a relurecover ConvergenceWarning) says why;
    as an error it is what GridSearchCV's error_score sees."""
    truth, X, Y = _planted(d=8, k=3, m=4, n=3000, rng=4)
    Y_noisy = Y + 0.05 * np.random.default_rng(0).standard_normal(Y.shape)
    est = TwoLayerReLURegressor(3, random_state=0)
    with pytest.warns(InexactFitWarning, match="TwoLayerReLURegressor: not exact") as rec:
        est.fit(X, Y_noisy)
    assert issubclass(rec[0].category, SklearnConvergenceWarning)
    assert issubclass(rec[0].category, ConvergenceWarning)
    assert not est.exact_ and est.recovery_ is not None and est.recovery_.noise_level
    assert est.message_ == est.recovery_.message
    assert est.network_ is est.recovery_.network
    assert 0 < est.certificate_ < 0.1
    assert est.score(X, Y) > 0.99  # a good model of the noiseless labels
    with warnings.catch_warnings():
        warnings.simplefilter("error", InexactFitWarning)
        with pytest.raises(InexactFitWarning):
            TwoLayerReLURegressor(3, random_state=0).fit(X, Y_noisy)


@pytest.mark.filterwarnings("ignore::relurecover.exceptions.AssumptionWarning")
def test_nothing_recovered_falls_back_to_the_affine_least_squares_map():
    """Labels no two-layer network produces (an affine trend plus noise): no unit
    is found, and the model is the affine least-squares fit, written as a ReLU
    network with 2 min(m, d) units; it predicts as LinearRegression does."""
    g = np.random.default_rng(1)
    X = 2.0 * g.uniform(size=(200, 5)) - 0.5
    for m in (1, 3, 7):  # m < d and m >= d
        Y = X @ g.standard_normal((5, m)) + 1.5 + 0.3 * g.standard_normal((200, m))
        y = Y.ravel() if m == 1 else Y
        with pytest.warns(InexactFitWarning, match="Fallback: the least-squares affine"):
            est = TwoLayerReLURegressor(random_state=0).fit(X, y)
        assert not est.exact_ and est.recovery_.network is None
        assert est.network_.n_hidden == 2 * min(m, 5)
        assert est.network_.activation.is_relu
        X_new = g.standard_normal((40, 5))
        lin = LinearRegression().fit(X, y)
        np.testing.assert_allclose(est.predict(X_new), lin.predict(X_new), rtol=1e-9,
                                   atol=1e-9)
        np.testing.assert_allclose(est.to_mlp().predict(X_new), est.predict(X_new),
                                   rtol=1e-12, atol=1e-12)
        assert est.certificate_ == pytest.approx(
            np.linalg.norm(Y - lin.predict(X).reshape(Y.shape)) / np.linalg.norm(Y),
            rel=1e-6)


def test_degenerate_data():
    g = np.random.default_rng(2)
    X = g.standard_normal((30, 4))
    # y identically zero: nothing to recover; the model is 0, said in a warning
    with pytest.warns(InexactFitWarning, match="`y` is identically zero"):
        est = TwoLayerReLURegressor().fit(X, np.zeros(30))
    assert est.recovery_ is None and not est.exact_
    np.testing.assert_array_equal(est.predict(X), np.zeros(30))
    # y constant: nothing to recover either; the model is the constant, said
    with pytest.warns(InexactFitWarning, match="`y` is constant"):
        est = TwoLayerReLURegressor().fit(X, np.full(30, 2.5))
    np.testing.assert_allclose(est.predict(X), np.full(30, 2.5), atol=1e-12)
    # X identically zero: no unit is ever active; the model is the mean of y
    y = g.standard_normal(30)
    with pytest.warns(InexactFitWarning, match="`X` is identically zero"):
        est = TwoLayerReLURegressor().fit(np.zeros((30, 4)), y)
    np.testing.assert_allclose(est.predict(X), np.full(30, y.mean()), rtol=1e-12)
    # fewer samples than features: a ValueError in scikit-learn's words
    with pytest.raises(ValueError, match="n_samples = 3, n_features = 4: too few samples"):
        TwoLayerReLURegressor().fit(X[:3], y[:3])
    # arguments recover_two_layer refuses are refused at fit, not at construction
    est = TwoLayerReLURegressor(n_hidden=9)
    with pytest.raises(ValueError, match="n_hidden"):
        est.fit(X, y)
    with pytest.raises(ValueError, match="`method` must be one of"):
        TwoLayerReLURegressor(method="magic").fit(X, y)
    with pytest.raises(NotFittedError):
        TwoLayerReLURegressor().predict(X)


def test_random_state_forms():
    """An int seed repeats the fit; a RandomState (scikit-learn's convention) and a
    Generator are accepted; a negative seed is refused with the reason."""
    truth, X, Y = _planted(d=6, k=3, m=3, n=1200, rng=5)
    a = TwoLayerReLURegressor(random_state=3).fit(X, Y)
    b = TwoLayerReLURegressor(random_state=3).fit(X, Y)
    np.testing.assert_array_equal(a.network_.V, b.network_.V)
    for rs in (np.random.RandomState(0), np.random.default_rng(0)):
        est = TwoLayerReLURegressor(random_state=rs).fit(X, Y)
        assert est.exact_
    with pytest.raises(ValueError, match="non-negative"):
        TwoLayerReLURegressor(random_state=-1).fit(X, Y)


def test_to_mlp_refuses_activations_mlp_lacks():
    truth = TwoLayerNetwork.random(6, 3, 4, activation="relu2", rng=0)
    X = gaussian_inputs(2000, 6, rng=1)
    est = TwoLayerReLURegressor(activation="relu2", random_state=0).fit(X, truth.predict(X))
    assert est.exact_, est.message_
    assert est.network_.activation.name == "relu2"
    with pytest.raises(ValueError, match="'relu2', which MLPRegressor cannot represent"):
        est.to_mlp()


def test_deep_regressor_learns_a_planted_network():
    truth = DeepNetwork.random(8, [3, 2], rng=8)
    X = gaussian_inputs(6000, 8, rng=1)
    # (4 restarts left this instance at 2e-3 with the numpy engine, the default)
    est = DeepReLURegressor((3, 2), restarts=8, rounds=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InexactFitWarning)  # a success: no warning
        est.fit(X, truth.predict(X).ravel())
    assert est.success_ and est.heldout_error_ < 1e-10
    # the truth's first layer-2 unit has all-negative weights on relu outputs: it never
    # fires, and pruning (on by default) removes the fit's copy of it when the fit
    # leaves that copy silent (to 1e-6; one machine's torch left its output weight at
    # 2e-7 of the other's, and kept it); the estimator's arrays are the pruned network
    assert np.all(truth.weights[1][0] < 0)
    assert est.deep_fit_.diagnostics["fitted_widths"] == (3, 2)
    widths = est.deep_fit_.diagnostics["pruning"]["widths_after"]
    assert widths in ([3, 1], [3, 2])
    assert est.n_layers_ == 4 and [W.shape for W in est.coefs_] == [
        (8, widths[0]), (widths[0], widths[1]), (widths[1], 1)]
    assert est.n_iter_ >= 1 and est.deep_fit_.network is est.network_
    X_new = gaussian_inputs(300, 8, rng=9)
    assert _rel(est.predict(X_new), truth.predict(X_new).ravel()) < 1e-4
    np.testing.assert_allclose(est.to_mlp().predict(X_new), est.predict(X_new),
                               rtol=1e-12, atol=1e-14)
    # an unsuccessful fit is a model too, with the reason in a warning
    with pytest.warns(InexactFitWarning, match="Not a success"):
        DeepReLURegressor(**{**SMALL_DEEP, "hidden_layer_sizes": (1,)}).fit(
            X[:2000], truth.predict(X[:2000]).ravel())


def test_deep_regressor_without_torch(no_torch):
    from relurecover.deep import MissingDependencyError

    # the default engine is numpy's there: the estimator fits
    truth = DeepNetwork.random(6, [3], rng=8)
    X = gaussian_inputs(3000, 6, rng=1)
    est = DeepReLURegressor(3, restarts=4, rounds=1, random_state=0).fit(
        X, truth.predict(X).ravel())
    assert est.success_ and est.deep_fit_.diagnostics["engine"] == "numpy"
    # asking for torch is refused at once, naming the extra
    with pytest.raises(MissingDependencyError, match=r"relurecover\[torch\]"):
        DeepReLURegressor(engine="torch").fit(gaussian_inputs(100, 3, rng=0), np.ones(100))


def test_top_level_lazy_export_and_base_install():
    """relurecover exports both estimators lazily: `import relurecover` needs none of
    scikit-learn, PyTorch, ONNX, and the names then raise an ImportError naming the
    extra."""
    assert relurecover.TwoLayerReLURegressor is TwoLayerReLURegressor
    assert relurecover.DeepReLURegressor is DeepReLURegressor
    assert "TwoLayerReLURegressor" not in relurecover.__all__  # a star import needs none
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        relurecover.nothing  # noqa: B018
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("sklearn", "torch", "onnx", "onnxruntime",
                                          "onnxscript"):
                    raise ModuleNotFoundError(f"No module named {name!r}")
        sys.meta_path.insert(0, Block())
        import relurecover, relurecover.formats, relurecover.deep
        from relurecover import *
        try:
            relurecover.TwoLayerReLURegressor
        except ImportError as exc:
            print(type(exc).__name__, exc)
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert ("MissingDependencyError relurecover.estimators needs scikit-learn >= 1.6: "
            "pip install 'relurecover[sklearn]'") in out.stdout


def test_estimators_docstrings():
    """The numpydoc rules of tests/test_docs.py, applied to relurecover.estimators."""
    pytest.importorskip("numpydoc")
    spec = importlib.util.spec_from_file_location(
        "_relurecover_test_docs", Path(__file__).with_name("test_docs.py"))
    test_docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(test_docs)
    problems = test_docs._public_problems("relurecover.estimators")
    # predict and to_mlp live on the shared private base, which that check skips
    base = relurecover.estimators._NetworkRegressor
    assert {"predict", "to_mlp"} <= set(vars(base))
    problems += test_docs._check_class("relurecover.estimators._NetworkRegressor", base)
    assert not problems, "\n".join(problems)
