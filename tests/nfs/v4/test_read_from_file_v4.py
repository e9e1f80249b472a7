"""NFSv4 READ data left in its file (`FileData`, sent by the connection with sendfile), except
in a reply the server keeps for retries: that one holds the bytes, and its file is closed."""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

from filesim.nfs.dispatch import Dispatcher
from filesim.nfs.filedata import FileData, Part, materialized
from filesim.nfs.v4.const import Op
from filesim.oncrpc.message import encode_call
from filesim.oncrpc.programs import NFS_PROGRAM
from tests.nfs.v4.v4rig import ROOT, compound, dispatcher, name

SIZE = 300 * 1024
ANONYMOUS = bytes(16)  # stateid4: seqid 0, other all zeros
_BIG = [(Op.PUTROOTFH, b""), (Op.LOOKUP, name("data")), (Op.LOOKUP, name("big"))]


def _read(offset: int, count: int) -> tuple[int, bytes]:
    return Op.READ, ANONYMOUS + struct.pack(">QI", offset, count)


def _write(offset: int, data: bytes) -> tuple[int, bytes]:
    pad = bytes(-len(data) % 4)
    return Op.WRITE, ANONYMOUS + struct.pack(">QII", offset, 2, len(data)) + data + pad


def _parts(d: Dispatcher, ops: list[tuple[int, bytes]], xid: int) -> list[Part]:
    record = encode_call(xid, NFS_PROGRAM, 4, 1, compound(ops), ROOT)
    parts = d.dispatch_parts(record, "127.0.0.1")
    assert parts is not None
    return list(parts)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _setup(tmp_path: Path) -> tuple[Dispatcher, bytes]:
    payload = random.Random(7).randbytes(SIZE)
    d = dispatcher(tmp_path / "e")
    (tmp_path / "e" / "big").write_bytes(payload)
    return d, payload


def test_a_large_v4_read_is_left_in_its_file(tmp_path: Path) -> None:
    d, payload = _setup(tmp_path)
    ops = [
        (Op.PUTROOTFH, b""),
        (Op.LOOKUP, name("data")),
        (Op.LOOKUP, name("big")),
        _read(1000, 200_000),
    ]
    parts = _parts(d, ops, xid=1)
    files = [p for p in parts if isinstance(p, FileData)]
    assert [(f.offset, f.count) for f in files] == [(1000, 200_000)]
    reply = b"".join(materialized(parts))  # closes the file
    assert reply.endswith(payload[1000:201_000])
    assert struct.unpack_from(">II", reply, len(reply) - 200_000 - 8) == (0, 200_000)  # not eof


def test_a_kept_v40_reply_holds_the_data_not_the_file(tmp_path: Path) -> None:
    d, payload = _setup(tmp_path)
    # a WRITE makes the COMPOUND one the 4.0 duplicate request cache keeps for a retry
    ops = [*_BIG, _write(SIZE, b"tail"), _read(0, SIZE + 4)]
    _parts(d, _BIG, xid=1)  # (a store may open a file of its own at first use)
    fds = _open_fds()
    first = _parts(d, ops, xid=2)
    assert all(isinstance(p, bytes) for p in first)
    assert _open_fds() == fds
    retried = _parts(d, ops, xid=2)  # the same bytes again: answered from the cache
    assert b"".join(first) == b"".join(retried)  # type: ignore[arg-type]
    assert b"".join(first).endswith(payload + b"tail")  # type: ignore[arg-type]
    assert _open_fds() == fds
