"""Adversarial inputs for ``recover_two_layer``: the certificate must never lie.

The promise tested here: ``res.exact`` is never True on a wrong network. A
*false certificate* is ``res.exact`` True while the recovered network's relative
error on FRESH inputs from the same distribution as ``X`` (for an outlier-row
attack: fresh inputs without the outliers) is above ``FRESH_TOL``. A correct
recovery is welcome but, unless a test says so, not required; honesty is.

Bad arguments may raise only ``ValueError`` or ``TypeError``, and the message
must name the offending argument (``X``, ``Y``, ``rng``, ``chunk_size``, ...).

Sizes are small (d = 10, k = 3, m = 5, n = 2000) so that the file runs in well
under a minute on one thread.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from relurecover import Recovery, TwoLayerNetwork, compare, gaussian_inputs, recover_two_layer

D, K, M, N = 10, 3, 5, 2000
#: relative error on fresh inputs above which an exact=True result is a false certificate.
FRESH_TOL = 1e-6
#: fresh rows drawn to check a certificate.
FRESH_N = 4000
#: the default ``tol`` of recover_two_layer: an exact result has certificate <= TOL.
TOL = 1e-9
ALLOWED_ERRORS = (ValueError, TypeError)
METHODS3 = ("auto", "gaussian", "general")
METHODS4 = ("auto", "gaussian", "general", "few-outputs")
#: ``max_starts`` for the search on labels that no network fits, where the default
#: budget (400 starts on the general path) would take seconds per case; one case
#: of each family keeps the default budget (``full`` in the tests below).
SHORT_BUDGET = {"max_starts": 40}


def _budget(method, full):
    """Keyword arguments: the short search budget, except on full-budget cases."""
    return {} if full or method in ("gaussian", "few-outputs") else SHORT_BUDGET


# --------------------------------------------------------------------------- helpers


def gaussian_sampler(d, *, scale=1.0, A=None):
    """``sampler(n, rng)``: ``n`` rows of ``N(0, I_d) A * scale`` (``A`` optional, d x d)."""

    def sample(n, rng):
        Z = gaussian_inputs(n, d, rng=rng)
        if A is not None:
            Z = Z @ A
        return Z * scale

    return sample


def _labels(truth, X):
    """Labels of ``truth`` (a network, or a function of X) on ``X``."""
    with np.errstate(all="ignore"):
        return truth.predict(X) if hasattr(truth, "predict") else truth(X)


def relative_error(P, T) -> float:
    """``||P - T||_F / ||T||_F``, computed without over/underflow; NaN/inf give inf."""
    P = np.asarray(P, dtype=float)
    T = np.asarray(T, dtype=float)
    with np.errstate(all="ignore"):
        s = float(np.max(np.abs(T))) if T.size else 0.0
        if not np.isfinite(s) or s == 0.0:
            return 0.0 if np.array_equal(P, T) else np.inf
        err = np.linalg.norm(P / s - T / s) / np.linalg.norm(T / s)
    return float(err) if np.isfinite(err) else np.inf


def fresh_error(res, truth, sampler, n=FRESH_N, seed=20240) -> float:
    """Relative error of ``res.network`` against ``truth`` on fresh rows of ``sampler``."""
    if res.network is None:
        return np.inf
    Xf = sampler(n, np.random.default_rng(seed))
    with np.errstate(all="ignore"):
        P = res.network.predict(Xf)
    return relative_error(P, _labels(truth, Xf))


def _names(msg: str, names) -> bool:
    return any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", msg) for n in names)


def assert_sane(res):
    """A Recovery whose certificate is a number >= 0 or inf, never NaN."""
    assert isinstance(res, Recovery), type(res)
    cert = float(res.certificate)
    assert not np.isnan(cert), f"certificate is NaN: {res.message}"
    assert cert >= 0.0, f"negative certificate {cert}: {res.message}"
    if res.exact:
        assert cert <= TOL, f"exact=True with certificate {cert:.2e} > tol: {res.message}"
        assert res.network is not None, "exact=True without a network"


def assert_honest(res, truth, sampler):
    """No false certificate: exact=True only when the network is right on fresh inputs."""
    assert_sane(res)
    if res.exact:
        err = fresh_error(res, truth, sampler)
        assert err <= FRESH_TOL, (
            f"false certificate: exact=True (certificate {res.certificate:.2e}, "
            f"n_hidden={res.n_hidden}, method={res.method!r}) but relative error "
            f"{err:.2e} on fresh inputs. message: {res.message}"
        )


def assert_not_exact(res):
    """Labels that are no network of the requested size: never exact, certificate > 0."""
    assert_sane(res)
    assert not res.exact, (
        f"exact=True (certificate {res.certificate:.2e}, n_hidden={res.n_hidden}, "
        f"method={res.method!r}) on labels that are not such a network. {res.message}"
    )
    assert res.certificate != 0.0, (
        f"certificate 0.0 on labels that are not such a network: {res.message}"
    )


def recover_or_clean_error(X, Y, names=("X", "Y"), **kw):
    """``recover_two_layer(X, Y, **kw)``, or None after a clean error naming one of ``names``.

    Any exception other than ValueError / TypeError fails the test, and so does
    an allowed one whose message names none of ``names``.
    """
    try:
        return recover_two_layer(X, Y, **kw)
    except ALLOWED_ERRORS as exc:
        assert _names(str(exc), names), (
            f"{type(exc).__name__} does not name any of {names}: {exc}"
        )
        return None
    except Exception as exc:  # noqa: BLE001 - the point of the test
        pytest.fail(f"{type(exc).__name__} (only ValueError/TypeError allowed): {exc}")


def assert_clean_error(X, Y, names, *, errors=ALLOWED_ERRORS, **kw):
    """The call must raise one of ``errors`` whose message names one of ``names``."""
    try:
        res = recover_two_layer(X, Y, **kw)
    except errors as exc:
        assert _names(str(exc), names), (
            f"{type(exc).__name__} does not name any of {names}: {exc}"
        )
        return exc
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"{type(exc).__name__} (expected {errors}, naming {names}): {exc}")
    pytest.fail(f"no error raised; returned {res!r}")


def _problem(seed=0, *, d=D, k=K, m=M, n=N):
    truth = TwoLayerNetwork.random(d, k, m, rng=seed)
    X = gaussian_inputs(n, d, rng=1 + seed)
    return truth, X


def _sci(x: float) -> str:
    return f"{x:.0e}".replace("+", "")


# ----------------------------------------------------------------- huge input rows

HUGE_ROWS = [(1e4, 1), (1e8, 1), (1e12, 1), (1e14, 1), (1e12, 3), (1e12, 10)]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("seed", [0, 1], ids=lambda s: f"seed{s}")
@pytest.mark.parametrize("method", METHODS3)
@pytest.mark.parametrize("norm, rows", HUGE_ROWS,
                         ids=[f"norm{_sci(a)}-rows{b}" for a, b in HUGE_ROWS])
def test_huge_input_rows_no_false_certificate(norm, rows, method, seed):
    # exact labels of a network on X with a few rows rescaled to a huge norm: still
    # a network, but a residual relative to ||Y|| is dominated by those rows
    truth, X = _problem(seed)
    X[:rows] *= norm / np.linalg.norm(X[:rows], axis=1, keepdims=True)
    Y = truth.predict(X)
    res = recover_or_clean_error(X, Y, method=method, rng=seed)
    if res is not None:
        assert_honest(res, truth, gaussian_sampler(D))


# --------------------------------------------------------------- outlier label rows

# (factor, rows, full search budget)
Y_OUTLIERS = [(1e4, 1, False), (1e8, 1, False), (1e12, 1, True), (1e14, 1, False),
              (1e4, 3, False), (1e12, 3, False), (1e14, 10, False)]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("method", METHODS3)
@pytest.mark.parametrize("factor, rows, full", Y_OUTLIERS,
                         ids=[f"x{_sci(a)}-rows{b}" + ("-full-budget" if c else "")
                              for a, b, c in Y_OUTLIERS])
def test_outlier_label_rows_never_exact(factor, rows, full, method):
    truth, X = _problem(0)
    Y = truth.predict(X)
    idx = np.flatnonzero(np.abs(Y).max(axis=1) > 0.1)[:rows]  # rows some unit is active on
    assert idx.size == rows
    Y[idx] *= factor
    # the full budget on the general path only ("auto" falls back to it anyway)
    res = recover_or_clean_error(X, Y, method=method, rng=0,
                                 **_budget(method, full and method == "general"))
    if res is not None:
        assert_not_exact(res)


# ---------------------------------------------------------------------- scaled data

SCALES = [1e-300, 1e-200, 1e-160, 1e-100, 1.0, 1e100, 1e154, 1e158, 1e200, 1e300]
SCALE_MODES = ("XY", "X", "Y")


def _scaled(mode, s, seed=0):
    truth, X = _problem(seed)
    sx = s if "X" in mode else 1.0
    sy = s if "Y" in mode else 1.0
    with np.errstate(all="ignore"):
        Y = truth.predict(X) * sy
    # y(sx x) = U f(V x) sy: the network (sy U, V / sx) on the scaled inputs
    labels = lambda Z: truth.predict(Z / sx) * sy  # noqa: E731
    return X * sx, Y, labels, gaussian_sampler(D, scale=sx), sx, sy, truth


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("method", METHODS3)
@pytest.mark.parametrize("s", SCALES, ids=[f"s{_sci(s)}" for s in SCALES])
@pytest.mark.parametrize("mode", SCALE_MODES, ids=lambda m: f"scale{m}")
def test_scaled_data_no_crash_no_false_certificate(mode, s, method):
    X, Y, labels, sampler, *_ = _scaled(mode, s)
    res = recover_or_clean_error(X, Y, method=method, rng=0)
    if res is not None:
        assert_honest(res, labels, sampler)


@pytest.mark.parametrize("method", METHODS3)
@pytest.mark.parametrize("s", [1e-100, 1e100], ids=["s1e-100", "s1e100"])
@pytest.mark.parametrize("mode", SCALE_MODES, ids=lambda m: f"scale{m}")
def test_moderately_scaled_data_stays_exact(mode, s, method):
    # far from under/overflow: scaling is a change of units and recovery stays exact
    X, Y, labels, sampler, sx, sy, truth = _scaled(mode, s)
    res = recover_two_layer(X, Y, method=method, rng=0)
    assert_honest(res, labels, sampler)
    assert res.exact, res.message
    scaled_truth = TwoLayerNetwork(truth.U * sy, truth.V / sx)
    assert compare(res.network, scaled_truth).max_error < 1e-9


# ------------------------------------------------- labels near under/overflow, not ReLU


def _leaky(Z):
    return np.where(Z > 0, Z, 1e-4 * Z)


def _softplus(Z):  # beta = 100, stable
    return np.logaddexp(0.0, 100.0 * Z) / 100.0


NOT_RELU = {"leaky": _leaky, "softplus": _softplus}
LABEL_SCALES = [1e-160, 1e-153, 1.0, 1e154]
# (method, m, n_hidden)
NOT_RELU_PATHS = [("few-outputs", 1, 3), ("auto", 1, 3), ("gaussian", 5, 3),
                  ("general", 5, 3), ("auto", 5, 3)]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("method, m, n_hidden", NOT_RELU_PATHS,
                         ids=[f"{a}-m{b}-k{c}" for a, b, c in NOT_RELU_PATHS])
@pytest.mark.parametrize("s", LABEL_SCALES, ids=[f"s{_sci(s)}" for s in LABEL_SCALES])
@pytest.mark.parametrize("act", sorted(NOT_RELU))
def test_non_relu_labels_near_under_overflow_never_exact(act, s, method, m, n_hidden):
    # leaky-ReLU needs 2k ReLU units (v and -v) and softplus none at all: with
    # n_hidden = 3 no ReLU network fits; at 1e-160 a squared residual underflows
    truth, X = _problem(0, m=m)
    f = NOT_RELU[act]
    with np.errstate(all="ignore"):
        Y = f(X @ truth.V.T) @ truth.U.T * s
    full = act == "leaky" and s == 1e-160  # the underflowing case keeps the default budget
    res = recover_or_clean_error(X, Y, method=method, n_hidden=n_hidden, rng=0,
                                 **_budget(method, full))
    if res is not None:
        assert_not_exact(res)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("s", [1e-160, 1.0], ids=["s1e-160", "s1e00"])
@pytest.mark.parametrize("method, m", [("few-outputs", 1), ("auto", 1), ("auto", 5)],
                         ids=["few-outputs-m1", "auto-m1", "auto-m5"])
def test_softplus_labels_with_inferred_k_never_exact(method, m, s):
    truth, X = _problem(0, m=m)
    with np.errstate(all="ignore"):
        Y = _softplus(X @ truth.V.T) @ truth.U.T * s
    res = recover_or_clean_error(X, Y, method=method, rng=0, **_budget(method, False))
    if res is not None:
        assert_not_exact(res)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("method, m", [("few-outputs", 1), ("auto", 5)],
                         ids=["few-outputs-m1", "auto-m5"])
def test_leaky_labels_with_inferred_k_honest(method, m):
    # leaky-ReLU is exactly a 2k-unit ReLU network (units v, -v): exact is allowed
    # only if that network is what comes back
    truth, X = _problem(0, m=m)
    labels = lambda Z: _leaky(Z @ truth.V.T) @ truth.U.T * 1e-160  # noqa: E731
    res = recover_or_clean_error(X, labels(X), method=method, rng=0, **_budget(method, False))
    if res is not None:
        assert_honest(res, labels, gaussian_sampler(D))


# ------------------------------------------------------------- almost a network


def _almost(kind, m, seed=0):
    truth, X = _problem(seed, m=m)
    g = np.random.default_rng(77 + seed)
    if kind == "noise1e-8":
        Y = truth.predict(X)
        Y = Y + 1e-8 * np.sqrt(np.mean(Y**2)) * g.standard_normal(Y.shape)
    elif kind == "wider-net":  # k + 2 units, fitted with n_hidden = k
        Y = TwoLayerNetwork.random(D, K + 2, m, rng=seed + 50).predict(X)
    elif kind == "random":
        Y = g.standard_normal((N, m))
    else:  # pragma: no cover
        raise AssertionError(kind)
    return X, Y


ALMOST = [(kind, method, m) for kind in ("noise1e-8", "wider-net", "random")
          for method, m in (("auto", 5), ("gaussian", 5), ("general", 5),
                            ("few-outputs", 1), ("auto", 1))]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind, method, m", ALMOST,
                         ids=[f"{a}-{b}-m{c}" for a, b, c in ALMOST])
def test_almost_a_network_never_exact(kind, method, m):
    X, Y = _almost(kind, m)
    full = kind == "noise1e-8"
    res = recover_or_clean_error(X, Y, method=method, n_hidden=K, rng=0,
                                 **_budget(method, full))
    if res is not None:
        assert_not_exact(res)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind", ["noise1e-8", "random"])
@pytest.mark.parametrize("method", METHODS3)
def test_almost_a_network_inferred_k_never_exact(kind, method):
    # noise 1e-8 or random labels: full rank, no network with k <= m units fits
    X, Y = _almost(kind, M)
    res = recover_or_clean_error(X, Y, method=method, rng=0, **_budget(method, False))
    if res is not None:
        assert_not_exact(res)


# ------------------------------------------------- crashes that must be clear errors


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("m", [1, M], ids=lambda m: f"m{m}")
@pytest.mark.parametrize("method", METHODS4)
def test_inputs_times_1e200(method, m):
    truth, X = _problem(0, m=m)
    Y = truth.predict(X)
    res = recover_or_clean_error(X * 1e200, Y, method=method, rng=0)
    if res is not None:
        labels = lambda Z: truth.predict(Z / 1e200)  # noqa: E731
        assert_honest(res, labels, gaussian_sampler(D, scale=1e200))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("s", [1e158, 1e-165, 1e-300, 1e300], ids=lambda s: f"Yx{_sci(s)}")
@pytest.mark.parametrize("method", ["general", "few-outputs"])
def test_labels_scaled_on_general_and_few_outputs(method, s):
    m = M if method == "general" else 1
    truth, X = _problem(0, m=m)
    with np.errstate(all="ignore"):
        Y = truth.predict(X) * s
    res = recover_or_clean_error(X, Y, method=method, rng=0)
    if res is not None:
        labels = lambda Z: truth.predict(Z) * s  # noqa: E731
        assert_honest(res, labels, gaussian_sampler(D))


@pytest.mark.parametrize("method", METHODS4)
def test_all_zero_inputs(method):
    # f(0 . v) = 0: nonzero labels on all-zero inputs are no network
    Y = np.random.default_rng(0).standard_normal((N, M if method != "few-outputs" else 1))
    res = recover_or_clean_error(np.zeros((N, D)), Y, method=method, rng=0)
    if res is not None:
        assert_not_exact(res)


def test_inputs_with_no_columns():
    assert_clean_error(np.zeros((N, 0)), np.ones((N, M)), ["X"], rng=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("where", ["X", "Y"])
def test_non_finite_entry(where, bad):
    truth, X = _problem(0)
    Y = truth.predict(X)
    (X if where == "X" else Y)[17, 2] = bad
    exc = assert_clean_error(X, Y, [where], errors=ValueError, rng=0)
    other = "Y" if where == "X" else "X"
    assert f"`{other}`" not in str(exc)


@pytest.mark.parametrize("chunk_size", [0, -5, 1.5, "a", None, True],
                         ids=["0", "-5", "1.5", "str", "None", "True"])
def test_bad_chunk_size(chunk_size):
    truth, X = _problem(0)
    assert_clean_error(X, truth.predict(X), ["chunk_size"], chunk_size=chunk_size, rng=0)


@pytest.mark.parametrize("chunk_size", [1, 7, np.int64(64), 10**9],
                         ids=["1", "7", "int64", "1e9"])
def test_odd_but_valid_chunk_size(chunk_size):
    truth, X = _problem(0, d=5, k=2, m=3, n=200)
    res = recover_two_layer(X, truth.predict(X), chunk_size=chunk_size, rng=0)
    assert res.exact, res.message
    assert compare(res.network, truth).max_error < 1e-9


@pytest.mark.parametrize("rng", ["abc", 1.5, -1, [1.5], object()],
                         ids=["str", "float", "negative", "list-float", "object"])
def test_bad_rng(rng):
    truth, X = _problem(0)
    assert_clean_error(X, truth.predict(X), ["rng"], rng=rng)


def test_mismatched_rows():
    truth, X = _problem(0)
    exc = assert_clean_error(X, truth.predict(X)[:-1], ["X", "Y"], rng=0)
    assert "X" in str(exc) and "Y" in str(exc)


@pytest.mark.parametrize("n_hidden", [0, -1, 1.5, "3", True, D + 1],
                         ids=["0", "-1", "1.5", "str", "True", "d+1"])
def test_bad_n_hidden(n_hidden):
    truth, X = _problem(0)
    assert_clean_error(X, truth.predict(X), ["n_hidden"], n_hidden=n_hidden, rng=0)


@pytest.mark.parametrize("method", ["gaussian", "general"])
def test_n_hidden_above_outputs(method):
    truth, X = _problem(0, m=2)
    assert_clean_error(X, truth.predict(X), ["n_hidden"], n_hidden=3, method=method, rng=0)


BAD_OPTIONS = [
    ("tol", 0.0), ("tol", 1.0), ("tol", float("nan")), ("tol", "a"),
    ("max_starts", 0), ("max_starts", 2.5), ("time_limit", 0), ("time_limit", -1.0),
    ("time_limit", float("nan")), ("work_rows", 0), ("method", "bogus"),
    ("activation", "bogus"),
]


@pytest.mark.parametrize("name, value", BAD_OPTIONS,
                         ids=[f"{a}={b!r}" for a, b in BAD_OPTIONS])
def test_bad_options(name, value):
    truth, X = _problem(0)
    assert_clean_error(X, truth.predict(X), [name], **{name: value}, rng=0)


BAD_SHAPES = {
    "X-1d": (lambda X, Y: (X[:, 0], Y), ["X"]),
    "X-3d": (lambda X, Y: (X[:, :, None], Y), ["X"]),
    "X-strings": (lambda X, Y: (X.astype(str), Y), ["X"]),
    "X-complex": (lambda X, Y: (X + 1j, Y), ["X"]),
    "Y-3d": (lambda X, Y: (X, Y[:, :, None]), ["Y"]),
    "Y-no-columns": (lambda X, Y: (X, Y[:, :0]), ["Y"]),
    "no-rows": (lambda X, Y: (X[:0], Y[:0]), ["X", "Y"]),
    "fewer-rows-than-d": (lambda X, Y: (X[:D - 1], Y[:D - 1]), ["X", "Y"]),
    "X-None": (lambda X, Y: (None, Y), ["X"]),
}


@pytest.mark.parametrize("case", sorted(BAD_SHAPES))
def test_bad_shapes(case):
    truth, X = _problem(0)
    make, names = BAD_SHAPES[case]
    assert_clean_error(*make(X, truth.predict(X)), names, rng=0)


# ----------------------------------------------------------------- degenerate shapes


@pytest.mark.parametrize("n_hidden", [None, 1], ids=["k-inferred", "k1-given"])
@pytest.mark.parametrize("method", METHODS4)
@pytest.mark.parametrize("m", [1, 3], ids=lambda m: f"m{m}")
def test_single_unit_is_recovered(m, method, n_hidden):
    truth, X = _problem(0, k=1, m=m)
    res = recover_two_layer(X, truth.predict(X), method=method, n_hidden=n_hidden, rng=0)
    assert_honest(res, truth, gaussian_sampler(D))
    assert res.exact, res.message
    assert res.network.n_hidden == 1
    assert compare(res.network, truth).max_error < 1e-9


@pytest.mark.parametrize("n", [360, 1000, 2000])
def test_k_equals_d_equals_m(n):
    # k = d = m = 6: the default call should be exact for every seed
    truth = TwoLayerNetwork.random(6, 6, 6, rng=0)
    X = gaussian_inputs(n, 6, rng=0)
    Y = truth.predict(X)
    failed = []
    for seed in range(12):
        res = recover_two_layer(X, Y, rng=seed)
        assert_honest(res, truth, gaussian_sampler(6))
        if not (res.exact and compare(res.network, truth).max_error < 1e-9):
            failed.append(f"rng={seed}: {res.message}")
    assert not failed, f"{len(failed)} of 12 seeds not exact:\n" + "\n".join(failed)


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["v>0", "v<0"])
@pytest.mark.parametrize("method", METHODS4)
@pytest.mark.parametrize("m", [1, 3], ids=lambda m: f"m{m}")
def test_one_input_dimension(m, method, sign):
    g = np.random.default_rng(3)
    truth = TwoLayerNetwork(g.standard_normal((m, 1)), [[1.7 * sign]])
    X = gaussian_inputs(500, 1, rng=4)
    res = recover_two_layer(X, truth.predict(X), method=method, rng=0)
    assert_honest(res, truth, gaussian_sampler(1))
    assert res.exact, res.message
    assert compare(res.network, truth).max_error < 1e-9


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("method", METHODS4)
def test_one_input_dimension_two_opposite_units_honest(method):
    # y = u1 relu(x) + u2 relu(-x): two units on one input (rank(V) = 1 < k = 2)
    truth = TwoLayerNetwork([[1.0, 2.0], [0.5, -1.0], [-1.0, 0.3]], [[1.0], [-1.0]])
    X = gaussian_inputs(500, 1, rng=4)
    res = recover_or_clean_error(X, truth.predict(X), names=("X", "Y", "n_hidden"),
                                 method=method, rng=0)
    if res is not None:
        assert_honest(res, truth, gaussian_sampler(1))


def test_one_input_dimension_two_units_requested():
    X = gaussian_inputs(500, 1, rng=4)
    assert_clean_error(X, np.maximum(X, 0), ["n_hidden"], n_hidden=2, rng=0)


# ------------------------------------------------------------ rank-deficient inputs


def _rank_deficient(kind):
    if kind == "zero-column":
        A = np.eye(D)
        A[3, 3] = 0.0
        r = D - 1
    else:  # X = G A with A of rank d - 2
        g = np.random.default_rng(8)
        A = g.standard_normal((D, D - 2)) @ g.standard_normal((D - 2, D)) / np.sqrt(D - 2)
        r = D - 2
    return A, r


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("method", METHODS3)
@pytest.mark.parametrize("kind", ["zero-column", "rank-d-2"])
def test_rank_deficient_inputs_report_the_span(kind, method):
    A, r = _rank_deficient(kind)
    truth = TwoLayerNetwork.random(D, K, M, rng=0)
    X = gaussian_inputs(N, D, rng=5) @ A
    res = recover_two_layer(X, truth.predict(X), method=method, rng=0)
    assert_honest(res, truth, gaussian_sampler(D, A=A))  # fresh inputs on the same span
    rank = res.diagnostics.get("data_rank")
    assert rank is not None and rank == r, (rank, res.message)
    assert "span" in res.message, res.message


# ------------------------------------------------------------------------ timings


def _timing_case(case):
    if case == "auto-m1":
        truth, X = _problem(0, m=1)
        return X, truth.predict(X), {}
    if case == "auto-m5":
        truth, X = _problem(0)
        return X, truth.predict(X), {}
    if case == "auto-m5-fallback":  # Gaussian path stalls on near-parallel units
        from relurecover.instances import near_parallel

        truth = near_parallel(20, 4, 5, angle=0.05, rng=0)
        X = gaussian_inputs(800, 20, rng=10)
        return X, truth.predict(X), {"n_hidden": 4}
    if case == "auto-m5-noisy":
        X, Y = _almost("noise1e-8", M)
        return X, Y, {}
    if case == "general":
        from relurecover.instances import planted_instance

        truth, X = planted_instance("uniform", N, D, K, M, rng=3)
        return X, truth.predict(X), {"method": "general"}
    if case == "general-random-labels":
        X, Y = _almost("random", M)
        return X, Y, {"method": "general"}
    if case == "few-outputs-k-inferred":
        truth, X = _problem(0, m=1)
        return X, truth.predict(X), {"method": "few-outputs"}
    raise AssertionError(case)  # pragma: no cover


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("case", ["auto-m1", "auto-m5", "auto-m5-fallback", "auto-m5-noisy",
                                  "general", "general-random-labels",
                                  "few-outputs-k-inferred"])
def test_timings_account_for_the_wall_time(case):
    X, Y, kw = _timing_case(case)
    t0 = time.perf_counter()
    res = recover_two_layer(X, Y, rng=0, **kw)
    wall = time.perf_counter() - t0
    assert res.timings and all(v >= 0 for v in res.timings.values()), res.timings
    total = sum(res.timings.values())
    assert abs(total - wall) <= 0.2 * wall + 0.05, (
        f"timings sum to {total:.3f} s but the call took {wall:.3f} s "
        f"(method {res.method!r}): {res.timings}"
    )
