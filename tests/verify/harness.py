"""Topologies for verify's end-to-end tests, and running `filesim verify` on them.

`InProcessTopology` runs the real runtime (NFS servers and sync agents) on an event loop in a
background thread, so a test can stop one server while the others keep serving; it writes the
same runtime file `filesim up` writes, so `filesim verify --root` finds it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filesim.runtime.runner import TopologyRunner
from filesim.topology import Layout, load_topology
from tests.support.topology import FILESIM

THREE_SERVERS = """\
profile: {profile}
servers:
  - {{name: nas-input-1, role: input, fsid: 1}}
  - {{name: nas-backup, role: backup, fsid: 4, export: {{readonly: {backup_ro}}}}}
  - {{name: nas-output-1, role: output, fsid: 5}}
"""


def three_servers(tmp: Path, profile: str = "default", backup_readonly: bool = True) -> Path:
    config = tmp / "topology.yaml"
    ro = "true" if backup_readonly else "false"
    config.write_text(THREE_SERVERS.format(profile=profile, backup_ro=ro))
    return config


def verify(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`filesim verify --root ROOT ARGS` in a subprocess, on a wide terminal."""
    return subprocess.run(
        [*FILESIM, "verify", "--root", str(root), *args],
        capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def verify_json(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = verify(root, "--json", *args)
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout)


def results(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["check"], r["server"]): r for r in doc["results"]}


def probes_left(root: Path) -> list[Path]:
    """Every verify probe anywhere under the root: folders and export stores alike."""
    return [p for p in root.rglob(".filesim-verify-*")]


class InProcessTopology:
    def __init__(self, config: Path, root: Path) -> None:
        self.layout = Layout(root)
        self.runner = TopologyRunner(load_topology(config), self.layout, base_port=0)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def start(self) -> None:
        self._thread.start()
        self._call(self.runner.start())

    def stop_server(self, name: str) -> None:
        """Stop one server's NFS listener; the rest of the topology keeps running."""
        self._call(self.runner.server(name).nfs.stop())

    def stop(self) -> None:
        self._call(self.runner.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@contextmanager
def in_process(config: Path, root: Path) -> Iterator[InProcessTopology]:
    topology = InProcessTopology(config, root)
    topology.start()
    try:
        yield topology
    finally:
        topology.stop()
