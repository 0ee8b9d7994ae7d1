"""Input validation shared by the public functions (one place, at the boundary)."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["as_2d_float", "check_random_state", "check_positive_int"]


def as_2d_float(a, name: str, *, allow_1d_column: bool = False) -> np.ndarray:
    """Return ``a`` as a finite float64 2-D array, or raise a ``ValueError`` naming it.

    Memory maps and other array-likes are accepted; a float64 C-ordered array is
    returned without copying when possible.
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
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    # a sum is NaN/inf when any entry is (one fast pass); confirm entrywise
    if arr.size and not np.isfinite(arr.sum()) and not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(
            f"`{name}` contains {bad} NaN or infinite value(s); remove or impute them."
        )
    return arr


def check_random_state(rng) -> np.random.Generator:
    """Turn ``rng`` (None, int, SeedSequence or Generator) into a ``Generator``."""
    if isinstance(rng, np.random.RandomState):
        raise ValueError(
            "`rng` must be None, an int, or a numpy.random.Generator; legacy "
            "RandomState is not supported (use numpy.random.default_rng(seed))."
        )
    return np.random.default_rng(rng)


def check_positive_int(value, name: str, *, allow_none: bool = False):
    """Return ``value`` as an int >= 1 or raise a ``ValueError`` naming it."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return int(value)
