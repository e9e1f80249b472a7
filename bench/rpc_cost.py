#!/usr/bin/env python3
"""What one RPC costs the whole server, against what the dispatcher accounts for.

    python3 bench/rpc_cost.py [--calls 3000] [--rounds 3]

Starts `filesim up` (one direct-storage server: the stack `runtime/build.py` composes, with the
runtime's event log, metrics observer and change listener), sends it NULL, GETATTR, LOOKUP and
CREATE+REMOVE calls one at a time over one TCP connection from a child process, and reads the
server's CPU time (/proc/PID/task/*/schedstat: ns, user + system) around each batch. The same
calls go straight into a `Dispatcher` in this process (`thread_time`, as bench/nfs_dispatch.py
does) and, as the floor of any asyncio server, a bare asyncio server answers fixed replies to
the same client. Minimum of --rounds for each. Prints a table and `FILESIM_RPC_COST {...}`.
A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import nfs_dispatch as nd  # noqa: E402
from servers import start_filesim  # noqa: E402

from filesim.oncrpc.programs import MOUNT_PROGRAM, MountProc, NfsProc  # noqa: E402

# The client: sends the records given (hex, one per line on stdin) `calls` times in turn, one
# call at a time, and waits for each reply; prints "ready" first and "done" after each batch.
CLIENT = r"""
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def recv(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError
        b += c
    return b
def call(rec):
    s.sendall(struct.pack(">I", 0x80000000 | len(rec)) + rec)
    while True:
        (m,) = struct.unpack(">I", recv(4)); reply = recv(m & 0x7FFFFFFF)
        if m & 0x80000000: return reply
print("ready", flush=True)
for line in sys.stdin:
    calls, *hexes = line.split()
    recs = [bytes.fromhex(h) for h in hexes]
    if calls == "0":
        for r in recs: sys.stdout.write(call(r).hex() + "\n")
    else:
        for _ in range(int(calls)):
            for r in recs: call(r)
    print("done", flush=True)
"""


def cpu_ns(pid: int) -> int:
    tasks = Path(f"/proc/{pid}/task")
    return sum(int((tasks / t / "schedstat").read_text().split()[0]) for t in os.listdir(tasks))


class Client:
    def __init__(self, port: int) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", CLIENT, str(port)], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
        self._line()

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def run(self, calls: int, records: list[bytes]) -> list[bytes]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{calls} {' '.join(r.hex() for r in records)}\n")
        self.proc.stdin.flush()
        replies = []
        while (line := self._line()) != "done":
            replies.append(bytes.fromhex(line))
        return replies

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def results(reply: bytes) -> nd.Unpacker:
    u = nd.Unpacker(reply)
    header = [u.uint32() for _ in range(6)]
    if header[2] or header[5] or u.uint32():
        raise RuntimeError(f"call failed: {header}")
    return u


def tests(client: Client) -> dict[str, list[bytes]]:
    mnt = nd.call(MOUNT_PROGRAM, MountProc.MNT, nd.args(("string", "/data")))
    root = bytes(results(client.run(0, [mnt])[0]).opaque())
    sattr = [("uint32", v) for v in (1, 0o644, 0, 0, 0, 0, 0)]
    made = nd.nfs(NfsProc.CREATE, ("opaque", root), ("string", "f.txt"), ("uint32", 0), *sattr)
    results(client.run(0, [made])[0])
    look = nd.nfs(NfsProc.LOOKUP, ("opaque", root), ("string", "f.txt"))
    f = bytes(results(client.run(0, [look])[0]).opaque())
    new = ("opaque", root), ("string", "new")
    return {
        "NULL": [nd.nfs(NfsProc.NULL)],
        "GETATTR": [nd.nfs(NfsProc.GETATTR, ("opaque", f))],
        "LOOKUP": [look],
        "CREATE+REMOVE": [nd.nfs(NfsProc.CREATE, *new, ("uint32", 0), *sattr),
                          nd.nfs(NfsProc.REMOVE, *new)],
    }  # fmt: skip


def served_cost(workdir: Path, calls: int, rounds: int) -> dict[str, float]:
    """µs of server CPU per round of each test, against `filesim up`."""
    served = start_filesim(workdir / "filesim", ["bench"])
    try:
        client = Client(served.ports[0])
        figures = {}
        for name, records in tests(client).items():
            client.run(200, records)  # warm
            best = float("inf")
            for _ in range(rounds):
                before = cpu_ns(served.pid)
                client.run(calls, records)
                best = min(best, (cpu_ns(served.pid) - before) / calls / 1000)
            figures[name] = best
        client.close()
        return figures
    finally:
        served.stop()


class _Fixed(asyncio.BufferedProtocol):
    """Answers each record with a fixed 28-byte reply: an asyncio server doing nothing else."""

    REPLY = struct.pack(">I", 0x80000000 | 24) + bytes(24)

    def connection_made(self, transport: Any) -> None:
        self.transport, self.buf, self.have = transport, bytearray(1 << 16), 0

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self.buf)[self.have :]

    def buffer_updated(self, nbytes: int) -> None:
        self.have += nbytes
        while self.have >= 4:
            size = (struct.unpack_from(">I", self.buf)[0] & 0x7FFFFFFF) + 4
            if self.have < size:
                return
            self.buf[: self.have - size] = self.buf[size : self.have]  # (no resize: exported)
            self.have -= size
            self.transport.write(self.REPLY)


def floor_cost(calls: int, rounds: int) -> float:
    """µs of CPU per call of a bare asyncio server (user + system of this thread)."""

    async def main() -> float:
        server = await asyncio.get_running_loop().create_server(_Fixed, "127.0.0.1", 0)
        client = Client(server.sockets[0].getsockname()[1])
        record = nd.nfs(NfsProc.NULL)
        best = float("inf")
        for _ in range(rounds):
            before = time.thread_time()
            await asyncio.to_thread(client.run, calls, [record])
            best = min(best, (time.thread_time() - before) / calls * 1e6)
        client.close()
        server.close()
        return best

    return asyncio.run(main())


def dispatch_cost(workdir: Path, rounds: int) -> dict[str, float]:
    """µs of CPU per round inside `Dispatcher.dispatch` alone (bench/nfs_dispatch.py's setup)."""
    from filesim.nfs.dispatch import Dispatcher
    from filesim.nfs.export import Export, ExportConfig
    from filesim.nfs.faults import FaultyVfs
    from filesim.nfs.localfs import LocalVfs
    from filesim.nfs.notify import NotifyingVfs

    nd.build_tree(workdir / "export", 10)
    vfs = NotifyingVfs(FaultyVfs(LocalVfs(workdir / "export")), lambda kind, path, dest: None)
    dispatcher = Dispatcher(Export(ExportConfig(name="bench"), vfs, b"k" * 32), 2049)
    wanted = {"NULL", "GETATTR", "LOOKUP", "CREATE+REMOVE"}
    return {
        name: min(nd.measure(dispatcher.dispatch, records, max(count // 4, 500), rounds))
        for name, records, count in nd.calls(dispatcher)
        if name in wanted
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="filesim-rpc-cost-", dir="/dev/shm"))
    load = os.getloadavg()
    try:
        served = served_cost(workdir, args.calls, args.rounds)
        inside = dispatch_cost(workdir, args.rounds)
        floor = floor_cost(args.calls, args.rounds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{'call (one round)':18} {'server CPU µs':>14} {'dispatcher µs':>14} {'outside µs':>11}")
    for name, total in served.items():
        print(f"{name:18} {total:14.1f} {inside[name]:14.1f} {total - inside[name]:11.1f}")
    print(f"bare asyncio server, one call: {floor:.1f} µs CPU (user + system)")
    print(f"load average {load[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
    out = {"served_us": served, "dispatcher_us": inside, "bare_asyncio_us": floor,
           "load": [load[0], os.getloadavg()[0]]}  # fmt: skip
    print("FILESIM_RPC_COST " + json.dumps(out))


if __name__ == "__main__":
    main()
