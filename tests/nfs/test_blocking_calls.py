"""Calls that block on the disk run in the server's own executor, never on the event loop
(issue 10, item 10): NFSv3 COMMIT and NFSv4 COMPOUNDs with a COMMIT or a stable WRITE."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

from filesim.nfs.v4.blocking import may_block
from filesim.nfs.v4.const import Op, Stable
from filesim.nfsclient.client import NfsClient
from filesim.oncrpc.message import encode_call
from filesim.oncrpc.programs import NFS_PROGRAM
from filesim.oncrpc.record import RecordReader, frame
from filesim.waiting import poll_until
from tests.nfs.v4.v4rig import ROOT, compound, name
from tests.support.threaded import serving

_TO_FILE = [(Op.PUTROOTFH, b""), (Op.LOOKUP, name("data")), (Op.LOOKUP, name("f"))]


def _write(stable: int) -> tuple[int, bytes]:
    return Op.WRITE, bytes(16) + struct.pack(">QII", 0, stable, 3) + b"abc\0"


def test_which_compounds_may_block() -> None:
    commit = (Op.COMMIT, struct.pack(">QI", 0, 0))
    seq = (Op.SEQUENCE, bytes(32))
    assert may_block(compound([*_TO_FILE, commit]), sync_export=False)
    assert may_block(compound([seq, (Op.PUTFH, b"\0\0\0\x05abcde\0\0\0"), commit], 1), False)
    assert may_block(compound([*_TO_FILE, _write(Stable.FILE_SYNC)]), sync_export=False)
    assert not may_block(compound([*_TO_FILE, _write(Stable.UNSTABLE)]), sync_export=False)
    assert may_block(compound([*_TO_FILE, _write(Stable.UNSTABLE)]), sync_export=True)
    assert not may_block(compound([*_TO_FILE, (Op.GETATTR, b"\0\0\0\0")]), False)
    assert not may_block(compound([*_TO_FILE, commit])[:-20], False)  # truncated: no


def _v4_call(sock: socket.socket, xid: int, ops: list[tuple[int, bytes]]) -> bytes:
    sock.sendall(frame(encode_call(xid, NFS_PROGRAM, 4, 1, compound(ops), ROOT)))
    reader = RecordReader()
    while True:
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        if records := reader.feed(chunk):
            return records[0]


def test_commits_run_in_the_servers_executor(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    def listener(kind: str, path: str, dest: str | None) -> None:
        seen.append((kind, threading.current_thread().name))

    root = tmp_path / "e"
    with serving(root, listener) as server, socket.create_connection(
        ("127.0.0.1", server.port)
    ) as sock:  # fmt: skip
        (root / "f").write_bytes(b"")
        _v4_call(sock, 1, [*_TO_FILE, (Op.COMMIT, struct.pack(">QI", 0, 0))])
        _v4_call(sock, 2, [*_TO_FILE, _write(Stable.FILE_SYNC)])
        with NfsClient("127.0.0.1", server.port) as v3:
            fh = v3.walk(v3.mnt("/data"), "f")
            v3.commit(fh)
        poll_until(lambda: len(seen) >= 3, 10, what="the three changes")
    assert seen[0][1].startswith("nfs4-t"), seen  # v4 COMMIT: the v4 lane
    assert seen[1][1].startswith("nfs4-t"), seen  # v4 FILE_SYNC WRITE: the v4 lane
    assert seen[2][1].startswith("nfs-t"), seen  # v3 COMMIT: the server's executor
