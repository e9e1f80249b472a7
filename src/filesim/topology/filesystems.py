"""What kind of filesystem a root lies on, what filesim may trust of it, and which of its
nodes are links (the NFS server's path backend and the synchroniser's path tree refuse them).

Two decisions hang on it, both made once at start: whether a folder's changes raise OS events
(`filesim.sync.watch` polls host shares and network filesystems), and whether the numbers the
filesystem gives files (`st_ino`, NTFS's file index) name the same file for as long as it
exists. On FAT and exFAT they do not: Windows derives them from the directory entry, so they
change when the file is renamed, and FUSE drivers without fixed numbers (exfat-fuse, fusefat,
sshfs) hand them out afresh after each mount, so a number can come back naming another file.
An export on such a root gets file ids filesim allocates itself (`filesim.nfs.fileids`).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

_NAME_SURROGATE = 0x20000000
"""Windows reparse tags that redirect to another name: symlinks, junctions, mount points."""


def has_reparse_point(st: os.stat_result) -> bool:
    """Whether `st` (an lstat) is a Windows symlink, junction or mount point."""
    return bool(getattr(st, "st_reparse_tag", 0) & _NAME_SURROGATE)


def is_link(st: os.stat_result) -> bool:
    """A symlink, or a Windows junction or mount point: nothing filesim follows or enters."""
    return stat.S_ISLNK(st.st_mode) or has_reparse_point(st)


UNSTABLE_IDS = frozenset(
    {"vfat", "msdos", "exfat", "fat", "fat32", "cifs", "smb3", "smbfs", "remote", "fuse", "fuseblk"}
)
"""Filesystems (Linux mountinfo, macOS `mount`, Windows volume names, lower case) whose file
numbers are not the file's for its whole life: FAT family, SMB clients (with `noserverino`
the Linux client numbers files itself; "remote" is a Windows network drive), and FUSE, whose
numbers are each driver's choice."""


def _unescape(field: str) -> str:
    """A mountinfo path: space, tab, newline and backslash are written as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def _longest_mount(target: str, mounts: list[tuple[str, str]]) -> str | None:
    """The type of the mount with the longest mount point containing `target` (a later
    mount on the same point hides earlier ones)."""
    best, found = -1, None
    for point, fstype in mounts:
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best:
            best, found = len(point), fstype
    return found


def mountinfo_mounts(mountinfo: str) -> list[tuple[str, str]]:
    """(mount point, type) of each line of Linux's /proc/self/mountinfo."""
    mounts = []
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if "-" not in fields[6:] or len(fields) < 5:
            continue
        mounts.append((_unescape(fields[4]), fields[fields.index("-", 6) + 1]))
    return mounts


def bsd_mounts(listing: str) -> list[tuple[str, str]]:
    """(mount point, type) of each line of macOS's `mount`: "DEV on POINT (TYPE, opts...)"."""
    mounts = []
    for line in listing.splitlines():
        head, sep, tail = line.rpartition(" (")
        _, on, point = head.partition(" on ")
        if sep and on:
            mounts.append((point, tail.split(",")[0].rstrip(")").strip()))
    return mounts


def filesystem_type(path: Path, mountinfo: str | None = None) -> str | None:
    """The type of the filesystem `path` lies on, lower case ("ext4", "9p", "msdos", "fat32"),
    or None where it cannot be told. `mountinfo`: Linux's mount table, for tests."""
    target = os.path.realpath(path)
    if mountinfo is not None:
        return _longest_mount(target, mountinfo_mounts(mountinfo))
    if sys.platform == "win32":
        return _windows_volume_type(target)
    if sys.platform == "darwin":
        try:
            listing = subprocess.run(
                ["/sbin/mount"], capture_output=True, text=True, timeout=10, check=True
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        return _longest_mount(target, bsd_mounts(listing))
    try:
        table = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return None
    return _longest_mount(target, mountinfo_mounts(table))


def _windows_volume_type(target: str) -> str | None:
    """The file system name of the volume holding `target` ("ntfs", "fat32", "exfat"), via
    GetVolumePathNameW, GetDriveTypeW and GetVolumeInformationW."""
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    volume = ctypes.create_unicode_buffer(1024)
    if not kernel32.GetVolumePathNameW(target, volume, len(volume)):
        return None
    name = ctypes.create_unicode_buffer(64)
    if not kernel32.GetVolumeInformationW(volume, None, 0, None, None, None, name, len(name)):
        name.value = ""
    return windows_type(int(kernel32.GetDriveTypeW(volume)), str(name.value))


DRIVE_REMOTE = 4
"""GetDriveTypeW's answer for a network drive: a mapped letter or a UNC path."""


def windows_type(drive_type: int, fs_name: str) -> str | None:
    """The type filesim goes by for a Windows volume. A network drive is "remote" whatever
    file system its server names (a share on an NTFS server says "NTFS"): its file numbers
    come from the server, and it raises no change events for changes made by other machines."""
    if drive_type == DRIVE_REMOTE:
        return "remote"
    return fs_name.lower() or None


def stable_file_ids(root: Path, mountinfo: str | None = None) -> bool:
    """Whether the filesystem of `root` keeps a file's number for the file's whole life (an
    unknown filesystem is trusted, as before this check existed)."""
    fstype = filesystem_type(root, mountinfo)
    if fstype is None:
        return True
    return fstype not in UNSTABLE_IDS and not fstype.startswith("fuse.")
