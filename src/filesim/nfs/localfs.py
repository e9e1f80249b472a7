"""`LocalVfs`: an export root on the local filesystem, with every call confined to it.

Each path is resolved one component at a time from a directory descriptor of the export root
(`DirWalk`), and the final component is acted on through the `*at` calls (`dir_fd`,
`follow_symlinks=False`). A symlink is therefore never followed, whatever it points to, and no
request reaches anything outside the root.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TypeVar

from filesim.nfs.attrs import Attrs
from filesim.nfs.dirwalk import DIR_FLAGS, NOFOLLOW, DirWalk
from filesim.nfs.inodesearch import find_inode
from filesim.nfs.offsets import within
from filesim.nfs.statx import lstat
from filesim.nfs.vfs import FsStat, SetAttrs, VfsEntry, times_for

_O_PATH = getattr(os, "O_PATH", 0)
_AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
_T = TypeVar("_T")


def _nofollow(flags: int) -> int:
    return flags | NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def _no_hidden(name: str) -> bool:
    return False


def usable() -> bool:
    """Whether this platform has what LocalVfs's confinement rests on: directory fds opened
    without following links, and the *at calls (Linux, macOS, BSD; not Windows)."""
    at_calls = (os.open, os.stat, os.mkdir, os.unlink, os.rmdir, os.rename, os.utime)
    return (
        hasattr(os, "O_NOFOLLOW")
        and hasattr(os, "O_DIRECTORY")
        and hasattr(os, "pread")
        and all(f in os.supports_dir_fd for f in at_calls)
    )


class LocalVfs:
    """A `Vfs` over the directory `root`. Names for which `hidden` is true do not exist for it."""

    readonly = False

    def __init__(self, root: Path, hidden: Callable[[str], bool] = _no_hidden) -> None:
        self.root = root
        self._hidden = hidden
        if not usable():
            raise OSError(errno.ENOTSUP, "this platform has no directory fds: use PathVfs")
        # Bits of a new node's mode that creation alone would lose (the process umask, and
        # S_ISUID/S_ISGID, which the chown to the client's owner clears): set again after.
        self._restate = _umask() | 0o7000
        try:
            self._root_fd = os.open(root, DIR_FLAGS)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot open export root {root}: {exc.strerror}") from None
        self._walk = DirWalk(self._root_fd, hidden)
        # Bound once: these run on every call.
        self._at, self._dir = self._walk.at, self._walk.dir
        self._check_name, self._scope_dir = self._walk.check_name, self._walk.scope_dir

    def close(self) -> None:
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    def call_scope(self, proc: int) -> AbstractContextManager[None]:
        return self._walk.scope()

    # -- reads --------------------------------------------------------------------------------

    def stat(self, path: str) -> Attrs:
        if not path:
            return lstat("", self._root_fd)
        parent, _, name = path.rpartition("/")
        # The common cases without the walk's context manager: a name in the root, or in a
        # directory the call has opened already (every entry of a READDIRPLUS page).
        fd = self._root_fd if not parent else self._scope_dir(parent)
        if fd is not None:
            self._check_name(name)
            return lstat(name, fd)
        with self._at(path) as (at, name):
            return lstat(name, at)

    def read(self, path: str, offset: int, count: int) -> bytes:
        within(offset, 0, errno.EINVAL)
        fd = self.open_read(path)
        try:
            return os.pread(fd, count, offset)
        finally:
            os.close(fd)

    def open_read(self, path: str) -> int:
        """An fd of `path` for reading (never through a final symlink); the caller closes it."""
        with self._at(path) as (parent, name):
            return os.open(name, _nofollow(os.O_RDONLY), dir_fd=parent)

    def seek(self, path: str, offset: int, whence: int) -> int:
        """lseek with SEEK_DATA or SEEK_HOLE: where the next data or hole starts."""
        within(offset, 0, errno.ENXIO)
        fd = self.open_read(path)
        try:
            return os.lseek(fd, offset, whence)
        finally:
            os.close(fd)

    def allocate(self, path: str, offset: int, length: int, punch: bool) -> None:
        """Allocate the range (growing the file past its end), or punch it into a hole."""
        within(offset, length, errno.EFBIG)
        with self._at(path) as (parent, name):
            fd = os.open(name, _nofollow(os.O_WRONLY), dir_fd=parent)
        try:
            if punch:
                _punch_hole(fd, offset, length)
            else:
                os.posix_fallocate(fd, offset, length)
        finally:
            os.close(fd)

    def readlink(self, path: str) -> str:
        with self._at(path) as (parent, name):
            return os.readlink(name, dir_fd=parent)

    def listdir(self, path: str) -> list[VfsEntry]:
        with self._dir(path) as fd, os.scandir(fd) as it:
            return [VfsEntry(e.name, e.inode()) for e in it if not self._hidden(e.name)]

    def statvfs(self) -> FsStat:
        sv = os.fstatvfs(self._root_fd)
        return FsStat(
            total_bytes=sv.f_blocks * sv.f_frsize,
            free_bytes=sv.f_bfree * sv.f_frsize,
            avail_bytes=sv.f_bavail * sv.f_frsize,
            total_files=sv.f_files,
            free_files=sv.f_ffree,
            avail_files=sv.f_favail,
        )

    def find(self, ino: int, budget: int | None = None) -> str | None:
        """Breadth-first search of the tree for inode `ino`, never following symlinks;
        SearchTooLong once more than `budget` entries were read."""
        return find_inode(
            ino, os.fstat(self._root_fd).st_ino, self._listing, self._hidden,
            os.DirEntry.inode, budget,
        )  # fmt: skip

    @contextlib.contextmanager
    def _listing(self, directory: str) -> Iterator[Iterator[os.DirEntry[str]]]:
        with self._dir(directory) as fd, os.scandir(fd) as it:
            yield it

    # -- writes -------------------------------------------------------------------------------

    def write(self, path: str, offset: int, data: memoryview | bytes, sync: bool) -> None:
        within(offset, len(data), errno.EFBIG)
        with self._at(path) as (parent, name):
            fd = os.open(name, _nofollow(os.O_WRONLY), dir_fd=parent)
        try:
            written = os.pwrite(fd, data, offset)
            while written < len(data):  # a short write (rare: signals, quotas) continues
                written += os.pwrite(fd, data[written:], offset + written)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def commit(self, path: str, complete: bool) -> None:
        fd = self.open_read(path)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def create(
        self, path: str, mode: int, exclusive: bool, owner: tuple[int, int] | None,
        initial: SetAttrs,
    ) -> None:  # fmt: skip
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else 0)
        if initial.size is not None:
            within(initial.size, 0, errno.EFBIG)
        with self._at(path) as (parent, name):
            fd = os.open(name, _nofollow(flags), mode & 0o7777, dir_fd=parent)
            try:
                if owner is not None and _AS_ROOT:
                    os.fchown(fd, *owner)
                if exclusive and mode & self._restate:  # (else it may be an existing file)
                    os.fchmod(fd, mode & 0o7777)
                if initial.size is not None:
                    os.ftruncate(fd, initial.size)
                if initial.atime_ns is not None or initial.mtime_ns is not None:
                    os.utime(fd, ns=times_for(os.fstat(fd), initial))
            finally:
                os.close(fd)

    def truncate(self, path: str, size: int) -> None:
        self.setattr(path, SetAttrs(size=size))

    def mkdir(self, path: str, mode: int, owner: tuple[int, int] | None) -> None:
        with self._at(path) as (parent, name):
            os.mkdir(name, mode & 0o7777, dir_fd=parent)
            self._chown(parent, name, owner)
            if mode & self._restate:
                self._chmod_nofollow(parent, name, mode & 0o7777)

    def symlink(self, path: str, target: str, owner: tuple[int, int] | None) -> None:
        with self._at(path) as (parent, name):
            os.symlink(target, name, dir_fd=parent)
            self._chown(parent, name, owner)

    def mknod(self, path: str, mode: int, owner: tuple[int, int] | None, rdev: int) -> None:
        device = stat.S_ISBLK(mode) or stat.S_ISCHR(mode)
        if not (device or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            raise OSError(errno.EINVAL, "mknod creates FIFOs, sockets and device nodes only")
        if os.mknod not in os.supports_dir_fd:  # macOS before 13 has no mknodat
            raise OSError(errno.EOPNOTSUPP, "special files need macOS 13 or later on this host")
        with self._at(path) as (parent, name):
            # a device node needs CAP_MKNOD; without it the OS answers EPERM
            os.mknod(name, mode, rdev if device else 0, dir_fd=parent)
            self._chown(parent, name, owner)
            if mode & self._restate:
                self._chmod_nofollow(parent, name, mode & 0o7777)

    def _chown(self, parent: int, name: str, owner: tuple[int, int] | None) -> None:
        if owner is not None and _AS_ROOT:
            os.chown(name, owner[0], owner[1], dir_fd=parent, follow_symlinks=False)

    def remove(self, path: str) -> None:
        with self._at(path) as (parent, name):
            if stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
                raise OSError(errno.EISDIR, "is a directory")
            os.unlink(name, dir_fd=parent)

    def rmdir(self, path: str) -> None:
        with self._at(path) as (parent, name):
            os.rmdir(name, dir_fd=parent)

    def rename(self, src: str, dst: str) -> None:
        with self._at(src) as (src_dir, src_name), self._at(dst) as (dst_dir, dst_name):
            os.rename(src_name, dst_name, src_dir_fd=src_dir, dst_dir_fd=dst_dir)

    def link(self, src: str, dst: str) -> None:
        with self._at(src) as (src_dir, src_name), self._at(dst) as (dst_dir, dst_name):
            os.link(
                src_name, dst_name, src_dir_fd=src_dir, dst_dir_fd=dst_dir, follow_symlinks=False
            )

    def setattr(self, path: str, attrs: SetAttrs) -> None:
        if not path:
            self._setattr_root(attrs)
            return
        if attrs.size is not None:
            within(attrs.size, 0, errno.EFBIG)
        with self._at(path) as (parent, name):
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if attrs.size is not None:
                if not stat.S_ISREG(st.st_mode):
                    code = errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL
                    raise OSError(code, "size can only be set on a regular file")
                fd = os.open(name, _nofollow(os.O_WRONLY), dir_fd=parent)
                try:
                    os.ftruncate(fd, attrs.size)
                finally:
                    os.close(fd)
            if attrs.uid is not None or attrs.gid is not None:
                uid = -1 if attrs.uid is None else attrs.uid
                gid = -1 if attrs.gid is None else attrs.gid
                os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
            if attrs.mode is not None and not stat.S_ISLNK(st.st_mode):
                self._chmod_nofollow(parent, name, attrs.mode & 0o7777)
            if attrs.atime_ns is not None or attrs.mtime_ns is not None:
                os.utime(name, ns=times_for(st, attrs), dir_fd=parent, follow_symlinks=False)

    def _setattr_root(self, attrs: SetAttrs) -> None:
        fd = self._root_fd
        if attrs.size is not None:
            raise OSError(errno.EISDIR, "size can only be set on a regular file")
        if attrs.uid is not None or attrs.gid is not None:
            os.fchown(fd, -1 if attrs.uid is None else attrs.uid,
                      -1 if attrs.gid is None else attrs.gid)  # fmt: skip
        if attrs.mode is not None:
            os.fchmod(fd, attrs.mode & 0o7777)
        if attrs.atime_ns is not None or attrs.mtime_ns is not None:
            os.utime(fd, ns=times_for(os.fstat(fd), attrs))

    # -- extended attributes (nfs/ownership.py keeps emulated owners in them) ----------------

    def getxattr(self, path: str, name: str) -> bytes | None:
        """The value of attribute `name` of the node at `path` (never a symlink's target);
        None when it has none. OSError(ENOTSUP/EPERM) where the node cannot hold one."""
        try:
            return self._on_node(path, lambda ref: os.getxattr(ref, name))
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                return None
            raise

    def setxattr(self, path: str, name: str, value: bytes) -> None:
        self._on_node(path, lambda ref: os.setxattr(ref, name, value))

    def _on_node(self, path: str, call: Callable[[str], _T]) -> _T:
        """Run `call` on a /proc reference to the node itself: the xattr calls have no dir_fd
        form, and an O_PATH descriptor pins the very node, symlink or not (Linux only)."""
        if not (_O_PATH and sys.platform.startswith("linux")):
            raise OSError(errno.ENOTSUP, "extended attributes need Linux here")
        if not path:
            return call(f"/proc/self/fd/{self._root_fd}")
        with self._at(path) as (parent, name):
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            if stat.S_ISLNK(os.fstat(fd).st_mode):  # /proc would lead through the link
                raise OSError(errno.EPERM, "symlinks hold no user attributes")
            return call(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)

    def _chmod_nofollow(self, parent: int, name: str, mode: int) -> None:
        if _O_PATH and sys.platform.startswith("linux"):
            # fchmodat cannot refuse symlinks on Linux; an O_PATH descriptor pins the very node.
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            try:
                os.chmod(f"/proc/self/fd/{fd}", mode)
            finally:
                os.close(fd)
        else:
            os.chmod(name, mode, dir_fd=parent, follow_symlinks=False)


def _umask() -> int:
    """The process umask, read without setting it where Linux shows it (setting it, even
    back, would race with threads creating files meanwhile: the sync agents)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _punch_hole(fd: int, offset: int, length: int) -> None:
    """fallocate(PUNCH_HOLE | KEEP_SIZE) where Linux has it, else zeros over the range."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fallocate = getattr(libc, "fallocate", None)
    if fallocate is not None:
        fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
        if fallocate(fd, 0x02 | 0x01, offset, length) == 0:
            return
    size = os.fstat(fd).st_size
    end = min(offset + length, size)
    if end > offset:
        os.pwrite(fd, bytes(end - offset), offset)
