"""The typer application every command module registers on, and the shared error exit."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.console import Console

app = typer.Typer(
    name="filesim",
    help=(
        "A multi-NAS simulator: real NFSv3/v4 servers (NFS, MOUNT, rpcbind and the NFSv3 lock "
        "manager on one port per server, or on 2049 and 111 with --standard-ports), each kept "
        "in step with an ordinary folder."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `message` as one line on stderr and exit with `code`."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)
