"""How a reply reaches the transport: one write for a reply of small parts (each write is a
send(2) and a TCP segment the client wakes up for), large READ data on its own, uncopied."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from filesim.nfs.connection import Connection
from filesim.nfs.export import Export, ExportConfig
from filesim.nfs.server import NfsServer
from filesim.nfs.v4.const import Op
from filesim.oncrpc.message import encode_call
from filesim.oncrpc.programs import NFS_PROGRAM, NfsProc
from filesim.oncrpc.record import frame
from filesim.oncrpc.xdr import Packer, Unpacker
from tests.nfs.v4.v4rig import ROOT, bitmap, compound, name
from tests.support.backend import store


class _Transport:
    """The socket side of a transport: records what the connection writes."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, key: str) -> Any:
        return None if key == "socket" else ("127.0.0.1", 1023)

    def set_write_buffer_limits(self, high: int) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def _connected(root: Path) -> tuple[Connection, _Transport]:
    export = Export(ExportConfig(name="t"), store(root), b"s" * 32)
    conn, transport = Connection(NfsServer(export)), _Transport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


def _receive(conn: Connection, record: bytes) -> None:
    buf = conn.get_buffer(-1)
    buf[: len(record)] = record
    conn.buffer_updated(len(record))


def _reply(writes: list[bytes]) -> bytes:
    data = b"".join(writes)
    (mark,) = struct.unpack_from(">I", data)
    assert mark == 0x80000000 | (len(data) - 4)  # one record, marked with its whole length
    return data[4:]


async def test_a_compound_reply_goes_out_in_one_write(tmp_path: Path) -> None:
    (tmp_path / "e").mkdir()
    conn, transport = _connected(tmp_path / "e")
    ops = [(Op.PUTROOTFH, b""), (Op.LOOKUP, name("data")), (Op.GETFH, b""),
           (Op.GETATTR, bitmap(0x0000011A))]  # fmt: skip
    _receive(conn, frame(encode_call(5, NFS_PROGRAM, 4, 1, compound(ops), ROOT)))
    assert len(transport.writes) == 1
    u = Unpacker(_reply(transport.writes))
    assert u.uint32() == 5 and u.uint32() == 1  # xid, REPLY
    u.uint32(), u.uint32(), u.opaque(), u.uint32()  # accepted, verifier, SUCCESS
    assert u.uint32() == 0  # NFS4_OK
    u.opaque()
    assert u.uint32() == len(ops)


async def test_large_read_data_is_written_on_its_own_after_its_header(tmp_path: Path) -> None:
    root = tmp_path / "e"
    root.mkdir()
    payload = bytes(range(256)) * 512  # 128 KiB
    (root / "f").write_bytes(payload)
    conn, transport = _connected(root)
    root_fh = conn._server.export.handle_for(conn._server.export.vfs.stat(""), "")
    lookup = Packer()
    lookup.opaque(root_fh)
    lookup.string("f")
    _receive(conn, frame(encode_call(6, NFS_PROGRAM, 3, NfsProc.LOOKUP, lookup.getvalue(), ROOT)))
    u = Unpacker(_reply(transport.writes))
    u.fixed_opaque(24)  # the RPC reply header
    assert u.uint32() == 0  # NFS3_OK
    fh = bytes(u.opaque())
    transport.writes.clear()
    read = Packer()
    read.opaque(fh)
    read.uint64(0)
    read.uint32(len(payload))
    _receive(conn, frame(encode_call(7, NFS_PROGRAM, 3, NfsProc.READ, read.getvalue(), ROOT)))
    # no socket to send the file to: mark and header, then the data as it was read
    assert len(transport.writes) == 2
    assert transport.writes[1] == payload
    assert _reply(transport.writes).endswith(payload)
