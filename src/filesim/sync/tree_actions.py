"""The plan's actions that change one tree's names: make a directory, delete, rename.

Each checks first that its path still holds what the plan saw, and raises `Stale` when it does
not: the path is planned again later, and a change that arrived meanwhile is never undone.
Directories are reached through the tree's `Dir`s (tree.py), never by following a symlink. The
executor (execute.py) runs them, beside the copies, which need temp files and durability.
"""

from __future__ import annotations

import errno
import os

from filesim.events import Event
from filesim.sync.actions import Delete, MakeDir, Rename
from filesim.sync.outcome import Outcome, Stale
from filesim.sync.scan import entry_at
from filesim.sync.state import Entry, Kind, Record, Side, unchanged
from filesim.sync.tree import Dir, Refused, Tree, split
from filesim.topology.layout import TEMP_PREFIX


def target_dir(tree: Tree, path: str) -> Dir:
    """The directory an action puts something in (release it after use). It must be there
    already — made by an earlier MakeDir of the plan, which recorded it — else the action is
    stale: the next plan sees why (not made yet, or removed meanwhile). Only a missing root is
    made again."""
    try:
        return tree.acquire(path, make_root=True)
    except FileNotFoundError:
        raise Stale from None


def note(out: Outcome, server: str, kind: str, side: Side, path: str, **detail: object) -> None:
    """Add the event of an action that completed to its outcome."""
    size = detail.pop("size", None)
    out.events.append(
        Event(kind, server, side, path, size if isinstance(size, int) else None, detail)
    )


def make_dir(tree: Tree, a: MakeDir, out: Outcome, server: str) -> None:
    head, name = split(a.path)
    d = target_dir(tree, head)
    try:
        try:
            d.mkdir(name, a.source.mode)
        except FileExistsError:
            pass
        except FileNotFoundError:  # its parent was removed meanwhile (rm -r over NFS)
            raise Stale from None
        else:
            d.chmod_dir(name, a.source.mode)  # mkdir's mode is filtered by the umask
        made = entry_at(d, name)
    finally:
        tree.release(d)
    if made is None or made.kind is not Kind.DIR:
        raise Stale
    out.updates.append((a.path, Record.of(a.side, made, a.source)))
    note(out, server, "sync.mkdir", a.side, a.path)


def delete(tree: Tree, a: Delete, out: Outcome, server: str) -> None:
    head, name = split(a.path)
    try:
        d = tree.acquire(head)
    except (FileNotFoundError, Refused):
        raise Stale from None  # not where the plan saw it
    try:
        expect_at(d, name, a.entry)
        if a.entry.kind is Kind.DIR:
            d.rmdir(name)
        else:
            d.unlink(name)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise Stale from None  # something new arrived inside
        raise
    finally:
        tree.release(d)
    out.updates.append((a.path, None))
    note(out, server, "sync.delete", a.side, a.path, size=a.entry.size)


def rename(tree: Tree, a: Rename, out: Outcome, server: str) -> None:
    (src_head, src_name), (dst_head, dst_name) = split(a.src), split(a.dst)
    try:
        s = tree.acquire(src_head)
    except (FileNotFoundError, Refused):
        raise Stale from None
    try:
        expect_at(s, src_name, a.entry)
        d = target_dir(tree, dst_head)
        try:
            case_only = a.src.casefold() == a.dst.casefold()
            there = entry_at(d, dst_name)
            if there is not None and not (case_only and there.ino == a.entry.ino):
                raise Stale  # never clobber: the name was taken meanwhile
            if case_only:  # a case-insensitive side ignores a rename to another case
                tmp = TEMP_PREFIX + os.urandom(8).hex()
                s.rename(src_name, s, tmp)
                s.rename(tmp, d, dst_name)
            else:
                s.rename(src_name, d, dst_name)
        finally:
            tree.release(d)
    finally:
        tree.release(s)
    if not a.aside:
        out.rekeys.append((a.src, a.dst))
    kind = "sync.conflict-copy" if a.aside else "sync.rename"
    note(out, server, kind, a.side, a.src, to=a.dst)


def expect_at(d: Dir, name: str, expected: Entry | None) -> None:
    """Raise Stale unless `name` in `d` is exactly `expected` (None: nothing)."""
    if not unchanged(entry_at(d, name), expected):
        raise Stale
