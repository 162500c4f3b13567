"""Shared command-line plumbing: user-facing errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

CLOSED_PIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for `yes | head -1`'s writer


class UserError(Exception):
    """A problem the user can fix (bad input, missing model, corrupt config): shown as one line."""


def run(main: Callable[[], int | None]) -> None:
    """Run a stage's main(); turn UserError and Ctrl-C into one line and an exit code, no traceback. A reader
    that stops early (`| head -1`) ends the run quietly."""
    try:
        code = main()
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not in Python's flush at exit
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
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
