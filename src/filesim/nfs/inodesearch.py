"""Finding a file by its inode number: how a backend answers a handle it has no path for
(after a restart, or a rename made outside the server). One breadth-first search for every
backend; each backend says how it lists a directory without following a link."""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

from filesim.nfs.vfs import SearchTooLong

Listing = Callable[[str], AbstractContextManager[Iterator[os.DirEntry[str]]]]


def find_inode(
    ino: int,
    root_ino: int,
    listing: Listing,
    hidden: Callable[[str], bool],
    inode_of: Callable[[os.DirEntry[str]], int],
    budget: int | None = None,
) -> str | None:
    """The root-relative path of inode `ino` ("" for the root), or None when no entry has it.

    `listing(directory)` lists a directory; `inode_of(entry)` gives an entry's inode. Links are
    never entered, `hidden` names are skipped, and a directory that cannot be listed (gone,
    forbidden) is passed over. SearchTooLong once more than `budget` entries were read.
    """
    if root_ino == ino:
        return ""
    queue: deque[str] = deque([""])
    left = math.inf if budget is None else budget
    while queue:
        directory = queue.popleft()
        try:
            with listing(directory) as entries:
                for entry in entries:
                    left -= 1
                    if left < 0:
                        raise SearchTooLong(f"inode {ino} not among the first {budget} entries")
                    if hidden(entry.name):
                        continue
                    path = f"{directory}/{entry.name}" if directory else entry.name
                    if inode_of(entry) == ino:
                        return path
                    if entry.is_dir(follow_symlinks=False) and not entry.is_symlink():
                        queue.append(path)
        except OSError:
            continue
    return None
