"""Writing one copy's temp file: the bytes (through one reused buffer, holes kept as holes),
the mtime and mode, and durability (fsync of the file, or one syncfs for a whole batch). No
decisions: the executor says what to copy where, and renames the temp file into place.

Everything is relative to the directories the executor walked (`Dir`, tree.py): a source is
opened in its directory without following a symlink, a temp file created with O_EXCL in its.
Where the platform cannot set times or modes on an open file (Windows), they are set by name
once it is closed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import cast

from filesim.sync.outcome import Stale
from filesim.sync.scan import entry_of
from filesim.sync.state import Entry, unchanged
from filesim.sync.tree import Dir

_O_BINARY = getattr(os, "O_BINARY", 0)
_READ = os.O_RDONLY | _O_BINARY  # the Dir adds O_NOFOLLOW and O_CLOEXEC where they exist
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY
_CHUNK = 1 << 20
_SEEK_DATA: int | None = getattr(os, "SEEK_DATA", None)
_SEEK_HOLE: int | None = getattr(os, "SEEK_HOLE", None)


def publish_file(
    src_dir: Dir, name: str, dst_dir: Dir, tmp: str, entry: Entry, durable: bool = True
) -> Entry:
    """Copy the file `name` in `src_dir` (which must still be `entry`) to the new file `tmp` in
    `dst_dir`, with its mtime and `entry`'s mode; fsync it when `durable`. Returns what `tmp`
    now is.

    Raises Stale when the source is not `entry` any more (gone, replaced, a symlink now) or was
    written to while we copied.
    """
    try:
        src = src_dir.open(name, _READ)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
            raise Stale from None
        raise
    by_fd = os.utime in os.supports_fd and hasattr(os, "fchmod")
    try:
        before = os.fstat(src)
        if not unchanged(entry_of(before), entry):
            raise Stale
        # Created with its final permissions where the umask lets them through (no fchmod
        # then: one syscall of the dozen a small file costs); checked below either way.
        dst = dst_dir.open(tmp, _CREATE, entry.mode & 0o777 if by_fd else 0o600)
        try:
            blocks = getattr(before, "st_blocks", None)  # Windows has none
            copy_data(src, dst, before.st_size, -1 if blocks is None else blocks)
            after = os.fstat(src)
            if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                raise Stale  # written to while we copied
            published = None
            if by_fd:
                os.utime(dst, ns=(before.st_atime_ns, before.st_mtime_ns))
                published = _with_mode(dst, entry.mode)
            if durable:
                os.fsync(dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)
    if published is None:  # Windows: by name, times first (a read-only file takes none)
        dst_dir.utime(tmp, (before.st_atime_ns, before.st_mtime_ns))
        dst_dir.chmod(tmp, entry.mode)
        published = entry_of(dst_dir.lstat(tmp))
    assert published is not None
    return published


def _with_mode(fd: int, mode: int) -> Entry | None:
    """What the open file `fd` is once its permissions are `mode`: fchmod only when its
    creation did not give them (the umask, setuid/setgid/sticky bits, a default ACL)."""
    st = os.fstat(fd)
    if stat.S_IMODE(st.st_mode) != mode:
        os.fchmod(fd, mode)
        st = os.fstat(fd)
    return entry_of(st)


def publish_symlink(src_dir: Dir, name: str, dst_dir: Dir, tmp: str, entry: Entry) -> Entry:
    """Create symlink `tmp` in `dst_dir` with the link text of `name` in `src_dir` (which must
    still be `entry`)."""
    try:
        target = src_dir.readlink(name)
    except (FileNotFoundError, NotADirectoryError):
        raise Stale from None
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # not a symlink any more
            raise Stale from None
        raise
    if target != entry.target:
        raise Stale
    dst_dir.symlink(target, tmp)
    dst_dir.utime_link(tmp, (entry.mtime_ns, entry.mtime_ns))
    published = entry_of(dst_dir.lstat(tmp), target)
    assert published is not None
    return published


_buffers = threading.local()


def copy_data(src: int, dst: int, size: int = -1, blocks: int = -1) -> None:
    """Copy the file `src` (`size` bytes, `blocks` 512-byte blocks allocated) to `dst`, both at
    offset 0. A file with holes (fewer blocks than its size needs) is copied extent by extent
    (SEEK_DATA/SEEK_HOLE) and keeps its holes; any other is copied whole.

    Plain reads and writes through one reused buffer per thread: on ext4 here,
    copy_file_range and sendfile followed by the rename into place were 5x slower for small
    files, and a fresh 1 MiB bytes object per read costs more than a 10 KiB file's copy.
    """
    if blocks >= 0 and blocks * 512 < size and _copy_extents(src, dst, size):
        return
    # Only the size seen (the caller checks the file did not grow): no read to find EOF, one
    # syscall of the dozen a small file costs.
    _copy_range(src, dst, size if size >= 0 else None)


def _copy_extents(src: int, dst: int, size: int) -> bool:
    """Copy the data extents of `src` below `size`, then set the size: the holes stay holes.
    False (nothing done) where the platform cannot seek to data."""
    if _SEEK_DATA is None or _SEEK_HOLE is None:
        return False
    pos = 0
    while pos < size:
        try:
            data = os.lseek(src, pos, _SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                break  # only a hole is left
            if pos == 0 and exc.errno == errno.EINVAL:
                return False  # the filesystem does not say where data is
            raise
        if data >= size:
            break
        hole = min(os.lseek(src, data, _SEEK_HOLE), size)
        os.lseek(src, data, os.SEEK_SET)
        os.lseek(dst, data, os.SEEK_SET)
        _copy_range(src, dst, hole - data)
        pos = hole
    os.ftruncate(dst, size)
    return True


def _copy_range(src: int, dst: int, count: int | None) -> None:
    """Copy `count` bytes (None: up to EOF) from the current offset of `src` to that of `dst`."""
    buf = getattr(_buffers, "buf", None)
    if buf is None:
        buf = _buffers.buf = bytearray(_CHUNK)
    view = memoryview(buf)
    left = -1 if count is None else count
    if not hasattr(os, "readv"):  # pragma: no cover - Windows
        while left != 0 and (chunk := os.read(src, _CHUNK if left < 0 else min(left, _CHUNK))):
            _write_all(dst, memoryview(chunk))
            left -= len(chunk) if left > 0 else 0
        return
    while left != 0:
        n = os.readv(src, [view if left < 0 or left >= _CHUNK else view[:left]])
        if n == 0:
            return
        _write_all(dst, view[:n])
        if left > 0:
            left -= n


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


def unlink_quietly(name: str, d: Dir) -> None:
    with contextlib.suppress(FileNotFoundError):
        d.unlink(name)


# -- durability of a batch: one syncfs instead of an fsync per file


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return cast(Callable[[int], int], fn)


_syncfs = _load_syncfs()


def can_sync_filesystem() -> bool:
    return _syncfs is not None


def sync_filesystem(root: Path) -> None:
    """Make everything written on the filesystem of `root` durable (Linux syncfs)."""
    assert _syncfs is not None
    fd = os.open(root, os.O_RDONLY)
    try:
        if _syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(root))
    finally:
        os.close(fd)


def fsync_at(name: str, d: Dir) -> None:
    """fsync the file `name` in `d` (a symlink has nothing to sync)."""
    try:
        fd = d.open(name, _READ)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
