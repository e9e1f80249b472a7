"""Turning an export-relative path into an OS path that stays inside the export root.

Every name is checked (no "", ".", "..", separators, NUL; on Windows no drive or stream colon,
no trailing dot or space, no device name: each would alias another file), and every directory
on the way is `lstat`ed: a symlink or a Windows name-surrogate reparse point (symlink,
junction, mount point) there is refused with ELOOP, never followed.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Callable

from filesim.topology.filesystems import is_link

_WINDOWS = sys.platform == "win32"
_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{d}{i}" for d in ("COM", "LPT") for i in range(1, 10)]
)


def check_name(name: str, windows: bool = _WINDOWS) -> None:
    """Refuse a name that is not one plain component on this platform (EINVAL)."""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise OSError(errno.EINVAL, f"bad path component {name!r}")
    if windows and (
        any(c in name for c in '\\:*?"<>|')
        or name[-1] in ". "
        or name.split(".")[0].upper() in _DEVICES
    ):
        raise OSError(errno.EINVAL, f"{name!r} is not a valid file name on Windows")


class PathChecker:
    """OS paths under `root` for export-relative paths; `hidden` names do not exist."""

    def __init__(self, root: str, hidden: Callable[[str], bool]) -> None:
        self.root = root
        self._hidden = hidden

    def node(self, path: str) -> str:
        """The OS path of `path`, its parent directories verified (the node itself not)."""
        if not path:
            return self.root
        *dirs, name = path.split("/")
        self._name(name)
        full = self.root
        for part in dirs:
            self._name(part)
            full = os.path.join(full, part)
            st = os.lstat(full)
            if is_link(st):
                raise OSError(errno.ELOOP, f"{part} is a symbolic link, not a directory")
            if not stat.S_ISDIR(st.st_mode):
                raise OSError(errno.ENOTDIR, f"{part} is not a directory")
        return os.path.join(full, name)

    def directory(self, path: str) -> str:
        """The OS path of the directory `path`, itself verified too."""
        full = self.node(path)
        if path:
            st = os.lstat(full)
            if is_link(st):
                raise OSError(errno.ELOOP, f"{path} is a symbolic link, not a directory")
            if not stat.S_ISDIR(st.st_mode):
                raise OSError(errno.ENOTDIR, f"{path} is not a directory")
        return full

    def _name(self, name: str) -> None:
        check_name(name)
        if self._hidden(name):
            raise OSError(errno.ENOENT, "no such file")
