"""The COMPOUND decoder: garbage, limits and fuzzing never stop the server or escape it."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filesim.nfs.dispatch import Dispatcher
from filesim.nfs.export import Export, ExportConfig
from filesim.nfs.v4.const import Op, Status
from tests.nfs.v4.v4rig import bitmap, call, compound, dispatcher, name
from tests.support.backend import store


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory) -> Dispatcher:
    root = tmp_path_factory.mktemp("v4") / "export"
    disp = dispatcher(root)
    (root / "dir").mkdir()
    (root / "dir" / "file").write_bytes(b"x" * 10)
    return disp


def _sane(d: Dispatcher) -> None:
    """A well-formed COMPOUND still gets its answer."""
    status, results, _ = call(d, compound([(Op.PUTROOTFH, b""), (Op.LOOKUP, name("data")),
                                           (Op.LOOKUP, name("dir")), (Op.GETFH, b"")]))  # fmt: skip
    assert status == Status.OK, results
    assert [op for op, _ in results] == [Op.PUTROOTFH, Op.LOOKUP, Op.LOOKUP, Op.GETFH]


def test_limits_and_bad_headers(d: Dispatcher) -> None:
    assert call(d, compound([], minor=3))[0] == Status.MINOR_VERS_MISMATCH
    assert call(d, compound([], tag=b"\xff\xfe"))[0] == Status.INVAL
    assert call(d, compound([], tag=b"t" * 5000))[0] == Status.RESOURCE
    assert call(d, compound([(Op.PUTROOTFH, b"")] * 300))[0] == Status.RESOURCE
    assert call(d, compound([(9999, b"")]))[1] == [(Op.ILLEGAL, Status.OP_ILLEGAL)]
    assert call(d, compound([(Op.SEQUENCE, b"")]))[1] == [(Op.ILLEGAL, Status.OP_ILLEGAL)]
    assert call(d, compound([(Op.SEEK, b"")], minor=1))[1][0][1] == Status.OP_ILLEGAL
    assert call(d, compound([(Op.SETCLIENTID, b"")], minor=1))[1][0][1] == Status.NOTSUPP
    assert call(d, compound([(Op.PUTROOTFH, b"")], minor=1))[1][0][1] == Status.OP_NOT_IN_SESSION
    assert call(d, compound([(Op.GETFH, b"")]))[1] == [(Op.GETFH, Status.NOFILEHANDLE)]
    assert call(d, compound([(Op.PUTFH, struct.pack(">I", 500))]))[1][0][1] == Status.BADXDR
    assert call(d, compound([(Op.PUTFH, name("not a handle"))]))[1][0][1] == Status.BADHANDLE
    assert call(d, compound([(Op.DELEGRETURN, b"")]))[1][0][1] == Status.NOTSUPP
    truncated = compound([(Op.PUTROOTFH, b""), (Op.GETATTR, b"")])
    assert call(d, truncated)[1][-1] == (Op.GETATTR, Status.BADXDR)
    huge_bitmap = compound([(Op.PUTROOTFH, b""), (Op.GETATTR, bitmap(*range(100)))])
    assert call(d, huge_bitmap)[1][-1] == (Op.GETATTR, Status.BADXDR)
    _sane(d)


def test_readonly_export_answers_rofs(tmp_path: Path) -> None:
    ro = dispatcher(tmp_path / "ro", readonly=True)
    ops = [(Op.PUTROOTFH, b""), (Op.LOOKUP, name("data")), (Op.REMOVE, name("x"))]
    assert call(ro, compound(ops))[1][-1] == (Op.REMOVE, Status.ROFS)


def test_disallowed_client_is_refused(tmp_path: Path) -> None:
    import ipaddress

    only = dispatcher(tmp_path / "e", networks=[ipaddress.ip_network("10.0.0.0/8")])
    assert call(only, compound([(Op.PUTROOTFH, b"")]))[1] == [(Op.PUTROOTFH, Status.ACCESS)]


def _ops(d: Dispatcher) -> list[bytes]:
    """Well-formed operations to mutate."""
    return [
        compound([(Op.PUTROOTFH, b""), (Op.LOOKUP, name("data")), (Op.GETATTR, bitmap(0xFFFFFFFF, 0xFFFFFFFF))]),
        compound([(Op.PUTROOTFH, b""), (Op.LOOKUP, name("data")),
                  (Op.READDIR, bytes(8) + bytes(8) + struct.pack(">II", 4096, 4096) + bitmap(0x3))]),
        compound([(Op.SETCLIENTID, bytes(8) + name("c") + bytes(4) + name("tcp") + name("x") + bytes(4))]),
        compound([(Op.EXCHANGE_ID, bytes(8) + name("c") + bytes(12))], minor=1),
        compound([(Op.SEQUENCE, bytes(16) + bytes(13))], minor=2),
    ]  # fmt: skip


@settings(max_examples=500, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data())
def test_fuzzed_compounds_get_an_answer(d: Dispatcher, data: st.DataObject) -> None:
    if data.draw(st.booleans()):
        header = compound([], minor=data.draw(st.integers(0, 2)))[:-4]
        args = header + data.draw(st.binary(max_size=300))
    else:
        args = bytearray(data.draw(st.sampled_from(_ops(d))))
        for _ in range(data.draw(st.integers(1, 6))):
            pos = data.draw(st.integers(0, len(args) - 1))
            args[pos] = data.draw(st.integers(0, 255))
        args = bytes(args[: data.draw(st.integers(0, len(args)))])
    try:
        call(d, args)
    except AssertionError:
        # a header too broken for a COMPOUND4res: it must still be a proper RPC reply
        from filesim.oncrpc.message import encode_call
        from filesim.oncrpc.programs import NFS_PROGRAM
        from tests.nfs.v4.v4rig import ROOT

        parts = d.dispatch(encode_call(9, NFS_PROGRAM, 4, 1, args, ROOT), "127.0.0.1")
        assert parts is not None and b"".join(parts)[:4] == struct.pack(">I", 9)
    assert (d.export.vfs.stat("dir/file")).st_size == 10


def test_server_keeps_serving_after_the_fuzz(d: Dispatcher) -> None:
    _sane(d)


def test_faults_map_to_v4_statuses_and_every_op_is_observed(tmp_path: Path) -> None:
    from filesim.nfs.faults import FaultyVfs, ServerFaults
    from filesim.topology.faults import FaultSpec

    (tmp_path / "e").mkdir()
    storage = FaultyVfs(store(tmp_path / "e"))
    d = Dispatcher(Export(ExportConfig(name="t"), storage, b"s" * 32), 2049)
    faults = ServerFaults(storage)
    seen: list[tuple[str, str, int]] = []
    d.observer = lambda prog, op, status, secs, size: seen.append((prog, op, status))
    faults.apply([FaultSpec(kind="error", error="IO", procedures=["LOOKUP"])])
    ops = [(Op.PUTROOTFH, b""), (Op.LOOKUP, name("data"))]
    assert call(d, compound(ops))[1] == [(Op.PUTROOTFH, Status.OK), (Op.LOOKUP, Status.IO)]
    assert seen == [("nfs4", "PUTROOTFH", 0), ("nfs4", "LOOKUP", Status.IO)]
    faults.apply([FaultSpec(kind="error", error="JUKEBOX")])
    assert call(d, compound(ops))[1][-1] == (Op.LOOKUP, Status.DELAY)
    faults.apply([FaultSpec(kind="readonly")])
    create = [
        *ops,  # the export's root: the pseudo root above it is read-only anyway
        (Op.CREATE, struct.pack(">I", 2) + name("d") + bitmap() + b"\0\0\0\0"),
    ]
    assert call(d, compound(create))[1][-1] == (Op.CREATE, Status.ROFS)
    faults.apply([])
    assert call(d, compound(create))[1][-1] == (Op.CREATE, Status.OK)


def test_seek_finds_data_and_holes_like_lseek(tmp_path: Path) -> None:
    import os

    d = dispatcher(tmp_path / "e")
    path = tmp_path / "e" / "sparse.bin"
    with path.open("wb") as f:
        f.seek(512 << 10)
        f.write(b"x" * 4096)
        f.truncate(1 << 20)
    fd = os.open(path, os.O_RDONLY)
    try:
        expected = {0: os.lseek(fd, 0, os.SEEK_DATA), 1: os.lseek(fd, 512 << 10, os.SEEK_HOLE)}
    finally:
        os.close(fd)
    for what, offset in ((0, 0), (1, 512 << 10)):
        args = bytes(16) + struct.pack(">QI", offset, what)  # anonymous stateid
        ops = [(Op.PUTROOTFH, b""), (Op.LOOKUP, name("data")), (Op.LOOKUP, name("sparse.bin")),
               (Op.SEEK, args)]  # fmt: skip
        status, results, reply = call(d, compound(ops, minor=0))
        assert results[-1] == (Op.ILLEGAL, Status.OP_ILLEGAL)  # SEEK is 4.2 only
        status, results, reply = _call_42(d, ops)
        assert status == Status.OK, results
        eof, found = struct.unpack(">IQ", reply[-12:])
        assert found == expected[what] and not eof
    beyond = [*ops[:3], (Op.SEEK, bytes(16) + struct.pack(">QI", 2 << 20, 0))]
    assert _call_42(d, beyond)[1][-1] == (Op.SEEK, Status.NXIO)


def _call_42(
    d: Dispatcher, ops: list[tuple[int, bytes]]
) -> tuple[int, list[tuple[int, int]], bytes]:
    """A 4.2 COMPOUND inside a fresh session."""
    from tests.nfs.v4.v4rig import session

    sid = session(d)
    seq = struct.pack(">16sIIII", sid, 1, 0, 0, 0)
    return call(d, compound([(Op.SEQUENCE, seq), *ops], minor=2))


def test_a_retransmitted_40_write_is_answered_from_the_cache_not_done_again(
    tmp_path: Path,
) -> None:
    """The 4.0 duplicate request cache knows a retransmission (same xid, same bytes) of a
    COMPOUND that changed something, also one far larger than the part it checksums."""
    root = tmp_path / "export"
    d = dispatcher(root)
    (root / "f").write_bytes(b"")
    data = b"a" * 3000 + b"b" * 3000  # past the head the digest covers
    anonymous = bytes(16)
    write = struct.pack(">16sQI", anonymous, 0, 0) + struct.pack(">I", len(data)) + data
    ops = compound([(Op.PUTROOTFH, b""), (Op.LOOKUP, name("data")), (Op.LOOKUP, name("f")),
                    (Op.WRITE, write)])  # fmt: skip
    status, results, first = call(d, ops, xid=41)
    assert status == Status.OK, results
    assert (root / "f").read_bytes() == data
    (root / "f").write_bytes(b"changed meanwhile")
    assert call(d, ops, xid=41)[2] == first  # the cached reply, the file left alone
    assert (root / "f").read_bytes() == b"changed meanwhile"
    call(d, ops, xid=42)  # a new call with the same arguments is done again
    assert (root / "f").read_bytes()[: len(data)] == data
