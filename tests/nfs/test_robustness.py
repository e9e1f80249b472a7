"""Bad input never crashes or bloats the server, and other clients keep being served."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filesim.nfsclient.client import NfsClient
from filesim.oncrpc.const import AcceptStat
from filesim.oncrpc.message import encode_call
from filesim.oncrpc.programs import MOUNT_PROGRAM, NFS_PROGRAM, PORTMAP_PROGRAM, NfsProc
from filesim.oncrpc.record import RecordError, RecordReader, frame
from filesim.oncrpc.xdr import Unpacker
from tests.support.rig import Rig, make_rig
from tests.support.threaded import serving


def _reply_header(data: bytes) -> tuple[int, int, int]:
    u = Unpacker(data)
    xid, msg_type, reply_stat = u.uint32(), u.uint32(), u.uint32()
    assert msg_type == 1
    if reply_stat == 0:
        u.uint32(), u.opaque()
        return xid, reply_stat, u.uint32()
    return xid, reply_stat, u.uint32()


@pytest.fixture(scope="module")
def fuzz_rig(tmp_path_factory: pytest.TempPathFactory) -> tuple[Rig, bytes]:
    rig = make_rig(tmp_path_factory.mktemp("fuzz") / "export")
    root = rig.mount()
    (rig.root / "file").write_bytes(b"x" * 100)
    (rig.root / "dir").mkdir()
    return rig, root


def _valid_calls(root: bytes) -> list[bytes]:
    calls = []
    for proc in NfsProc:
        args = struct.pack(">I", len(root)) + root + b"\0\0\0\x04file" + b"\0" * 40
        calls.append(encode_call(int(proc) + 100, NFS_PROGRAM, 3, proc, args))
    return calls


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_and_mutated_messages_get_a_proper_answer(
    fuzz_rig: tuple[Rig, bytes], data: st.DataObject
) -> None:
    rig, root = fuzz_rig
    if data.draw(st.booleans()):
        message = data.draw(st.binary(max_size=400))
    else:
        message = bytearray(data.draw(st.sampled_from(_valid_calls(root))))
        for _ in range(data.draw(st.integers(1, 8))):
            pos = data.draw(st.integers(0, len(message) - 1))
            message[pos] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(message)))
        message = bytes(message[:cut])
    try:
        parts = rig.dispatcher.dispatch(message, "127.0.0.1")
    except RecordError:
        return  # unreadable header: the server closes that connection, nothing else
    if parts is None:
        return  # a reply message: ignored
    reply = b"".join(parts)
    xid, _, _ = _reply_header(reply)
    assert xid == struct.unpack_from(">I", message)[0]
    # the tree is intact whatever the garbage did
    assert (rig.root / "dir").is_dir()


def _call(sock: socket.socket, message: bytes) -> bytes:
    sock.sendall(frame(message))
    reader = RecordReader()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        records = reader.feed(chunk)
        if records:
            return records[0]


def test_rpc_level_errors_over_a_socket(tmp_path: Path) -> None:
    with (
        serving(tmp_path / "e") as server,
        socket.create_connection(("127.0.0.1", server.port)) as s,
    ):
        assert _reply_header(_call(s, encode_call(1, 123456, 1, 0)))[2] == AcceptStat.PROG_UNAVAIL
        mismatch = _call(s, encode_call(2, NFS_PROGRAM, 5, 0))
        assert _reply_header(mismatch)[2] == AcceptStat.PROG_MISMATCH
        assert struct.unpack_from(">II", mismatch, 24) == (3, 4)  # NFS 3 and 4
        assert (
            _reply_header(_call(s, encode_call(3, NFS_PROGRAM, 3, 99)))[2]
            == AcceptStat.PROC_UNAVAIL
        )
        assert (
            _reply_header(_call(s, encode_call(4, MOUNT_PROGRAM, 3, 1)))[2]
            == AcceptStat.GARBAGE_ARGS
        )
        assert (
            _reply_header(_call(s, encode_call(5, PORTMAP_PROGRAM, 2, 0)))[2] == AcceptStat.SUCCESS
        )
        bad_auth = bytearray(encode_call(6, NFS_PROGRAM, 3, 0))
        bad_auth[24:28] = struct.pack(">I", 99)
        xid, reply_stat, reject = _reply_header(_call(s, bytes(bad_auth)))
        assert (xid, reply_stat, reject) == (6, 1, 1)  # MSG_DENIED, AUTH_ERROR


def test_garbage_and_huge_records_close_only_that_connection(tmp_path: Path) -> None:
    with serving(tmp_path / "e") as server:
        good = NfsClient("127.0.0.1", server.port)
        root = good.mnt("/data")
        with socket.create_connection(("127.0.0.1", server.port)) as evil:
            evil.sendall(struct.pack(">I", 0x80000000 | 0x7FFFFFF0))  # a 2 GiB record
            evil.settimeout(5)
            assert evil.recv(10) == b""  # closed, nothing buffered
        with socket.create_connection(("127.0.0.1", server.port)) as evil:
            evil.sendall(frame(b"\xff\xff"))  # not even an RPC header
            evil.settimeout(5)
            assert evil.recv(10) == b""
        good.null()
        assert good.getattr(root).is_dir
        good.close()


def test_multi_fragment_call_over_a_socket(tmp_path: Path) -> None:
    with (
        serving(tmp_path / "e") as server,
        socket.create_connection(("127.0.0.1", server.port)) as s,
    ):
        s.sendall(frame(encode_call(77, NFS_PROGRAM, 3, 0), fragment_size=8))
        reader = RecordReader()
        records: list[bytes] = []
        while not records:
            records = reader.feed(s.recv(4096))
        assert _reply_header(records[0]) == (77, 0, AcceptStat.SUCCESS)


def test_pipelined_calls_all_answered(tmp_path: Path) -> None:
    with (
        serving(tmp_path / "e") as server,
        socket.create_connection(("127.0.0.1", server.port)) as s,
    ):
        s.sendall(b"".join(frame(encode_call(i, NFS_PROGRAM, 3, 0)) for i in range(200)))
        reader = RecordReader()
        xids: list[int] = []
        while len(xids) < 200:
            xids += [_reply_header(r)[0] for r in reader.feed(s.recv(65536))]
        assert sorted(xids) == list(range(200))
