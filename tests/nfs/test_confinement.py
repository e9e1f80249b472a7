"""No request reaches outside the export root; a full disk is an error, not a crash."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from filesim.nfs.const import Ftype
from filesim.oncrpc.programs import NfsProc, NfsStat
from tests.support.rig import Rig, make_rig


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "passwd").write_text("secret outside the export")
    return secret


@pytest.fixture
def rig(tmp_path: Path, outside: Path) -> Rig:
    rig = make_rig(tmp_path / "export")
    (rig.root / "sub").mkdir()
    os.symlink(outside, rig.root / "sub" / "escape")
    os.symlink(outside / "passwd", rig.root / "file-link")
    return rig


def test_mount_through_a_symlink_is_refused(rig: Rig) -> None:
    with pytest.raises(AssertionError, match="MNT"):
        rig.mount("/data/sub/escape")


def test_lookup_does_not_follow_symlinks(rig: Rig) -> None:
    root = rig.mount()
    sub = rig.lookup(root, "sub")
    link = rig.lookup(sub, "escape")
    assert rig.getattr(link).type is Ftype.LNK
    assert rig.fails(NfsProc.LOOKUP, rig.dirop(link, "passwd")) == NfsStat.NOTDIR


def test_reading_a_symlink_to_a_file_outside_is_refused(rig: Rig) -> None:
    root = rig.mount()
    fh = rig.lookup(root, "file-link")
    p = rig.fh(fh)
    p.uint64(0)
    p.uint32(100)
    assert rig.fails(NfsProc.READ, p) == NfsStat.INVAL
    p = rig.fh(fh)
    p.uint64(0)
    p.uint32(1)
    p.uint32(2)
    p.opaque(b"x")
    assert rig.fails(NfsProc.WRITE, p) == NfsStat.INVAL


def test_a_symlink_swapped_in_for_a_directory_is_not_followed(rig: Rig, outside: Path) -> None:
    root = rig.mount()
    (rig.root / "real").mkdir()
    (rig.root / "real" / "f").write_text("inside")
    f = rig.lookup(rig.lookup(root, "real"), "f")
    # behind the server's back the directory becomes a link to the outside
    (rig.root / "real" / "f").unlink()
    (rig.root / "real").rmdir()
    os.symlink(outside, rig.root / "real")
    assert rig.fails(NfsProc.GETATTR, rig.fh(f)) == NfsStat.STALE
    assert (outside / "passwd").read_text() == "secret outside the export"


def test_listing_shows_links_as_links(rig: Rig) -> None:
    root = rig.mount()
    sub = rig.lookup(root, "sub")
    entries = {e.name: e for e in rig.readdirplus(sub)[0]}
    assert entries["escape"].attrs is not None and entries["escape"].attrs.type is Ftype.LNK
    assert entries[".."].fh == root  # the parent of sub is the root, never above it


def test_names_with_slashes_are_refused(rig: Rig, outside: Path) -> None:
    root = rig.mount()
    assert rig.fails(NfsProc.LOOKUP, rig.dirop(root, "../outside")) != NfsStat.OK
    assert rig.fails(NfsProc.LOOKUP, rig.dirop(root, "sub/escape")) != NfsStat.OK
    p = rig.dirop(root, "../evil")
    p.uint32(0)
    for _ in range(6):
        p.uint32(0)
    assert rig.fails(NfsProc.CREATE, p) != NfsStat.OK
    assert not (outside.parent / "evil").exists()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)],
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a small tmpfs: {proc.stderr}")
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_full_disk_answers_nospc_and_keeps_serving(tiny_disk: Path) -> None:
    rig = make_rig(tiny_disk / "export")
    root = rig.mount()
    fh = rig.create(root, "big")
    statuses = []
    for i in range(4):
        p = rig.fh(fh)
        p.uint64(i * 512 * 1024)
        p.uint32(512 * 1024)
        p.uint32(2)
        p.opaque(b"x" * 512 * 1024)
        statuses.append(rig.nfs(NfsProc.WRITE, p).status)
    assert NfsStat.NOSPC in statuses
    rig.ok(NfsProc.REMOVE, rig.dirop(root, "big"))
    fh = rig.create(root, "small")
    rig.write(fh, 0, b"fits again", stable=2)
    assert (rig.root / "small").read_bytes() == b"fits again"
