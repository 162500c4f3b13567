"""Shared command-line plumbing: user-facing errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem the user can fix (bad input, missing model, corrupt config): shown as one line."""


def run(main: Callable[[], int | None]) -> None:
    """Run a stage's main(); turn UserError and Ctrl-C into one line and an exit code, no traceback."""
    try:
        code = main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
