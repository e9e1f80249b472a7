"""One side of the sync (the folder or the export store), reached only through directory
descriptors — confined exactly like the NFS server's `LocalVfs`.

Every path is resolved one component at a time from the root's descriptor, each directory opened
with O_NOFOLLOW|O_DIRECTORY, and the final component is acted on with the `*at` calls
(`dir_fd`, `follow_symlinks=False`). A symlink where a directory is expected is refused
(`Refused`), never followed: whatever a client or a tester swaps in meanwhile, the synchroniser
reads and writes nothing outside its two roots. No full path is ever handed to the kernel
either, so a tree deeper than PATH_MAX is as usable as a flat one.

Paths are root-relative `str` ('a/b.txt') holding any byte string a POSIX name can hold (the
bytes that are not UTF-8 as surrogate escapes, as `os.fsdecode` gives them).

A `Tree` keeps the descriptors of the directories it walked (a bounded cache, for one cycle), so
the walk costs a system call per directory, not per file. A cached descriptor is the very
directory that was reached without following a symlink, so using it cannot escape; but a client
may have renamed that directory away since, and `still_at` checks, before a name is published
in it, that it still sits where the path says.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# getattr: imported on every platform (Windows has neither flag, nor dir_fd calls: a Tree
# refuses to open there, see `_open_root`, instead of every command failing at import).
DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | _CLOEXEC
MAX_CACHED = 128
"""Directory descriptors a tree keeps open (besides those in use)."""


class Refused(OSError):
    """A symlink (or another non-directory) stands where a path needs a directory: the
    synchroniser does not follow it."""


def split(path: str) -> tuple[str, str]:
    """'a/b/c' -> ('a/b', 'c'); 'c' -> ('', 'c')."""
    head, _, name = path.rpartition("/")
    return head, name


def check_name(name: str) -> None:
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise OSError(errno.EINVAL, f"bad path component {name!r}")


def open_dir(name: str, dir_fd: int) -> int:
    """Open the directory `name` in `dir_fd` without following a symlink; Refused when `name`
    is a symlink or another non-directory, FileNotFoundError when it is absent."""
    check_name(name)
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        # Linux answers ENOTDIR for a symlink opened with O_DIRECTORY|O_NOFOLLOW, others ELOOP
        # (or EMLINK on FreeBSD): look at what is there to say which.
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP, errno.EMLINK):
            raise
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "no such directory", name) from None
        what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
        raise Refused(exc.errno, f"{what} where a directory is expected", name) from None


@dataclass(slots=True)
class Dir:
    """A cached directory descriptor, and the identity of the directory it was opened on."""

    fd: int
    dev: int
    ino: int
    users: int = 0
    """Holders right now: a directory in use is never closed by the cache."""


class Tree:
    """The directory `root`, walked with descriptors. Thread-safe. Close it after use."""

    def __init__(self, root: Path | str, max_cached: int = MAX_CACHED) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._dirs: OrderedDict[str, Dir] = OrderedDict()
        self._max = max_cached
        self._root = self._open_root()

    def _open_root(self) -> Dir | None:
        """The root's descriptor; None when it does not exist (an empty tree until written).
        The root itself may be a symlink: it is configuration, not content."""
        if os.open not in os.supports_dir_fd:
            raise OSError(
                errno.ENOTSUP,
                "the synchroniser walks folders by directory fds, which this platform lacks "
                "(Windows): run the servers with `filesim serve` or storage: direct",
                str(self.root),
            )
        try:
            fd = os.open(self.root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        st = os.fstat(fd)
        return Dir(fd, st.st_dev, st.st_ino, users=1)  # the root is never evicted

    def close(self) -> None:
        with self._lock:
            for d in self._dirs.values():
                os.close(d.fd)
            self._dirs.clear()
            if self._root is not None:
                os.close(self._root.fd)
                self._root = None

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- directories ------------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        return self._root is not None

    def acquire(self, path: str, create: bool = False) -> Dir:
        """The directory `path` ('' is the root), walked without following symlinks; hand it
        back with `release`. `create`: make missing directories (like `os.makedirs`).

        Raises FileNotFoundError when it is absent, Refused when a component is a symlink or
        not a directory."""
        with self._lock:
            return self._acquire(path, create)

    def release(self, d: Dir) -> None:
        with self._lock:
            d.users -= 1

    def _acquire(self, path: str, create: bool) -> Dir:
        if not path:
            return self._use(self._top(create))
        d = self._dirs.get(path)
        if d is not None:
            self._dirs.move_to_end(path)
            return self._use(d)
        # From the deepest directory on the way that is cached, one component at a time.
        parts = path.split("/")
        start = len(parts) - 1
        while start > 0 and "/".join(parts[:start]) not in self._dirs:
            start -= 1
        prefix = "/".join(parts[:start])
        d = self._acquire(prefix, create)
        for part in parts[start:]:
            try:
                child = self._open_child(d, part, create)
            finally:
                d.users -= 1
            prefix = f"{prefix}/{part}" if prefix else part
            self._dirs[prefix] = d = child
            self._evict()
        return d

    @staticmethod
    def _open_child(parent: Dir, name: str, create: bool) -> Dir:
        try:
            fd = open_dir(name, parent.fd)
        except FileNotFoundError:
            if not create:
                raise
            # Made meanwhile by someone else: open what is there (refused if not a directory).
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=parent.fd)
            fd = open_dir(name, parent.fd)
        st = os.fstat(fd)
        return Dir(fd, st.st_dev, st.st_ino, users=1)

    def _top(self, create: bool) -> Dir:
        if self._root is None:
            if not create:
                raise FileNotFoundError(errno.ENOENT, "no such directory", str(self.root))
            self.root.mkdir(parents=True, exist_ok=True)
            self._root = self._open_root()
            if self._root is None:  # pragma: no cover - removed again at once
                raise FileNotFoundError(errno.ENOENT, "no such directory", str(self.root))
        return self._root

    @staticmethod
    def _use(d: Dir) -> Dir:
        d.users += 1
        return d

    def _evict(self) -> None:
        excess = len(self._dirs) - self._max
        if excess <= 0:
            return
        for path in [p for p, d in self._dirs.items() if d.users == 0][:excess]:
            os.close(self._dirs.pop(path).fd)

    def still_at(self, path: str, d: Dir) -> bool:
        """True when the directory `d` (acquired as `path`) is still the one at `path`: no
        component of the path was renamed away or replaced since it was walked."""
        if not path:
            return True
        with self._lock:
            chain = []
            prefix = ""
            for part in path.split("/"):
                parent = self._root if not prefix else self._dirs.get(prefix)
                prefix = f"{prefix}/{part}" if prefix else part
                child = d if prefix == path else self._dirs.get(prefix)
                if parent is None or child is None:
                    return self._walks_to(path, d)
                chain.append((parent.fd, part, child))
            for parent_fd, part, child in chain:
                try:
                    st = os.stat(part, dir_fd=parent_fd, follow_symlinks=False)
                except OSError:
                    return False
                if (st.st_dev, st.st_ino) != (child.dev, child.ino):
                    return False
            return True

    def _walks_to(self, path: str, d: Dir) -> bool:
        """`still_at` without the cache (a component was evicted): a fresh walk."""
        if self._root is None:
            return False
        fd = self._root.fd
        try:
            for part in path.split("/"):
                nxt = open_dir(part, fd)
                if fd != self._root.fd:
                    os.close(fd)
                fd = nxt
            st = os.fstat(fd)
        except OSError:
            return False
        finally:
            if fd != self._root.fd:
                os.close(fd)
        return (st.st_dev, st.st_ino) == (d.dev, d.ino)

    # -- reads ------------------------------------------------------------------------------

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
            return os.stat(name, dir_fd=d.fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        finally:
            self.release(d)

    def readlink(self, path: str) -> str:
        head, name = split(path)
        d = self.acquire(head)
        try:
            return os.readlink(name, dir_fd=d.fd)
        finally:
            self.release(d)
