#!/usr/bin/env python3
"""The CPU of one call through the server's own code, with what the runtime hangs on it.

    python3 bench/call_stack.py [--calls NULL,GETATTR,LOOKUP,CREATE+REMOVE] [--without ...]

Records go into a `Connection` (record reader, limits, dispatch, reply framing) whose transport
takes the replies and sends nothing, over the stack `filesim up` composes: NotifyingVfs(FaultyVfs(
LocalVfs)) on tmpfs, a change listener that emits each change to an `EventBus` writing
events.jsonl (as the runtime's does), the metrics observer, the handle generations file. No
socket and no event loop turn: what is left is filesim's Python. `--without listener,
generations,observer` drops parts, to see what each costs. Per-thread CPU (`thread_time`), the
minimum of 7 rounds; prints one line per call and `FILESIM_CALL_STACK {...}`. Between
bench/nfs_dispatch.py (the dispatcher alone) and bench/rpc_cost.py (the whole server process).
A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import nfs_dispatch as nd  # noqa: E402

from filesim.events import Event, EventBus  # noqa: E402
from filesim.nfs.connection import Connection  # noqa: E402
from filesim.nfs.export import Export, ExportConfig  # noqa: E402
from filesim.nfs.faults import FaultyVfs  # noqa: E402
from filesim.nfs.localfs import LocalVfs  # noqa: E402
from filesim.nfs.notify import NotifyingVfs  # noqa: E402
from filesim.nfs.server import NfsServer  # noqa: E402
from filesim.runtime.metrics import TopologyMetrics  # noqa: E402


class _Sink(asyncio.Transport):
    """A transport that takes every reply and sends nothing."""

    def write(self, data: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        # peername and sockname; no socket (READ data is then never sent from its file)
        return None if name == "socket" else ("127.0.0.1", 1)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


def _server(workdir: Path, without: set[str]) -> NfsServer:
    bus = EventBus(workdir / "events.jsonl")

    def listener(kind: str, path: str, dest: str | None) -> None:
        if "listener" not in without:
            detail = {"dest": dest} if dest else {}
            bus.emit(Event(f"nfs.{kind}", "bench", "nfs", path, None, detail))

    vfs = NotifyingVfs(FaultyVfs(LocalVfs(workdir / "export")), listener)
    gens = None if "generations" in without else workdir / "generations.log"
    observer = None if "observer" in without else TopologyMetrics().nfs_observer("bench")
    export = Export(ExportConfig(name="bench", generations_file=gens), vfs, b"k" * 32)
    return NfsServer(export, observer=observer, udp=False)


def _cost(conn: Connection, records: list[bytes], rounds: int) -> float:
    """µs of CPU to answer `records` once, through `conn` (minimum of `rounds`)."""
    data = b"".join(struct.pack(">I", 0x80000000 | len(r)) + r for r in records)

    def once() -> None:
        conn.get_buffer(-1)[: len(data)] = data
        conn.buffer_updated(len(data))

    for _ in range(300):
        once()
    count = 5000 // len(records)
    best = float("inf")
    for _ in range(rounds):
        started = time.thread_time()
        for _ in range(count):
            once()
        best = min(best, (time.thread_time() - started) / count * 1e6)
    return best


async def _measure(workdir: Path, names: list[str], without: set[str]) -> dict[str, float]:
    nd.build_tree(workdir / "export", 10)
    server = _server(workdir, without)
    conn = Connection(server)
    conn.connection_made(_Sink())
    records = {name: recs for name, recs, _ in nd.calls(server.dispatcher)}
    return {name: _cost(conn, records[name], 7) for name in names}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", default="NULL,GETATTR,LOOKUP,CREATE+REMOVE")
    parser.add_argument("--without", default="", help="listener,generations,observer")
    args = parser.parse_args()
    without = {w for w in args.without.split(",") if w}
    workdir = Path(tempfile.mkdtemp(prefix="filesim-call-stack-", dir="/dev/shm"))
    try:
        figures = asyncio.run(_measure(workdir, args.calls.split(","), without))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for name, us in figures.items():
        print(f"{name:16} {us:8.1f} µs CPU")
    print("FILESIM_CALL_STACK " + json.dumps({"us": figures, "without": sorted(without)}))


if __name__ == "__main__":
    main()
