"""A real filesystem whose file numbers do not last, for tests: exFAT in an image file on a
loop device, mounted with exfat-fuse (Debian's exfat-fuse and exfatprogs; .ci/run installs
them; root for the loop device and FUSE). Like every libfuse driver without fixed numbers, it
numbers files in the order they are looked up after each mount."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _tools() -> tuple[str, str, str]:
    tools = (shutil.which("mkfs.exfat"), shutil.which("mount.exfat-fuse"), shutil.which("losetup"))
    if None in tools:
        pytest.skip("needs exfatprogs, exfat-fuse, losetup and root for FUSE: see .ci/run")
    return tools  # type: ignore[return-value]


class ExfatVolume:
    def __init__(self, device: str, mountpoint: Path) -> None:
        self.device, self.mountpoint = device, mountpoint

    def mount(self) -> Path:
        _, mount, _ = _tools()
        subprocess.run([mount, "-o", "noatime", self.device, str(self.mountpoint)],
                       check=True, capture_output=True)  # fmt: skip
        return self.mountpoint

    def unmount(self) -> None:
        subprocess.run(["umount", str(self.mountpoint)], check=True)


@contextmanager
def exfat_volume(tmp_path: Path, size_mb: int = 16) -> Iterator[ExfatVolume]:
    mkfs, _, losetup = _tools()
    image, mountpoint = tmp_path / "exfat.img", tmp_path / "exfat"
    mountpoint.mkdir()
    with image.open("wb") as f:
        f.truncate(size_mb << 20)
    subprocess.run([mkfs, str(image)], check=True, capture_output=True)
    device = subprocess.run([losetup, "--find", "--show", str(image)],
                            check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    volume = ExfatVolume(device, mountpoint)
    try:
        volume.mount()
        yield volume
    finally:
        # Lazily when busy: a rig the test left open still holds directory descriptors.
        if subprocess.run(["umount", str(mountpoint)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mountpoint)], check=False, capture_output=True)
        subprocess.run([losetup, "-d", device], check=False, capture_output=True)
