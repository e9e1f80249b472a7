"""`DirWalk`: export paths resolved one component at a time from a directory descriptor.

Each directory on the way is opened with O_NOFOLLOW|O_DIRECTORY relative to the one before, so a
symlink is never followed, whatever it points to, and no path leads outside the root. Within
one NFS call (`scope()`), each directory is walked once and its descriptor kept until the call
ends: a call touches the same parent several times (lookup, act, attributes before and after).
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable, Iterator

# getattr: this module is imported on every platform, and Windows has neither flag; LocalVfs
# is only chosen where `localfs.usable()` holds (filesim.nfs.storage).
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# Not O_PATH, though cheaper: O_PATH|O_NOFOLLOW opens a symlink itself instead of failing,
# and that descriptor then leads through the link (tests/nfs/test_confinement.py).
_WALK_FLAGS = DIR_FLAGS


class DirWalk:
    """Walks of paths under the directory `root_fd` (which stays the caller's to close). Names
    for which `hidden` is true do not exist for it."""

    def __init__(self, root_fd: int, hidden: Callable[[str], bool]) -> None:
        self.root_fd = root_fd
        self._hidden = hidden
        self._scope = threading.local()  # per thread: COMMITs run in executor threads

    def at(self, path: str) -> _Parent:
        """A context giving (directory fd, final name) for `path`. A small class rather than a
        generator: it runs on every NFS call."""
        if not path:
            raise OSError(errno.EINVAL, "the export root has no parent")
        return _Parent(self, path)

    def scope(self) -> _CallScope:
        """Within this context (one NFS call), each directory is walked once."""
        return _CallScope(self)

    def scope_dir(self, path: str) -> int | None:
        """The fd of directory `path` when the current call scope holds it open."""
        memo: dict[str, int] | None = getattr(self._scope, "dirs", None)
        return None if memo is None else memo.get(path)

    @contextlib.contextmanager
    def dir(self, path: str) -> Iterator[int]:
        """Yield an fd of the directory `path` ("" is the root)."""
        if not path:
            yield self.root_fd
            return
        with self.at(path) as (parent, name):
            fd = os.open(name, DIR_FLAGS, dir_fd=parent)
        try:
            yield fd
        finally:
            os.close(fd)

    def check_name(self, name: str) -> None:
        if name in ("", ".", "..") or "/" in name or "\0" in name:
            raise OSError(errno.EINVAL, f"bad path component {name!r}")
        if self._hidden(name):
            raise OSError(errno.ENOENT, "no such file")

    def walk(self, path: str) -> tuple[int, str]:
        """(fd of the parent directory, final name); the fd is the caller's to close unless it
        is the root or belongs to the current call scope (see `owned`)."""
        memo: dict[str, int] | None = getattr(self._scope, "dirs", None)
        if memo is not None:
            parent, _, name = path.rpartition("/")
            fd = memo.get(parent) if parent else self.root_fd
            if fd is not None:
                self.check_name(name)
                return fd, name
            fd, name = self._walk_uncached(path)
            memo[parent] = fd
            return fd, name
        return self._walk_uncached(path)

    def owned(self, fd: int) -> bool:
        """Whether `fd` must stay open after use: the root, or a directory of the call scope."""
        if fd == self.root_fd:
            return True
        memo: dict[str, int] | None = getattr(self._scope, "dirs", None)
        return memo is not None and fd in memo.values()

    def _walk_uncached(self, path: str) -> tuple[int, str]:
        *dirs, name = path.split("/")
        self.check_name(name)
        fd = root = self.root_fd
        try:
            for part in dirs:
                self.check_name(part)
                nxt = os.open(part, _WALK_FLAGS, dir_fd=fd)
                if fd != root:
                    os.close(fd)
                fd = nxt
        except BaseException:
            if fd != root:
                os.close(fd)
            raise
        return fd, name


class _Parent:
    __slots__ = ("_fd", "_path", "_walk")

    def __init__(self, walk: DirWalk, path: str) -> None:
        self._walk, self._path, self._fd = walk, path, -1

    def __enter__(self) -> tuple[int, str]:
        fd, name = self._walk.walk(self._path)
        self._fd = fd
        return fd, name

    def __exit__(self, *exc: object) -> None:
        if not self._walk.owned(self._fd):
            os.close(self._fd)


class _CallScope:
    __slots__ = ("_outer", "_walk")

    def __init__(self, walk: DirWalk) -> None:
        self._walk = walk
        self._outer: dict[str, int] | None = None

    def __enter__(self) -> None:
        scope = self._walk._scope
        self._outer = getattr(scope, "dirs", None)
        if self._outer is None:
            scope.dirs = {}

    def __exit__(self, *exc: object) -> None:
        if self._outer is None:  # the outermost scope closes what the call opened
            scope = self._walk._scope
            for fd in scope.dirs.values():
                os.close(fd)
            scope.dirs = None
