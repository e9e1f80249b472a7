"""Options shared by several commands, and turning them into a topology and a layout."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from filesim.topology.layout import Layout

if TYPE_CHECKING:
    from filesim.topology import Topology

DEFAULT_ROOT = Path("simulator-data")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Topology file (YAML). Default: the built-in seven servers."
    ),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Sync defaults by role: 'default' (both ways, continuous) or 'seed' (the original "
        "system's behaviour). Overrides the topology file's profile.",
    ),
]
RootOpt = Annotated[
    Path,
    typer.Option("--root", "-r", help="Folders live at ROOT/<name>; state at ROOT/.filesim."),
]
StateDirOpt = Annotated[
    Path | None,
    typer.Option("--state-dir", help="State directory (default ROOT/.filesim)."),
]
HostOpt = Annotated[str, typer.Option("--host", help="Address the servers listen on.")]
BasePortOpt = Annotated[
    int,
    typer.Option(
        "--base-port",
        min=0,
        max=65535,
        help="Server i listens on BASE_PORT + i; 0: every server on a free port.",
    ),
]


def topology_of(config: Path | None, profile: str | None) -> Topology:
    from filesim.topology.load import load_topology  # pydantic: only for a command that runs

    return load_topology(config, profile)


def layout_of(root: Path, state_dir: Path | None) -> Layout:
    return Layout(root.absolute(), state_dir.absolute() if state_dir else None)
