"""`Attrs`: built from a real stat, and complete where the platform's stat lacks fields."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from filesim.nfs.attrs import Attrs, split_rdev


def test_attrs_of_a_real_stat_keeps_every_field(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * 5000)
    st = os.lstat(f)
    a = Attrs.of(st)
    assert (a.st_mode, a.st_ino, a.st_dev, a.st_nlink) == (
        st.st_mode, st.st_ino, st.st_dev, st.st_nlink,
    )  # fmt: skip
    assert (a.st_size, a.st_blocks, a.st_rdev) == (5000, st.st_blocks, st.st_rdev)
    assert (a.st_atime_ns, a.st_mtime_ns, a.st_ctime_ns) == (
        st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns,
    )  # fmt: skip


def test_attrs_of_a_stat_without_blocks_or_rdev_derives_them() -> None:
    """Windows' stat has no st_blocks or st_rdev: blocks come from the size, rdev is 0."""
    ns = 1_700_000_000_123_456_789
    st = os.stat_result(
        (stat.S_IFREG | 0o644, 7, 1, 1, 0, 0, 1025, 1, 2, 3, 1.0, 2.0, 3.0, ns, ns + 1, ns + 2)
    )
    a = Attrs.of(st)
    assert (a.st_blocks, a.st_rdev) == (3, 0)
    assert (a.st_atime_ns, a.st_mtime_ns, a.st_ctime_ns) == (ns, ns + 1, ns + 2)
    assert a.but(st_uid=1000).st_uid == 1000 and a.st_uid == 0


def test_split_rdev_of_a_device_number_and_of_none() -> None:
    assert split_rdev(os.makedev(8, 17)) == (8, 17)
    assert split_rdev(0) == (0, 0)
