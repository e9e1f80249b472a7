"""`filesim up`, `down`, `status` and `serve`: running a topology.

The runtime (NFS servers, sync agents, the HTTP stack) is imported by the commands that run
it, when they run: every `filesim` command pays for what this module imports."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from filesim.cli.app import app, console, fail
from filesim.cli.options import (
    DEFAULT_ROOT,
    BasePortOpt,
    ConfigOpt,
    HostOpt,
    ProfileOpt,
    RootOpt,
    StateDirOpt,
    layout_of,
    topology_of,
)
from filesim.cli.watch import sync_mode
from filesim.topology.kinds import ProcessMode
from filesim.topology.mount import mount_command

if TYPE_CHECKING:
    from filesim.runtime.model import ServerState
    from filesim.topology.layout import Layout

HttpPortOpt = Annotated[
    int | None,
    typer.Option(
        "--http-port", min=0, max=65535,
        help="HTTP API port (health, metrics, events, faults); 0: any free port. Default "
        "20480, or a free port when 20480 is taken (`filesim status` shows it).",
    ),
]  # fmt: skip
HttpHostOpt = Annotated[str, typer.Option("--http-host", help="Address the HTTP API listens on.")]
StandardPortsOpt = Annotated[
    bool,
    typer.Option(
        "--standard-ports",
        help="Like a real NAS: each server on its own address (127.0.0.1 alone, else "
        "127.0.0.11, 127.0.0.12, ...) with NFS on 2049 and rpcbind on 111, so clients mount "
        "with production options and NFSv3 locks work. Needs root, CAP_NET_BIND_SERVICE or "
        "net.ipv4.ip_unprivileged_port_start=111. Same as `ports: standard` in the topology.",
    ),
]
ProcessesOpt = Annotated[
    ProcessMode | None,
    typer.Option(
        "--processes",
        help="one: every server in this one process; per-core: the servers' NFS sides spread "
        "over a worker process per CPU core, so servers busy at once use every core (about 40 "
        "MB more memory per worker); per-server: a worker process for each server; auto: "
        "per-core on 2 or more CPU cores when more than one server runs. Default: the "
        "topology's `processes`, else auto.",
    ),
]
DetachOpt = Annotated[
    bool, typer.Option("--detach", "-d", help="Run in the background; stop with `filesim down`.")
]


def servers_table(servers: list[ServerState]) -> Table:
    table = Table(title="filesim: NAS servers", title_justify="left")
    for column in ("name", "role", "address", "export", "folder", "access"):
        table.add_column(column, overflow="fold")
    for s in servers:
        access = "ro" if s.readonly else "rw"
        table.add_row(s.name, s.role.value, s.address, s.export, str(s.folder), access)
    return table


def print_servers(servers: list[ServerState]) -> None:
    """The servers table, then one ready-to-paste Linux mount command per server."""
    console.print(servers_table(servers))
    for version, title in (("3", "NFSv3"), ("4.1", "NFSv4.1 (or vers=4.2, vers=4.0)")):
        console.print(f"Linux mount commands, {title}:", style="bold")
        for s in servers:
            # soft_wrap: a long command must stay on one line to be pasted
            command = mount_command(
                s.host, s.port, s.export, f"/mnt/{s.name}", version, standard=s.standard_ports
            )
            console.print(command, soft_wrap=True, highlight=False, markup=False)


@app.command(short_help="Run the topology's servers and their sync agents (--detach: in the "
             "background).")  # fmt: skip
def up(
    config: ConfigOpt = None,
    profile: ProfileOpt = None,
    root: RootOpt = DEFAULT_ROOT,
    state_dir: StateDirOpt = None,
    host: HostOpt = "127.0.0.1",
    base_port: BasePortOpt = 20490,
    detach: DetachOpt = False,
    http_port: HttpPortOpt = None,
    http_host: HttpHostOpt = "127.0.0.1",
    standard_ports: StandardPortsOpt = False,
    processes: ProcessesOpt = None,
) -> None:
    """Run every enabled server of the topology (and its sync agent): in one process, or
    the servers' NFS sides in worker processes, one per CPU core (--processes; by default so
    on machines with 2 or more CPU cores).

    Folders are created at ROOT/<name> if missing. Server i (in topology order) listens on
    BASE_PORT + i unless the topology gives it a port; NFS, MOUNT, rpcbind, NLM and NSM share
    that port. With --standard-ports: NFS on 2049 and rpcbind on 111 of each server's address.
    """
    topology = topology_of(config, profile)
    layout = layout_of(root, state_dir)
    argv = up_argv(layout, config, profile, host, base_port, http_host, http_port)
    if standard_ports:
        argv.append("--standard-ports")
    if processes is not None:
        argv += ["--processes", processes.value]
    if detach:
        from filesim.runtime import daemon

        runtime = daemon.start_detached(layout, argv)
        print_servers(runtime.servers)
        if runtime.http is not None:
            console.print(f"HTTP API: {runtime.http.url}", highlight=False)
        console.print(f"running in the background (pid {runtime.pid}); stop with "
                      f"`filesim down --root {layout.root}`")  # fmt: skip
        return

    from filesim.cli.pv_snippet import pv_renderer
    from filesim.events import EventBus
    from filesim.runtime.http import DEFAULT_HTTP_PORT
    from filesim.runtime.main import run_topology
    from filesim.runtime.runner import TopologyRunner

    def ready(servers: list[ServerState]) -> None:
        print_servers(servers)
        console.print("serving; press Ctrl-C to stop", style="dim")

    runner = TopologyRunner(
        topology, layout, host=host, base_port=base_port, argv=argv,
        events=EventBus(layout.events_file), http_host=http_host,
        http_port=DEFAULT_HTTP_PORT if http_port is None else http_port,
        http_strict=http_port is not None, pv_renderer=pv_renderer(topology),
        standard_ports=standard_ports, processes=processes,
    )  # fmt: skip
    run_topology(runner, on_ready=ready)


def up_argv(
    layout: Layout, config: Path | None, profile: str | None, host: str, base_port: int,
    http_host: str, http_port: int | None,
) -> list[str]:  # fmt: skip
    """The `filesim up` arguments that start this very topology again, from any directory
    (recorded in runtime.json for `verify --restart`, and used by `--detach`)."""
    args = ["up", "--root", str(layout.root), "--host", host, "--base-port", str(base_port),
            "--http-host", http_host]  # fmt: skip
    if layout.state is not None:
        args += ["--state-dir", str(layout.state)]
    if config is not None:
        args += ["--config", str(config.absolute())]
    if profile is not None:
        args += ["--profile", profile]
    if http_port is not None:
        args += ["--http-port", str(http_port)]
    return args


@app.command(short_help="Stop the topology that `filesim up --detach` started under ROOT.")
def down(
    root: RootOpt = DEFAULT_ROOT,
    state_dir: StateDirOpt = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for it to end before killing it.")
    ] = 15.0,
) -> None:
    """Stop the topology running under ROOT (started with `filesim up --detach`): asked
    through its HTTP API (loopback, with the token in its state dir), by a signal when the API
    does not answer, killed when it has not ended after --timeout."""
    from filesim.runtime.state import read_runtime  # pydantic: only for a command that runs

    layout = layout_of(root, state_dir)
    runtime = read_runtime(layout)
    if runtime is None:
        console.print(f"no topology is running under {layout.root}")
        return
    from filesim.runtime import daemon

    pid = runtime.pid
    how = daemon.stop(layout, runtime, timeout)
    said = {"api": "stopped", "signal": "stopped by a signal", "killed": "killed"}[how]
    console.print(f"{said} the topology under {layout.root} (pid {pid})")


@app.command()
def status(
    root: RootOpt = DEFAULT_ROOT,
    state_dir: StateDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="A live view, refreshed each second.")
    ] = False,
) -> None:
    """Show the servers of the topology running under ROOT, with their sync state."""
    layout = layout_of(root, state_dir)
    if watch:
        from filesim.cli.watch import watch_status

        watch_status(layout)
        return
    from filesim.runtime.state import require_runtime

    runtime = require_runtime(layout)
    if as_json:
        # The runtime document, as `GET /api/servers` answers it.
        console.print_json(runtime.model_dump_json())
        return
    print_servers(runtime.servers)
    console.print(sync_table(runtime.servers))
    for s in runtime.servers:
        for fault in s.faults:
            console.print(f"fault {fault.id} on {s.name}: {fault.summary}",
                          style="bold red", highlight=False)  # fmt: skip
    if runtime.http is not None:
        console.print(f"HTTP API: {runtime.http.url}", highlight=False)


def sync_table(servers: list[ServerState]) -> Table:
    table = Table(title="sync", title_justify="left")
    for column in ("name", "direction", "state", "watcher", "pending", "last sync", "p50 ms",
                   "p99 ms", "conflicts", "halted"):  # fmt: skip
        table.add_column(column)
    problems = []
    for s in servers:
        st = s.sync_status
        if st is None:
            mode = sync_mode(s)
            table.add_row(s.name, "direct (no sync)" if mode == "direct" else mode, *[""] * 8)
            continue
        ago = "never" if st.last_sync is None else f"{time.time() - st.last_sync:.0f} s ago"
        state = st.state if st.healthy or st.since is None else f"{st.state} since {_at(st.since)}"
        table.add_row(
            s.name, st.direction, state, st.watcher or "", str(st.pending), ago, _ms(st.p50_ms),
            _ms(st.p99_ms), str(st.conflicts), "yes" if st.halted else "no",
        )  # fmt: skip
        if not st.healthy and st.state != "starting" and st.reason:
            problems.append(f"{s.name}: sync agent {st.state}: {st.reason}")
    if problems:
        table.caption = "\n".join(problems)
        table.caption_justify = "left"
        table.caption_style = "bold red"
    return table


def _at(when: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when))


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


@app.command()
def serve(
    name: Annotated[str, typer.Argument(help="The server to run, as named in the topology.")],
    config: ConfigOpt = None,
    profile: ProfileOpt = None,
    root: RootOpt = DEFAULT_ROOT,
    state_dir: StateDirOpt = None,
    host: HostOpt = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="Listen port (default: the topology's, else 2049); 0: any free port (printed).",
        ),
    ] = None,
) -> None:
    """Run one server's NFS export alone, without sync (the container command in Kubernetes)."""
    topology = topology_of(config, profile)
    try:
        server = topology.server(name)
    except KeyError as exc:
        fail(str(exc.args[0]))
    layout = layout_of(root, state_dir)
    if port is None:
        port = server.port if server.port is not None else 2049
    from filesim.runtime.main import run_topology
    from filesim.runtime.runner import TopologyRunner

    runner = TopologyRunner(
        topology, layout, host=host, only=[server.name], port=port, run_sync=False,
        write_runtime=False,
    )  # fmt: skip
    run_topology(runner, on_ready=print_servers)
