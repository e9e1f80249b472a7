#!/usr/bin/env python3
"""The CPU cost of one NFS call inside the server, without a socket or an event loop.

    python3 bench/nfs_dispatch.py [--dir /dev/shm] [--repeat 7]

Calls go straight into `Dispatcher.dispatch` of an export composed as `filesim up` composes it
(`NotifyingVfs(FaultyVfs(LocalVfs))`, a listener that records events, no fault active), on a
tree on tmpfs: NULL, GETATTR, LOOKUP, ACCESS, READ and WRITE of 4 KiB, CREATE+REMOVE, and
READDIR/READDIRPLUS pages of a 2,000-entry directory (the first page lists and sorts it; a
later page comes from the cached listing), and a later page of an NFSv4 READDIR with the
attributes nfs-rs asks for. Figures are per-thread CPU time (`thread_time`), the
minimum and median of --repeat rounds, so other processes on a shared machine matter little.
Prints a table and one line `FILESIM_NFS_DISPATCH {json}`. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from filesim.nfs.dispatch import Dispatcher
from filesim.nfs.export import Export, ExportConfig
from filesim.nfs.faults import FaultyVfs
from filesim.nfs.fileids import FileIdVfs
from filesim.nfs.localfs import LocalVfs
from filesim.nfs.notify import NotifyingVfs
from filesim.nfs.vfs import Vfs
from filesim.oncrpc.const import AuthFlavor
from filesim.oncrpc.message import Credentials, encode_call
from filesim.oncrpc.programs import MOUNT_PROGRAM, NFS_PROGRAM, MountProc, NfsProc
from filesim.oncrpc.xdr import Packer, Unpacker

CRED = Credentials(AuthFlavor.AUTH_SYS, 0, 0, (), "bench")
CLIENT = "127.0.0.1"
_xids = itertools.count(1)


def call(prog: int, proc: int, args: bytes = b"") -> bytes:
    return encode_call(next(_xids), prog, 3, proc, args, CRED)


def args(*fields: tuple[str, object]) -> bytes:
    p = Packer()
    for kind, value in fields:
        getattr(p, kind)(value)
    return p.getvalue()


def results(dispatcher: Dispatcher, record: bytes) -> Unpacker:
    """The results of an NFS or MOUNT reply, after its status (which must be 0)."""
    parts = dispatcher.dispatch(record, CLIENT)
    assert parts is not None
    u = Unpacker(b"".join(parts))
    header = [u.uint32() for _ in range(6)]
    assert header[2] == 0 and header[5] == 0 and u.uint32() == 0, "call failed"
    return u


def build_tree(root: Path, entries: int) -> None:
    root.mkdir()
    (root / "f.txt").write_bytes(b"x" * 4096)
    (root / "d").mkdir()
    for i in range(entries):
        (root / "d" / f"file-{i:05}").touch()


def nfs(proc: NfsProc, *fields: tuple[str, object]) -> bytes:
    return call(NFS_PROGRAM, proc, args(*fields))


def calls(dispatcher: Dispatcher) -> list[tuple[str, list[bytes], int]]:
    """(name, records dispatched per round, rounds) for each measurement."""
    mnt = call(MOUNT_PROGRAM, MountProc.MNT, args(("string", "/data")))
    root = bytes(results(dispatcher, mnt).opaque())

    def lookup(name: str) -> bytes:
        u = results(dispatcher, nfs(NfsProc.LOOKUP, ("opaque", root), ("string", name)))
        return bytes(u.opaque())

    f, d = lookup("f.txt"), lookup("d")
    sattr = [("uint32", v) for v in (1, 0o644, 0, 0, 0, 0, 0)]  # mode 644, nothing else
    first = ("uint64", 0), ("fixed_opaque", bytes(8))
    first_page = results(dispatcher, nfs(NfsProc.READDIRPLUS, ("opaque", d), *first,
                                         ("uint32", 8192), ("uint32", 32768)))  # fmt: skip
    assert first_page.bool()
    first_page.fixed_opaque(84)  # the directory's fattr3
    later = ("uint64", 500), ("fixed_opaque", bytes(first_page.fixed_opaque(8)))
    new = ("opaque", root), ("string", "new")
    P = NfsProc
    return [
        ("NULL", [nfs(P.NULL)], 20000),
        ("GETATTR", [nfs(P.GETATTR, ("opaque", f))], 20000),
        ("LOOKUP", [nfs(P.LOOKUP, ("opaque", root), ("string", "f.txt"))], 20000),
        ("ACCESS", [nfs(P.ACCESS, ("opaque", f), ("uint32", 0x3F))], 20000),
        ("READ 4 KiB", [nfs(P.READ, ("opaque", f), ("uint64", 0), ("uint32", 4096))], 10000),
        ("WRITE 4 KiB", [nfs(P.WRITE, ("opaque", f), ("uint64", 0), ("uint32", 4096),
                             ("uint32", 0), ("opaque", b"y" * 4096))], 10000),
        ("CREATE+REMOVE", [nfs(P.CREATE, *new, ("uint32", 0), *sattr), nfs(P.REMOVE, *new)], 3000),
        # The later page first: each first page makes a new listing, and after a few hundred
        # the one `later` pages through is dropped (it would be listed again every time).
        ("READDIRPLUS later page", [nfs(P.READDIRPLUS, ("opaque", d), *later, ("uint32", 8192),
                                        ("uint32", 32768))], 1000),
        ("v4 READDIR later page", [v4_readdir(dispatcher)], 300),
        ("READDIRPLUS first page", [nfs(P.READDIRPLUS, ("opaque", d), *first, ("uint32", 8192),
                                        ("uint32", 32768))], 100),
        ("READDIR first page", [nfs(P.READDIR, ("opaque", d), *first, ("uint32", 32768))], 200),
    ]  # fmt: skip


# The attributes nfs-rs asks of each entry in a READDIR (Linux asks nearly the same): type,
# size, fsid, ACL (not supported), handle, fileid, mode, links, owner, group, rawdev, space
# used, atime, ctime, mtime.
_V4_ENTRY_ATTRS = (1, 4, 8, 12, 19, 20, 33, 35, 36, 37, 41, 45, 47, 52, 53)


def v4_readdir(dispatcher: Dispatcher) -> bytes:
    """A v4.0 COMPOUND (PUTROOTFH, LOOKUP data, LOOKUP d, READDIR from cookie 500, 32 KiB)."""

    def compound(cookie: int, verifier: bytes) -> bytes:
        words = [0, 0]
        for bit in _V4_ENTRY_ATTRS:
            words[bit // 32] |= 1 << bit % 32
        p = Packer()
        p.string("b"), p.uint32(0), p.uint32(4), p.uint32(24)  # tag, minor 0, 4 ops, PUTROOTFH
        for name in ("data", "d"):
            p.uint32(15), p.string(name)  # LOOKUP
        p.uint32(26), p.uint64(cookie), p.fixed_opaque(verifier)  # READDIR
        p.uint32(8192), p.uint32(32768), p.uint32(2), p.uint32(words[0]), p.uint32(words[1])
        return encode_call(next(_xids), NFS_PROGRAM, 4, 1, p.getvalue(), CRED)

    parts = dispatcher.dispatch(compound(0, bytes(8)), CLIENT)
    assert parts is not None
    reply = b"".join(parts)
    at = reply.index(bytes.fromhex("0000001a00000000")) + 8  # READDIR, NFS4_OK: the verifier
    return compound(500, reply[at : at + 8])


def measure(dispatch: Callable[[bytes, str], object], records: list[bytes], rounds: int,
            repeat: int) -> list[float]:  # fmt: skip
    per_call = []
    for _ in range(repeat):
        started = time.thread_time()
        for _ in range(rounds):
            for record in records:
                dispatch(record, CLIENT)
        per_call.append((time.thread_time() - started) / rounds * 1e6)
    return per_call


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument(
        "--fileids", choices=["native", "table"], default="native",
        help="table: file ids from filesim's table (FileIdVfs), as a FAT or exFAT root has",
    )  # fmt: skip
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="filesim-dispatch-", dir=options.dir))
    events: list[str] = []
    try:
        build_tree(workdir / "export", options.entries)
        store: Vfs = LocalVfs(workdir / "export")
        if options.fileids == "table":
            store = FileIdVfs(store, workdir / "fileids.log", native_stable=True)
        storage = FaultyVfs(store)
        vfs = NotifyingVfs(storage, lambda kind, path, dest: events.append(kind))
        dispatcher = Dispatcher(Export(ExportConfig(name="bench"), vfs, b"k" * 32), 2049)
        figures = {}
        print(f"{'call':24} {'min µs':>10} {'median µs':>10}")
        for name, records, rounds in calls(dispatcher):
            runs = measure(dispatcher.dispatch, records, rounds, options.repeat)
            figures[name] = {
                "min_us": round(min(runs), 2),
                "median_us": round(statistics.median(runs), 2),
            }
            print(f"{name:24} {min(runs):10.2f} {statistics.median(runs):10.2f}")
        assert events, "no change event was told"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("FILESIM_NFS_DISPATCH " + json.dumps({"repeat": options.repeat, "calls": figures}))


if __name__ == "__main__":
    main()
