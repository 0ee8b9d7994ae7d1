"""Data access in row chunks: arrays larger than memory, on disk or on a cluster.

docs/algorithms.md 8. Every statistical step of the package is a sum over
samples and the rounding step reads a few chosen rows, so no step needs ``X``
whole in memory. :class:`ChunkedArray` is the one view of the rows that the
paths read: it wraps

- a numpy array or ``numpy.memmap`` (a ``.npy`` file opened with
  ``mmap_mode="r"``), read as it is stored (float32 stays float32 on disk and is
  converted chunk by chunk);
- a Zarr array (a ``.zarr`` store on disk);
- a Dask array (its moments are Dask reductions, computed where the chunks live:
  :func:`relurecover.moments.map_reduce`);
- a folder of ``.npy`` shards with the same columns, read in name order as one
  array.

Rows come out as float64 blocks, with an exact change of units applied on the
fly (powers of two, ``twolayer._recover._Units``), so no rescaled copy is ever
made. :func:`as_chunked` validates chunk by chunk: a NaN is reported with its
row.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path

import numpy as np

from ._linalg import binary_exponent

__all__ = ["ChunkedArray", "as_chunked", "check_structure", "ordered_map", "THREADS", "open_array", "open_dask", "open_rows",
           "is_chunked_source", "sample_rows", "DEFAULT_CHUNK"]

#: rows per chunk: 2**14 rows of 1000 float64 features is 128 MiB.
DEFAULT_CHUNK = 16384
#: a numpy array with more entries than this that is not float64 is read in
#: chunks instead of copied whole (smaller ones are converted: cheaper to use).
COPY_LIMIT = 2**22


def _default_threads() -> int:
    env = os.environ.get("RELURECOVER_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    return max(1, min(4, os.cpu_count() or 1))


#: threads that read and process the chunks of data read in chunks (the read of
#: one chunk overlaps the work on another; ``RELURECOVER_THREADS`` overrides).
#: Results are combined in chunk order, so they do not depend on it.
THREADS = _default_threads()


def ordered_map(fn, items, threads: int | None = None):
    """Yield ``fn(item)`` for each item, in order, computed on up to ``threads``
    threads with at most ``threads + 1`` items in flight (bounded memory).

    Parameters
    ----------
    fn : callable
        Thread-safe (numpy releases the GIL in its kernels and Zarr in its reads).
    items : iterable
        Its arguments, e.g. row slices.
    threads : int, default=None
        None: :data:`THREADS`. 1 runs in this thread.

    Yields
    ------
    object
        ``fn(item)``, in the order of ``items``.
    """
    threads = THREADS if threads is None else threads
    if threads <= 1:
        for item in items:
            yield fn(item)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        pending = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _is_dask(a) -> bool:
    mod = type(a).__module__
    return mod.startswith("dask.") and hasattr(a, "to_delayed")


def _is_zarr(a) -> bool:
    return type(a).__module__.startswith("zarr") and hasattr(a, "shape")


def is_chunked_source(a) -> bool:
    """Whether ``a`` is read in chunks rather than converted to one float64 array.

    True for a :class:`ChunkedArray`, a path, a list of shards, a Zarr or Dask
    array, a ``numpy.memmap``, and a numpy array of another dtype than float64
    with more than ``COPY_LIMIT`` entries (a copy would double its memory).

    Parameters
    ----------
    a : object
        The data as given.

    Returns
    -------
    bool
    """
    if isinstance(a, (ChunkedArray, str, os.PathLike, list, tuple)):
        return isinstance(a, ChunkedArray) or isinstance(a, (str, os.PathLike)) or (
            len(a) > 0 and all(isinstance(s, np.ndarray) and s.ndim == 2 for s in a))
    if isinstance(a, np.memmap) or _is_dask(a) or _is_zarr(a):
        return True
    return (isinstance(a, np.ndarray) and a.dtype != np.float64
            and a.size > COPY_LIMIT and np.issubdtype(a.dtype, np.floating))


class _Shards:
    """A list of 2-D arrays with the same columns, indexed as one (row-wise)."""

    def __init__(self, parts):
        self.parts = list(parts)
        cols = {p.shape[1:] for p in self.parts}
        if len(cols) != 1:
            raise ValueError(f"shards must have the same columns, got shapes "
                             f"{[p.shape for p in self.parts]}.")
        self.offsets = np.cumsum([0] + [p.shape[0] for p in self.parts])
        self.shape = (int(self.offsets[-1]),) + self.parts[0].shape[1:]
        self.dtype = np.result_type(*[p.dtype for p in self.parts])

    def read(self, start, stop):
        out = []
        i = int(np.searchsorted(self.offsets, start, side="right")) - 1
        while start < stop and i < len(self.parts):
            lo = start - self.offsets[i]
            hi = min(stop, self.offsets[i + 1]) - self.offsets[i]
            out.append(np.asarray(self.parts[i][lo:hi]))
            start = self.offsets[i] + hi
            i += 1
        if not out:
            return np.empty((0,) + self.shape[1:], dtype=self.dtype)
        return out[0] if len(out) == 1 else np.concatenate(out)

    def take(self, idx):
        shard = np.searchsorted(self.offsets, idx, side="right") - 1
        out = np.empty((len(idx),) + self.shape[1:], dtype=self.dtype)
        for s in np.unique(shard):
            sel = shard == s
            out[sel] = self.parts[s][idx[sel] - self.offsets[s]]
        return out


def _load_npy(path: Path, name: str):
    """A ``.npy`` file as a read-only memmap, or a ValueError that says why not."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"`{name}`: {path} is not a readable .npy array ({exc})") from None


def open_array(path, *, name: str = "X"):
    """Open a data file without reading it: ``.npy`` as a read-only memmap, a
    ``.zarr`` store with Zarr, a folder of ``.npy`` shards as one array.

    Parameters
    ----------
    path : str or path-like
        ``.npy`` file, Zarr store (a folder holding ``zarr.json`` or ``.zarray``; a
        group's array is named ``path/name``), or a folder of ``.npy`` files.
    name : str, default="X"
        The argument's name, for the messages.

    Returns
    -------
    ChunkedArray
    """
    p = Path(path)
    if not p.exists():
        raise ValueError(f"`{name}`: no such file or folder: {p}")
    if p.is_file():
        if p.suffix != ".npy":
            raise ValueError(f"`{name}`: {p} is not a .npy file, a .zarr store or a folder "
                             "of .npy shards.")
        return ChunkedArray(_load_npy(p, name), name=name)
    if (p / "zarr.json").exists() or (p / ".zarray").exists() or (p / ".zgroup").exists():
        try:
            import zarr
        except ImportError:
            raise ValueError(f"`{name}`: {p} is a Zarr store and reading it needs zarr: "
                             "pip install 'relurecover[dask]'.") from None
        z = zarr.open(str(p), mode="r")
        if not hasattr(z, "shape"):
            raise ValueError(f"`{name}`: {p} is a Zarr group, not an array; give the "
                             f"array inside it (e.g. {p}/X).")
        return ChunkedArray(z, name=name)
    files = sorted(p.glob("*.npy"))
    if not files:
        raise ValueError(f"`{name}`: the folder {p} holds no .npy shards and is not a "
                         "Zarr store.")
    parts = [_load_npy(f, name) for f in files]
    return ChunkedArray(parts, name=name)


class ChunkedArray:
    """A 2-D array read in row chunks as float64 (docs/algorithms.md 8).

    Indexing with a slice, an integer array or a boolean mask of rows returns a
    float64 ``ndarray`` of those rows, with the exact change of units applied:
    ``A[rows] * 2**-exponent * row_factors[rows, None]``.

    Parameters
    ----------
    source : ndarray, memmap, zarr.Array, dask.array.Array, list of ndarray or ChunkedArray
        The stored rows (a list is a set of row shards).
    exponent : int, default=0
        Rows are divided by ``2**exponent`` as they are read.
    row_factors : ndarray of shape (n,), default=None
        Each row is multiplied by its factor as it is read (powers of two keep it
        exact).
    name : str, default="X"
        The argument's name, for messages.
    """

    def __init__(self, source, *, exponent: int = 0, row_factors=None, name: str = "X"):
        sample = None
        if isinstance(source, ChunkedArray):
            sample = source._sample
            exponent += source.exponent
            if source.row_factors is not None:
                row_factors = (source.row_factors if row_factors is None
                               else source.row_factors * row_factors)
            source = source.source
        if isinstance(source, (list, tuple)):
            source = _Shards(source)
        self.source = source
        self.exponent = int(exponent)
        self.row_factors = None if row_factors is None else np.asarray(row_factors, float)
        self.name = name
        shape = tuple(int(s) for s in source.shape)
        if len(shape) == 1:
            shape = (shape[0], 1)
        self.shape = shape
        self.stored_dtype = np.dtype(source.dtype)
        self._max_abs = None
        #: rows gathered by the validating pass: ``(sorted indices, stored values)``
        #: (shared by every view of the same source; the units apply on reading).
        self._sample = sample
        #: row norms from the validating pass, in units of ``2**_norm_exponent``.
        self._norms = None
        self._norm_exponent = 0

    # ------------------------------------------------------------------ array API
    dtype = np.dtype(np.float64)
    ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def max_abs(self) -> float:
        """The largest ``|entry|`` (after the change of units), one chunked pass
        the first time it is asked (the validating pass sets it)."""
        if self._max_abs is None:
            top = 0.0
            with np.errstate(invalid="ignore"):
                for _, C in self.blocks():
                    top = max(top, float(np.abs(C).max(initial=0.0)))
            self._max_abs = top
        return self._max_abs

    @max_abs.setter
    def max_abs(self, value: float) -> None:
        self._max_abs = float(value)

    @property
    def is_dask(self) -> bool:
        """Whether the rows live in a Dask array (moments are then Dask reductions)."""
        return _is_dask(self.source)

    @property
    def nbytes_stored(self) -> int:
        """Bytes of the stored rows."""
        return int(np.prod(self.shape)) * self.stored_dtype.itemsize

    def with_units(self, exponent: int = 0, row_factors=None) -> "ChunkedArray":
        """The same rows with a further exact change of units (no copy).

        Parameters
        ----------
        exponent : int, default=0
            Divide by ``2**exponent``.
        row_factors : ndarray of shape (n,), default=None
            Multiply each row by its factor.

        Returns
        -------
        ChunkedArray
        """
        out = ChunkedArray(self, exponent=exponent, row_factors=row_factors,
                           name=self.name)
        if row_factors is None and self._max_abs is not None:
            out._max_abs = float(np.ldexp(self._max_abs, -exponent))
        return out

    def _raw_slice(self, start, stop):
        src = self.source
        if isinstance(src, _Shards):
            a = src.read(start, stop)
        elif _is_dask(src):
            a = src[start:stop].compute()
        else:
            a = src[start:stop]
        return np.asarray(a)

    @property
    def sample_indices(self):
        """The rows the validating pass gathered (sorted), or None."""
        return None if self._sample is None else self._sample[0]

    def _from_sample(self, idx):
        """The stored rows ``idx`` (sorted) from the gathered sample, or None when
        some of them were not gathered."""
        if self._sample is None or idx.size == 0:
            return None
        rows, values = self._sample
        pos = np.searchsorted(rows, idx)
        if pos[-1] >= rows.size or not np.array_equal(rows[np.minimum(pos, rows.size - 1)],
                                                        idx):
            return None
        return values[pos]

    def row_norms(self, exponent: int):
        """Norms of the rows divided by ``2**exponent``, from the validating pass
        (None when it did not measure them)."""
        if self._norms is None:
            return None
        return np.ldexp(self._norms, self._norm_exponent - exponent)

    def _raw_take(self, idx):
        src = self.source
        order = None
        if idx.size > 1 and np.any(np.diff(idx) < 0):
            order = np.argsort(idx, kind="stable")
            idx = idx[order]
        cached = self._from_sample(idx)
        if cached is not None:
            a = cached
        elif isinstance(src, _Shards):
            a = src.take(idx)
        elif _is_dask(src):
            a = src[idx].compute()
        elif _is_zarr(src):
            a = src.get_orthogonal_selection((idx,) + (slice(None),) * (len(src.shape) - 1))
        else:
            a = src[idx]
        a = np.asarray(a)
        if order is not None:
            out = np.empty_like(a)
            out[order] = a
            a = out
        return a

    def _finish(self, a, rows):
        a = np.asarray(a, dtype=np.float64)
        if a.ndim == 1:
            a = a.reshape(-1, 1)
        if self.exponent:
            a = np.ldexp(a, -self.exponent)
        if self.row_factors is not None:
            a = a * self.row_factors[rows, None]
        return a

    def __getitem__(self, key):
        cols = None
        if isinstance(key, tuple):
            key, cols = key[0], key[1:]
        n = self.shape[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step != 1:
                idx = np.arange(start, stop, step)
                out = self._finish(self._raw_take(idx), idx)
            else:
                out = self._finish(self._raw_slice(start, stop), slice(start, stop))
        elif isinstance(key, numbers.Integral):
            i = int(key) % n
            out = self._finish(self._raw_slice(i, i + 1), slice(i, i + 1))[0]
            return out if cols is None else out[cols]
        else:
            idx = np.asarray(key)
            if idx.dtype == bool:
                if idx.shape != (n,):
                    raise IndexError(f"boolean row mask of shape {idx.shape} for {n} rows")
                idx = np.flatnonzero(idx)
            idx = idx.astype(np.intp, copy=False)
            idx = np.where(idx < 0, idx + n, idx)
            out = self._finish(self._raw_take(idx), idx)
        return out if cols is None else out[(slice(None),) + cols]

    def __array__(self, dtype=None, copy=None):
        """All rows in memory (float64): what a step that needs them whole costs."""
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        kind = type(self.source).__name__
        return (f"ChunkedArray(shape={self.shape}, stored as {self.stored_dtype} in "
                f"{kind})")

    def aligned_chunk(self, chunk_size: int) -> int:
        """``chunk_size`` rounded to whole chunks of a Zarr source (so that a stored
        chunk is decoded once per pass, not once per block that cuts it); other
        sources keep it. Stored chunks more than 4 times larger are cut.

        Parameters
        ----------
        chunk_size : int
            Rows per block asked for.

        Returns
        -------
        int
        """
        src = self.source
        if _is_zarr(src) and getattr(src, "chunks", None):
            c = int(src.chunks[0])
            if c <= 4 * chunk_size:
                return c * max(1, round(chunk_size / c))
        return chunk_size

    def blocks(self, chunk_size: int = DEFAULT_CHUNK, start: int = 0):
        """Yield ``(slice, block)`` over all rows, ``block`` a float64 ndarray.

        Parameters
        ----------
        chunk_size : int, default=DEFAULT_CHUNK
            Rows per block.
        start : int, default=0
            The first row.

        Yields
        ------
        sl : slice
        block : ndarray of shape (rows, p)
        """
        n = self.shape[0]
        for s0 in range(start, n, chunk_size):
            sl = slice(s0, min(s0 + chunk_size, n))
            yield sl, self[sl]

    def to_dask(self, row_chunks=None):
        """The rows as a float64 Dask array with the change of units applied lazily.

        Parameters
        ----------
        row_chunks : tuple of int, default=None
            Row chunking to use (None: the source's own, or ``DEFAULT_CHUNK``).

        Returns
        -------
        dask.array.Array of shape (n, p)
        """
        import dask.array as da

        src = self.source
        if _is_dask(src):
            a = src if src.ndim == 2 else src.reshape(-1, 1)
        elif _is_zarr(src):
            a = da.from_zarr(src)
        elif isinstance(src, _Shards):
            a = da.concatenate([da.from_array(p, chunks=(DEFAULT_CHUNK, -1))
                                for p in src.parts])
        else:
            a = da.from_array(src, chunks=(DEFAULT_CHUNK,) + (-1,) * (src.ndim - 1))
        if a.ndim == 1:
            a = a.reshape(-1, 1)
        a = a.rechunk({1: -1}) if row_chunks is None else a.rechunk((row_chunks, -1))
        a = a.astype(np.float64)
        if self.exponent:
            a = da.ldexp(a, -self.exponent)
        if self.row_factors is not None:
            f = da.from_array(self.row_factors, chunks=(a.chunks[0],))
            a = a * f[:, None]
        return a


def open_rows(a, name: str = "X") -> ChunkedArray:
    """``a`` as an unvalidated :class:`ChunkedArray` (a path is opened, nothing read).

    Parameters
    ----------
    a : path, list of ndarray, ndarray, memmap, zarr.Array, dask.array.Array or ChunkedArray
        The data.
    name : str, default="X"
        The argument's name, for the messages.

    Returns
    -------
    ChunkedArray
    """
    if isinstance(a, (str, os.PathLike)):
        return open_array(a, name=name)
    if isinstance(a, ChunkedArray):
        return a
    return ChunkedArray(a, name=name)


def sample_rows(A, size: int, rng, *, sort: bool = True) -> np.ndarray:
    """``size`` distinct rows of ``A`` drawn at random, from the rows its validating
    pass gathered when there are enough of them (a random subset of a random
    subset is a random subset), so reading them costs no pass over the data.

    Parameters
    ----------
    A : ndarray or ChunkedArray
        The rows.
    size : int
        How many (at most ``A.shape[0]``).
    rng : numpy.random.Generator
        The draw.
    sort : bool, default=True
        Return the indices sorted (a file is read in order).

    Returns
    -------
    ndarray of shape (size,)
        Row indices.
    """
    pool = getattr(A, "sample_indices", None)
    if pool is not None and size <= pool.size:
        idx = rng.choice(pool, size, replace=False)
    else:
        idx = rng.choice(A.shape[0], size, replace=False)
    return np.sort(idx) if sort else idx


def gather_rows(A, rows=None, *, last_column=None, block: int = 4096) -> np.ndarray:
    """``A[rows]`` as one float64 array, with ``last_column`` appended when given.

    The rows are copied into the result a block at a time, so no second ``n x d``
    array is allocated and touched (the ``[x, 1]`` rows of the rounding used to be
    a gather followed by a ``hstack``: twice the page faults of a fresh 160 MB
    array at ``d = 1000``).

    Parameters
    ----------
    A : ndarray or ChunkedArray of shape (n, d)
        The rows.
    rows : ndarray of int, default=None
        Which rows, in the order wanted (None: all).
    last_column : ndarray of shape (len(rows),), default=None
        A column to append (the bias column of the rounding).
    block : int, default=4096
        Rows copied at a time.

    Returns
    -------
    ndarray of shape (len(rows), d) or (len(rows), d + 1)
        C-ordered; without ``last_column`` and ``rows`` None, ``A`` itself when it
        is already a float64 array.
    """
    if not isinstance(A, np.ndarray) and rows is not None:
        A, rows = A[rows], None  # a store: its own gather reads each chunk once
    if last_column is None and rows is None:
        return np.asarray(A, dtype=float)
    n = A.shape[0] if rows is None else len(rows)
    d = A.shape[1]
    out = np.empty((n, d + (last_column is not None)))
    for start in range(0, n, block):
        sl = slice(start, min(n, start + block))
        out[sl, :d] = A[sl] if rows is None else A[rows[sl]]
    if last_column is not None:
        out[:, d] = last_column
    return out


def check_structure(a: ChunkedArray, name: str = "X", *, allow_1d_column: bool = False):
    """The checks that need no pass over the data: real dtype, 2-D (or 1-D read as
    a column), at least one row and one column. Raises ValueError.

    Parameters
    ----------
    a : ChunkedArray
        The opened data.
    name : str, default="X"
        The argument's name, for the messages.
    allow_1d_column : bool, default=False
        Accept a 1-D array as one column.

    Returns
    -------
    ChunkedArray
        ``a``.
    """
    dt = a.stored_dtype
    if dt == object or not (np.issubdtype(dt, np.number) or dt == bool) or \
            np.issubdtype(dt, np.complexfloating):
        raise ValueError(f"`{name}` must hold real numbers, got dtype {dt}.")
    ndim = len(a.source.shape)
    if ndim == 1 and not allow_1d_column or ndim > 2:
        raise ValueError(f"`{name}` must be a 2-D array of shape (n_samples, ...), got "
                         f"{ndim}-D array of shape {tuple(a.source.shape)}.")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"`{name}` must have at least one row and one column, got "
                         f"shape {a.shape}.")
    return a


def as_chunked(a, name: str = "X", *, allow_1d_column: bool = False,
               chunk_size: int = DEFAULT_CHUNK, sample=None,
               row_norms: bool = False) -> ChunkedArray:
    """Wrap ``a`` as a :class:`ChunkedArray` and validate it in one chunked pass.

    The same pass can gather a sample of rows (later reads of those rows cost
    nothing: :func:`sample_rows`) and measure the row norms (the row caps of
    docs/algorithms.md 0), so neither needs a pass of its own.

    Parameters
    ----------
    a : path, list of ndarray, ndarray, memmap, zarr.Array, dask.array.Array or ChunkedArray
        The data (:func:`open_array` opens a path).
    name : str, default="X"
        The argument's name, for the messages.
    allow_1d_column : bool, default=False
        Read a 1-D array as one column.
    chunk_size : int, default=DEFAULT_CHUNK
        Rows per chunk of the validating pass.
    sample : ndarray of int, default=None
        Sorted row indices to gather in the pass (kept as stored).
    row_norms : bool, default=False
        Measure the norm of every row in the pass (``ChunkedArray.row_norms``).

    Returns
    -------
    ChunkedArray
        With ``max_abs`` (the largest ``|entry|``) set by the pass.

    Raises
    ------
    ValueError
        For a wrong shape or dtype, no rows, or a NaN/infinite entry (its row named).
    """
    a = open_rows(a, name)
    a.name = name
    check_structure(a, name, allow_1d_column=allow_1d_column)
    if a.exponent or a.row_factors is not None:
        sample = None  # the sample holds stored rows: gather it on the source itself
    if a.is_dask:
        return _validate_dask(a, chunk_size, sample, row_norms)
    if sample is not None:
        sample = np.asarray(sample, dtype=np.intp)
        values = np.empty((sample.size, a.shape[1]), dtype=a.stored_dtype)
    top = 0.0
    norms = np.empty(a.shape[0]) if row_norms else None
    chunk_exp = []  # (rows, exponent) of each chunk's norms
    raw = a.exponent == 0 and a.row_factors is None
    step = a.aligned_chunk(chunk_size)
    slices = [slice(s0, min(s0 + step, a.shape[0])) for s0 in range(0, a.shape[0], step)]

    def stats(sl):
        C = a._raw_slice(sl.start, sl.stop) if raw else a[sl]
        return sl, C, _block_stats(C, row_norms)

    from ._progress import report

    for sl, C, st in ordered_map(stats, slices):
        report("validation", sl.stop / a.shape[0])
        if st is None:
            _first_bad_row(a, chunk_size, start=sl.start)
        c_top, c_norms, e = st
        top = max(top, c_top)
        if row_norms:
            norms[sl] = c_norms
            chunk_exp.append((sl, e))
        if sample is not None:
            lo, hi = np.searchsorted(sample, [sl.start, sl.stop])
            if hi > lo:  # kept in the stored dtype: exact, and no larger
                values[lo:hi] = C.reshape(C.shape[0], -1)[sample[lo:hi] - sl.start]
    a.max_abs = top
    if row_norms:
        e_top = binary_exponent(top)
        for sl, e in chunk_exp:
            norms[sl] = np.ldexp(norms[sl], e - e_top)
        a._norms = norms
        a._norm_exponent = e_top
    if sample is not None:
        a._sample = (sample, values)
    return a


def _block_stats(C, row_norms: bool):
    """One block's part of the validating pass, on the block as stored (float32
    and float64 are not converted): None when it holds a NaN or an infinity,
    else ``(largest |entry|, row norms or None, e)``, the norms in units of
    ``2**e`` (0 unless the entries are too large or too small to square)."""
    if C.dtype not in (np.float32, np.float64):
        C = np.asarray(C, dtype=np.float64)
    if C.ndim == 1:
        C = C.reshape(-1, 1)
    with np.errstate(invalid="ignore", over="ignore"):
        if not np.isfinite(C.sum()) and not np.isfinite(C).all():
            return None  # (a float32 sum can overflow on finite data: confirm)
        top = float(max(C.max(), -C.min())) if C.size else 0.0
        if not row_norms:
            return top, None, 0
        e = binary_exponent(top)
        limit = 60 if C.dtype == np.float32 else 500
        if abs(e) < limit:  # squares neither overflow nor underflow
            return top, np.sqrt(np.einsum("ij,ij->i", C, C)).astype(np.float64), 0
        Cs = np.ldexp(C.astype(np.float64), -e)
        return top, np.sqrt(np.einsum("ij,ij->i", Cs, Cs)), e


def _first_bad_row(a: ChunkedArray, chunk_size: int, start: int = 0):
    """Raise the error that names the first row with a NaN or an infinity."""
    with np.errstate(invalid="ignore", over="ignore"):
        for sl, C in a.blocks(chunk_size, start=start):
            bad = ~np.isfinite(C).all(axis=1)
            if bad.any():
                row = sl.start + int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"`{a.name}` contains NaN or infinite values, first in row {row} "
                    f"(chunk of rows {sl.start}..{sl.stop - 1}); remove or impute them.")


def _block_norms(C):
    """Row norms of a block in units of its largest entry, and that exponent."""
    C = np.asarray(C, dtype=np.float64)
    top = float(np.abs(C).max(initial=0.0))
    e = binary_exponent(top)
    Cs = np.ldexp(C, -e)
    return np.column_stack([np.sqrt(np.einsum("ij,ij->i", Cs, Cs)),
                            np.full(C.shape[0], float(e))])


def _validate_dask(a: ChunkedArray, chunk_size: int, sample, row_norms: bool):
    """The validating pass of a Dask-backed array as one Dask computation, run
    where the chunks live: finiteness, the largest entry, the row norms and the
    sample rows share one read of each chunk."""
    import dask
    import dask.array as da

    D = a.to_dask()
    parts = [da.isfinite(D).all(), da.abs(D).max()]
    if row_norms:
        parts.append(D.map_blocks(_block_norms, chunks=(D.chunks[0], (2,)),
                                  dtype=np.float64))
    if sample is not None:
        sample = np.asarray(sample, dtype=np.intp)
        parts.append(D[sample])
    with np.errstate(invalid="ignore", over="ignore"):
        out = list(dask.compute(*parts))
    if not bool(out[0]):
        _first_bad_row(a, chunk_size)
    top = float(out[1])
    a.max_abs = top
    i = 2
    if row_norms:
        nb = out[i]
        i += 1
        e_top = binary_exponent(top)
        a._norms = np.ldexp(nb[:, 0], nb[:, 1].astype(int) - e_top)
        a._norm_exponent = e_top
    if sample is not None:
        a._sample = (sample, np.asarray(out[i]).reshape(sample.size, -1).astype(
            a.stored_dtype, copy=False))
    return a


def _read_npy_rows(path, start, stop):
    """Rows ``start:stop`` of a ``.npy`` file (a Dask task: opens the file where it runs)."""
    return np.asarray(np.load(path, mmap_mode="r", allow_pickle=False)[start:stop])


def _npy_dask(path, shape, dtype, chunk_rows):
    import dask
    import dask.array as da

    n = shape[0]
    read = dask.delayed(_read_npy_rows, pure=True)
    blocks = [da.from_delayed(read(str(path), s, min(s + chunk_rows, n)),
                              shape=(min(s + chunk_rows, n) - s,) + tuple(shape[1:]),
                              dtype=dtype)
              for s in range(0, n, chunk_rows)]
    return da.concatenate(blocks) if len(blocks) > 1 else blocks[0]


def open_dask(path, *, name: str = "X", chunk_rows: int = DEFAULT_CHUNK):
    """A data file as a Dask array whose tasks read it by path, so that the
    workers of a ``dask.distributed`` cluster read their own chunks (a shared
    file system is assumed): a Zarr store with ``dask.array.from_zarr``, a ``.npy``
    file or a folder of ``.npy`` shards in blocks of ``chunk_rows`` rows.

    Parameters
    ----------
    path : str or path-like
        As for :func:`open_array`.
    name : str, default="X"
        The argument's name, for the messages.
    chunk_rows : int, default=DEFAULT_CHUNK
        Rows per task for ``.npy`` files.

    Returns
    -------
    dask.array.Array
    """
    import dask.array as da

    opened = open_array(path, name=name)  # the checks of the path and the format
    src = opened.source
    p = Path(path)
    if _is_zarr(src):
        return da.from_zarr(src)
    if isinstance(src, _Shards):
        files = sorted(p.glob("*.npy"))
        return da.concatenate([_npy_dask(f, part.shape, part.dtype, chunk_rows)
                               for f, part in zip(files, src.parts)])
    return _npy_dask(p, src.shape, src.dtype, chunk_rows)
