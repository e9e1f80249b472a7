"""One side of the sync (the folder or the export store), reached without ever following a
symlink out of it: the interface both tree backends share, and the choice between them.

A `Tree` hands out `Dir`s: a directory reached from the root one component at a time, a
symlink (or Windows junction) where a directory is expected refused (`Refused`), never
followed. Every operation on a node then goes through its `Dir` by name (`d.lstat(name)`,
`d.open(name, ...)`, `d.rename(name, other, new)`), so the executor and the scanner never build
an OS path themselves:

- `fdtree.FdTree` (Linux, macOS): each Dir is a directory descriptor, every call an `*at` call
  relative to it; nothing can swap the directory under it.
- `pathtree.PathTree` (Windows, which has no `dir_fd` calls): each Dir is an OS path whose
  every component was checked with lstat when it was acquired, and is checked again before
  anything is published or removed in it.

Which one runs is decided at start by what the platform can do (`chosen`), or by the
`sync.backend` setting, never by constants read at import.

Paths are root-relative `str` ('a/b.txt') holding any byte string a POSIX name can hold (the
bytes that are not UTF-8 as surrogate escapes, as `os.fsdecode` gives them).
"""

from __future__ import annotations

import errno
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path


class Refused(OSError):
    """A symlink (or another non-directory) stands where a path needs a directory: the
    synchroniser does not follow it."""


class Moved(OSError):
    """The directory was renamed away (or replaced) while the synchroniser worked in it, and
    this tree cannot follow it there (the path tree): what the plan saw is stale."""


def split(path: str) -> tuple[str, str]:
    """'a/b/c' -> ('a/b', 'c'); 'c' -> ('', 'c')."""
    head, _, name = path.rpartition("/")
    return head, name


def check_name(name: str) -> None:
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise OSError(errno.EINVAL, f"bad path component {name!r}")


class Dir(ABC):
    """A directory of a tree, and the operations on the names in it. None of them follows a
    symlink in the final component: a symlink is acted on as the link itself, or refused."""

    dev: int
    ino: int
    users: int
    """Holders right now: a directory in use is never closed by a tree's cache."""

    @abstractmethod
    def lstat(self, name: str) -> os.stat_result: ...

    @abstractmethod
    def readlink(self, name: str) -> str: ...

    @abstractmethod
    def open(self, name: str, flags: int, mode: int = 0o777) -> int:
        """A file descriptor of the file `name`; ELOOP (or EMLINK) when it is a symlink."""

    @abstractmethod
    def child(self, name: str) -> Dir:
        """The subdirectory `name`, owned by the caller (close it): Refused when `name` is a
        symlink or not a directory, FileNotFoundError when it is absent."""

    @abstractmethod
    def dup(self) -> Dir:
        """Another handle on this directory, owned by the caller."""

    @abstractmethod
    def scandir(self) -> AbstractContextManager[Iterator[os.DirEntry[str]]]: ...

    @abstractmethod
    def entry_stat(self, item: os.DirEntry[str]) -> os.stat_result:
        """The lstat of a listed entry, with its real inode number (Windows lists none)."""

    @abstractmethod
    def mkdir(self, name: str, mode: int) -> None: ...

    @abstractmethod
    def chmod_dir(self, name: str, mode: int) -> None:
        """Set the mode of the subdirectory `name` (refused if it is a symlink)."""

    @abstractmethod
    def chmod(self, name: str, mode: int) -> None:
        """Set the mode of the file `name`, which the caller just created (not a symlink)."""

    @abstractmethod
    def utime(self, name: str, ns: tuple[int, int]) -> None:
        """Set the times of the file `name`, which the caller just created."""

    @abstractmethod
    def unlink(self, name: str) -> None: ...

    @abstractmethod
    def rmdir(self, name: str) -> None: ...

    @abstractmethod
    def rmtree(self, name: str) -> None: ...

    @abstractmethod
    def rename(self, name: str, dst: Dir, dst_name: str) -> None:
        """Rename `name` here to `dst_name` in `dst` (a Dir of the same tree), replacing what
        is there."""

    @abstractmethod
    def rename_new(self, name: str, dst_name: str) -> bool:
        """Rename within this directory only if `dst_name` is free, atomically:
        FileExistsError when it is not. False when this platform cannot refuse a replacement
        (the caller then looks first)."""

    @abstractmethod
    def symlink(self, target: str, name: str) -> None: ...

    @abstractmethod
    def utime_link(self, name: str, ns: tuple[int, int]) -> None:
        """Set a symlink's own times, where the platform can (else nothing)."""

    @abstractmethod
    def placeholder(self, name: str) -> bool:
        """Whether the empty file `name` stands in for a device node (nfs/ownership.py)."""

    @abstractmethod
    def close(self) -> None: ...


class Tree(ABC):
    """A directory `root`, walked without following symlinks. Thread-safe. Close it after use."""

    root: Path

    @property
    @abstractmethod
    def exists(self) -> bool: ...

    @abstractmethod
    def acquire(self, path: str, make_root: bool = False) -> Dir:
        """The directory `path` ('' is the root); hand it back with `release`. `make_root`:
        make the root when it is missing (a folder removed by hand comes back). Directories
        below it are never made here: only a planned MakeDir makes one, and records it — a
        directory made on the way would be one the archive knows nothing of, and the next
        plan would take it for a new one (and bring it back after the client removed it).

        Raises FileNotFoundError when it is absent, Refused when a component is a symlink or
        not a directory."""

    @abstractmethod
    def release(self, d: Dir) -> None: ...

    @abstractmethod
    def still_at(self, path: str, d: Dir) -> bool:
        """True when the directory `d` (acquired as `path`) is still the one at `path`: no
        component of the path was renamed away or replaced since it was walked."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lstat(self, path: str) -> os.stat_result | None:
        """What is at `path` (never following a symlink), or None when nothing is: absent, or
        below a symlink or a file (where, on this side, nothing can be)."""
        head, name = split(path)
        try:
            check_name(name)
            d = self.acquire(head)
        except (FileNotFoundError, Refused):
            return None
        try:
            return d.lstat(name)
        except (FileNotFoundError, NotADirectoryError):
            return None
        finally:
            self.release(d)

    def readlink(self, path: str) -> str:
        head, name = split(path)
        d = self.acquire(head)
        try:
            return d.readlink(name)
        finally:
            self.release(d)
