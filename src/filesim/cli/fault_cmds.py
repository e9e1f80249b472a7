"""`filesim fault add|list|clear`: faults of a running topology, through its HTTP API."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from filesim.cli.app import app, console
from filesim.cli.options import DEFAULT_ROOT, RootOpt, StateDirOpt, layout_of
from filesim.topology.kinds import FaultKind

if TYPE_CHECKING:
    from filesim.runtime.api_client import ApiClient

fault_app = typer.Typer(
    help="Inject faults into a running topology (latency, errors, read-only, outage, sync).",
    no_args_is_help=True,
)
app.add_typer(fault_app, name="fault")


def _api(root: Path, state_dir: Path | None) -> ApiClient:
    """The API of the topology running under ROOT (imported here, not by every command)."""
    from filesim.runtime.api_client import ApiClient

    return ApiClient.of(layout_of(root, state_dir))


def _csv(values: list[str] | None) -> list[str]:
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


@fault_app.command("add")
def fault_add(
    server: Annotated[str, typer.Argument(help="The server, as named in the topology.")],
    kind: Annotated[FaultKind, typer.Argument(help="What goes wrong.", case_sensitive=False)],
    procedure: Annotated[
        list[str] | None,
        typer.Option("--procedure", "-p", help="NFS procedure(s), e.g. READ,WRITE (default all)."),
    ] = None,
    path: Annotated[
        list[str] | None,
        typer.Option("--path", help="error: export-relative path glob(s), e.g. 'in/*.csv'."),
    ] = None,
    error: Annotated[
        str | None, typer.Option("--error", "-e", help="error: EIO, NOSPC, DQUOT, STALE, ...")
    ] = None,
    probability: Annotated[
        float, typer.Option("--probability", min=0.0, max=1.0, help="error: chance per call.")
    ] = 1.0,
    delay_ms: Annotated[float, typer.Option("--delay-ms", help="latency/sync-slow delay.")] = 0.0,
    jitter_ms: Annotated[float, typer.Option("--jitter-ms", help="latency spread.")] = 0.0,
    distribution: Annotated[
        str, typer.Option("--distribution", help="fixed, uniform, normal or exponential.")
    ] = "fixed",
    mode: Annotated[
        str, typer.Option("--mode", help="outage: blackhole (never answer) or refuse.")
    ] = "blackhole",
    duration: Annotated[
        float | None, typer.Option("--duration", help="Clear by itself after this many seconds.")
    ] = None,
    root: RootOpt = DEFAULT_ROOT,
    state_dir: StateDirOpt = None,
) -> None:
    """Add a fault to SERVER; it takes effect at once, until `filesim fault clear`."""
    spec: dict[str, object] = {"kind": kind.value}
    options: dict[str, object] = {
        "procedures": _csv(procedure), "paths": _csv(path), "error": error,
        "probability": probability if probability != 1.0 else None,
        "delay_ms": delay_ms or None, "jitter_ms": jitter_ms or None,
        "distribution": distribution if distribution != "fixed" else None,
        "mode": mode if kind is FaultKind.OUTAGE else None, "duration_s": duration,
    }  # fmt: skip
    spec |= {k: v for k, v in options.items() if v not in (None, [])}
    fault = _api(root, state_dir).add_fault(server, spec)
    console.print(f"added {fault.id} on {fault.server}: {fault.summary}", highlight=False)


@fault_app.command("list")
def fault_list(
    server: Annotated[str | None, typer.Option("--server", "-s", help="Only this server.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
    root: RootOpt = DEFAULT_ROOT,
    state_dir: StateDirOpt = None,
) -> None:
    """The faults in force on the running topology."""
    faults = _api(root, state_dir).faults(server)
    if as_json:
        console.print_json(json.dumps([f.model_dump(mode="json") for f in faults]))
        return
    if not faults:
        console.print("no faults")
        return
    table = Table(title="faults", title_justify="left")
    for column in ("id", "server", "fault", "origin", "clears"):
        table.add_column(column)
    now = time.time()
    for f in faults:
        clears = "" if f.expires is None else f"in {max(0.0, f.expires - now):.0f} s"
        table.add_row(f.id, f.server, f.summary, f.origin, clears)
    console.print(table)


@fault_app.command("clear")
def fault_clear(
    server: Annotated[
        str | None, typer.Argument(help="Clear this server's faults (default: every server).")
    ] = None,
    fault_id: Annotated[str | None, typer.Option("--id", help="Clear only this fault.")] = None,
    root: RootOpt = DEFAULT_ROOT,
    state_dir: StateDirOpt = None,
) -> None:
    """Clear faults; normal behaviour is back at once."""
    gone = _api(root, state_dir).clear_faults(server, fault_id)
    console.print(f"cleared {len(gone)} fault{'s' if len(gone) != 1 else ''}", highlight=False)
