"""A large READ's data goes from the file to the socket (sendfile), in its place in the stream
of replies; a file that shrinks under it closes the connection rather than send wrong bytes."""

from __future__ import annotations

import os
import random
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from filesim.nfs.faults import FaultSpec
from filesim.nfs.filedata import FileData, ShortRead
from filesim.nfs.layer import VfsLayer
from filesim.nfs.server import NfsServer
from filesim.nfs.vfs import Vfs
from filesim.oncrpc.message import encode_call
from filesim.oncrpc.programs import NFS_PROGRAM, NfsProc, NfsStat
from filesim.oncrpc.record import frame
from filesim.oncrpc.xdr import Packer, Unpacker
from tests.support.rig import ROOT, make_rig
from tests.support.threaded import serving

MiB = 1 << 20


def _payload(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(min(n - len(data), 64 * 1024))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def _recv_reply(sock: socket.socket) -> Unpacker:
    return _Stream(b"", sock).reply()


def _call(xid: int, proc: NfsProc, args: Packer) -> bytes:
    return frame(encode_call(xid, NFS_PROGRAM, 3, proc, args.getvalue(), ROOT))


def _handle(sock: socket.socket, server: NfsServer, name: str) -> bytes:
    export = server.export
    args = Packer()
    args.opaque(export.handle_for(export.vfs.stat(""), ""))
    args.string(name)
    sock.sendall(_call(1, NfsProc.LOOKUP, args))
    u = _recv_reply(sock)
    u.fixed_opaque(24)  # the RPC reply header
    assert u.uint32() == NfsStat.OK
    return bytes(u.opaque())


def _read_call(xid: int, fh: bytes, offset: int, count: int) -> bytes:
    return _call(xid, NfsProc.READ, _read_args(fh, offset, count))


def _read_reply(u: Unpacker) -> tuple[int, bytes, bool]:
    xid = u.uint32()
    u.fixed_opaque(20)
    assert u.uint32() == NfsStat.OK
    if u.uint32():  # post_op_attr
        u.fixed_opaque(84)
    count, eof = u.uint32(), bool(u.uint32())
    data = bytes(u.opaque())
    assert len(data) == count
    return xid, data, eof


@pytest.fixture
def sendfile_bytes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """What os.sendfile sent, call by call (the real call, watched)."""
    sent: list[int] = []
    real = os.sendfile

    def watched(*args: Any) -> int:
        n = real(*args)
        sent.append(n)
        return n

    monkeypatch.setattr(os, "sendfile", watched)
    return sent


def test_reads_in_flight_arrive_whole_and_in_order(
    tmp_path: Path, sendfile_bytes: list[int]
) -> None:
    payload = _payload(8 * MiB + 12_345)
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "big").write_bytes(payload)
    offsets = list(range(0, len(payload), MiB))
    with (
        serving(tmp_path / "e") as server,
        socket.create_connection((server.host, server.port), timeout=30) as sock,
    ):
        # A small receive window fills the server's socket, so the rest of a reply waits in
        # the transport; each call is sent while the client has only taken part of the
        # replies before it, so the socket has room again while the transport still holds
        # bytes: what comes next must queue behind them, not go out through sendfile.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        fh = _handle(sock, server, "big")
        _small_send_buffer(server)
        taken = bytearray()
        for i, off in enumerate(offsets):
            sock.sendall(_read_call(100 + i, fh, off, MiB))
            taken += _recv_exactly(sock, 300_000)
        stream = _Stream(bytes(taken), sock)
        for i, off in enumerate(offsets):
            xid, data, eof = _read_reply(stream.reply())
            assert xid == 100 + i
            assert data == payload[off : off + MiB]
            assert eof == (off + MiB >= len(payload))
    assert sum(sendfile_bytes) > 0  # the path under test was taken


def _small_send_buffer(server: NfsServer) -> None:
    """The server's socket of the one connection, limited to a small send buffer."""
    (conn,) = server._connections
    assert conn._transport is not None
    sock = conn._transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)


class _Stream:
    """Replies from what was already taken off the socket, then from the socket."""

    def __init__(self, taken: bytes, sock: socket.socket) -> None:
        self._taken, self._sock = taken, sock

    def _exactly(self, n: int) -> bytes:
        head, self._taken = self._taken[:n], self._taken[n:]
        return head + (_recv_exactly(self._sock, n - len(head)) if len(head) < n else b"")

    def reply(self) -> Unpacker:
        (mark,) = struct.unpack(">I", self._exactly(4))
        assert mark & 0x80000000, "one fragment per reply"
        return Unpacker(self._exactly(mark & 0x7FFFFFFF))


def test_a_file_that_shrinks_under_a_read_closes_the_connection(tmp_path: Path) -> None:
    payload = _payload(2 * MiB)
    (tmp_path / "e").mkdir()
    big = tmp_path / "e" / "big"
    big.write_bytes(payload)

    class Shrinking(VfsLayer):  # a writer truncates the file between the stat and the send
        def open_read(self, path: str) -> int:
            fd = self.inner.open_read(path)
            os.truncate(big, 1000)
            return fd

    wrap: Callable[[Vfs], Vfs] = Shrinking
    with serving(tmp_path / "e", wrap=wrap) as server:
        with socket.create_connection((server.host, server.port), timeout=30) as sock:
            fh = _handle(sock, server, "big")
            sock.sendall(_read_call(7, fh, 0, MiB))
            with pytest.raises((EOFError, ConnectionError)):
                _read_reply(_recv_reply(sock))
        big.write_bytes(payload[:1000])  # small now: read into memory, no truncation
        with socket.create_connection((server.host, server.port), timeout=30) as sock:
            sock.sendall(_read_call(8, _handle(sock, server, "big"), 0, MiB))
            assert _read_reply(_recv_reply(sock)) == (8, payload[:1000], True)


def test_file_data_reports_a_file_that_shrank(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(_payload(300_000))
    data = FileData(os.open(path, os.O_RDONLY), 100, 200_000)
    try:
        assert data.read(199_000) == path.read_bytes()[199_100:200_100]
        os.truncate(path, 150_000)
        with pytest.raises(ShortRead, match="shrank"):
            data.read()
    finally:
        data.close()
    data.close()  # twice: no error, nothing else closed


def test_a_path_fault_fails_a_large_read_too(tmp_path: Path) -> None:
    rig = make_rig(tmp_path / "store")
    (rig.root / "a.csv").write_bytes(_payload(MiB))
    root = rig.mount("/data")
    fh = rig.lookup(root, "a.csv")
    rig.faults.apply([FaultSpec(kind="error", error="EIO", procedures=["READ"], paths=["*.csv"])])
    assert rig.fails(NfsProc.READ, _read_args(fh, 0, MiB)) == NfsStat.IO
    rig.faults.apply([])
    u = rig.ok(NfsProc.READ, _read_args(fh, 0, MiB))
    if u.uint32():
        u.fixed_opaque(84)
    assert u.uint32() == MiB and u.uint32() == 1  # count and eof: the dispatcher read it all
    assert bytes(u.opaque()) == (rig.root / "a.csv").read_bytes()


def _read_args(fh: bytes, offset: int, count: int) -> Packer:
    args = Packer()
    args.opaque(fh)
    args.uint64(offset)
    args.uint32(count)
    return args
