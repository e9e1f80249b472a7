#!/usr/bin/env python3
"""What idle connections cost the NFS server (issue 10, item 4).

    python3 bench/nfs_connections.py [--connections 500]

Serves an empty export in a child process (allocator tuned as `filesim up` does), then opens
--connections TCP connections that each make one NULL call and one 1 MiB call (so each receive
buffer grows once, as after a WRITE) and then stay idle. Prints the server's RSS before, with
the connections open and idle, and after they closed, and one line `FILESIM_CONN_BENCH {json}`.
Targets: an idle connection under 64 KiB, 500 of them under 40 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from filesim.nfs.export import Export, ExportConfig  # noqa: E402
from filesim.nfs.limits import ServerLimits  # noqa: E402
from filesim.nfs.localfs import LocalVfs  # noqa: E402
from filesim.nfs.server import NfsServer  # noqa: E402
from filesim.oncrpc.message import encode_call  # noqa: E402
from filesim.oncrpc.programs import NFS_PROGRAM  # noqa: E402
from filesim.oncrpc.record import frame  # noqa: E402
from filesim.runtime.memory import tune_malloc  # noqa: E402


def _serve(root: str, ports: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    tune_malloc()

    async def run() -> None:
        export = Export(ExportConfig(name="bench"), LocalVfs(Path(root)), b"b" * 32)
        server = NfsServer(export, "127.0.0.1", 0, limits=ServerLimits(max_connections=4096))
        await server.start()
        ports.put(server.port)
        await asyncio.Event().wait()

    asyncio.run(run())


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _call(sock: socket.socket, record: bytes) -> None:
    sock.sendall(record)
    sock.recv(1024)  # a NULL reply is a few dozen bytes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=500)
    args = parser.parse_args()
    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    with tempfile.TemporaryDirectory() as root:
        child = multiprocessing.Process(target=_serve, args=(root, ports), daemon=True)
        child.start()
        try:
            port = ports.get(timeout=30)
            small = frame(encode_call(1, NFS_PROGRAM, 3, 0))
            large = frame(encode_call(2, NFS_PROGRAM, 3, 0, b"\0" * (1 << 20)))
            _call(socket.create_connection(("127.0.0.1", port)), small)  # warm up
            time.sleep(1)
            before = _rss_kib(child.pid)
            socks = []
            for _ in range(args.connections):
                s = socket.create_connection(("127.0.0.1", port))
                _call(s, small)
                _call(s, large)
                socks.append(s)
            peak = _rss_kib(child.pid)
            time.sleep(12)  # quiet connections give their grown buffers back (sweep: 5 s)
            idle = _rss_kib(child.pid)
            for s in socks:
                s.close()
            time.sleep(1)
            after = _rss_kib(child.pid)
        finally:
            child.terminate()
            child.join(10)
    per_conn = (idle - before) * 1024 / args.connections
    print(f"connections            {args.connections}")
    print(f"RSS before             {before / 1024:8.1f} MiB")
    print(f"RSS while busy (peak)  {peak / 1024:8.1f} MiB")
    print(f"RSS idle               {idle / 1024:8.1f} MiB  (+{(idle - before) / 1024:.1f} MiB)")
    print(f"per idle connection    {per_conn / 1024:8.1f} KiB")
    print(f"RSS after close        {after / 1024:8.1f} MiB")
    line = {
        "connections": args.connections, "rss_before_kib": before, "rss_peak_kib": peak,
        "rss_idle_kib": idle, "rss_after_close_kib": after,
        "per_idle_connection_kib": round(per_conn / 1024, 1),
    }  # fmt: skip
    print("FILESIM_CONN_BENCH " + json.dumps(line))


if __name__ == "__main__":
    main()
