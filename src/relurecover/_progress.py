"""Progress reports of long computations, to a callback the caller chose.

:func:`recover_two_layer` and :func:`learn_deep` take ``progress=None``; given a
callable they run inside :func:`reporting`, and the stages of the computation call
:func:`report` (a no-op when nobody listens), so the callback needs no parameter
threaded through every internal function. The callback is called from the
computing thread as ``progress(stage, fraction)``: ``stage`` names the stage as
the result's ``timings`` do (``"rounding"``, ``"fit"``, ...) and ``fraction`` is in
``[0, 1]``, 1 when the stage is done. An exception it raises stops the computation
and propagates to the caller.
"""

from __future__ import annotations

import contextlib
import contextvars

__all__ = ["check_progress", "report", "reporting"]

_CALLBACK: contextvars.ContextVar = contextvars.ContextVar("relurecover_progress",
                                                           default=None)


def check_progress(progress):
    """``progress`` if it is None or callable, else a TypeError that names it."""
    if progress is not None and not callable(progress):
        raise TypeError(f"`progress` must be None or a callable progress(stage, fraction), "
                        f"got {type(progress).__name__}.")
    return progress


@contextlib.contextmanager
def reporting(progress):
    """Send the :func:`report` calls made inside the block to ``progress``.

    None leaves whatever an outer block listens with in place (a nested call
    without a callback neither silences nor replaces the caller's).
    """
    if progress is None:
        yield
        return
    token = _CALLBACK.set(progress)
    try:
        yield
    finally:
        _CALLBACK.reset(token)


def report(stage: str, fraction: float) -> None:
    """Tell the listening callback, if any, that ``stage`` is ``fraction`` done."""
    callback = _CALLBACK.get()
    if callback is not None:
        callback(stage, min(max(float(fraction), 0.0), 1.0))
