"""Offsets and sizes past the largest file offset get a proper NFS error, not a traceback
(issue 10, item 6): READ -> INVAL (v4: empty, end of file), WRITE / SETATTR size / ALLOCATE -> FBIG, SEEK -> NXIO,
for NFSv3 and NFSv4, and nothing is logged per call."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import pytest

from filesim.nfs.v4.const import Op, Status
from filesim.oncrpc.programs import NfsProc, NfsStat
from tests.nfs.v4.v4rig import bitmap, call, compound, dispatcher, name
from tests.support.rig import make_rig, sattr

HUGE = [1 << 63, (1 << 64) - 1]


def test_v3_huge_offsets_and_sizes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rig = make_rig(tmp_path / "e")
    root = rig.mount()
    fh = rig.create(root, "f")
    for offset in HUGE:
        p = rig.fh(fh)
        p.uint64(offset)
        p.uint32(10)
        assert rig.fails(NfsProc.READ, p) == NfsStat.INVAL
        p = rig.fh(fh)
        p.uint64(offset)
        p.uint32(3)
        p.uint32(2)  # FILE_SYNC
        p.opaque(b"xyz")
        assert rig.fails(NfsProc.WRITE, p) == NfsStat.FBIG
        p = rig.fh(fh)
        sattr(p, size=offset)
        p.bool(False)
        assert rig.fails(NfsProc.SETATTR, p) == NfsStat.FBIG
    # the last byte that fits: a write ending past it is too big as well
    p = rig.fh(fh)
    p.uint64((1 << 63) - 2)
    p.uint32(3)
    p.uint32(0)
    p.opaque(b"xyz")
    assert rig.fails(NfsProc.WRITE, p) == NfsStat.FBIG
    assert (rig.root / "f").stat().st_size == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def _fattr_size(size: int) -> bytes:
    return bitmap(1 << 4) + struct.pack(">IQ", 8, size)  # FATTR4_SIZE


def test_v4_huge_offsets_and_sizes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    d = dispatcher(tmp_path / "e")
    (tmp_path / "e" / "f").write_bytes(b"abc")
    to_file = [(Op.PUTROOTFH, b""), (Op.LOOKUP, name("data")), (Op.LOOKUP, name("f"))]
    anonymous = bytes(16)
    for offset in HUGE:
        read = anonymous + struct.pack(">QI", offset, 10)
        # past the end of file: nothing, and end of file (v4 looks at the size first)
        assert call(d, compound([*to_file, (Op.READ, read)]))[1][-1] == (Op.READ, Status.OK)
        write = anonymous + struct.pack(">QII", offset, 2, 3) + b"xyz\0"
        assert call(d, compound([*to_file, (Op.WRITE, write)]))[1][-1] == (
            Op.WRITE, Status.FBIG,
        )  # fmt: skip
        setattr_ = anonymous + _fattr_size(offset)
        assert call(d, compound([*to_file, (Op.SETATTR, setattr_)]))[1][-1] == (
            Op.SETATTR, Status.FBIG,
        )  # fmt: skip
    assert (tmp_path / "e" / "f").read_bytes() == b"abc"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
