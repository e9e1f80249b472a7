"""Running the real `filesim` command for end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filesim.topology import default_topology, dump_topology

FILESIM = [sys.executable, "-m", "filesim"]


def filesim(
    *args: str, check: bool = True, timeout: float = 60, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`filesim ARGS`, in this process's environment or in `env`."""
    proc = subprocess.run(
        [*FILESIM, *args], capture_output=True, text=True, timeout=timeout,
        env={**(os.environ if env is None else env), "COLUMNS": "200"},
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(
            f"filesim {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}"
        )
    return proc


def status(root: Path) -> dict[str, Any]:
    return json.loads(filesim("status", "--json", "--root", str(root)).stdout)  # type: ignore[no-any-return]


@contextmanager
def detached(
    root: Path, *args: str, env: Mapping[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """`filesim up --detach` under `root` for the duration, every server on a free port (unless
    ARGS give --base-port), in `env` if given; yields `status --json`, the JSON a user sees."""
    ports = [] if "--base-port" in args else ["--base-port", "0"]
    filesim("up", "--detach", "--root", str(root), *ports, *args, env=env)
    try:
        yield status(root)
    finally:
        filesim("down", "--root", str(root), check=False)


def restart_on_the_same_ports(root: Path, doc: dict[str, Any]) -> None:
    """`filesim down`, then `up --detach` of the built-in topology with every server on the
    port `doc` (its `status --json`) shows, so a mounted client finds its server again.

    Not `--base-port` of the first server's port: the first `up` took free ports wherever the
    kernel gave them, and base + 1, base + 2 ... are ports in the ephemeral range that any
    connection on the machine may hold by then."""
    ports = {s["name"]: s["port"] for s in doc["servers"]}
    topology = default_topology()
    servers = [s.model_copy(update={"port": ports[s.name]}) for s in topology.servers]
    config = root / "same-ports.yaml"
    config.write_text(dump_topology(topology.model_copy(update={"servers": servers})))
    filesim("down", "--root", str(root))
    filesim("up", "--detach", "--root", str(root), "--config", str(config))


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in doc["servers"]}


def nfs_url(server: dict[str, Any], path: str = "") -> str:
    port = server["port"]
    return f"nfs://127.0.0.1{server['export']}{path}?version=3&nfsport={port}&mountport={port}"
