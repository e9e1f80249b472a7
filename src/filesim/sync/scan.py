"""Snapshots of a tree: path -> Entry, never following symlinks, never showing temp files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from filesim import nodemeta
from filesim.sync.state import Entry, Kind
from filesim.topology.layout import is_temp_name


def entry_of(st: os.stat_result, path: str | Path | None = None) -> Entry | None:
    """The Entry for an lstat result; None for kinds we do not sync (sockets, fifos, devices,
    and the empty files that stand in for device nodes on an unprivileged server)."""
    mode = st.st_mode
    perm = stat.S_IMODE(mode)
    if stat.S_ISREG(mode):
        if st.st_size == 0 and path is not None and _placeholder(path):
            return None
        return Entry(Kind.FILE, st.st_size, st.st_mtime_ns, perm, st.st_ino)
    if stat.S_ISDIR(mode):
        return Entry(Kind.DIR, 0, 0, perm, st.st_ino)
    if stat.S_ISLNK(mode) and path is not None:
        target = os.readlink(path)
        return Entry(Kind.SYMLINK, st.st_size, st.st_mtime_ns, perm, st.st_ino, target)
    return None


def _placeholder(path: str | Path) -> bool:
    """Whether the empty file at `path` is a device node's placeholder (filesim.nodemeta)."""
    try:
        raw = os.getxattr(path, nodemeta.XATTR, follow_symlinks=False)
    except (OSError, AttributeError):  # no such attribute, or no xattrs on this OS
        return False
    meta = nodemeta.decode(raw)
    return meta is not None and meta.placeholder


def stat_path(root: Path, rel: str) -> Entry | None:
    """The entry at `rel` under `root`, or None when absent (or a kind we ignore)."""
    full = os.path.join(root, rel)
    try:
        return entry_of(os.lstat(full), full)
    except (FileNotFoundError, NotADirectoryError):
        return None


def scan(root: Path, rel: str = "") -> dict[str, Entry]:
    """Every entry under `root`/`rel` (rel itself included when given).

    A missing root is an empty tree: the mass-deletion guard, not the scanner, decides what an
    empty side means.
    """
    out: dict[str, Entry] = {}
    if rel:
        top = stat_path(root, rel)
        if top is None:
            return out
        out[rel] = top
        if top.kind is not Kind.DIR:
            return out
    _walk(os.path.join(root, rel) if rel else str(root), rel, out)
    return out


def _walk(directory: str, prefix: str, out: dict[str, Entry]) -> None:
    try:
        it = os.scandir(directory)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return
    subdirs: list[tuple[str, str]] = []
    with it:
        for item in it:
            if is_temp_name(item.name):
                continue
            rel = f"{prefix}/{item.name}" if prefix else item.name
            try:
                entry = entry_of(item.stat(follow_symlinks=False), item.path)
            except FileNotFoundError:
                continue  # vanished while we looked; its event will bring us back
            if entry is None:
                continue
            out[rel] = entry
            if entry.kind is Kind.DIR:
                subdirs.append((item.path, rel))
    for path, rel in subdirs:
        _walk(path, rel, out)


def temp_files(root: Path) -> list[Path]:
    """Leftover temp files under root (from a crash mid-publish)."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        found.extend(Path(dirpath, n) for n in filenames + dirnames if is_temp_name(n))
        dirnames[:] = [d for d in dirnames if not is_temp_name(d)]
    return found
