"""File ids filesim allocates (issue 13): on a root whose own numbers do not last, a handle
still names its file, and only its file, across remounts, renames and restarts."""

from __future__ import annotations

import os
from pathlib import Path

from filesim.nfs.fileids import FileIdVfs
from filesim.oncrpc.programs import NfsProc, NfsStat
from filesim.sync.watch import REMOTE_FILESYSTEMS
from filesim.topology.filesystems import (
    DRIVE_REMOTE,
    UNSTABLE_IDS,
    bsd_mounts,
    filesystem_type,
    stable_file_ids,
    windows_type,
)
from tests.support.backend import FILEIDS
from tests.support.exfat import exfat_volume
from tests.support.rig import Rig, make_rig

BOTH_BACKENDS = False  # each test picks the ids it needs

MOUNTINFO = """\
22 1 0:21 / / rw - ext4 /dev/sda1 rw
30 22 7:0 / /media/stick rw - vfat /dev/sdb1 rw
31 22 7:1 / /media/card rw - exfat /dev/sdc1 rw
32 22 7:2 / /media/ntfs3 rw - ntfs3 /dev/sdd1 rw
33 22 0:41 / /mnt/share rw - cifs //host/share rw
34 22 0:42 / /mnt/sshfs rw - fuse.sshfs me@host: rw
35 22 7:3 / /mnt/exfat-fuse rw - fuseblk /dev/loop0 rw
"""
MACOS_MOUNT = """\
/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)
/dev/disk4s1 on /Volumes/USB STICK (msdos, local, nodev, nosuid, noowners)
//me@nas/share on /Volumes/share (smbfs, nodev, nosuid, mounted by me)
"""


def test_roots_whose_numbers_do_not_last_are_told_apart() -> None:
    stable = {
        p: stable_file_ids(Path(p), MOUNTINFO)
        for p in ("/home/me", "/media/stick/in", "/media/card", "/media/ntfs3", "/mnt/share",
                  "/mnt/sshfs/x", "/mnt/exfat-fuse")
    }  # fmt: skip
    assert stable == {
        "/home/me": True, "/media/stick/in": False, "/media/card": False,
        "/media/ntfs3": True, "/mnt/share": False, "/mnt/sshfs/x": False,
        "/mnt/exfat-fuse": False,
    }  # fmt: skip
    assert bsd_mounts(MACOS_MOUNT) == [
        ("/", "apfs"),
        ("/Volumes/USB STICK", "msdos"),
        ("/Volumes/share", "smbfs"),
    ]


def test_a_windows_network_drive_counts_as_remote_whatever_its_server_names() -> None:
    """A share on an NTFS server reports "NTFS" to GetVolumeInformationW; GetDriveTypeW is
    what tells it is remote (the Win32 calls themselves cannot run here)."""
    assert windows_type(DRIVE_REMOTE, "NTFS") == "remote"
    assert windows_type(3, "NTFS") == "ntfs"  # DRIVE_FIXED
    assert windows_type(2, "FAT32") == "fat32"  # DRIVE_REMOVABLE
    assert windows_type(3, "") is None
    assert "remote" in UNSTABLE_IDS and "remote" in REMOTE_FILESYSTEMS


def test_auto_gives_an_exfat_root_its_own_ids_and_a_local_disk_native_ones(
    tmp_path: Path,
) -> None:
    with exfat_volume(tmp_path) as volume:
        assert filesystem_type(volume.mountpoint) == "fuseblk"
        assert not stable_file_ids(volume.mountpoint)
        rig = make_rig(volume.mountpoint / "export")
        try:
            assert _id_layer(rig) is not None
        finally:
            rig.export.vfs.close()
    local = make_rig(tmp_path / "local")
    assert _id_layer(local) is None and stable_file_ids(tmp_path)


def _id_layer(rig: Rig) -> FileIdVfs | None:
    layer: object | None = rig.export.vfs
    while layer is not None and not isinstance(layer, FileIdVfs):
        layer = getattr(layer, "inner", None)
    return layer


def _read(rig: Rig, handle: bytes) -> bytes:
    return rig.read(handle, 0, 100)[0]


def test_a_handle_names_its_own_file_after_the_exfat_volume_is_remounted(
    tmp_path: Path,
) -> None:
    """exfat-fuse numbers files in lookup order after a mount: `a`'s old number becomes
    `b`'s. With native numbers (`fileids: native`, and before the table existed) both
    handles answer STALE after the remount: no file has their numbers any more, or the
    wrong one does."""
    with exfat_volume(tmp_path) as volume:
        export = volume.mountpoint / "export"
        rig = make_rig(export)
        root = rig.mount()
        (export / "a.txt").write_bytes(b"I am a")
        (export / "b.txt").write_bytes(b"I am b")
        ha, hb = rig.lookup(root, "a.txt"), rig.lookup(root, "b.txt")
        ids = rig.getattr(ha).fileid, rig.getattr(hb).fileid
        native_a = os.lstat(export / "a.txt").st_ino
        rig.export.vfs.close()

        volume.unmount()
        volume.mount()
        os.lstat(export / "b.txt")  # looked up first: b now has the number a had
        assert os.lstat(export / "b.txt").st_ino <= native_a  # the premise of this test

        again = make_rig(export)
        try:
            assert _read(again, ha) == b"I am a" and _read(again, hb) == b"I am b"
            assert (again.getattr(ha).fileid, again.getattr(hb).fileid) == ids
        finally:
            again.export.vfs.close()


def test_renames_and_removals_on_exfat_keep_handles_to_their_file(tmp_path: Path) -> None:
    with exfat_volume(tmp_path) as volume:
        export = volume.mountpoint / "export"
        rig = make_rig(export)
        try:
            root = rig.mount()
            (export / "old.txt").write_bytes(b"moving")
            (export / "gone.txt").write_bytes(b"removed")
            moving, gone = rig.lookup(root, "old.txt"), rig.lookup(root, "gone.txt")
            fileid = rig.getattr(moving).fileid
            p = rig.dirop(root, "old.txt")
            p.opaque(root)
            p.string("new.txt")
            rig.ok(NfsProc.RENAME, p)
            assert _read(rig, moving) == b"moving" and rig.getattr(moving).fileid == fileid
            rig.ok(NfsProc.REMOVE, rig.dirop(root, "gone.txt"))
            (export / "gone.txt").write_bytes(b"a later file")
            assert rig.fails(NfsProc.GETATTR, rig.fh(gone)) == NfsStat.STALE
            os.rename(export / "new.txt", export / "elsewhere.txt")  # behind the server's back
            assert rig.fails(NfsProc.GETATTR, rig.fh(moving)) == NfsStat.STALE
        finally:
            rig.export.vfs.close()


def test_a_file_replaced_behind_the_servers_back_gets_a_new_id(tmp_path: Path) -> None:
    """`table` on a disk whose numbers last: the number tells the replacement apart."""
    FILEIDS.set("table")
    rig = make_rig(tmp_path / "export")
    root = rig.mount()
    (rig.root / "f.txt").write_bytes(b"first")
    old = rig.lookup(root, "f.txt")
    old_id = rig.getattr(old).fileid
    (rig.root / "new").write_bytes(b"second")
    os.replace(rig.root / "new", rig.root / "f.txt")  # the sync agent's rename into place
    new = rig.lookup(root, "f.txt")
    assert rig.fails(NfsProc.GETATTR, rig.fh(old)) == NfsStat.STALE
    assert _read(rig, new) == b"second"
    assert rig.getattr(new).fileid != old_id


def test_with_lasting_numbers_a_file_moved_behind_the_servers_back_is_found(
    tmp_path: Path,
) -> None:
    FILEIDS.set("table")
    rig = make_rig(tmp_path / "export")
    (rig.root / "a").mkdir()
    (rig.root / "b").mkdir()
    (rig.root / "a" / "f.txt").write_bytes(b"moved")
    handle = rig.lookup(rig.lookup(rig.mount(), "a"), "f.txt")
    fileid = rig.getattr(handle).fileid
    os.rename(rig.root / "a" / "f.txt", rig.root / "b" / "f.txt")
    assert _read(rig, handle) == b"moved" and rig.getattr(handle).fileid == fileid


def test_ids_persist_across_a_restart_and_listings_drop_rows_of_vanished_names(
    tmp_path: Path,
) -> None:
    FILEIDS.set("table")
    rig = make_rig(tmp_path / "export")
    root = rig.mount()
    for name in ("keep", "vanish"):
        (rig.root / name).write_bytes(name.encode())
    keep, _ = rig.lookup(root, "keep"), rig.lookup(root, "vanish")
    fileid = rig.getattr(keep).fileid
    (rig.root / "vanish").unlink()  # behind the server's back
    rig.readdirplus(root)
    layer = _id_layer(rig)
    assert layer is not None and layer.table.lookup("vanish") is None
    rig.export.vfs.close()

    again = make_rig(tmp_path / "export")
    layer = _id_layer(again)
    assert layer is not None and layer.table.lookup("keep") == fileid
    assert _read(again, keep) == b"keep" and again.getattr(keep).fileid == fileid
