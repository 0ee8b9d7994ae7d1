"""Input validation shared by the public functions (one place, at the boundary)."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["as_2d_float", "as_rows", "check_random_state", "check_positive_int", "check_chunk_size"]


def as_2d_float(a, name: str, *, allow_1d_column: bool = False) -> np.ndarray:
    """Return ``a`` as a finite float64 2-D array, or raise a ``ValueError`` naming it.

    Memory maps and other array-likes are accepted; a float64 C-ordered array is
    returned without copying when possible.

    Parameters
    ----------
    a : array-like
        The data.
    name : str
        The argument's name, for the messages.
    allow_1d_column : bool, default=False
        Read a 1-D array as one column.

    Returns
    -------
    ndarray of shape (n, p)
        Finite float64 values, at least one row and one column.
    """
    if a is None:
        raise ValueError(f"`{name}` is required, got None.")
    try:
        arr = np.asarray(a)
    except Exception as exc:  # pragma: no cover - numpy's own message is clear
        raise ValueError(f"`{name}` could not be converted to an array: {exc}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == bool
    ):
        raise ValueError(f"`{name}` must hold numbers, got dtype {arr.dtype}.")
    if np.iscomplexobj(arr):
        raise ValueError(f"`{name}` must be real, got complex dtype {arr.dtype}.")
    if arr.ndim == 1 and allow_1d_column:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        hint = (
            " Reshape a single feature with `a.reshape(-1, 1)` or a single sample "
            "with `a.reshape(1, -1)`."
            if arr.ndim == 1
            else ""
        )
        raise ValueError(
            f"`{name}` must be a 2-D array of shape (n_samples, ...), got "
            f"{arr.ndim}-D array of shape {arr.shape}.{hint}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"`{name}` must have at least one row and one column, got shape {arr.shape}."
        )
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    # a sum is NaN/inf when any entry is (one fast pass); confirm entrywise
    if arr.size and not np.isfinite(arr.sum()) and not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(
            f"`{name}` contains {bad} NaN or infinite value(s); remove or impute them."
        )
    return arr


def as_rows(a, name: str, *, allow_1d_column: bool = False):
    """``a`` validated, as a :class:`relurecover.data.ChunkedArray` when it is read
    in chunks (a path, shards, a memmap, a Zarr or Dask array, a large float32
    array: :func:`relurecover.data.is_chunked_source`), else as :func:`as_2d_float`.

    Parameters
    ----------
    a : array-like, path or ChunkedArray
        The data.
    name : str
        The argument's name, for the messages.
    allow_1d_column : bool, default=False
        Read a 1-D array as one column.

    Returns
    -------
    ndarray or ChunkedArray
        Finite values, at least one row and one column.
    """
    from .data import as_chunked, is_chunked_source

    if is_chunked_source(a):
        return as_chunked(a, name, allow_1d_column=allow_1d_column)
    return as_2d_float(a, name, allow_1d_column=allow_1d_column)


def check_random_state(rng, name: str = "rng") -> np.random.Generator:
    """Turn ``rng`` (None, a non-negative int, a SeedSequence or a Generator) into a
    ``Generator``, or raise an error that names the argument.

    Parameters
    ----------
    rng : None, int, numpy.random.SeedSequence or numpy.random.Generator
        The seed or generator.
    name : str, default="rng"
        The argument's name, for the message.

    Returns
    -------
    numpy.random.Generator
        A generator (the same object when a Generator was given).
    """
    if isinstance(rng, np.random.RandomState):
        raise ValueError(
            f"`{name}` must be None, an int, or a numpy.random.Generator; legacy "
            "RandomState is not supported (use numpy.random.default_rng(seed))."
        )
    if rng is None or isinstance(rng, (np.random.Generator, np.random.SeedSequence,
                                       np.random.BitGenerator)):
        return np.random.default_rng(rng)
    if isinstance(rng, bool) or not isinstance(rng, numbers.Integral):
        raise TypeError(
            f"`{name}` must be None, a non-negative int, or a numpy.random.Generator; "
            f"got {rng!r} of type {type(rng).__name__}."
        )
    if rng < 0:
        raise ValueError(f"`{name}` must be a non-negative integer seed, got {rng!r}.")
    return np.random.default_rng(int(rng))


def child_generator(rng: np.random.Generator) -> np.random.Generator:
    """A generator independent of ``rng`` that leaves ``rng``'s own stream untouched.

    A step that only looks at the data (``method="auto"``'s checks) draws from such
    a child, so the path it picks makes the same draws as when that path is named
    directly: ``method="auto"`` and ``method="gaussian"`` give the same network for
    the same seed.

    Parameters
    ----------
    rng : numpy.random.Generator
        The parent.

    Returns
    -------
    numpy.random.Generator
        ``rng.spawn(1)[0]`` (a child of its seed sequence: reproducible, and a new
        child at each call); for a generator without a seed sequence, one seeded
        from ``rng`` (which then advances it).
    """
    try:
        return rng.spawn(1)[0]
    except (TypeError, ValueError, AttributeError):
        return np.random.default_rng(rng.integers(2**63))


def check_chunk_size(chunk_size, name: str = "chunk_size") -> int:
    """Return ``chunk_size`` as an int >= 1, or raise an error naming it.

    Parameters
    ----------
    chunk_size : int
        Rows per chunk when streaming over the data.
    name : str, default="chunk_size"
        The argument's name, for the message.

    Returns
    -------
    int
        The validated value.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral):
        raise TypeError(
            f"`{name}` must be a positive integer number of rows, got {chunk_size!r}."
        )
    if chunk_size < 1:
        raise ValueError(
            f"`{name}` must be a positive integer number of rows, got {chunk_size!r}."
        )
    return int(chunk_size)


def check_positive_int(value, name: str, *, allow_none: bool = False):
    """Return ``value`` as an int >= 1 or raise a ``ValueError`` naming it.

    Parameters
    ----------
    value : int or None
        The value to check.
    name : str
        The argument's name, for the message.
    allow_none : bool, default=False
        Whether None is accepted (and returned).

    Returns
    -------
    int or None
        The validated value.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return int(value)


def check_time_limit(value, name: str = "time_limit"):
    """Return ``value`` (None, or a positive number of seconds as a float) or raise a
    ``ValueError`` naming it; a bool is refused."""
    if value is None:
        return None
    if isinstance(value, bool) or not (isinstance(value, numbers.Real) and value > 0):
        raise ValueError(f"`{name}` must be a positive number of seconds, got {value!r}.")
    return float(value)
