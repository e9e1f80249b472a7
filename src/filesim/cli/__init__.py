"""The `filesim` command.

Each group of commands lives in its own module and registers itself on `app`. `main` turns every
error into one line on stderr and a non-zero exit, never a traceback: a FilesimError says what to
do, an OSError names the file and the reason, anything else names itself. FILESIM_DEBUG=1 shows
the traceback instead.
"""

from __future__ import annotations

import os
import sys

from filesim.cli.app import app, fail
from filesim.errors import FilesimError

# Importing the command modules registers their commands on `app`.
# The order here is the order `filesim --help` lists them in.
from filesim.cli import (  # noqa: F401  isort: skip
    topology_cmds,
    sync_cmds,
    verify_cmds,
    logs_cmds,
    fault_cmds,
    k8s_cmds,
)

DEBUG_VARIABLE = "FILESIM_DEBUG"


def main() -> None:
    debug = os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")
    try:
        app(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        fail(describe_error(exc))


def describe_error(exc: Exception) -> str:
    """One line for the user: what went wrong, and where."""
    if isinstance(exc, FilesimError):
        return str(exc)
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
        if exc.filename is not None and exc.filename2 is not None:
            return f"{exc.filename} -> {exc.filename2}: {reason}"
        if exc.filename is not None:
            return f"{exc.filename}: {reason}"
        return reason
    detail = str(exc)
    what = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return f"unexpected error: {what} (run with {DEBUG_VARIABLE}=1 for the traceback)"


__all__ = ["app", "main"]
