"""A COMPOUND resolves a filehandle once while only operations that change nothing run, and
afresh after any other: GETATTR after SETATTR, WRITE or REMOVE reports the change."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from filesim.nfs.attrs import Attrs
from filesim.nfs.dispatch import Dispatcher
from filesim.nfs.export import Export, ExportConfig
from filesim.nfs.layer import VfsLayer
from filesim.nfs.v4.const import Attr, Op, Status
from filesim.nfs.vfs import Vfs
from filesim.oncrpc.xdr import Unpacker
from tests.nfs.v4.v4rig import bitmap, call, compound, name
from tests.support.backend import store

_SIZE = bitmap(1 << Attr.SIZE)
_ANONYMOUS = bytes(16)  # the all-zero stateid: no open needed for SETATTR or WRITE in 4.0


class CountingStats(VfsLayer):
    """The real store, with every stat counted by path."""

    def __init__(self, inner: Vfs) -> None:
        super().__init__(inner)
        self.stats: list[str] = []

    def stat(self, path: str) -> Attrs:
        self.stats.append(path)
        return self.inner.stat(path)


@pytest.fixture
def rig(tmp_path: Path) -> tuple[Dispatcher, CountingStats]:
    root = tmp_path / "export"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "file").write_bytes(b"x" * 10)
    (root / "dir" / "gone").write_bytes(b"")
    vfs = CountingStats(store(root))
    return Dispatcher(Export(ExportConfig(name="t"), vfs, b"s" * 32), 2049), vfs


def _to(*names: str) -> list[tuple[int, bytes]]:
    ops: list[tuple[int, bytes]] = [(Op.PUTROOTFH, b"")]
    return ops + [(Op.LOOKUP, name(n)) for n in ("data", *names)]


def _results(reply: bytes) -> tuple[list[tuple[int, int]], list[int]]:
    """The (operation, status) pairs of `reply` (a COMPOUND4res) and the sizes its GETATTRs
    report."""
    u = Unpacker(reply)
    u.uint32(), u.uint32(), u.uint32(), u.uint32(), u.opaque()  # xid .. verifier
    assert u.uint32() == 0
    u.uint32(), u.opaque()  # the COMPOUND's status (its last operation's) and tag
    statuses: list[tuple[int, int]] = []
    sizes: list[int] = []
    for _ in range(u.uint32()):
        op, status = u.uint32(), u.uint32()
        statuses.append((op, status))
        if status != Status.OK:
            break
        if op == Op.GETATTR:
            for _ in range(u.uint32()):
                u.uint32()
            sizes.append(struct.unpack(">Q", bytes(u.opaque()))[0])
        elif op == Op.SETATTR:
            for _ in range(u.uint32()):
                u.uint32()
        elif op == Op.GETFH:
            u.opaque()
        elif op == Op.ACCESS:
            u.uint32(), u.uint32()
        elif op == Op.WRITE:
            u.uint32(), u.uint32(), u.fixed_opaque(8)
        elif op == Op.REMOVE:
            u.bool(), u.uint64(), u.uint64()
    return statuses, sizes


def _sizes(reply: bytes) -> list[int]:
    statuses, sizes = _results(reply)
    assert all(status == Status.OK for _, status in statuses), statuses
    return sizes


def test_a_handle_put_and_looked_at_is_resolved_once(
    rig: tuple[Dispatcher, CountingStats],
) -> None:
    d, vfs = rig
    ops = [*_to("dir", "file"), (Op.GETFH, b""), (Op.GETATTR, _SIZE), (Op.ACCESS, b"\0\0\0\x3f"),
           (Op.GETATTR, _SIZE)]  # fmt: skip
    vfs.stats.clear()
    assert _sizes(call(d, compound(ops))[2]) == [10, 10]
    assert vfs.stats.count("dir/file") == 1, vfs.stats
    assert vfs.stats.count("dir") == 1, vfs.stats


def test_getattr_after_a_change_sees_it(rig: tuple[Dispatcher, CountingStats]) -> None:
    d, _ = rig
    truncate = _ANONYMOUS + _SIZE + struct.pack(">IQ", 8, 3)
    ops = [*_to("dir", "file"), (Op.GETATTR, _SIZE), (Op.SETATTR, truncate), (Op.GETATTR, _SIZE)]
    assert _sizes(call(d, compound(ops))[2]) == [10, 3]
    write = _ANONYMOUS + struct.pack(">QII", 3, 2, 5) + b"grow\0\0\0\0"  # 5 bytes at 3, FILE_SYNC
    ops = [*_to("dir", "file"), (Op.GETATTR, _SIZE), (Op.WRITE, write), (Op.GETATTR, _SIZE)]
    assert _sizes(call(d, compound(ops))[2]) == [3, 8]


def test_a_handle_removed_in_the_compound_is_stale_after(
    rig: tuple[Dispatcher, CountingStats],
) -> None:
    d, _ = rig
    ops = [*_to("dir", "gone"), (Op.GETATTR, _SIZE), (Op.SAVEFH, b""), *_to("dir"),
           (Op.REMOVE, name("gone")), (Op.RESTOREFH, b""), (Op.GETATTR, _SIZE)]  # fmt: skip
    statuses, sizes = _results(call(d, compound(ops))[2])
    assert sizes == [0]
    assert statuses[-1] == (Op.GETATTR, Status.STALE), statuses
