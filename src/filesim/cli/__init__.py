"""The `filesim` command.

Each group of commands lives in its own module and registers itself on `app`; `main` turns every
FilesimError (and a few OS errors) into one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys

from filesim.cli.app import app, fail
from filesim.errors import FilesimError

# Importing the command modules registers their commands on `app`.
# The order here is the order `filesim --help` lists them in.
from filesim.cli import (  # noqa: F401  isort: skip
    topology_cmds,
    sync_cmds,
    verify_cmds,
    ops_cmds,
    k8s_cmds,
)


def main() -> None:
    try:
        app(standalone_mode=True)
    except FilesimError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["app", "main"]
