"""Chunked data access (docs/algorithms.md 8): memmaps, .npy paths, shards, Zarr,
Dask (in process and on a dask.distributed cluster), validation chunk by chunk,
no full copy of X."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from relurecover import TwoLayerNetwork, gaussian_inputs, recover_two_layer
from relurecover._linalg import relative_residual, streamed_relative_residual
from relurecover import data
from relurecover.data import ChunkedArray, as_chunked, is_chunked_source, open_array
from relurecover.metrics import compare
from relurecover.moments import first_moment, map_reduce

zarr = pytest.importorskip("zarr")
da = pytest.importorskip("dask.array")


@pytest.fixture(scope="module")
def planted():
    net = TwoLayerNetwork.random(10, 3, 4, rng=0)
    X = gaussian_inputs(20_000, 10, rng=1).astype(np.float32)
    Y = net.predict(X.astype(np.float64))
    return net, X, Y


@pytest.fixture(scope="module")
def reference(planted):
    net, X, Y = planted
    return recover_two_layer(X.astype(np.float64), Y, rng=0)


def _sources(X, tmp_path):
    np.save(tmp_path / "X.npy", X)
    shard_dir = tmp_path / "shards"
    shard_dir.mkdir()
    bounds = [0, 3000, 3001, 11_000, X.shape[0]]  # uneven shards, one of one row
    for i in range(4):
        np.save(shard_dir / f"part{i:02d}.npy", X[bounds[i]:bounds[i + 1]])
    z = zarr.open(str(tmp_path / "X.zarr"), mode="w", shape=X.shape,
                  chunks=(4096, X.shape[1]), dtype=X.dtype)
    z[:] = X
    return {
        "memmap": np.load(tmp_path / "X.npy", mmap_mode="r"),
        "path": str(tmp_path / "X.npy"),
        "shards": shard_dir,
        "zarr": zarr.open(str(tmp_path / "X.zarr"), mode="r"),
        "zarr-path": tmp_path / "X.zarr",
        "dask": da.from_array(X, chunks=(5000, X.shape[1])),
    }


@pytest.mark.parametrize("kind", ["memmap", "path", "shards", "zarr", "zarr-path", "dask"])
def test_indexing_matches_numpy(planted, tmp_path, kind):
    _, X, _ = planted
    A = as_chunked(_sources(X, tmp_path)[kind])
    X64 = X.astype(np.float64)
    assert A.shape == X.shape and A.stored_dtype == np.float32
    rng = np.random.default_rng(0)
    idx = rng.choice(X.shape[0], 500, replace=False)  # unsorted
    for key in (slice(0, 10), slice(2990, 3010), slice(None, None, 7), idx, -1, 5,
                np.array([-1, 0, 3000]), X[:, 0] > 1.5):
        got = A[key]
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, X64[key])
    np.testing.assert_array_equal(A[idx, 2:4], X64[idx, 2:4])
    np.testing.assert_array_equal(np.asarray(A), X64)


def test_units_are_exact_and_lazy(planted):
    _, X, _ = planted
    f = np.exp2(np.random.default_rng(0).integers(-3, 3, X.shape[0]))
    A = ChunkedArray(X).with_units(40, f)
    np.testing.assert_array_equal(A[:100], np.ldexp(X[:100].astype(float), -40) * f[:100, None])
    B = A.with_units(-40)
    np.testing.assert_array_equal(B[7:9], X[7:9].astype(float) * f[7:9, None])


def test_validation_names_the_row_of_a_nan(tmp_path):
    X = np.ones((50_000, 3), dtype=np.float32)
    X[40_001, 2] = np.nan
    np.save(tmp_path / "bad.npy", X)
    with pytest.raises(ValueError, match=r"`X` contains NaN.*row 40001"):
        as_chunked(tmp_path / "bad.npy")
    with pytest.raises(ValueError, match=r"row 40001"):
        recover_two_layer(np.load(tmp_path / "bad.npy", mmap_mode="r"), np.ones(50_000))


def test_bad_paths_and_shapes_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        open_array(tmp_path / "missing.npy")
    (tmp_path / "t.txt").write_text("1,2")
    with pytest.raises(ValueError, match="not a .npy file"):
        open_array(tmp_path / "t.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .npy shards"):
        open_array(tmp_path / "empty")
    g = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    g.create_array("X", shape=(10, 2), dtype="f8")
    with pytest.raises(ValueError, match="Zarr group"):
        open_array(tmp_path / "g.zarr")
    assert open_array(tmp_path / "g.zarr" / "X").shape == (10, 2)
    sh = tmp_path / "mixed"
    sh.mkdir()
    np.save(sh / "a.npy", np.zeros((3, 2)))
    np.save(sh / "b.npy", np.zeros((3, 4)))
    with pytest.raises(ValueError, match="same columns"):
        open_array(sh)
    with pytest.raises(ValueError, match="3-D"):
        as_chunked(np.zeros((2, 2, 2), dtype=np.float32).view(np.memmap))
    with pytest.raises(ValueError, match="at least one row"):
        as_chunked(da.zeros((0, 3), chunks=(1, 3)))


def test_which_inputs_are_read_in_chunks():
    assert is_chunked_source(np.zeros((3, 3), dtype=np.float32).view(np.memmap))
    assert not is_chunked_source(np.zeros((3, 3), dtype=np.float32))  # small: converted
    assert is_chunked_source(np.zeros((2**22 + 1, 1), dtype=np.float32))
    assert not is_chunked_source(np.zeros((2**22 + 1, 1)))  # float64: used as it is
    assert is_chunked_source(da.zeros((3, 3)))
    assert is_chunked_source("X.npy")


@pytest.mark.parametrize("kind", ["memmap", "path", "shards", "zarr", "dask"])
def test_recovery_from_every_source_is_the_in_memory_one(planted, reference, tmp_path, kind):
    net, X, Y = planted
    src = _sources(X, tmp_path)[kind]
    y = da.from_array(Y, chunks=(5000, Y.shape[1])) if kind == "dask" else Y
    res = recover_two_layer(src, y, rng=0)
    assert res.exact and reference.exact
    assert compare(res.network, net).max_error < 1e-12
    assert compare(res.network, reference.network).max_error < 1e-12
    assert res.certificate < 1e-12


def test_chunked_labels_and_rescaled_units(planted, tmp_path):
    """Data at 1e-30 on disk: rescaled lazily by a power of two, certified again
    on the data as given; labels read from a .npy path too."""
    net, X, Y = planted
    Xs = (X.astype(np.float64) * 1e-30).astype(np.float32)
    np.save(tmp_path / "Xs.npy", Xs)
    Ys = net.predict(Xs.astype(np.float64))
    np.save(tmp_path / "Ys.npy", Ys)
    res = recover_two_layer(tmp_path / "Xs.npy", tmp_path / "Ys.npy", rng=0)
    assert res.exact, res.message
    assert res.diagnostics["rescaled"]["X_exponent"] != 0
    assert relative_residual(Ys, res.network.predict(Xs.astype(float))) < 1e-12


def test_an_outlier_row_on_disk_cannot_fool_the_certificate(tmp_path):
    net = TwoLayerNetwork.random(10, 3, 5, rng=0)
    X = gaussian_inputs(2000, 10, rng=1)
    X[0] *= 1e12 / np.linalg.norm(X[0])
    np.save(tmp_path / "X.npy", X)
    Y = net.predict(X)
    res = recover_two_layer(np.load(tmp_path / "X.npy", mmap_mode="r"), Y, rng=0)
    Xf = gaussian_inputs(5000, 10, rng=2)
    if res.exact:
        assert relative_residual(net.predict(Xf), res.network.predict(Xf)) < 1e-6


def test_no_full_copy_of_a_float32_memmap(tmp_path, monkeypatch):
    """The default call on a 40 MB float32 memmap allocates well under the 80 MB
    a float64 copy would take (tracemalloc sees numpy's allocations)."""
    n, d = 200_000, 50
    net = TwoLayerNetwork.random(d, 5, 6, rng=0)
    Xm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32,
                                   shape=(n, d))
    for s in range(0, n, 50_000):
        Xm[s:s + 50_000] = gaussian_inputs(50_000, d, rng=s)
    Xm.flush()
    Y = np.empty((n, 6))
    for s in range(0, n, 50_000):
        Y[s:s + 50_000] = net.predict(np.asarray(Xm[s:s + 50_000], dtype=float))
    X = np.load(tmp_path / "X.npy", mmap_mode="r")
    monkeypatch.setattr(data, "THREADS", 2)  # chunks in flight: THREADS + 1
    recover_two_layer(X[:5000], Y[:5000], rng=0)  # lazy imports happen outside the trace
    tracemalloc.start()
    try:
        res = recover_two_layer(X, Y, rng=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert res.exact
    # measured 51 MiB (40 MiB with one thread); a float64 copy alone is 2 X.nbytes
    assert peak < 1.5 * X.nbytes, f"peak {peak / 2**20:.0f} MiB"


def test_map_reduce_in_process_and_on_dask_agree(planted):
    _, X, Y = planted
    A = ChunkedArray(da.from_array(X, chunks=(3000, X.shape[1])))
    B = ChunkedArray(X)
    M1 = first_moment(A, Y, center=True)
    M2 = first_moment(B, Y, center=True, chunk_size=777)
    np.testing.assert_allclose(M1, M2, rtol=1e-12, atol=1e-15)

    def kern(Xc, Yc):
        return np.array([Xc.shape[0]]), Yc.max(axis=0)

    n1, mx1 = map_reduce(kern, A, Y, combine=lambda a, b: (a[0] + b[0], np.maximum(a[1], b[1])))
    n2, mx2 = map_reduce(kern, B, Y, chunk_size=999,
                         combine=lambda a, b: (a[0] + b[0], np.maximum(a[1], b[1])))
    assert n1[0] == n2[0] == X.shape[0]
    np.testing.assert_array_equal(mx1, Y.max(axis=0))
    np.testing.assert_array_equal(mx2, Y.max(axis=0))


def test_streamed_certificate_is_the_in_memory_one(planted):
    net, X, Y = planted
    other = TwoLayerNetwork.random(10, 3, 4, rng=5)
    Y2 = Y.copy()
    Y2[3] *= 1e6  # a huge row: the capped residual decides
    for lab in (Y, Y2):
        want = relative_residual(lab, other.predict(X.astype(float)))
        got = streamed_relative_residual(ChunkedArray(X), lab, other.predict, chunk_size=1234)
        assert got == pytest.approx(want, rel=1e-10)


def test_distributed_local_cluster_gives_the_in_memory_weights(planted, reference):
    """The same call on Dask arrays through a dask.distributed LocalCluster with
    two worker processes: the same weights to 1e-9 as in memory."""
    distributed = pytest.importorskip("distributed")
    net, X, Y = planted
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        Xd = da.from_array(X, chunks=(4000, X.shape[1])).persist()
        Yd = da.from_array(Y, chunks=(4000, Y.shape[1])).persist()
        res = recover_two_layer(Xd, Yd, rng=0)
    assert res.exact, res.message
    assert compare(res.network, reference.network).max_error < 1e-9


def test_general_path_works_on_a_sample_and_certifies_every_row(tmp_path, monkeypatch):
    """Non-Gaussian inputs on disk: steps 1-3 on GENERAL_WORK_ROWS gathered rows,
    the certificate on all of them, and no float64 copy of X (measured: 15.5 MiB
    allocated at the peak for this 15 MiB float32 X)."""
    from relurecover.twolayer import _general

    monkeypatch.setattr(_general, "GENERAL_WORK_ROWS", 8000)
    monkeypatch.setattr(data, "THREADS", 2)
    n, d = 200_000, 20
    net = TwoLayerNetwork.random(d, 4, 5, rng=3)
    Xm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32,
                                   shape=(n, d))
    Xm[:] = np.random.default_rng(4).uniform(-1.7, 1.7, (n, d))
    Xm.flush()
    Y = net.predict(np.asarray(Xm, dtype=float))
    X = np.load(tmp_path / "X.npy", mmap_mode="r")
    recover_two_layer(X[:5000], Y[:5000], method="general", rng=0)  # imports, untraced
    tracemalloc.start()
    try:
        res = recover_two_layer(X, Y, method="general", rng=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert res.exact, res.message
    assert res.diagnostics["n_work_general"] == 8000
    assert compare(res.network, net).max_error < 1e-10
    assert peak < 1.5 * X.nbytes, f"peak {peak / 2**20:.1f} MiB"  # a float64 copy: 2 X.nbytes
    # a label changed on a row outside the sample is caught by the certificate
    Yb = Y.copy()
    Yb[n - 1] += 1.0
    bad = recover_two_layer(X, Yb, method="general", rng=0)
    assert not bad.exact


class _CountingRows:
    """An array-like that counts the rows read from it (slices and gathers)."""

    def __init__(self, a):
        self.a, self.shape, self.dtype, self.rows_read = a, a.shape, a.dtype, 0

    def __getitem__(self, key):
        out = self.a[key]
        self.rows_read += out.shape[0] if out.ndim == 2 else 1
        return out


def test_default_call_reads_the_rows_three_times(monkeypatch):
    """Validation (with the sample gathered and the row norms measured), the first
    moment, and the output layer with its certificate: three reads of X, and the
    auto checks and work rows cost none (docs/algorithms.md 8.5)."""
    n, d = 250_000, 10
    net = TwoLayerNetwork.random(d, 3, 4, rng=5)
    X = gaussian_inputs(n, d, rng=6).astype(np.float32)
    Y = net.predict(X.astype(float))
    src = _CountingRows(X)
    res = recover_two_layer(ChunkedArray(src), Y, rng=0)
    assert res.exact, res.message
    assert compare(res.network, net).max_error < 1e-10
    # plus a few thousand leading rows (the rank of H, the bias snap): 3.012 n
    assert src.rows_read <= 3.02 * n, src.rows_read / n


def test_ordered_map_keeps_order_and_raises():
    out = list(data.ordered_map(lambda i: i * i, range(50), threads=3))
    assert out == [i * i for i in range(50)]

    def boom(i):
        if i == 7:
            raise ValueError("seven")
        return i

    with pytest.raises(ValueError, match="seven"):
        list(data.ordered_map(boom, range(20), threads=2))


def test_float32_entries_near_overflow_are_finite_not_nan():
    """A float32 block whose sum overflows is still finite; its norms are measured
    in units of its largest entry (the squares would overflow in float32)."""
    A = np.full((300, 4), 3e38, dtype=np.float32)
    A[::2] *= -1
    A[5, 2] = 1.0
    C = as_chunked(A.copy(), "X", row_norms=True)
    assert C.max_abs == float(np.float32(3e38))
    norms = C.row_norms(0)
    ref = np.linalg.norm(A.astype(float), axis=1)
    assert np.allclose(norms, ref, rtol=1e-6)
    B = A.copy()
    B[123, 0] = np.inf
    with pytest.raises(ValueError, match="row 123"):
        as_chunked(B, "X")


def test_passes_over_chunked_data_report_their_progress(tmp_path):
    """A progress bar moves during each pass over data on disk, not only at its end."""
    n, d = 120_000, 8
    net = TwoLayerNetwork.random(d, 2, 3, rng=0)
    X = gaussian_inputs(n, d, rng=1)
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    Y = net.predict(np.load(tmp_path / "X.npy").astype(float))
    seen = {}
    res = recover_two_layer(tmp_path / "X.npy", Y, rng=0, chunk_size=10_000,
                            progress=lambda stage, f: seen.setdefault(stage, []).append(f))
    assert res.exact
    for stage in ("validation", "first moment", "output layer"):
        f = seen[stage]
        assert len(f) >= 5 and f == sorted(f) and f[-1] == 1.0, (stage, f)


def test_gather_rows_appends_a_column_without_a_second_copy(tmp_path):
    from relurecover.data import as_chunked, gather_rows

    rng = np.random.default_rng(0)
    X = rng.standard_normal((10_000, 7))
    rows = np.sort(rng.choice(10_000, 5000, replace=False))
    ones = rng.random(5000)
    Xa = gather_rows(X, rows, last_column=ones, block=777)
    assert Xa.flags.c_contiguous and Xa.shape == (5000, 8)
    assert np.array_equal(Xa[:, :7], X[rows]) and np.array_equal(Xa[:, 7], ones)
    assert gather_rows(X) is X  # nothing to gather or append: no copy
    assert np.array_equal(gather_rows(X.astype(np.float32), rows), X.astype(np.float32)[rows])
    np.save(tmp_path / "x.npy", X)
    C = as_chunked(str(tmp_path / "x.npy"))
    assert np.array_equal(gather_rows(C, rows, last_column=ones), Xa)
