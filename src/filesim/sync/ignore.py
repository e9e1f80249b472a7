"""Names never synced (the topology's `sync.ignore`: OS clutter by default). Pure, no I/O."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable

from filesim.sync.state import Entry

Ignore = Callable[[str], bool]
"""Whether a name (one path component) is left out of the sync."""


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


def ignored(path: str, ignore: Ignore) -> bool:
    """Whether `path` or a directory it is in is ignored."""
    return ignore is not _nothing and any(ignore(part) for part in path.split("/"))


def without(snapshot: dict[str, Entry], ignore: Ignore) -> dict[str, Entry]:
    """`snapshot` less the ignored paths (and everything under an ignored directory)."""
    if ignore is _nothing:
        return snapshot
    return {p: e for p, e in snapshot.items() if not ignored(p, ignore)}
