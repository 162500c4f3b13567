"""Shared command-line plumbing: user-facing errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

CLOSED_PIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for `yes | head -1`'s writer


class UserError(Exception):
    """A problem the user can fix (bad input, missing model, corrupt config): shown as one line."""


class OutputError(UserError):
    """Standard output takes no more (disk full, I/O error). What is still buffered is dropped: Python would
    otherwise try it again at exit and print a second, "Exception ignored" error."""


def write_stdout(stream, text: str) -> None:
    """stream.write, a full disk or failing device becoming an OutputError (a closed pipe stays BrokenPipeError:
    it ends the run quietly)."""
    try:
        stream.write(text)
    except BrokenPipeError:
        raise
    except OSError as err:
        raise OutputError(f"cannot write the output: {err.strerror or err}") from None


def flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as err:
        raise OutputError(f"cannot write the output: {err.strerror or err}") from None


def require_stdin(hint: str) -> None:
    """A process started with standard input closed (`0<&-`, some service managers) has sys.stdin None."""
    if sys.stdin is None:
        raise UserError(f"standard input is closed: {hint}")


def run(main: Callable[[], int | None]) -> None:
    """Run a stage's main(); turn UserError and Ctrl-C into one line and an exit code, no traceback. A reader
    that stops early (`| head -1`) ends the run quietly."""
    try:
        code = main()
        flush_stdout()  # a closed pipe or a full disk shows here, inside the try, not in Python's flush at exit
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        if isinstance(err, OutputError):
            silence_stdout()
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        silence_stdout()
        sys.exit(CLOSED_PIPE_EXIT)
    sys.exit(code or 0)


def silence_stdout() -> None:
    """Point stdout's descriptor at /dev/null: what is still buffered would otherwise fail again at exit, with
    an "Exception ignored" message (Python docs, signal module, "Note on SIGPIPE")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout replaced by an object without a descriptor (tests): nothing to do
        pass
