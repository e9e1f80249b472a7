"""Change notification (`NotifyingVfs`): what each client call tells the sync agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from filesim.nfs.const import Ftype
from filesim.oncrpc.programs import NfsProc, NfsStat
from tests.support.rig import Rig, make_rig, sattr, user


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return make_rig(tmp_path / "export")


@pytest.fixture
def root(rig: Rig) -> bytes:
    return rig.mount("/data")


def _exclusive(rig: Rig, root: bytes, name: str, verifier: bytes) -> NfsStat:
    p = rig.dirop(root, name)
    p.uint32(2)  # EXCLUSIVE
    p.fixed_opaque(verifier)
    reply = rig.nfs(NfsProc.CREATE, p)
    assert reply.status is not None
    return reply.status


def test_an_exclusive_create_is_one_create_not_a_data_write(rig: Rig, root: bytes) -> None:
    assert _exclusive(rig, root, "x", b"verifier") == NfsStat.OK
    assert _exclusive(rig, root, "x", b"verifier") == NfsStat.OK  # a retry changes nothing
    assert _exclusive(rig, root, "x", b"another!") == NfsStat.EXIST
    assert rig.changes == [("create", "x", None)]


def test_create_with_attributes_is_one_create(rig: Rig, root: bytes) -> None:
    p = rig.dirop(root, "f")
    p.uint32(0)  # UNCHECKED, on a new file: size and mtime come with the creation
    sattr(p, mode=0o600, size=0, mtime=(1_000_000, 0))
    rig.ok(NfsProc.CREATE, p)
    assert rig.changes == [("create", "f", None)]
    assert (rig.root / "f").stat().st_mtime == 1_000_000


def test_unchecked_create_of_an_existing_file_is_a_write_only_with_a_size(
    rig: Rig, root: bytes
) -> None:
    (rig.root / "f").write_bytes(b"old")
    for size in (None, 0):
        p = rig.dirop(root, "f")
        p.uint32(0)
        sattr(p, size=size)
        rig.ok(NfsProc.CREATE, p)
    assert rig.changes == [("write", "f", None)]


def test_each_change_is_told_once_with_its_kind(rig: Rig, root: bytes) -> None:
    fh = rig.create(root, "f")
    rig.write(fh, 0, b"data")
    p = rig.fh(fh)
    sattr(p, mode=0o640)
    p.bool(False)  # no guard
    rig.ok(NfsProc.SETATTR, p)
    p = rig.fh(fh)
    p.uint64(0)
    p.uint32(0)
    rig.ok(NfsProc.COMMIT, p)
    d = rig.mkdir(root, "d")
    p = rig.dirop(d, "s")
    sattr(p)
    p.string("target")
    rig.ok(NfsProc.SYMLINK, p)
    p = rig.dirop(d, "pipe")
    p.uint32(Ftype.FIFO)
    sattr(p)
    rig.ok(NfsProc.MKNOD, p)
    p = rig.fh(fh)
    p.opaque(d)
    p.string("hard")
    rig.ok(NfsProc.LINK, p)
    p = rig.dirop(root, "f")
    p.opaque(d)
    p.string("g")
    rig.ok(NfsProc.RENAME, p)
    for name in ("g", "hard", "s", "pipe"):
        rig.ok(NfsProc.REMOVE, rig.dirop(d, name))
    rig.ok(NfsProc.RMDIR, rig.dirop(root, "d"))
    assert rig.changes == [
        ("create", "f", None), ("write", "f", None), ("setattr", "f", None),
        ("commit", "f", None), ("mkdir", "d", None), ("symlink", "d/s", None),
        ("mknod", "d/pipe", None), ("link", "d/hard", None), ("rename", "f", "d/g"),
        ("remove", "d/g", None), ("remove", "d/hard", None), ("remove", "d/s", None),
        ("remove", "d/pipe", None), ("rmdir", "d", None),
    ]  # fmt: skip


def test_refused_and_failed_calls_tell_nothing(rig: Rig, root: bytes) -> None:
    (rig.root / "d").mkdir()
    (rig.root / "d" / "f").touch()
    assert rig.fails(NfsProc.RMDIR, rig.dirop(root, "d")) == NfsStat.NOTEMPTY
    assert rig.fails(NfsProc.REMOVE, rig.dirop(root, "missing")) == NfsStat.NOENT
    (rig.root).chmod(0o755)
    p = rig.dirop(root, "new")
    p.uint32(0)
    sattr(p)
    assert rig.fails(NfsProc.CREATE, p, user(1000)) == NfsStat.ACCES
    assert rig.changes == []
