"""A local topology (`filesim up --root DIR`), found through its runtime file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from filesim.runtime.model import RuntimeDoc, ServerState
from filesim.runtime.state import read_runtime
from filesim.sync.status import SyncStatus
from filesim.topology import (
    Layout,
    SyncPolicy,
    Topology,
    default_topology,
    dump_topology,
    load_topology,
)
from filesim.verify.checks_sync import status_problems
from filesim.verify.target import ServerTarget, Target, VerifyError
from filesim.waiting import WaitTimeout, poll_until

FILESIM = [sys.executable, "-m", "filesim"]
CommandRunner = Callable[[list[str]], None]
RESTART_TIMEOUT = 60.0
PINNED_TOPOLOGY = "verify-restart-topology.yaml"
"""Under the state dir: the topology with every server's port, for a restart on the same ports
of a topology started with `--base-port 0`."""


def run_filesim(args: list[str]) -> None:
    done = subprocess.run([*FILESIM, *args], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise VerifyError(f"`filesim {' '.join(args)}` failed: {done.stderr.strip()[-500:]}")


def local_target(
    root: Path,
    state_dir: Path | None = None,
    config: Path | None = None,
    run: CommandRunner = run_filesim,
) -> Target:
    """The topology running under `root`; `config` (optional) restricts and describes it."""
    layout = Layout(root.absolute(), state_dir.absolute() if state_dir else None)
    runtime = _runtime(layout)
    topology = load_topology(config, runtime.profile) if config else None
    servers = [_server(entry, topology) for entry in runtime.servers]
    if topology is not None:
        wanted = {s.name for s in topology.enabled}
        servers = [s for s in servers if s.name in wanted]

    def sync_status() -> Mapping[str, SyncStatus | None]:
        return {s.name: s.sync_status for s in _runtime(layout).servers}

    def agent_problems(server: ServerTarget) -> list[str]:
        return status_problems(server, sync_status().get(server.name))

    def restart() -> None:
        _restart(layout, runtime, config, run)

    return Target(
        kind="local",
        profile=runtime.profile,
        servers=servers,
        sync_status=sync_status,
        agent_problems=agent_problems,
        restart=restart,
        description=f"local topology under {layout.root} (pid {runtime.pid})",
    )


def _runtime(layout: Layout) -> RuntimeDoc:
    runtime = read_runtime(layout)
    if runtime is None:
        why = (
            "its process has exited"
            if layout.runtime_file.exists()
            else f"{layout.runtime_file} does not exist"
        )
        raise VerifyError(
            f"no topology is running under {layout.root} ({why}); start one with "
            f"`filesim up --root {layout.root}` or point --root at the one that runs"
        )
    return runtime


def _server(entry: ServerState, topology: Topology | None) -> ServerTarget:
    """How the checks see a running server: its address, and its policy as the topology file
    (when given) or the runtime document says."""
    policy: SyncPolicy = entry.sync
    if topology is not None and any(s.name == entry.name for s in topology.servers):
        policy = topology.server(entry.name).sync
    return ServerTarget(
        name=entry.name,
        role=entry.role,
        host=entry.connect_host,
        port=entry.port,
        export=entry.export,
        folder=entry.folder,
        readonly=entry.readonly,
        storage=entry.storage,
        direction=policy.direction,
        continuous=policy.continuous,
        initial=policy.initial,
        mirror_deletes=policy.mirror_deletes,
    )


def _restart(layout: Layout, runtime: RuntimeDoc, config: Path | None, run: CommandRunner) -> None:
    """`filesim down`, then `filesim up --detach` as the topology was started, on the same
    ports, and wait until it runs again."""
    up = _up_args(layout, runtime, config)
    common = ["--root", str(layout.root)]
    if layout.state is not None:
        common += ["--state-dir", str(layout.state)]
    run(["down", *common])
    run(up)
    ports = sorted(s.port for s in runtime.servers)

    def back() -> bool:
        again = read_runtime(layout)
        return again is not None and sorted(s.port for s in again.servers) == ports

    try:
        poll_until(back, RESTART_TIMEOUT, interval=0.1, what="the topology to come back")
    except WaitTimeout:
        raise VerifyError(
            f"the topology under {layout.root} did not come back on its ports within "
            f"{RESTART_TIMEOUT:g} s"
        ) from None


def _up_args(layout: Layout, runtime: RuntimeDoc, config: Path | None) -> list[str]:
    """The `up --detach` arguments: the recorded command line if the runtime file has one
    (`argv`), else rebuilt from root, profile, host, lowest port and the topology file. A
    topology whose servers took any free port (`--base-port 0`) comes back on the same ones."""
    argv = runtime.argv
    if argv is not None and argv[:1] == ["up"]:
        args = [a for a in argv[1:] if a not in ("--detach", "-d")]
        if _option(args, "--base-port") == "0":
            args = _pin_ports(layout, runtime, args)
        return ["up", "--detach", *args]
    servers = runtime.servers
    host = servers[0].host if servers else "127.0.0.1"
    base_port = min(s.port for s in servers)
    if config is None:
        _require_default_servers(runtime)
    up = ["up", "--detach", "--root", str(layout.root), "--host", host]
    up += ["--base-port", str(base_port), "--profile", runtime.profile]
    if layout.state is not None:
        up += ["--state-dir", str(layout.state)]
    if config is not None:
        up += ["--config", str(config)]
    return up


def _option(args: list[str], name: str) -> str | None:
    """The value of `name` in `args` (`--name VALUE`), the last one if repeated."""
    found = None
    for i, arg in enumerate(args[:-1]):
        if arg == name:
            found = args[i + 1]
    return found


def _pin_ports(layout: Layout, runtime: RuntimeDoc, args: list[str]) -> list[str]:
    """`args` with a topology file that gives every running server the port it has now."""
    config = _option(args, "--config")
    topology = load_topology(Path(config) if config else None, runtime.profile)
    ports = {s.name: s.port for s in runtime.servers}
    servers = [s.model_copy(update={"port": ports.get(s.name, s.port)}) for s in topology.servers]
    pinned = layout.state_dir / PINNED_TOPOLOGY
    pinned.parent.mkdir(parents=True, exist_ok=True)
    pinned.write_text(dump_topology(topology.model_copy(update={"servers": servers})))
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--config", "-c", "--profile"):
            skip = True
        else:
            kept.append(arg)
    return [*kept, "--config", str(pinned)]


def _require_default_servers(runtime: RuntimeDoc) -> None:
    """Refuse to restart a custom topology as the built-in one (nothing is stopped then)."""
    builtin = {s.name for s in default_topology(runtime.profile).enabled}
    running = {s.name for s in runtime.servers}
    if running != builtin:
        raise VerifyError(
            "cannot restart this topology: it is not the built-in one and its topology file is "
            "unknown; pass the file it was started with as --config"
        )
