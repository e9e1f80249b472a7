"""OwnershipVfs (nfs/ownership.py): owners, modes and devices kept for an unprivileged server,
through the real NFSv3 procedures (the sans-IO rig), on the real filesystem of the test.

The layer does not depend on who runs it, so these run as root in CI too: what they check is
what reaches the disk (the real owner untouched, the special bits only in the metadata) and
what every procedure presents.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from filesim import nodemeta
from filesim.nfs.const import ACCESS_MODIFY, ACCESS_READ, Ftype
from filesim.nfs.types import decode_post_op_attr
from filesim.oncrpc.programs import NfsProc, NfsStat
from filesim.sync.scan import scan
from tests.support.rig import Rig, make_rig, sattr, user

BOTH_BACKENDS = False  # the fd backend (LocalVfs) keeps the metadata in extended attributes


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return make_rig(tmp_path / "export", owners=tmp_path / "owners.json", fsid=7)


@pytest.fixture
def root(rig: Rig) -> bytes:
    return rig.mount("/data")


def _setattr(rig: Rig, fh: bytes, **attrs: int) -> None:
    p = rig.fh(fh)
    sattr(p, **attrs)
    p.bool(False)  # no guard
    rig.ok(NfsProc.SETATTR, p)


def test_chown_is_presented_and_the_disk_owner_stays(rig: Rig, root: bytes) -> None:
    fh = rig.create(root, "f")
    _setattr(rig, fh, uid=1234, gid=5678)
    fattr = rig.getattr(fh)
    assert (fattr.uid, fattr.gid) == (1234, 5678)
    on_disk = os.lstat(rig.root / "f")
    assert (on_disk.st_uid, on_disk.st_gid) == (os.geteuid(), os.getegid())
    meta = nodemeta.decode(os.getxattr(rig.root / "f", nodemeta.XATTR))
    assert meta is not None and (meta.uid, meta.gid) == (1234, 5678)


def test_special_bits_live_in_the_metadata(rig: Rig, root: bytes) -> None:
    fh = rig.create(root, "s")
    _setattr(rig, fh, mode=0o4750)
    assert rig.getattr(fh).mode == 0o4750
    assert stat.S_IMODE(os.lstat(rig.root / "s").st_mode) == 0o750
    _setattr(rig, fh, mode=0)  # the server can still serve what nobody may read
    assert rig.getattr(fh).mode == 0
    assert stat.S_IMODE(os.lstat(rig.root / "s").st_mode) == 0o600
    assert rig.read(fh, 0, 10)[0] == b""


def test_a_device_is_a_placeholder_presented_as_a_device(rig: Rig, root: bytes) -> None:
    p = rig.dirop(root, "tty")
    p.uint32(Ftype.CHR)
    sattr(p, mode=0o620, uid=5, gid=5)
    p.uint32(4)
    p.uint32(64)
    rig.ok(NfsProc.MKNOD, p)
    fh = rig.lookup(root, "tty")
    fattr = rig.getattr(fh)
    assert (fattr.type, fattr.rdev, fattr.mode, fattr.uid, fattr.size) == (
        Ftype.CHR, (4, 64), 0o620, 5, 0
    )  # fmt: skip
    on_disk = os.lstat(rig.root / "tty")
    assert stat.S_ISREG(on_disk.st_mode) and on_disk.st_size == 0
    p = rig.fh(fh)
    p.uint64(0)
    p.uint32(10)
    assert rig.fails(NfsProc.READ, p) == NfsStat.INVAL  # a client never opens it here
    (rig.root / "empty").touch()
    assert set(scan(rig.root)) == {"empty"}  # nor does the sync carry it
    _setattr(rig, fh, mode=0o600)  # a chmod keeps what the node is
    fattr = rig.getattr(fh)
    assert (fattr.type, fattr.rdev, fattr.mode) == (Ftype.CHR, (4, 64), 0o600)


def test_readdirplus_and_access_see_the_presented_owner(rig: Rig, root: bytes) -> None:
    os.chmod(rig.root, 0o777)
    fh = rig.create(root, "mine", mode=0o600, cred=user(1000))
    assert (rig.getattr(fh).uid, rig.getattr(fh).gid) == (1000, 1000)
    p = rig.fh(fh)
    p.uint32(ACCESS_READ | ACCESS_MODIFY)
    u = rig.ok(NfsProc.ACCESS, p, user(1000))
    decode_post_op_attr(u)
    assert u.uint32() == ACCESS_READ | ACCESS_MODIFY
    u = rig.ok(NfsProc.ACCESS, p, user(1001))
    decode_post_op_attr(u)
    assert u.uint32() == 0
    listed = {e.name: e.attrs for e in rig.readdirplus(root)[0]}
    assert listed["mine"] is not None and listed["mine"].uid == 1000


def test_fifo_mode_and_owner_live_in_the_side_file(rig: Rig, root: bytes) -> None:
    p = rig.dirop(root, "pipe")
    p.uint32(Ftype.FIFO)
    sattr(p, mode=0o111, uid=3, gid=4)  # user attributes are refused on FIFOs by Linux
    rig.ok(NfsProc.MKNOD, p)
    fh = rig.lookup(root, "pipe")
    before = rig.getattr(fh).ctime
    time.sleep(0.01)  # a ctime step (ns timestamps) between the two, not a wait for an event
    _setattr(rig, fh, mode=0o1222)
    fattr = rig.getattr(fh)
    assert (fattr.type, fattr.mode, fattr.uid, fattr.gid) == (Ftype.FIFO, 0o1222, 3, 4)
    assert fattr.ctime > before  # a chmod changes the node's ctime, wherever it is kept


def test_symlink_owner_lives_in_the_side_file_and_persists(tmp_path: Path) -> None:
    rig = make_rig(tmp_path / "export", owners=tmp_path / "owners.json", fsid=7)
    root = rig.mount("/data")
    p = rig.dirop(root, "link")
    sattr(p, uid=77, gid=88)
    p.string("target")
    rig.ok(NfsProc.SYMLINK, p)
    again = make_rig(tmp_path / "export", owners=tmp_path / "owners.json", fsid=7)
    fh = again.lookup(again.mount("/data"), "link")
    assert (again.getattr(fh).uid, again.getattr(fh).gid) == (77, 88)
    again.ok(NfsProc.REMOVE, again.dirop(again.mount("/data"), "link"))
    assert "77" not in (tmp_path / "owners.json").read_text()


def test_files_without_metadata_show_their_real_owner(rig: Rig, root: bytes) -> None:
    (rig.root / "from-folder").write_text("x")
    fattr = rig.getattr(rig.lookup(root, "from-folder"))
    assert (fattr.uid, fattr.gid) == (os.geteuid(), os.getegid())


def test_policy_rules_apply_to_presented_owners(rig: Rig, root: bytes) -> None:
    fh = rig.create(root, "theirs")
    _setattr(rig, fh, uid=1000)
    p = rig.fh(fh)
    sattr(p, uid=1001)
    p.bool(False)
    assert rig.fails(NfsProc.SETATTR, p, user(1001)) == NfsStat.PERM  # not the owner
    p = rig.fh(fh)
    sattr(p, mode=0o4755)
    p.bool(False)
    rig.ok(NfsProc.SETATTR, p, user(1000))  # the presented owner may chmod
    rig.write(fh, 0, b"x")  # root writes: the bits stay
    assert rig.getattr(fh).mode == 0o4755
    p = rig.fh(fh)
    p.uint64(0)
    p.uint32(1)
    p.uint32(2)
    p.opaque(b"y")
    _setattr(rig, fh, mode=0o4777)
    rig.ok(NfsProc.WRITE, p, user(1001))  # an unprivileged writer kills them
    assert rig.getattr(fh).mode == 0o777
