"""What every command of the command line shares: output modes, JSON, exit codes, ``--out``.

A command of :mod:`relurecover.cli` is a plain function registered with
``@app.command(epilog=epilog(...))``. It takes the three output options::

    as_json: bool = json_option(), quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),

opens ``out = Output("name", as_json=as_json, quiet=quiet, verbose=verbose)`` first,
checks every argument and every ``--out`` (:func:`check_out_file`,
:func:`check_out_dir`) before any work, prints through ``out`` (``out.info``,
``out.print``, ``out.detail``, ``out.warn``, ``with out.progress(...)``) and ends
with ``out.finish(code, message, result)``: under ``--json`` that prints the one
JSON object of ``docs/cli.md`` (schema version :data:`SCHEMA_VERSION`), and it
exits with ``code``. A ``ValueError`` or ``OSError`` raised anywhere becomes the
one line ``error: ...`` on stderr (and, under ``--json``, an object with status
``"error"`` on stdout) and exit code :data:`EXIT_BAD_INPUT`; a Python warning
becomes one line ``warning: ...`` on stderr (:class:`CliGroup` does both).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import os
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from typer.core import TyperGroup

try:  # typer >= 0.20 ships its own copy of click
    from typer._click import exceptions as _click_exceptions
except ImportError:  # pragma: no cover - older typer depends on click
    from click import exceptions as _click_exceptions

__all__ = [
    "SCHEMA_VERSION", "EXIT_OK", "EXIT_NOT_CERTIFIED", "EXIT_BAD_INPUT", "USER_ERRORS",
    "CliGroup", "Output", "json_option", "quiet_option", "verbose_option", "epilog",
    "check_out_file", "check_out_dir", "jsonable", "network_summary", "one_line",
]

#: the version of the JSON objects that ``--json`` prints (docs/cli.md); raised
#: whenever a field is removed or changes meaning (adding a field does not).
SCHEMA_VERSION = 1

#: done, and the answer is certified (``compare``: the networks agree within --tol).
EXIT_OK = 0
#: done, but the answer is not certified (``compare``: the networks disagree).
EXIT_NOT_CERTIFIED = 1
#: bad input: a file, a shape, an option; nothing was computed or written.
EXIT_BAD_INPUT = 2

#: the ``status`` field of the JSON object for each exit code (``compare`` says
#: ``"disagree"`` for 1).
STATUS = {EXIT_OK: "ok", EXIT_NOT_CERTIFIED: "not_certified", EXIT_BAD_INPUT: "error"}

#: what a user's mistake raises (missing or unreadable file, bad shape, NaN ...).
USER_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile)


def one_line(text) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(str(text).split())


def epilog(zero: str, one: str | None) -> str:
    """The "Exit codes" paragraph of a command's ``--help`` (markdown)."""
    parts = [f"**Exit codes:** 0 {zero}"]
    if one:
        parts.append(f"1 {one}")
    parts.append("2 bad input (one line `error: ...` on stderr, nothing written). "
                 "`--json` prints one JSON object on stdout (schema: docs/cli.md).")
    return "; ".join(parts)


# --------------------------------------------------------------------------- options

def json_option():
    """The ``--json`` option of every command."""
    return typer.Option(False, "--json", help="Print one JSON object on stdout and nothing "
                        "else (schema: docs/cli.md); no progress bar.")


def quiet_option():
    """The ``--quiet`` option of every command."""
    return typer.Option(False, "--quiet", "-q", help="Print nothing on stdout but what "
                        "the command produces (errors and warnings still go to stderr); "
                        "no progress bar. The exit code tells the verdict.")


def verbose_option():
    """The ``--verbose`` option of every command."""
    return typer.Option(False, "--verbose", "-v", help="Print more: the diagnostics of "
                        "the result, every unit, the timings.")


# --------------------------------------------------------------------------- one run

@dataclass
class _Run:
    """What one invocation has said so far (for the error path)."""

    command: str = ""
    as_json: bool = False
    warnings: list = field(default_factory=list)


_RUN: contextvars.ContextVar = contextvars.ContextVar("relurecover_cli_run", default=None)


def _current_run() -> _Run:
    run = _RUN.get()
    if run is None:  # a command called outside CliGroup (e.g. directly from Python)
        run = _Run()
        _RUN.set(run)
    return run


def _emit_warning(text: str) -> None:
    text = one_line(text)
    run = _current_run()
    if text in run.warnings:
        return  # the same warning twice in one run is said once
    run.warnings.append(text)
    typer.echo(f"warning: {text}", err=True)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """``warnings.showwarning`` of the command line: one line, no source path."""
    _emit_warning(str(message))


def _envelope(run: _Run, code: int, message: str, result, *, status: str | None = None,
              error: str | None = None) -> dict:
    return {"schema_version": SCHEMA_VERSION, "command": run.command or None,
            "status": status or STATUS[code], "exit_code": code,
            "message": one_line(message), "warnings": list(run.warnings),
            "error": error, "result": result}


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(jsonable(obj), allow_nan=False) + "\n")
    sys.stdout.flush()


def _hide_flag_metavars(command, ctx) -> None:
    """Flags take no value: no ``<bool>`` after them in ``--help`` (typer shows one)."""
    params = list(getattr(command, "params", []))
    helper = command.get_help_option(ctx) if hasattr(command, "get_help_option") else None
    for param in params + ([helper] if helper is not None else []):
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no file descriptor (tests)
        pass


class CliGroup(TyperGroup):
    """The group of commands: one line per error or warning, JSON errors, flag metavars.

    A ``ValueError`` or ``OSError`` (any of :data:`USER_ERRORS`) becomes ``error:
    ...`` on stderr and exit code 2 (under ``--json`` also an object with status
    ``"error"`` on stdout, as for a usage error); a warning becomes ``warning:
    ...`` on stderr, never Python's format with a source line.
    """

    def get_command(self, ctx, cmd_name):
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _hide_flag_metavars(command, ctx)
        return command

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params

    def invoke(self, ctx):
        args = [*getattr(ctx, "_protected_args", getattr(ctx, "protected_args", [])),
                *ctx.args]
        before = args[:args.index("--")] if "--" in args else args
        name = args[0] if args and not args[0].startswith("-") else ""
        run = _Run(command=name, as_json="--json" in before)
        token = _RUN.set(run)
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except BrokenPipeError:  # the reader went away (``predict ... | head``): done
            _silence_stdout()
            raise typer.Exit(code=EXIT_OK) from None
        except USER_ERRORS as exc:
            self._fail(run, one_line(exc) or type(exc).__name__)
        except _click_exceptions.UsageError as exc:
            if not run.as_json:
                raise
            self._fail(run, one_line(exc.format_message()))
        finally:
            _RUN.reset(token)

    @staticmethod
    def _fail(run: _Run, text: str):
        typer.echo(f"error: {text}", err=True)
        if run.as_json:
            _print_json(_envelope(run, EXIT_BAD_INPUT, text, None, error=text))
        raise typer.Exit(code=EXIT_BAD_INPUT) from None


# --------------------------------------------------------------------------- output

class Output:
    """How one command speaks: human tables, ``--quiet``, ``--verbose`` or ``--json``.

    Human text goes to stdout, warnings and errors to stderr, the progress bar to
    stderr (only when stderr is a terminal, and never under ``--json`` or
    ``--quiet``). Under ``--json`` nothing but the object of :meth:`finish`
    reaches stdout.
    """

    def __init__(self, command: str, *, as_json: bool = False, quiet: bool = False,
                 verbose: bool = False):
        if quiet and verbose:
            raise ValueError("--quiet and --verbose exclude each other; pick one.")
        self.command = command
        self.as_json = bool(as_json)
        self.quiet = bool(quiet)
        self.verbose = bool(verbose)
        self._run = _current_run()
        self._run.command = command
        self._run.as_json = self._run.as_json or self.as_json
        self._stdout = None
        self._stderr = None

    @property
    def human(self) -> bool:
        """Whether tables and notes are printed (neither ``--json`` nor ``--quiet``)."""
        return not (self.as_json or self.quiet)

    @property
    def console(self) -> Console:
        """The rich console on stdout."""
        if self._stdout is None:
            self._stdout = Console(highlight=False)
        return self._stdout

    @property
    def stderr(self) -> Console:
        """The rich console on stderr (progress bars)."""
        if self._stderr is None:
            self._stderr = Console(stderr=True, highlight=False)
        return self._stderr

    def info(self, text: str) -> None:
        """A plain line on stdout (human mode only)."""
        if self.human:
            typer.echo(text)

    def print(self, renderable) -> None:
        """A rich table or text on stdout (human mode only)."""
        if self.human:
            self.console.print(renderable)

    def detail(self, renderable) -> None:
        """Printed with ``--verbose`` only."""
        if self.human and self.verbose:
            self.console.print(renderable)

    def warn(self, text: str) -> None:
        """``warning: text`` on stderr (also under ``--quiet``), and in the JSON object."""
        _emit_warning(text)

    @property
    def warnings(self) -> list:
        """The warnings said so far in this run."""
        return list(self._run.warnings)

    def progress_enabled(self) -> bool:
        """Whether a progress bar is drawn: human mode and stderr a terminal."""
        return self.human and self.stderr.is_terminal

    @contextlib.contextmanager
    def progress(self, title: str):
        """A rich progress bar on stderr; yields the callback ``(stage, fraction)``.

        The library's ``progress=`` parameters take the callback as it is. Off
        under ``--json``, ``--quiet`` or when stderr is not a terminal: it then
        yields None (the library's default, which reports nothing).
        """
        if not self.progress_enabled():
            yield None
            return
        from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn,
                                   TimeElapsedColumn)

        with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                      TimeElapsedColumn(), console=self.stderr, transient=True,
                      redirect_stdout=False) as bar:
            task = bar.add_task(title, total=1.0)

            def update(stage, fraction):
                bar.update(task, description=f"{title}: {stage}", completed=fraction)

            yield update

    def finish(self, code: int, message: str, result, *, status: str | None = None):
        """End the command: the JSON object under ``--json``, then exit with ``code``."""
        if self.as_json:
            _print_json(_envelope(self._run, code, message, result, status=status))
        raise typer.Exit(code=code)


# --------------------------------------------------------------------------- --out

def _check_writable(folder: Path, option: str, path) -> None:
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".relurecover-write-test-")
    except OSError as exc:
        raise ValueError(f"{option} {path}: cannot write in the folder {folder} "
                         f"({exc.strerror or exc}).") from None
    os.close(fd)
    os.unlink(probe)


def check_out_file(path, suffixes, *, option: str = "--out", what: str = "the output",
                   default_suffix: str | None = None) -> Path:
    """Check an output file before any work; return the path that will be written.

    Parameters
    ----------
    path : str or path-like
        As given by the user.
    suffixes : sequence of str
        The suffixes allowed (``(".npz",)``), lower case.
    option : str, default="--out"
        The option or argument named in the messages.
    what : str, default="the output"
        What is written, for the messages ("a network").
    default_suffix : str, default=None
        Appended to a name without any suffix (None: such a name is refused).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        A wrong suffix, a folder that does not exist or is not writable, a path
        that is a folder: exit code 2 before anything is computed.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a folder; give a file name in it "
                         f"(e.g. {path / ('out' + suffixes[0])}).")
    suffix = path.suffix.lower()
    allowed = " or ".join(suffixes)
    if suffix not in suffixes:
        if not suffix and default_suffix:
            path = path.with_name(path.name + default_suffix)
        elif not suffix:
            raise ValueError(f"{option} {path}: {what} is written as {allowed}; give the "
                             f"file one of these suffixes (e.g. {path.name}{suffixes[0]}).")
        else:
            raise ValueError(f"{option} {path}: {what} is written as {allowed}, not "
                             f"{path.suffix!r}; name the file e.g. "
                             f"{path.with_suffix(suffixes[0]).name}.")
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a folder; give a file name in it "
                         f"(e.g. {path / ('out' + suffixes[0])}).")
    folder = path.parent
    if not folder.exists():
        raise ValueError(f"{option} {path}: the folder {folder} does not exist; create "
                         "it first.")
    if not folder.is_dir():
        raise ValueError(f"{option} {path}: {folder} is not a folder.")
    _check_writable(folder, option, path)
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{option} {path}: the file exists and is not writable.")
    return path


def check_out_dir(path, *, option: str = "--out") -> Path:
    """Check (and create, when its parent exists) an output folder before any work.

    Parameters
    ----------
    path : str or path-like
        The folder.
    option : str, default="--out"
        The option named in the messages.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        A path that is a file, a parent folder that does not exist, a folder that
        is not writable.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path}: is a file, not a folder.")
    if not path.exists():
        if not path.parent.is_dir():
            raise ValueError(f"{option} {path}: the folder {path.parent} does not exist; "
                             "create it first.")
        _check_writable(path.parent, option, path)
        path.mkdir()
    _check_writable(path, option, path)
    return path


# --------------------------------------------------------------------------- JSON

def jsonable(obj):
    """``obj`` as plain JSON values: numpy scalars and arrays to numbers and lists,
    paths to strings, NaN and infinities to None (JSON has none of them)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    return str(obj)


def network_summary(net) -> dict:
    """The ``network`` object of docs/cli.md: kind, sizes, activation, biases."""
    if hasattr(net, "V"):
        return {"kind": "two-layer", "d": int(net.n_inputs), "widths": [int(net.n_hidden)],
                "m": int(net.n_outputs), "activation": net.activation.name,
                "has_biases": bool(net.has_biases)}
    return {"kind": "deep", "d": int(net.n_inputs), "widths": [int(w) for w in net.widths],
            "m": int(net.n_outputs), "activation": "relu",
            "has_biases": bool(net.has_biases)}
