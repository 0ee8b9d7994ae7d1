"""Exact two-layer recovery [BJW] (docs/algorithms.md 1): success, honesty, validation."""

import warnings

import numpy as np
import pytest

from relurecover import TwoLayerNetwork, compare, gaussian_inputs, recover_two_layer
from relurecover.exceptions import AssumptionWarning

# Contract: every test here passes for any seed; the parametrised seeds sample it.
SEEDS = range(6)

# "exact" in the acceptance sense: aligned max relative error at most 1e-9
# (float64 solves reach about 1e-13 on these well-conditioned instances).
EXACT = 1e-9


def planted(d, k, m, n, seed):
    rng = np.random.default_rng(seed)
    truth = TwoLayerNetwork.random(d, k, m, rng=rng)
    X = gaussian_inputs(n, d, rng=rng)
    return truth, X, truth.predict(X)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("d, k, m", [(10, 3, 3), (12, 4, 6), (20, 5, 5)])
def test_exact_recovery(d, k, m, seed):
    truth, X, Y = planted(d, k, m, 10 * d * k, seed)
    res = recover_two_layer(X, Y, n_hidden=k, rng=seed)
    assert res.exact, res.message
    assert res.success
    assert res.certificate <= 1e-9
    assert res.network.V.shape == (k, d) and res.network.U.shape == (m, k)
    cmp = compare(res.network, truth)
    assert cmp.n_matched == k
    assert cmp.max_error <= EXACT


@pytest.mark.parametrize("seed", SEEDS)
def test_exact_recovery_few_samples(seed):
    # n = 4 d, the sample-efficiency target of issue 3 (each unit active on ~2 d rows)
    truth, X, Y = planted(30, 5, 6, 120, seed)
    res = recover_two_layer(X, Y, n_hidden=5, rng=seed)
    assert res.exact, res.message
    assert compare(res.network, truth).max_error <= EXACT


@pytest.mark.parametrize("seed", SEEDS)
def test_n_hidden_inferred_matches_given(seed):
    truth, X, Y = planted(12, 4, 6, 500, seed)
    given = recover_two_layer(X, Y, n_hidden=4, rng=seed)
    inferred = recover_two_layer(X, Y, rng=seed)
    assert inferred.n_hidden == given.n_hidden == 4
    assert inferred.exact and given.exact
    assert compare(inferred.network, truth).max_error <= EXACT


@pytest.mark.parametrize("m", [1, 3])
def test_single_unit(m):
    truth, X, Y = planted(8, 1, m, 200, 0)
    res = recover_two_layer(X, Y[:, 0] if m == 1 else Y, rng=0)  # 1-D Y is a column
    assert res.exact, res.message
    assert res.network.U.shape == (m, 1)
    assert compare(res.network, truth).max_error <= EXACT


def test_timings_and_diagnostics():
    _, X, Y = planted(10, 3, 4, 300, 0)
    res = recover_two_layer(X, Y, rng=0)
    assert res.timings and all(t >= 0 for t in res.timings.values())
    assert {"first moment", "rounding"} <= set(res.timings)
    assert res.diagnostics["rank_Y"] == 3


# ---------------------------------------------------------------- no false certificates

def _quiet_recover(X, Y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AssumptionWarning)
        return recover_two_layer(X, Y, **kw)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_labels_not_certified(seed):
    rng = np.random.default_rng(seed)
    X = gaussian_inputs(400, 10, rng=rng)
    Y = rng.standard_normal((400, 5))
    for n_hidden in (3, None):
        res = _quiet_recover(X, Y, n_hidden=n_hidden, rng=seed, max_starts=60)
        assert not res.exact
        assert not res.success
        assert res.message.startswith("not")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("m", [6, 3])
def test_wider_network_not_certified(seed, m):
    # labels of a k+2 = 5 unit network fitted with k = 3: no exact answer exists.
    # m = 6: rank(Y) = 5 > k betrays it; m = 3: rank(Y) = 3 = k, only the
    # certificate can tell.
    truth, X, Y = planted(10, 5, m, 500, seed)
    res = _quiet_recover(X, Y, n_hidden=3, rng=seed, max_starts=60)
    assert not res.exact
    assert res.message.startswith("not")
    assert res.certificate > 1e-6


def test_rank_deficient_labels_warn():
    # rank(Y) = 2 < n_hidden = 3: an AssumptionWarning and an honest failure
    # (method="auto" sends rank(Y) < k to "few-outputs": tests/test_general.py)
    truth, X, Y = planted(10, 2, 4, 300, 0)
    with pytest.warns(AssumptionWarning, match="numerical rank 2 < k = 3"):
        res = recover_two_layer(X, Y, n_hidden=3, method="gaussian", rng=0)
    assert not res.exact and res.network is None
    assert res.certificate == np.inf


# ---------------------------------------------------------------- bad input

@pytest.fixture
def data():
    _, X, Y = planted(6, 2, 3, 60, 0)
    return X, Y


@pytest.mark.parametrize("which, bad, match", [
    ("X", np.nan, r"`X` contains 1 NaN or infinite"),
    ("X", np.inf, r"`X` contains 1 NaN or infinite"),
    ("Y", np.nan, r"`Y` contains 1 NaN or infinite"),
    ("Y", -np.inf, r"`Y` contains 1 NaN or infinite"),
])
def test_non_finite_input(data, which, bad, match):
    X, Y = (a.copy() for a in data)
    (X if which == "X" else Y)[3, 1] = bad
    with pytest.raises(ValueError, match=match):
        recover_two_layer(X, Y)


def test_mismatched_rows(data):
    X, Y = data
    with pytest.raises(ValueError, match="same number of rows.*60 and 59"):
        recover_two_layer(X, Y[:-1])


def test_one_dimensional_X(data):
    X, Y = data
    with pytest.raises(ValueError, match=r"`X` must be a 2-D array.*reshape"):
        recover_two_layer(X[:, 0], Y)


def test_three_dimensional_Y(data):
    X, Y = data
    with pytest.raises(ValueError, match=r"`Y` must be a 2-D array.*3-D"):
        recover_two_layer(X, Y[:, :, None])


def test_too_few_samples(data):
    X, Y = data
    with pytest.raises(ValueError, match=r"too few samples: `X` has n = 5 rows < d = 6"):
        recover_two_layer(X[:5], Y[:5])


def test_zero_labels(data):
    X, Y = data
    with pytest.raises(ValueError, match="identically zero"):
        recover_two_layer(X, np.zeros_like(Y))


def test_constant_labels_are_refused_clearly(data, tmp_path):
    # (they said "found 0 of 1 units (the budget of max_starts=400 starts was spent)")
    X, _ = data
    for c in (np.full((X.shape[0], 1), 3.0), np.full((X.shape[0], 3), -2.0)):
        with pytest.raises(ValueError, match=r"`Y` is constant \(every row is"):
            recover_two_layer(X, c)
    # one differing row is not constant: the run goes on (and does not claim exact)
    Yc = np.full((X.shape[0], 1), 3.0)
    Yc[5] = 3.5
    assert not recover_two_layer(X, Yc, rng=0, max_starts=5).exact
    # read in chunks (a store on disk) the same check applies
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", np.full((X.shape[0], 2), 1.5))
    with pytest.raises(ValueError, match="is constant"):
        recover_two_layer(str(tmp_path / "X.npy"), str(tmp_path / "Y.npy"), chunk_size=64)


@pytest.mark.parametrize("method", ["gaussian", "general"])
def test_n_hidden_above_m_points_to_few_outputs(data, method):
    X, Y = data  # d = 6, m = 3
    with pytest.raises(ValueError, match=r"n_hidden.*min\(6, 3\).*method='few-outputs'"):
        recover_two_layer(X, Y, n_hidden=4, method=method)


@pytest.mark.parametrize("method", ["auto", "gaussian", "general", "few-outputs"])
def test_n_hidden_above_d_is_refused(data, method):
    X, Y = data  # d = 6
    with pytest.raises(ValueError, match=r"n_hidden` = 7 > d = 6.*at most d"):
        recover_two_layer(X, Y, n_hidden=7, method=method)


@pytest.mark.parametrize("n_hidden", [0, -1, 2.5, "3", True])
def test_bad_n_hidden(data, n_hidden):
    X, Y = data
    with pytest.raises(ValueError, match="`n_hidden` must be a positive integer"):
        recover_two_layer(X, Y, n_hidden=n_hidden)


def test_unknown_method(data):
    X, Y = data
    with pytest.raises(ValueError, match=r"`method` must be one of .*'simplex'"):
        recover_two_layer(X, Y, method="simplex")


@pytest.mark.parametrize("tol", [0, -1e-9, 1, 2.0, "1e-9", None])
def test_bad_tol(data, tol):
    X, Y = data
    with pytest.raises(ValueError, match=r"`tol` must be a number in \(0, 1\)"):
        recover_two_layer(X, Y, tol=tol)


@pytest.mark.parametrize("kw, match", [
    ({"max_starts": 0}, "`max_starts` must be a positive integer"),
    ({"time_limit": -1}, "`time_limit` must be a positive number"),
    ({"work_rows": 0}, "`work_rows` must be a positive integer"),
    ({"activation": np.tanh}, "activation 'tanh' is not rectified"),
    ({"activation": "gelu"}, "unknown activation 'gelu'"),
    ({"rng": np.random.RandomState(0)}, "legacy RandomState is not supported"),
])
def test_bad_options(data, kw, match):
    X, Y = data
    with pytest.raises(ValueError, match=match):
        recover_two_layer(X, Y, **kw)


def test_non_numeric_input(data):
    X, Y = data
    with pytest.raises(ValueError, match="`X` must hold numbers"):
        recover_two_layer(X.astype(str), Y)


# ---------------------------------------------------------------- reproducibility, repr

@pytest.mark.parametrize("seed", [0, 1])
def test_same_seed_same_bits(seed):
    _, X, Y = planted(12, 4, 5, 500, seed)
    a = recover_two_layer(X, Y, rng=seed)
    b = recover_two_layer(X, Y, rng=np.random.default_rng(seed))
    np.testing.assert_array_equal(a.network.V, b.network.V)
    np.testing.assert_array_equal(a.network.U, b.network.U)
    assert a.certificate == b.certificate
    assert a.diagnostics["starts_used"] == b.diagnostics["starts_used"]


def test_repr_shows_verdict():
    _, X, Y = planted(10, 3, 4, 300, 0)
    res = recover_two_layer(X, Y, rng=0)
    text = repr(res)
    assert text.startswith("Recovery(exact, certificate=")
    assert "found 3 of 3 units" in text and "TwoLayerNetwork(d=10, k=3, m=4" in text
    bad = _quiet_recover(X, np.random.default_rng(0).standard_normal(Y.shape),
                         n_hidden=3, rng=0, max_starts=20)
    assert repr(bad).startswith("Recovery(NOT exact, certificate=")
    assert "message: not" in repr(bad)


def test_the_rounding_stops_at_its_deadline():
    # a search in progress ends within one rounding step of the caller's time_limit,
    # the reflection search included (it used to run its three rounds to the end)
    import time

    from relurecover.activations import get_activation
    from relurecover.twolayer._rounding import UnitSearch, find_by_reflection

    net = TwoLayerNetwork.random(20, 5, 6, rng=0)
    X = gaussian_inputs(2000, 20, rng=1)
    Xa = np.hstack([X, np.ones((2000, 1))])
    Y = net.predict(X)
    B = np.linalg.qr(np.hstack([np.ones((2000, 1)), Y]))[0]
    relu = get_activation("relu")
    starts = np.random.default_rng(2).standard_normal((21, 40))
    late = UnitSearch(F=Xa, B=B, X=Xa, activation=relu, n_null=17,
                      deadline=time.perf_counter() - 1.0)
    assert late.run(starts) == 0 and late.rounding_iterations == 0
    assert find_by_reflection(late, starts) == 0
    on_time = UnitSearch(F=Xa, B=B, X=Xa, activation=relu, n_null=17)
    assert on_time.run(starts) == 5  # the same search without a deadline finds them
