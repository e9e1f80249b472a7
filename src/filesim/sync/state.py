"""What the synchroniser knows about a path: on each side now, and as of the last sync.

These are plain values shared by the scanner, the planner, the executor and the archive, so the
planner can stay pure: it compares values, it never touches a disk.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Side = Literal["folder", "export"]
SIDES: tuple[Side, Side] = ("folder", "export")


def other(side: Side) -> Side:
    return "export" if side == "folder" else "folder"


class Kind(StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"


@dataclass(frozen=True, slots=True)
class Entry:
    """One path on one side, as `lstat` saw it (symlinks are never followed)."""

    kind: Kind
    size: int = 0
    mtime_ns: int = 0
    mode: int = 0o644
    """Permission bits only (st_mode & 0o7777)."""
    ino: int = 0
    target: str | None = None
    """The link text of a symlink."""

    def same_content(self, other: Entry | None) -> bool:
        """True when the two sides hold the same thing (inodes differ across sides)."""
        if other is None or other.kind is not self.kind:
            return False
        if self.kind is Kind.DIR:
            return True
        if self.kind is Kind.SYMLINK:
            return self.target == other.target
        return (self.size, self.mtime_ns, self.mode) == (other.size, other.mtime_ns, other.mode)

    def unchanged(self, before: Entry | None) -> bool:
        """True when this is the very same object as `before` on the same side.

        The inode counts here: an editor that saves by rename within one coarse timestamp tick
        still produces a new inode.
        """
        if before is None or before.kind is not self.kind:
            return False
        if self.kind is Kind.DIR:
            return True
        return self.same_content(before) and self.ino == before.ino


def unchanged(now: Entry | None, before: Entry | None) -> bool:
    """Presence-aware `Entry.unchanged`: absent then and absent now is unchanged too."""
    if now is None:
        return before is None
    return now.unchanged(before)


@dataclass(frozen=True, slots=True)
class Record:
    """The archive's row for a path: what each side held right after its last sync."""

    folder: Entry | None
    export: Entry | None

    def on(self, side: Side) -> Entry | None:
        return self.folder if side == "folder" else self.export

    @staticmethod
    def of(side: Side, mine: Entry | None, theirs: Entry | None) -> Record:
        """A record from one side's point of view."""
        return Record(mine, theirs) if side == "folder" else Record(theirs, mine)


Snapshot = Mapping[str, Entry]
"""Relative POSIX path ('a/b.txt', no leading slash) -> entry. The root itself is not in it."""

Archive = Mapping[str, Record]

Update = tuple[str, Record | None]
"""A path and its new archive record (None: forget the path)."""


def parent(path: str) -> str:
    return path.rpartition("/")[0]


def ancestors(path: str) -> list[str]:
    """'a/b/c' -> ['a', 'a/b'] (shallowest first)."""
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def rooted(snapshot: Mapping[str, Entry]) -> dict[str, Entry]:
    """`snapshot` less every entry whose parent is not in it as a directory.

    A partial cycle looks its paths up one by one while clients keep working. A directory
    removed or renamed between two lookups leaves its children seen and itself not (a
    directory descriptor opened earlier in the cycle even finds them at its new name): a
    tree that was never on the disk. Planned from, it brings back directories a client had
    just removed. Without those children, the snapshot is one the side did hold; the events
    of the removal or rename mark what is left for the next cycle.
    """
    kept: dict[str, Entry] = {}
    for path in sorted(snapshot, key=depth):
        head = parent(path)
        if not head or ((up := kept.get(head)) is not None and up.kind is Kind.DIR):
            kept[path] = snapshot[path]
    return kept


def is_under(path: str, top: str) -> bool:
    """True when `path` is `top` or inside it."""
    return path == top or path.startswith(top + "/")


def depth(path: str) -> int:
    return path.count("/") + 1


def shown(path: str) -> str:
    """`path` for a log line, a message or a status: the bytes of a name that are not UTF-8
    (surrogate escapes in `path`) as \\xNN, so the text is valid UTF-8 everywhere."""
    try:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no byte escapes to (not from a file name)
        return path.encode("utf-8", "backslashreplace").decode("utf-8")
