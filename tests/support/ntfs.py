"""A real case-insensitive filesystem for tests: NTFS in an image file, mounted with
`lowntfs-3g -o ignore_case` (Debian's ntfs-3g; .ci/run installs it). Names are matched
without regard to case, kept on disk as written, and listed in lower case.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _tools() -> tuple[str, str]:
    mkntfs, mount = shutil.which("mkntfs"), shutil.which("lowntfs-3g")
    if mkntfs is None or mount is None:
        pytest.skip("needs ntfs-3g (mkntfs, lowntfs-3g) and root for FUSE: see .ci/run")
    return mkntfs, mount


class NtfsImage:
    def __init__(self, image: Path, mountpoint: Path) -> None:
        self.image, self.mountpoint = image, mountpoint

    def mount(self, ignore_case: bool = True) -> Path:
        _, lowntfs = _tools()
        opts = ["-o", "ignore_case"] if ignore_case else []
        subprocess.run([lowntfs, *opts, str(self.image), str(self.mountpoint)], check=True)
        return self.mountpoint

    def unmount(self) -> None:
        subprocess.run(["umount", str(self.mountpoint)], check=True)

    def names_on_disk(self, directory: str = "") -> list[str]:
        """The names as NTFS stores them (case kept): read through a case-sensitive mount."""
        self.unmount()
        try:
            self.mount(ignore_case=False)
            return sorted(p.name for p in (self.mountpoint / directory).iterdir())
        finally:
            self.unmount()
            self.mount()


@contextmanager
def ntfs_ignore_case(tmp_path: Path, size_mb: int = 32) -> Iterator[NtfsImage]:
    mkntfs, _ = _tools()
    image, mountpoint = tmp_path / "ntfs.img", tmp_path / "ntfs"
    mountpoint.mkdir()
    with image.open("wb") as f:
        f.truncate(size_mb << 20)
    subprocess.run([mkntfs, "-F", "-q", "-f", str(image)], check=True, capture_output=True)
    ntfs = NtfsImage(image, mountpoint)
    ntfs.mount()
    try:
        yield ntfs
    finally:
        # Lazily when busy: a rig the test left open still holds directory descriptors.
        if subprocess.run(["umount", str(mountpoint)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mountpoint)], check=False, capture_output=True)
