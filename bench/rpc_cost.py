#!/usr/bin/env python3
"""What one RPC costs the whole server, against what the dispatcher accounts for.

    python3 bench/rpc_cost.py [--calls 3000] [--rounds 3] [--ganesha] [--same-cpu N]

Starts `filesim up` (one direct-storage server: the stack `runtime/build.py` composes, with the
runtime's event log, metrics observer and change listener), sends it NULL, GETATTR, LOOKUP and
CREATE+REMOVE calls one at a time over one TCP connection from a child process, and reads the
server's CPU time (/proc/PID/task/*/schedstat: ns, user + system) around each batch. The same
calls go straight into a `Dispatcher` in this process (`thread_time`, as bench/nfs_dispatch.py
does) and, as the floor of any asyncio server, a bare asyncio server answers fixed replies to
the same client. `--ganesha`: NFS-Ganesha's whole CPU (all its threads) for the same calls,
from the same client (its MOUNT on its own port). Minimum of --rounds for each. Prints a table
and `FILESIM_RPC_COST {...}`. A benchmark, not a test.

`--same-cpu N` runs every server, the client and this process on CPU N alone (`same_cpu` in
servers.py says why the figures are then lower and steadier).
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import nfs_dispatch as nd  # noqa: E402
from servers import SAME_CPU_HELP, Served, same_cpu, start_filesim, start_ganesha  # noqa: E402

from filesim.oncrpc.programs import MOUNT_PROGRAM, MountProc, NfsProc  # noqa: E402

# The client: sends the records given (hex, one per line on stdin) `calls` times in turn, one
# call at a time, and waits for each reply; prints "ready" first and "done" after each batch.
# Each call gets a new xid: a server's duplicate request cache (Ganesha's) would answer a
# repeated CREATE or REMOVE from its cache instead of doing it.
CLIENT = r"""
import itertools, socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
xids = itertools.count(0x10000000)
def recv(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError
        b += c
    return b
def call(rec):
    rec = struct.pack(">I", next(xids)) + rec[4:]
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


def tests(client: Client, mounter: Client, path: str) -> dict[str, list[bytes]]:
    """The records of each test; `mounter` reaches the server's MOUNT service at `path`."""
    mnt = nd.call(MOUNT_PROGRAM, MountProc.MNT, nd.args(("string", path)))
    root = bytes(results(mounter.run(0, [mnt])[0]).opaque())
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


def served_cost(served: Served, calls: int, rounds: int) -> dict[str, float]:
    """µs of server CPU per round of each test."""
    client = Client(served.ports[0])
    mounter = client if served.mount_ports[0] == served.ports[0] else Client(
        served.mount_ports[0]
    )  # fmt: skip
    figures = {}
    for name, records in tests(client, mounter, served.v3_paths[0]).items():
        client.run(200, records)  # warm
        best = float("inf")
        for _ in range(rounds):
            before = cpu_ns(served.pid)
            client.run(calls, records)
            best = min(best, (cpu_ns(served.pid) - before) / calls / 1000)
        figures[name] = best
    client.close()
    if mounter is not client:
        mounter.close()
    return figures


def measure_server(
    start: Callable[[], Served | None], calls: int, rounds: int
) -> dict[str, float] | None:
    served = start()
    if served is None:
        return None
    try:
        return served_cost(served, calls, rounds)
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
    parser.add_argument(
        "--ganesha",
        action="store_true",
        help="NFS-Ganesha's CPU for the same calls (needs it installed, root)",
    )
    parser.add_argument("--same-cpu", type=int, metavar="N", help=SAME_CPU_HELP)
    args = parser.parse_args()
    if args.same_cpu is not None:
        same_cpu(args.same_cpu)
    workdir = Path(tempfile.mkdtemp(prefix="filesim-rpc-cost-", dir="/dev/shm"))
    load = os.getloadavg()
    try:
        fs = workdir / "filesim"
        served = measure_server(lambda: start_filesim(fs, ["bench"]), args.calls, args.rounds)
        assert served is not None
        ganesha = None
        if args.ganesha:
            ganesha = measure_server(
                lambda: start_ganesha(workdir / "ganesha"), args.calls, args.rounds
            )
        inside = dispatch_cost(workdir, args.rounds)
        floor = floor_cost(args.calls, args.rounds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(served, ganesha, inside, floor, load, args.same_cpu)


def report(
    served: dict[str, float], ganesha: dict[str, float] | None, inside: dict[str, float],
    floor: float, load: tuple[float, float, float], cpu: int | None,
) -> None:  # fmt: skip
    print(f"{'call (one round)':18} {'server CPU µs':>14} {'dispatcher µs':>14} {'outside µs':>11}"
          + (f" {'Ganesha µs':>11}" if ganesha else ""))  # fmt: skip
    for name, total in served.items():
        row = f"{name:18} {total:14.1f} {inside[name]:14.1f} {total - inside[name]:11.1f}"
        print(row + (f" {ganesha[name]:11.1f}" if ganesha else ""))
    print(f"bare asyncio server, one call: {floor:.1f} µs CPU (user + system)")
    print("placement: " + ("the scheduler's" if cpu is None else f"all on CPU {cpu}"))
    print(f"load average {load[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
    out = {"served_us": served, "dispatcher_us": inside, "bare_asyncio_us": floor,
           "ganesha_us": ganesha, "same_cpu": cpu,
           "load": [load[0], os.getloadavg()[0]]}  # fmt: skip
    print("FILESIM_RPC_COST " + json.dumps(out))


if __name__ == "__main__":
    main()
