"""`filesim sync NAME` (one sync agent alone: the Kubernetes init/sidecar command) and
`filesim sync resume NAME` (lift a mass-deletion halt, from any process)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from filesim.cli.app import app, console, err_console
from filesim.cli.options import (
    DEFAULT_ROOT,
    ConfigOpt,
    ProfileOpt,
    RootOpt,
    StateDirOpt,
    layout_of,
    topology_of,
)
from filesim.errors import FilesimError
from filesim.events import Event, EventBus
from filesim.topology.kinds import StorageMode

if TYPE_CHECKING:
    from filesim.topology import Layout, Server

EXIT_HALTED = 3


@app.command(
    "sync",
    help=(
        "Run the sync agent of server NAME alone, or lift a halt.\n\n"
        "  filesim sync NAME [--once]    sync NAME's folder and export store: once and exit "
        "(--once, the Kubernetes init container), or as its policy says (the sidecar).\n\n"
        "  filesim sync resume NAME      let NAME's agent carry out deletions that the "
        "mass-deletion guard stopped; a running agent picks it up within a second.\n\n"
        "Exit status: 0 done or stopped by SIGINT/SIGTERM, 1 error, "
        f"{EXIT_HALTED} halted by the mass-deletion guard (--once)."
    ),
)
def sync_command(
    target: Annotated[str, typer.Argument(metavar="NAME|resume", help="A server, or 'resume'.")],
    name: Annotated[
        str | None, typer.Argument(metavar="[NAME]", help="The server to resume.")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Sync once, then exit.")] = False,
    config: ConfigOpt = None,
    profile: ProfileOpt = None,
    root: RootOpt = DEFAULT_ROOT,
    state_dir: StateDirOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print every action.")] = False,
) -> None:
    layout = layout_of(root, state_dir)
    topology = topology_of(config, profile)
    if target == "resume":
        if name is None:
            raise FilesimError("which server? `filesim sync resume NAME`")
        _resume(_server(topology.servers, name), layout)
        return
    if name is not None:
        raise FilesimError(f"unexpected argument {name!r}: use `filesim sync NAME [--once]`")
    server = _server(topology.servers, target)
    halted = asyncio.run(_run(server, layout, once, verbose))
    if halted:
        err_console.print(f"[bold red]halted:[/] {halted}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_HALTED)


def _server(servers: list[Server], name: str) -> Server:
    for server in servers:
        if server.name == name:
            if server.storage is StorageMode.DIRECT:
                raise FilesimError(
                    f"{name} uses storage: direct (its export is the folder itself): "
                    "there is nothing to sync"
                )
            return server
    known = ", ".join(s.name for s in servers)
    raise FilesimError(f"no server named {name!r} in the topology (known: {known})")


def _resume(server: Server, layout: Layout) -> None:
    from filesim.sync.archive import request_resume

    reason = request_resume(layout.archive(server))
    if reason is None:
        console.print(f"{server.name} is not halted; nothing to resume")
    else:
        console.print(f"{server.name}: resume requested (was: {reason})", highlight=False)


async def _run(server: Server, layout: Layout, once: bool, verbose: bool) -> str | None:
    from filesim.sync.agent import SyncAgent

    if not server.sync.active and not once:
        console.print(f"{server.name}: its sync policy never syncs (direction none); exiting")
        return None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # stdout, one line each: what `kubectl logs POD -c sync-to-windows` shows.
    print(banner(server, layout.folder(server), once), flush=True)
    bus = EventBus(layout.events_file)
    bus.subscribe(_print_line)
    if verbose:
        bus.subscribe(_print_event)
    # No NFS server in this process tells the agent about export changes: watch the store.
    agent = SyncAgent(
        server,
        layout.folder(server),
        layout.store(server),
        layout.archive(server),
        bus.emit,
        watch_export=True,
    )
    task = asyncio.create_task(agent.run_once() if once else agent.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows
            loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        agent.close()
        bus.close()
    status = agent.status()
    console.print(
        f"{server.name}: {status.actions} actions, {status.conflicts} conflicts",
        highlight=False,
    )
    return agent.halted()


def _print_event(event: Event) -> None:
    console.print(event.to_json(), highlight=False, markup=False, soft_wrap=True)


def banner(server: Server, folder: Path, once: bool) -> str:
    """The first line of the agent's output: name, role, direction, watcher, rescan period."""
    from filesim.sync.watch import choose

    policy = server.sync
    parts = [f"filesim sync {server.name} ({server.role.value})",
             f"direction {policy.direction.value}"]  # fmt: skip
    if once:
        parts.append("one pass, then exit")
    elif not policy.continuous:
        parts.append("at start only")
    else:
        kind, why = choose(folder, policy.watcher)
        parts.append(f"watcher {kind} ({why})")
        parts.append(f"rescan every {policy.rescan_interval_s:g} s")
    return ", ".join(parts)


# sync.batch counts "KIND:SIDE"; how each reads, in this order.
_ACTIONS = (
    ("sync.copy", "file", "files", "to"),
    ("sync.mkdir", "folder", "folders", "made in"),
    ("sync.rename", "rename", "renames", "in"),
    ("sync.delete", "deletion", "deletions", "in"),
)


def _summary(actions: dict[str, int]) -> str:
    parts = []
    for kind, one, many, where in _ACTIONS:
        for side in ("folder", "export"):
            count = actions.get(f"{kind}:{side}", 0)
            if count:
                parts.append(f"{count} {one if count == 1 else many} {where} {side}")
    return ", ".join(parts)


def log_line(event: Event) -> str | None:
    """One stdout line for a batch, a rescan, an error, a halt, a resume or a conflict."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
    who = f"[{stamp}] {event.server}:"
    detail = event.detail
    if event.kind == "sync.batch":
        done = _summary(detail.get("actions", {}))
        if detail.get("full"):
            return f"{who} rescan in {detail.get('ms')} ms: {done or 'no changes'}"
        return f"{who} {done} in {detail.get('ms')} ms"
    if event.kind == "sync.error":
        return f"{who} error: {detail.get('error')}"
    if event.kind == "sync.halt":
        return f"{who} HALTED: {detail.get('reason')}"
    if event.kind == "sync.resume":
        return f"{who} resumed"
    if event.kind == "sync.conflict":
        return (
            f"{who} conflict on {event.path}: {detail.get('why')} (kept as {detail.get('kept_as')})"
        )
    return None


def _print_line(event: Event) -> None:
    line = log_line(event)
    if line is not None:
        print(line, flush=True)
