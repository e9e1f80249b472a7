"""One agent per archive: an exclusive, non-blocking lock on `<archive>.lock`.

Two agents on one archive would each take the other's copies for new changes. The lock is an
advisory lock on an open file, so the kernel drops it when the holder dies (kill -9 included):
a stale lock file never blocks a restart. POSIX uses flock, Windows msvcrt.locking on the lock
file's first byte. The runtime holds one the same way while a topology runs (its liveness).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filesim.errors import FilesimError


def _lock_module() -> Any:
    """fcntl where the platform has it, else msvcrt (Windows); chosen when first needed."""
    try:
        import fcntl
    except ImportError:
        import msvcrt

        return msvcrt
    return fcntl


def try_lock(fd: int) -> bool:
    """Take an exclusive lock on the open file `fd` without waiting; False when another
    holder (another process, or another open of the file) has it. flock on POSIX; on Windows
    msvcrt.locking of the file's first byte. Either is dropped when the holder dies."""
    mod = _lock_module()
    try:
        if hasattr(mod, "flock"):
            mod.flock(fd, mod.LOCK_EX | mod.LOCK_NB)
        else:
            os.lseek(fd, 0, os.SEEK_SET)
            mod.locking(fd, mod.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def unlock(fd: int) -> None:
    """Release the lock taken on `fd` and close it."""
    mod = _lock_module()
    if not hasattr(mod, "flock"):
        with contextlib.suppress(OSError):
            os.lseek(fd, 0, os.SEEK_SET)
            mod.locking(fd, mod.LK_UNLCK, 1)
    os.close(fd)  # closing the file releases a flock


def locked_by_another(path: Path) -> bool:
    """Whether someone holds the lock on the file `path` (False when there is no such file)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    if try_lock(fd):
        unlock(fd)
        return False
    os.close(fd)
    return True


class ArchiveLock:
    """The lock of one archive, held by one agent while it syncs. Re-entrant per object."""

    def __init__(self, archive: Path, owner: str) -> None:
        self.path = archive.with_suffix(".lock")
        self.archive = archive
        self.owner = owner
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Raises FilesimError when another agent holds the archive."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not try_lock(fd):
            os.close(fd)
            raise FilesimError(
                f"another sync agent is already running for {self.owner} "
                f"(archive {self.archive} is locked)"
            )
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            unlock(self._fd)
            self._fd = None

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Hold the lock for the block; a lock already held stays held afterwards."""
        if self._fd is not None:
            yield
            return
        self.acquire()
        try:
            yield
        finally:
            self.release()
