"""`statx.lstat`: the same attributes as os.lstat, plus the birth time where Linux has statx."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest

from filesim.nfs import statx
from filesim.nfs.attrs import Attrs


def _same(a: Attrs, st: os.stat_result) -> None:
    assert a[:12] == Attrs.of(st)[:12]


def test_lstat_by_name_by_dir_fd_and_of_the_directory_itself(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 5000)
    (tmp_path / "link").symlink_to("f")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _same(statx.lstat(str(tmp_path / "f")), os.lstat(tmp_path / "f"))
        _same(statx.lstat("f", fd), os.lstat(tmp_path / "f"))
        _same(statx.lstat("link", fd), os.lstat(tmp_path / "link"))  # not followed
        _same(statx.lstat("", fd), os.lstat(tmp_path))
    finally:
        os.close(fd)


@pytest.mark.skipif(sys.platform != "linux", reason="statx is Linux's")
def test_birth_time_comes_with_statx_where_the_filesystem_keeps_one(tmp_path: Path) -> None:
    (tmp_path / "f").touch()
    a = statx.lstat(str(tmp_path / "f"))
    assert statx.available()
    # tmpfs, ext4, xfs and btrfs keep it; the time is no later than the change time
    assert a.st_birthtime_ns is None or 0 < a.st_birthtime_ns <= a.st_ctime_ns


def test_a_missing_name_raises_the_oserror_of_its_errno(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(FileNotFoundError) as info:
            statx.lstat("missing", fd)
        assert info.value.errno == errno.ENOENT
        with pytest.raises(NotADirectoryError):
            (tmp_path / "file").touch()
            statx.lstat("file/below", fd)
    finally:
        os.close(fd)
