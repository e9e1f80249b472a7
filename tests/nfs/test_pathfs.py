"""What only the portable (path) backend has: platform name rules, capabilities, choice."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from filesim.nfs import localfs
from filesim.nfs.pathcheck import check_name
from filesim.nfs.pathfs import PathVfs
from filesim.nfs.storage import chosen, open_store
from filesim.oncrpc.programs import NfsProc, NfsStat
from tests.support.backend import BACKEND
from tests.support.rig import make_rig, sattr

BOTH_BACKENDS = False  # each test here picks its backend itself


@pytest.mark.parametrize(
    "name", ["a\\b", "c:", "x:stream", "trailing.", "trailing ", "CON", "nul.txt", "com1", "a?b"]
)
def test_names_that_alias_on_windows_are_refused_there(name: str) -> None:
    with pytest.raises(OSError) as caught:
        check_name(name, windows=True)
    assert caught.value.errno == errno.EINVAL and "Windows" in str(caught.value)
    check_name(name, windows=False)  # plain names on POSIX


def test_a_root_under_a_symlink_is_served_from_its_real_directory(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_bytes(b"x")
    (tmp_path / "via").symlink_to("real")
    vfs = PathVfs(tmp_path / "via")
    assert vfs.root == tmp_path / "real" and vfs.stat("f").st_size == 1


def test_a_root_that_is_no_directory_is_refused_with_its_name(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OSError, match=r"export root .*file is not a directory"):
        PathVfs(tmp_path / "file")
    with pytest.raises(OSError, match=r"cannot open export root .*missing"):
        PathVfs(tmp_path / "missing")


def _path_vfs(rig_vfs: object) -> PathVfs:
    inner = rig_vfs
    while not isinstance(inner, PathVfs):
        inner = inner.inner  # type: ignore[attr-defined]
    return inner


def test_symlink_link_and_mknod_answer_notsupp_where_the_host_cannot(tmp_path: Path) -> None:
    """Windows: symlinks need a privilege, FIFOs do not exist; the client hears NOTSUPP and
    nothing is created."""
    BACKEND.set("path")  # the autouse fixture resets it
    rig = make_rig(tmp_path / "e")
    root = rig.mount("/data")
    store = _path_vfs(rig.export.vfs)
    store.can_symlink = store.can_link = store.can_mknod = False
    p = rig.dirop(root, "link")
    sattr(p)
    p.string("target")
    assert rig.fails(NfsProc.SYMLINK, p) == NfsStat.NOTSUPP
    p = rig.dirop(root, "fifo")
    p.uint32(7)  # NF3FIFO
    sattr(p)
    assert rig.fails(NfsProc.MKNOD, p) == NfsStat.NOTSUPP
    fh = rig.create(root, "file")
    p = rig.fh(fh)
    p.raw(rig.dirop(root, "hard").getvalue())
    assert rig.fails(NfsProc.LINK, p) == NfsStat.NOTSUPP
    assert sorted(os.listdir(rig.root)) == ["file"]


def test_mknod_answers_notsupp_on_the_fd_backend_without_mknodat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """macOS before 13 has the other *at calls but no mknodat: `os.mknod(dir_fd=...)` would
    raise NotImplementedError, which is no NFS status."""
    BACKEND.set("fd")
    rig = make_rig(tmp_path / "e")
    root = rig.mount("/data")
    monkeypatch.setattr(os, "supports_dir_fd", os.supports_dir_fd - {os.mknod})
    p = rig.dirop(root, "fifo")
    p.uint32(7)  # NF3FIFO
    sattr(p)
    assert rig.fails(NfsProc.MKNOD, p) == NfsStat.NOTSUPP
    assert os.listdir(rig.root) == []


def test_auto_picks_fd_where_the_platform_has_directory_fds(tmp_path: Path) -> None:
    assert localfs.usable()  # Linux: the Windows-surface tests cover the other way
    assert chosen("auto") == "fd" and chosen("path") == "path"
    assert isinstance(open_store(tmp_path, "path"), PathVfs)
