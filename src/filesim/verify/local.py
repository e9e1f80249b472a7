"""A local topology (`filesim up --root DIR`), found through its runtime file."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from filesim.runtime.state import read_runtime
from filesim.topology import Layout, Role, StorageMode, Topology, default_topology, load_topology
from filesim.topology.model import Direction
from filesim.topology.profiles import role_sync_defaults
from filesim.verify.checks_sync import status_problems
from filesim.verify.target import ServerTarget, Target, VerifyError

FILESIM = [sys.executable, "-m", "filesim"]
CommandRunner = Callable[[list[str]], None]


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
    topology = load_topology(config, runtime.get("profile")) if config else None
    servers = [_server(entry, runtime, layout, topology) for entry in runtime["servers"]]
    if topology is not None:
        wanted = {s.name for s in topology.enabled}
        servers = [s for s in servers if s.name in wanted]

    def sync_status() -> Mapping[str, Mapping[str, Any] | None]:
        current = _runtime(layout)
        return {e["name"]: e.get("sync_status") for e in current["servers"]}

    def agent_problems(server: ServerTarget) -> list[str]:
        return status_problems(server, sync_status().get(server.name))

    def restart() -> None:
        _restart(layout, runtime, config, run)

    return Target(
        kind="local",
        profile=str(runtime.get("profile", "default")),
        servers=servers,
        sync_status=sync_status,
        agent_problems=agent_problems,
        restart=restart,
        description=f"local topology under {layout.root} (pid {runtime['pid']})",
    )


def _runtime(layout: Layout) -> dict[str, Any]:
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


def _server(
    entry: Mapping[str, Any], runtime: Mapping[str, Any], layout: Layout, topology: Topology | None
) -> ServerTarget:
    role = Role(entry["role"])
    policy = dict(role_sync_defaults(runtime.get("profile", "default"), role.value))
    policy.update(entry.get("sync") or {})
    readonly = bool(entry.get("readonly", False))
    storage = StorageMode(entry.get("storage", "mirror"))
    if topology is not None and any(s.name == entry["name"] for s in topology.servers):
        declared = topology.server(entry["name"])
        policy.update(declared.sync.model_dump(mode="json"))
    folder = Path(entry["folder"]) if entry.get("folder") else layout.root / entry["name"]
    return ServerTarget(
        name=entry["name"],
        role=role,
        host=_connect_host(str(entry["host"])),
        port=int(entry["port"]),
        export=str(entry["export"]),
        folder=folder if folder.is_absolute() else layout.root / folder,
        readonly=readonly,
        storage=storage,
        direction=Direction(policy["direction"]),
        continuous=bool(policy["continuous"]),
        initial=bool(policy["initial"]),
        mirror_deletes=bool(policy["mirror_deletes"]),
    )


def _connect_host(host: str) -> str:
    """Servers listening on every address are reached over loopback."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def _restart(
    layout: Layout, runtime: Mapping[str, Any], config: Path | None, run: CommandRunner
) -> None:
    """`filesim down`, then `filesim up --detach` as the topology was started, and wait."""
    up = _up_args(layout, runtime, config)
    common = ["--root", str(layout.root)]
    if layout.state is not None:
        common += ["--state-dir", str(layout.state)]
    run(["down", *common])
    run(up)
    _wait_running(layout, [int(s["port"]) for s in runtime["servers"]])


def _up_args(layout: Layout, runtime: Mapping[str, Any], config: Path | None) -> list[str]:
    """The `up --detach` arguments: the recorded command line if the runtime file has one
    (`argv`), else rebuilt from root, profile, host, lowest port and the topology file."""
    argv = runtime.get("argv")
    if isinstance(argv, list) and argv[:1] == ["up"]:
        return ["up", "--detach", *(str(a) for a in argv[1:] if a not in ("--detach", "-d"))]
    servers = runtime["servers"]
    host = str(servers[0]["host"]) if servers else "127.0.0.1"
    base_port = int(runtime.get("base_port") or min(int(s["port"]) for s in servers))
    config = config or (Path(runtime["config"]) if runtime.get("config") else None)
    if config is None:
        _require_default_servers(runtime)
    up = ["up", "--detach", "--root", str(layout.root), "--host", host]
    up += ["--base-port", str(base_port), "--profile", str(runtime.get("profile", "default"))]
    if layout.state is not None:
        up += ["--state-dir", str(layout.state)]
    if config is not None:
        up += ["--config", str(config)]
    return up


def _require_default_servers(runtime: Mapping[str, Any]) -> None:
    """Refuse to restart a custom topology as the built-in one (nothing is stopped then)."""
    profile = str(runtime.get("profile", "default"))
    builtin = {s.name for s in default_topology(profile).enabled}
    running = {str(s["name"]) for s in runtime["servers"]}
    if running != builtin:
        raise VerifyError(
            "cannot restart this topology: it is not the built-in one and its topology file is "
            "unknown; pass the file it was started with as --config"
        )


def _wait_running(layout: Layout, ports: list[int], limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        runtime = read_runtime(layout)
        if runtime is not None and sorted(int(s["port"]) for s in runtime["servers"]) == sorted(
            ports
        ):
            return
        time.sleep(0.1)
    raise VerifyError(f"the topology under {layout.root} did not come back within {limit:g} s")
