"""Snapshots of a tree: path -> Entry, never following symlinks, never showing temp files."""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from filesim.sync.state import Entry, Kind
from filesim.topology.layout import is_temp_name

Ignore = Callable[[str], bool]
"""Whether a name (any component) is left out of the sync."""


def _nothing(name: str) -> bool:
    return False


def ignoring(patterns: Iterable[str]) -> Ignore:
    """A name filter from shell patterns, matched without regard to case (Thumbs.db and
    thumbs.db are the same clutter)."""
    regex = "|".join(fnmatch.translate(p.casefold()) for p in patterns)
    if not regex:
        return _nothing
    match = re.compile(regex).match
    return lambda name: match(name.casefold()) is not None


def entry_of(st: os.stat_result, path: str | Path | None = None) -> Entry | None:
    """The Entry for an lstat result; None for kinds we do not sync (sockets, fifos, devices)."""
    mode = st.st_mode
    perm = stat.S_IMODE(mode)
    if stat.S_ISREG(mode):
        return Entry(Kind.FILE, st.st_size, st.st_mtime_ns, perm, st.st_ino)
    if stat.S_ISDIR(mode):
        return Entry(Kind.DIR, 0, 0, perm, st.st_ino)
    if stat.S_ISLNK(mode) and path is not None:
        target = os.readlink(path)
        return Entry(Kind.SYMLINK, st.st_size, st.st_mtime_ns, perm, st.st_ino, target)
    return None


def stat_path(root: Path, rel: str, ignore: Ignore = _nothing) -> Entry | None:
    """The entry at `rel` under `root`, or None when absent (or a kind or name we ignore)."""
    if ignore is not _nothing and any(ignore(part) for part in rel.split("/")):
        return None
    full = os.path.join(root, rel)
    try:
        return entry_of(os.lstat(full), full)
    except (FileNotFoundError, NotADirectoryError):
        return None


def scan(root: Path, rel: str = "", ignore: Ignore = _nothing) -> dict[str, Entry]:
    """Every entry under `root`/`rel` (rel itself included when given).

    A missing root is an empty tree: the mass-deletion guard, not the scanner, decides what an
    empty side means.
    """
    out: dict[str, Entry] = {}
    if rel:
        top = stat_path(root, rel, ignore)
        if top is None:
            return out
        out[rel] = top
        if top.kind is not Kind.DIR:
            return out
    _walk(os.path.join(root, rel) if rel else str(root), rel, out, ignore)
    return out


def _walk(directory: str, prefix: str, out: dict[str, Entry], ignore: Ignore) -> None:
    try:
        it = os.scandir(directory)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return
    subdirs: list[tuple[str, str]] = []
    with it:
        for item in it:
            if is_temp_name(item.name) or ignore(item.name):
                continue
            rel = f"{prefix}/{item.name}" if prefix else item.name
            try:
                st = item.stat(follow_symlinks=False)
                if not st.st_ino:  # Windows: a listing's stat has no file id, lstat has
                    st = os.lstat(item.path)
                entry = entry_of(st, item.path)
            except FileNotFoundError:
                continue  # vanished while we looked; its event will bring us back
            if entry is None:
                continue
            out[rel] = entry
            if entry.kind is Kind.DIR:
                subdirs.append((item.path, rel))
    for path, rel in subdirs:
        _walk(path, rel, out, ignore)


def temp_files(root: Path) -> list[Path]:
    """Leftover temp files under root (from a crash mid-publish)."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        found.extend(Path(dirpath, n) for n in filenames + dirnames if is_temp_name(n))
        dirnames[:] = [d for d in dirnames if not is_temp_name(d)]
    return found
