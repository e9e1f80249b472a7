"""The tree backend of platforms with directory descriptors (Linux, macOS): every path is
resolved one component at a time from the root's descriptor, each directory opened with
O_NOFOLLOW|O_DIRECTORY, and the final component is acted on with the `*at` calls (`dir_fd`,
`follow_symlinks=False`). Whatever a client or a tester swaps in meanwhile, the synchroniser
reads and writes nothing outside its two roots. No full path is ever handed to the kernel
either, so a tree deeper than PATH_MAX is as usable as a flat one.

A tree keeps the descriptors of the directories it walked (a bounded cache, for one cycle), so
the walk costs a system call per directory, not per file. A cached descriptor is the very
directory that was reached without following a symlink, so using it cannot escape; but a client
may have renamed that directory away since, and `still_at` checks, before a name is published
in it, that it still sits where the path says.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import cast

from filesim import nodemeta
from filesim.sync.tree import Dir, Refused, Tree, check_name

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
MAX_CACHED = 128
"""Directory descriptors a tree keeps open (besides those in use)."""


def dir_flags() -> int:
    # Read when called, not at import: this module is imported on every platform.
    return os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC


def open_dir(name: str, dir_fd: int) -> int:
    """Open the directory `name` in `dir_fd` without following a symlink; Refused when `name`
    is a symlink or another non-directory, FileNotFoundError when it is absent."""
    check_name(name)
    try:
        return os.open(name, dir_flags(), dir_fd=dir_fd)
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


class FdDir(Dir):
    """A directory descriptor, and the identity of the directory it was opened on."""

    def __init__(self, fd: int, users: int = 0) -> None:
        st = os.fstat(fd)
        self.fd, self.dev, self.ino, self.users = fd, st.st_dev, st.st_ino, users

    def lstat(self, name: str) -> os.stat_result:
        return os.stat(name, dir_fd=self.fd, follow_symlinks=False)

    def readlink(self, name: str) -> str:
        return os.readlink(name, dir_fd=self.fd)

    def open(self, name: str, flags: int, mode: int = 0o777) -> int:
        return os.open(name, flags | _NOFOLLOW | _CLOEXEC, mode, dir_fd=self.fd)

    def child(self, name: str) -> FdDir:
        return FdDir(open_dir(name, self.fd))

    def dup(self) -> FdDir:
        return FdDir(os.dup(self.fd))

    def scandir(self) -> AbstractContextManager[Iterator[os.DirEntry[str]]]:
        # A listing by descriptor yields entries whose name is relative to it; that is all
        # the scanner uses. (typeshed types scandir(fd) as DirEntry[str] too.)
        return os.scandir(self.fd)

    def entry_stat(self, item: os.DirEntry[str]) -> os.stat_result:
        return item.stat(follow_symlinks=False)

    def mkdir(self, name: str, mode: int) -> None:
        os.mkdir(name, mode, dir_fd=self.fd)

    def chmod_dir(self, name: str, mode: int) -> None:
        fd = open_dir(name, self.fd)  # fchmodat cannot refuse a symlink on Linux
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)

    def chmod(self, name: str, mode: int) -> None:
        os.chmod(name, mode, dir_fd=self.fd)

    def utime(self, name: str, ns: tuple[int, int]) -> None:
        os.utime(name, ns=ns, dir_fd=self.fd)

    def unlink(self, name: str) -> None:
        os.unlink(name, dir_fd=self.fd)

    def rmdir(self, name: str) -> None:
        os.rmdir(name, dir_fd=self.fd)

    def rmtree(self, name: str) -> None:
        shutil.rmtree(name, dir_fd=self.fd)

    def rename(self, name: str, dst: Dir, dst_name: str) -> None:
        assert isinstance(dst, FdDir), "a Dir of another tree backend"
        os.rename(name, dst_name, src_dir_fd=self.fd, dst_dir_fd=dst.fd)

    def rename_new(self, name: str, dst_name: str) -> bool:
        return rename_noreplace(self.fd, name, dst_name)

    def symlink(self, target: str, name: str) -> None:
        os.symlink(target, name, dir_fd=self.fd)

    def utime_link(self, name: str, ns: tuple[int, int]) -> None:
        if os.utime in os.supports_follow_symlinks:
            os.utime(name, ns=ns, dir_fd=self.fd, follow_symlinks=False)

    def placeholder(self, name: str) -> bool:
        # The xattr calls have no dir_fd form: an O_PATH descriptor of the very node, through
        # /proc, on Linux.
        o_path = getattr(os, "O_PATH", 0)
        if not o_path:
            return False
        try:
            fd = os.open(name, o_path | os.O_NOFOLLOW | _CLOEXEC, dir_fd=self.fd)
        except OSError:
            return False
        try:
            meta = nodemeta.decode(os.getxattr(f"/proc/self/fd/{fd}", nodemeta.XATTR))
        except OSError:  # no such attribute (the common case), or none on this filesystem
            return False
        finally:
            os.close(fd)
        return meta is not None and meta.placeholder

    def close(self) -> None:
        os.close(self.fd)


class FdTree(Tree):
    """The directory `root`, walked with descriptors."""

    def __init__(self, root: Path | str, max_cached: int = MAX_CACHED) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._dirs: OrderedDict[str, FdDir] = OrderedDict()
        self._max = max_cached
        self._root = self._open_root()

    def _open_root(self) -> FdDir | None:
        """The root's descriptor; None when it does not exist (an empty tree until written).
        The root itself may be a symlink: it is configuration, not content."""
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return FdDir(fd, users=1)  # the root is never evicted

    def close(self) -> None:
        with self._lock:
            for d in self._dirs.values():
                d.close()
            self._dirs.clear()
            if self._root is not None:
                self._root.close()
                self._root = None

    @property
    def exists(self) -> bool:
        return self._root is not None

    def acquire(self, path: str, make_root: bool = False) -> FdDir:
        with self._lock:
            return self._acquire(path, make_root)

    def release(self, d: Dir) -> None:
        with self._lock:
            d.users -= 1

    def _acquire(self, path: str, make_root: bool) -> FdDir:
        if not path:
            return self._use(self._top(make_root))
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
        d = self._acquire(prefix, make_root)
        for part in parts[start:]:
            try:
                child = FdDir(open_dir(part, d.fd), users=1)
            finally:
                d.users -= 1
            prefix = f"{prefix}/{part}" if prefix else part
            self._dirs[prefix] = d = child
            self._evict()
        return d

    def _top(self, make_root: bool) -> FdDir:
        if self._root is None:
            if not make_root:
                raise FileNotFoundError(errno.ENOENT, "no such directory", str(self.root))
            self.root.mkdir(parents=True, exist_ok=True)
            self._root = self._open_root()
            if self._root is None:  # pragma: no cover - removed again at once
                raise FileNotFoundError(errno.ENOENT, "no such directory", str(self.root))
        return self._root

    @staticmethod
    def _use(d: FdDir) -> FdDir:
        d.users += 1
        return d

    def _evict(self) -> None:
        excess = len(self._dirs) - self._max
        if excess <= 0:
            return
        for path in [p for p, d in self._dirs.items() if d.users == 0][:excess]:
            self._dirs.pop(path).close()

    def still_at(self, path: str, d: Dir) -> bool:
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


# -- landing a new file: one rename that refuses to replace, instead of a look and a rename

_RENAME_NOREPLACE = 1


def _load_renameat2() -> Callable[[int, bytes, int, bytes, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2  # glibc 2.28 and later
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return cast(Callable[[int, bytes, int, bytes, int], int], fn)


_renameat2 = _load_renameat2()


def rename_noreplace(dir_fd: int, src: str, dst: str) -> bool:
    """Rename `src` to `dst` in `dir_fd` if nothing is at `dst`, atomically (renameat2
    RENAME_NOREPLACE): FileExistsError when something is. False when this system or filesystem
    cannot refuse a replacement (then the caller looks first and renames, as before)."""
    if _renameat2 is None:
        return False
    if _renameat2(dir_fd, os.fsencode(src), dir_fd, os.fsencode(dst), _RENAME_NOREPLACE):
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            return False  # e.g. a network or FUSE filesystem without the flag
        raise OSError(err, os.strerror(err), dst)
    return True
