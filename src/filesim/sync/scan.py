"""Snapshots of a tree: path -> Entry, never following symlinks, never showing temp files.

Everything is read through a `Tree` and its `Dir`s (see tree.py): a directory swapped for a
symlink while it is scanned is seen as the symlink it now is, never followed.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from filesim.sync.backend import Backend, open_tree
from filesim.sync.state import Entry, Kind, shown
from filesim.sync.tree import Dir, Moved, Refused, Tree, split
from filesim.topology.filesystems import has_reparse_point
from filesim.topology.layout import TEMP_PREFIX, is_temp_name

log = logging.getLogger("filesim.sync")

MAX_DEPTH = 256
"""Directories deeper than this are not scanned (each level holds a descriptor open)."""


def entry_of(st: os.stat_result, target: str | None = None) -> Entry | None:
    """The Entry for an lstat result (`target`: a symlink's link text); None for kinds we do
    not sync (sockets, fifos, devices), and for a symlink whose text was not read."""
    mode = st.st_mode
    if has_reparse_point(st) and not stat.S_ISLNK(mode):
        return None  # a Windows junction or mount point: neither entered nor synced
    perm = stat.S_IMODE(mode)
    if stat.S_ISREG(mode):
        return Entry(Kind.FILE, st.st_size, st.st_mtime_ns, perm, st.st_ino)
    if stat.S_ISDIR(mode):
        return Entry(Kind.DIR, 0, 0, perm, st.st_ino)
    if stat.S_ISLNK(mode) and target is not None:
        return Entry(Kind.SYMLINK, st.st_size, st.st_mtime_ns, perm, st.st_ino, target)
    return None


def entry_at(d: Dir, name: str) -> Entry | None:
    """The entry `name` in the directory `d`, or None."""
    try:
        st = d.lstat(name)
        target = d.readlink(name) if stat.S_ISLNK(st.st_mode) else None
    except (FileNotFoundError, NotADirectoryError):
        return None
    return _synced(entry_of(st, target), st, d, name)


def _synced(found: Entry | None, st: os.stat_result, d: Dir, name: str) -> Entry | None:
    """`found`, unless it is the empty file standing in for a device node on a server that
    runs without root (nfs/ownership.py). Devices, FIFOs and sockets are not synced: a folder
    on another machine cannot hold them meaningfully; each is reported once."""
    if found is None:
        if not stat.S_ISLNK(st.st_mode):
            _report_skip(st, name, "a device, FIFO or socket")
        return None
    if found.kind is not Kind.FILE or found.size or not d.placeholder(name):
        return found
    _report_skip(st, name, "a device node (emulated by an unprivileged server)")
    return None


_REPORTED: dict[tuple[int, int, int], None] = {}
_REPORTED_MAX = 4096  # a bounded memory of what was reported: oldest forgotten first


def _report_skip(st: os.stat_result, name: str, what: str) -> None:
    key = (st.st_dev, st.st_ino, st.st_ctime_ns)  # ctime: a reused inode is a new node
    if key in _REPORTED:
        return
    if len(_REPORTED) >= _REPORTED_MAX:
        del _REPORTED[next(iter(_REPORTED))]
    _REPORTED[key] = None
    log.info("not syncing %s: %s", shown(name), what)


def entry(tree: Tree, rel: str) -> Entry | None:
    """The entry at `rel`, or None when absent (or a kind we ignore, or below a symlink)."""
    head, name = split(rel)
    try:
        d = tree.acquire(head)
    except (FileNotFoundError, Refused):
        return None
    try:
        return entry_at(d, name)
    finally:
        tree.release(d)


def scan_tree(tree: Tree, rel: str = "") -> dict[str, Entry]:
    """Every entry under `rel` (rel itself included when given) of `tree`.

    A missing root is an empty tree: the mass-deletion guard, not the scanner, decides what an
    empty side means.
    """
    out: dict[str, Entry] = {}
    if rel:
        top = entry(tree, rel)
        if top is None:
            return out
        out[rel] = top
        if top.kind is not Kind.DIR:
            return out
    try:
        d = tree.acquire(rel)
    except (FileNotFoundError, Refused):  # swapped since: what it is now was recorded above
        return out
    try:
        own = d.dup()
    finally:
        tree.release(d)
    _walk(own, rel, out)
    return out


def _walk(top: Dir, prefix: str, out: dict[str, Entry]) -> None:
    """Depth first, one directory handle open per level (closed as the level is done)."""
    frames: list[tuple[Dir, Iterator[tuple[str, str]]]] = []
    try:
        frames.append((top, iter(_list(top, prefix, out))))
        while frames:
            d, subdirs = frames[-1]
            nxt = next(subdirs, None)
            if nxt is None:
                d.close()
                frames.pop()
                continue
            name, rel = nxt
            try:
                child = d.child(name)
            except OSError:  # replaced or removed since it was listed: record what it is now
                now = entry_at(d, name)
                if now is None:
                    del out[rel]
                else:
                    out[rel] = now
                continue
            if len(frames) >= MAX_DEPTH:
                child.close()
                log.warning("not syncing below %s: more than %d levels deep", shown(rel),
                            MAX_DEPTH)  # fmt: skip
                continue
            frames.append((child, iter(_list(child, rel, out))))
    finally:
        for d, _ in frames:
            d.close()


def _list(d: Dir, prefix: str, out: dict[str, Entry]) -> list[tuple[str, str]]:
    """Record the entries of the directory `d`; return its subdirectories (name, path)."""
    subdirs: list[tuple[str, str]] = []
    try:
        listing = d.scandir()
    except (FileNotFoundError, NotADirectoryError, PermissionError, Refused, Moved):
        return subdirs
    with listing as items:
        for item in items:
            name = item.name
            if is_temp_name(name):
                continue
            rel = f"{prefix}/{name}" if prefix else name
            try:
                st = d.entry_stat(item)
                target = d.readlink(name) if stat.S_ISLNK(st.st_mode) else None
            except FileNotFoundError:
                continue  # vanished while we looked; its event will bring us back
            found = _synced(entry_of(st, target), st, d, name)
            if found is None:
                continue
            out[rel] = found
            if found.kind is Kind.DIR:
                subdirs.append((name, rel))
    return subdirs


# -- by root path (a tree opened for the one call)


def scan(root: Path, rel: str = "", backend: Backend = "auto") -> dict[str, Entry]:
    """Every entry under `root`/`rel` (see `scan_tree`)."""
    with open_tree(root, backend) as tree:
        return scan_tree(tree, rel)


def stat_path(root: Path, rel: str, backend: Backend = "auto") -> Entry | None:
    """The entry at `rel` under `root`, or None when absent (or a kind we ignore)."""
    with open_tree(root, backend) as tree:
        return entry(tree, rel)


def remove_temp_files(
    root: Path, backend: Backend = "auto", prefix: str = TEMP_PREFIX
) -> list[str]:
    """Remove the temp files a crash left behind under `root` (they were never published);
    returns their paths. `prefix`: only the temp files named so (one executor's own)."""
    removed: list[str] = []
    with open_tree(root, backend) as tree:
        if not tree.exists:
            return removed
        d = tree.acquire("")
        try:
            _remove_temps(d.dup(), "", removed, 0, prefix)
        finally:
            tree.release(d)
    return removed


def _remove_temps(d: Dir, prefix: str, removed: list[str], depth: int, temp: str) -> None:
    try:
        with d.scandir() as it:
            items = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        for name, is_dir in items:
            rel = f"{prefix}/{name}" if prefix else name
            if name.startswith(temp):
                try:
                    if is_dir:
                        d.rmtree(name)
                    else:
                        d.unlink(name)
                    removed.append(rel)
                except FileNotFoundError:
                    pass
            elif is_dir and depth < MAX_DEPTH:
                try:
                    child = d.child(name)
                except OSError:
                    continue
                _remove_temps(child, rel, removed, depth + 1, temp)
    finally:
        d.close()
