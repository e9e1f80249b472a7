"""`PathVfs`: an export root reached by plain paths, for platforms without directory fds.

Windows has no `dir_fd` calls, no O_NOFOLLOW and no O_DIRECTORY, so `LocalVfs` cannot run
there. This backend builds an OS path for every call instead, and confines it by checking each
component with `lstat` first: a symlink (or a Windows reparse point: junction, mount point) on
the way is refused, never followed; a final symlink is acted on as the link itself (lstat,
readlink, unlink, rename) and never opened. Files are opened, sought, read and written plainly;
times are set by path; FSSTAT comes from `shutil.disk_usage` where there is no `statvfs`.

The checks are as good as path resolution allows: a directory swapped for a symlink between
the check and the call is followed for that one call (LocalVfs's fd walk has no such window),
so LocalVfs stays the choice wherever the platform offers it (see `filesim.nfs.storage`).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from filesim.nfs import statx
from filesim.nfs.attrs import Attrs
from filesim.nfs.inodesearch import find_inode
from filesim.nfs.offsets import within
from filesim.nfs.pathcheck import PathChecker
from filesim.nfs.vfs import (
    SEEK_DATA,
    SEEK_HOLE,
    FsStat,
    SetAttrs,
    VfsEntry,
    times_for,
)
from filesim.topology.filesystems import has_reparse_point, is_link

_WINDOWS = sys.platform == "win32"
_BINARY = getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
_FILES_GUESS = 1 << 32  # FSSTAT file counts where the platform reports none
_CHUNK = 1 << 20


def _no_hidden(name: str) -> bool:
    return False


class PathVfs:
    """A `Vfs` over the directory `root` by path, every component checked by `lstat`."""

    readonly = False

    def __init__(self, root: Path, hidden: Callable[[str], bool] = _no_hidden) -> None:
        try:
            real = Path(os.path.realpath(root))  # a root under a symlink (macOS /tmp) is fine
            st = os.lstat(real)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot open export root {root}: {exc.strerror}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOTDIR, f"export root {root} is not a directory")
        self.root = real
        self._check = PathChecker(str(real), hidden)
        self._hidden = hidden
        self.can_symlink = hasattr(os, "symlink") and not _WINDOWS  # needs privilege there
        self.can_link = hasattr(os, "link")
        self.can_mknod = hasattr(os, "mkfifo") and hasattr(os, "mknod")
        self._lock = threading.Lock()

    def close(self) -> None:
        return None

    def call_scope(self, proc: int) -> AbstractContextManager[None]:
        return nullcontext()

    # -- reads --------------------------------------------------------------------------------

    def stat(self, path: str) -> Attrs:
        full = self._check.node(path)
        if statx.available():  # Linux: with the birth time
            return statx.lstat(full)
        return _attrs(os.lstat(full))

    def _file(self, path: str, flags: int) -> int:
        """An fd of the regular file `path`, refused when the final name is a link."""
        full = self._check.node(path)
        st = os.lstat(full)
        if is_link(st):
            raise OSError(errno.ELOOP, f"{path} is a symbolic link")
        if stat.S_ISDIR(st.st_mode):
            raise OSError(errno.EISDIR, f"{path} is a directory")
        return os.open(full, flags | _BINARY | getattr(os, "O_NOFOLLOW", 0))

    def read(self, path: str, offset: int, count: int) -> bytes:
        within(offset, 0, errno.EINVAL)
        fd = self._file(path, os.O_RDONLY)
        try:
            os.lseek(fd, offset, os.SEEK_SET)
            parts: list[bytes] = []
            while count > 0:
                chunk = os.read(fd, min(count, _CHUNK))
                if not chunk:
                    break
                parts.append(chunk)
                count -= len(chunk)
            return b"".join(parts)
        finally:
            os.close(fd)

    def open_read(self, path: str) -> int:
        return self._file(path, os.O_RDONLY)

    def seek(self, path: str, offset: int, whence: int) -> int:
        within(offset, 0, errno.ENXIO)
        fd = self._file(path, os.O_RDONLY)
        try:
            if hasattr(os, "SEEK_DATA"):
                return os.lseek(fd, offset, whence)
            size = os.fstat(fd).st_size  # no hole information: one extent of data
            if offset >= size:
                raise OSError(errno.ENXIO, "offset beyond the end of the file")
            return offset if whence == SEEK_DATA else size if whence == SEEK_HOLE else offset
        finally:
            os.close(fd)

    def allocate(self, path: str, offset: int, length: int, punch: bool) -> None:
        within(offset, length, errno.EFBIG)
        fd = self._file(path, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            if punch:
                _zero(fd, offset, min(offset + length, size) - offset)
            elif hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, offset, length)
            elif offset + length > size:
                os.ftruncate(fd, offset + length)
        finally:
            os.close(fd)

    def readlink(self, path: str) -> str:
        return os.readlink(self._check.node(path))

    def listdir(self, path: str) -> list[VfsEntry]:
        directory = self._check.directory(path)
        with os.scandir(directory) as it:
            return [VfsEntry(e.name, _inode(e)) for e in it if not self._hidden(e.name)]

    def statvfs(self) -> FsStat:
        if hasattr(os, "statvfs"):
            sv = os.statvfs(self.root)
            return FsStat(
                sv.f_blocks * sv.f_frsize, sv.f_bfree * sv.f_frsize, sv.f_bavail * sv.f_frsize,
                sv.f_files, sv.f_ffree, sv.f_favail,
            )  # fmt: skip
        usage = shutil.disk_usage(self.root)
        return FsStat(usage.total, usage.free, usage.free, _FILES_GUESS, _FILES_GUESS,
                      _FILES_GUESS)  # fmt: skip

    def find(self, ino: int, budget: int | None = None) -> str | None:
        """Breadth-first search for inode `ino`, never entering a link; SearchTooLong once
        more than `budget` entries were read."""
        return find_inode(
            ino, os.lstat(self.root).st_ino,
            lambda directory: os.scandir(self._check.directory(directory)),
            self._hidden, _inode, budget,
        )  # fmt: skip

    # -- writes -------------------------------------------------------------------------------

    def write(self, path: str, offset: int, data: memoryview | bytes, sync: bool) -> None:
        within(offset, len(data), errno.EFBIG)
        fd = self._file(path, os.O_WRONLY)
        try:
            os.lseek(fd, offset, os.SEEK_SET)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def commit(self, path: str, complete: bool) -> None:
        # Windows flushes only through a handle open for writing.
        fd = self._file(path, os.O_RDWR if _WINDOWS else os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def create(
        self, path: str, mode: int, exclusive: bool, owner: tuple[int, int] | None,
        initial: SetAttrs,
    ) -> None:  # fmt: skip
        full = self._check.node(path)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else 0)
        with self._lock:  # the check and the open of one name happen together
            self._refuse_link(full, path)
            fd = os.open(full, flags | _BINARY | getattr(os, "O_NOFOLLOW", 0), mode & 0o7777)
        try:
            if owner is not None and _as_root():
                os.fchown(fd, *owner)
            if exclusive and mode & 0o7777 and hasattr(os, "fchmod"):
                os.fchmod(fd, mode & 0o7777)  # the exact mode: no umask, no chown's clearing
            if initial.size is not None:
                within(initial.size, 0, errno.EFBIG)
                os.ftruncate(fd, initial.size)
        finally:
            os.close(fd)
        if initial.atime_ns is not None or initial.mtime_ns is not None:
            os.utime(full, ns=times_for(os.lstat(full), initial))

    def truncate(self, path: str, size: int) -> None:
        self.setattr(path, SetAttrs(size=size))

    def mkdir(self, path: str, mode: int, owner: tuple[int, int] | None) -> None:
        full = self._check.node(path)
        os.mkdir(full, mode & 0o7777)
        self._chown(full, owner)
        os.chmod(full, mode & 0o7777)  # the exact mode, whatever the umask

    def symlink(self, path: str, target: str, owner: tuple[int, int] | None) -> None:
        if not self.can_symlink:
            raise OSError(errno.EOPNOTSUPP, "symbolic links are not supported on this host")
        full = self._check.node(path)
        os.symlink(target, full)
        self._chown(full, owner)

    def mknod(self, path: str, mode: int, owner: tuple[int, int] | None, rdev: int) -> None:
        if not self.can_mknod:
            raise OSError(errno.EOPNOTSUPP, "special files are not supported on this host")
        device = stat.S_ISBLK(mode) or stat.S_ISCHR(mode)
        if not (device or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            raise OSError(errno.EINVAL, "mknod creates FIFOs, sockets and device nodes only")
        full = self._check.node(path)
        os.mknod(full, mode, rdev if device else 0)
        self._chown(full, owner)

    def _chown(self, full: str, owner: tuple[int, int] | None) -> None:
        if owner is not None and _as_root():
            os.chown(full, owner[0], owner[1], follow_symlinks=False)

    def remove(self, path: str) -> None:
        full = self._check.node(path)
        if stat.S_ISDIR(os.lstat(full).st_mode):
            raise OSError(errno.EISDIR, "is a directory")
        _writable_then(os.unlink, full)

    def rmdir(self, path: str) -> None:
        os.rmdir(self._check.node(path))

    def rename(self, src: str, dst: str) -> None:
        old, new = self._check.node(src), self._check.node(dst)
        os.lstat(old)  # NOENT for the source before anything about the target
        _writable_then(lambda target: os.replace(old, target), new)

    def link(self, src: str, dst: str) -> None:
        if not self.can_link:
            raise OSError(errno.EOPNOTSUPP, "hard links are not supported on this host")
        old, new = self._check.node(src), self._check.node(dst)
        if os.link in os.supports_follow_symlinks:
            os.link(old, new, follow_symlinks=False)
        else:
            self._refuse_link(old, src)
            os.link(old, new)

    def setattr(self, path: str, attrs: SetAttrs) -> None:
        full = str(self.root) if not path else self._check.node(path)
        st = os.lstat(full)
        link = stat.S_ISLNK(st.st_mode)
        if attrs.size is not None:
            if not stat.S_ISREG(st.st_mode):
                code = errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL
                raise OSError(code, "size can only be set on a regular file")
            within(attrs.size, 0, errno.EFBIG)
            fd = self._file(path, os.O_WRONLY)
            try:
                os.ftruncate(fd, attrs.size)
            finally:
                os.close(fd)
        if (attrs.uid is not None or attrs.gid is not None) and hasattr(os, "chown"):
            uid = -1 if attrs.uid is None else attrs.uid
            gid = -1 if attrs.gid is None else attrs.gid
            os.chown(full, uid, gid, follow_symlinks=False)
        if attrs.mode is not None and not link:
            os.chmod(full, attrs.mode & 0o7777)
        if attrs.atime_ns is not None or attrs.mtime_ns is not None:
            if not link:
                os.utime(full, ns=times_for(st, attrs))
            elif os.utime in os.supports_follow_symlinks:
                os.utime(full, ns=times_for(st, attrs), follow_symlinks=False)

    def _refuse_link(self, full: str, path: str) -> None:
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            return
        if is_link(st):
            raise OSError(errno.ELOOP, f"{path} is a symbolic link")


def _attrs(st: os.stat_result) -> Attrs:
    """Attrs of a stat; on Windows the owner is synthesized (root, as a share's files appear
    to an NFS client of a host without uids) and a reparse point is reported as a link."""
    attrs = Attrs.of(st)
    if not _WINDOWS:
        return attrs
    mode = attrs.st_mode
    if has_reparse_point(st):
        mode = stat.S_IFLNK | 0o777
    return attrs.but(st_mode=mode, st_uid=0, st_gid=0)


def _inode(entry: os.DirEntry[str]) -> int:
    """The entry's inode number; a full lstat where the listing has none (Windows)."""
    ino = entry.inode()
    return ino if ino else os.lstat(entry.path).st_ino


def _zero(fd: int, offset: int, length: int) -> None:
    """Zeros over the range: a hole where the platform has no hole punching."""
    os.lseek(fd, offset, os.SEEK_SET)
    while length > 0:
        length -= os.write(fd, bytes(min(length, _CHUNK)))


def _writable_then(act: Callable[[str], None], full: str) -> None:
    """`act(full)`; on Windows, a read-only target is made writable first (POSIX lets the
    owner of the directory unlink or replace a read-only file, Windows does not)."""
    try:
        act(full)
    except PermissionError:
        if not _WINDOWS or not os.path.lexists(full):
            raise
        os.chmod(full, stat.S_IWRITE)
        act(full)


def _as_root() -> bool:
    geteuid = getattr(os, "geteuid", None)
    return geteuid is not None and geteuid() == 0
