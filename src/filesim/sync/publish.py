"""Writing one copy's temp file: the bytes (through one reused buffer), the mtime and mode, and
durability (fsync of the file, or one syncfs for a whole batch). No decisions: the executor
says what to copy where, and renames the temp file into place.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import cast

from filesim.sync.outcome import Stale
from filesim.sync.scan import entry_of
from filesim.sync.state import Entry, unchanged

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_CHUNK = 1 << 20


def publish_file(src_path: str, tmp: str, entry: Entry, durable: bool = True) -> Entry:
    """Copy the file at `src_path` (which must still be `entry`) to the new file `tmp`, with
    its mtime and `entry`'s mode; fsync it when `durable`. Returns what `tmp` now is.

    Raises Stale when the source is not `entry` any more or was written to while we copied.
    """
    src = os.open(src_path, os.O_RDONLY | _O_NOFOLLOW | _O_BINARY)
    try:
        before = os.fstat(src)
        if not unchanged(entry_of(before), entry):
            raise Stale
        dst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o600)
        try:
            copy_data(src, dst)
            after = os.fstat(src)
            if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                raise Stale  # written to while we copied
            by_fd = os.utime in os.supports_fd and hasattr(os, "fchmod")
            times = (before.st_atime_ns, before.st_mtime_ns)
            if by_fd:
                os.utime(dst, ns=times)
                os.fchmod(dst, entry.mode)
            if durable:
                os.fsync(dst)
            published = entry_of(os.fstat(dst))
        finally:
            os.close(dst)
    finally:
        os.close(src)
    if not by_fd:  # Windows: times and mode by path (no utime or chmod of an fd there)
        os.chmod(tmp, entry.mode)
        os.utime(tmp, ns=times)
        published = entry_of(os.lstat(tmp), tmp)
    assert published is not None
    return published


def publish_symlink(src_path: str, tmp: str, entry: Entry) -> Entry:
    """Create symlink `tmp` with the link text of `src_path` (which must still be `entry`)."""
    target = os.readlink(src_path)
    if target != entry.target:
        raise Stale
    os.symlink(target, tmp)
    if os.utime in os.supports_follow_symlinks:
        os.utime(tmp, ns=(entry.mtime_ns, entry.mtime_ns), follow_symlinks=False)
    published = entry_of(os.lstat(tmp), tmp)
    assert published is not None
    return published


_buffers = threading.local()


def copy_data(src: int, dst: int) -> None:
    """Copy from the current offset to EOF.

    Plain reads and writes through one reused buffer per thread: on ext4 here,
    copy_file_range and sendfile followed by the rename into place were 5x slower for small
    files, and a fresh 1 MiB bytes object per read costs more than a 10 KiB file's copy.
    """
    buf = getattr(_buffers, "buf", None)
    if buf is None:
        buf = _buffers.buf = bytearray(_CHUNK)
    view = memoryview(buf)
    if not hasattr(os, "readv"):  # pragma: no cover - Windows
        while chunk := os.read(src, _CHUNK):
            _write_all(dst, memoryview(chunk))
        return
    while n := os.readv(src, [buf]):
        _write_all(dst, view[:n])


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


def unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


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


def fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
