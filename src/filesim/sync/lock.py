"""One agent per archive: an exclusive, non-blocking lock on `<archive>.lock`.

Two agents on one archive would each take the other's copies for new changes. The lock is an
advisory lock on an open file, so the kernel drops it when the holder dies (kill -9 included):
a stale lock file never blocks a restart. POSIX uses flock; a Windows branch (msvcrt.locking on
the lock file's first byte) fits into `_try_lock`/`_unlock_fd` without touching callers.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from filesim.errors import FilesimError

if sys.platform == "win32":  # pragma: no cover - not locked on Windows yet

    def _try_lock(fd: int) -> bool:
        """One agent per archive is on the user here for now; the lock slots in as
        `msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)`, False on OSError."""
        return True

    def _unlock_fd(fd: int) -> None:
        os.close(fd)  # with msvcrt: os.lseek(fd, 0, 0); msvcrt.locking(fd, LK_UNLCK, 1) first

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        """Take the exclusive lock on `fd` without waiting; False when another holder has it."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def _unlock_fd(fd: int) -> None:
        os.close(fd)  # closing the file releases its flock


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
        if not _try_lock(fd):
            os.close(fd)
            raise FilesimError(
                f"another sync agent is already running for {self.owner} "
                f"(archive {self.archive} is locked)"
            )
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            _unlock_fd(self._fd)
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
