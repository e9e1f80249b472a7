"""The narrow filesystem interface the NFS procedures talk to.

Paths are export-relative, '/'-separated, without a leading slash; "" is the export root. The
procedures never touch the OS themselves: `LocalVfs` confines every call to the export root, and
wrappers (change notification, fault injection) slot in around any `Vfs`.
"""

from __future__ import annotations

import errno
import os
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from filesim.nfs.attrs import Attrs
from filesim.oncrpc.programs import NfsStat


class SearchTooLong(Exception):
    """Work too long for the event loop (a search of the whole export): do it in a thread."""


class NfsError(Exception):
    """An NFS procedure failed with `status`; mapped to the reply at the dispatch boundary."""

    def __init__(self, status: NfsStat, message: str = "") -> None:
        super().__init__(message or status.name)
        self.status = status


_ERRNO_STATUS = {
    errno.EPERM: NfsStat.PERM,
    errno.ENOENT: NfsStat.NOENT,
    errno.EIO: NfsStat.IO,
    errno.ENXIO: NfsStat.NXIO,
    errno.EACCES: NfsStat.ACCES,
    errno.EEXIST: NfsStat.EXIST,
    errno.EXDEV: NfsStat.XDEV,
    errno.ENODEV: NfsStat.NODEV,
    errno.ENOTDIR: NfsStat.NOTDIR,
    errno.EISDIR: NfsStat.ISDIR,
    errno.EINVAL: NfsStat.INVAL,
    errno.EFBIG: NfsStat.FBIG,
    errno.ENOSPC: NfsStat.NOSPC,
    errno.EROFS: NfsStat.ROFS,
    errno.EMLINK: NfsStat.MLINK,
    errno.ENAMETOOLONG: NfsStat.NAMETOOLONG,
    errno.ENOTEMPTY: NfsStat.NOTEMPTY,
    errno.EDQUOT: NfsStat.DQUOT,
    errno.ESTALE: NfsStat.STALE,
    errno.ELOOP: NfsStat.NOENT,  # a symlink where a directory was needed: not reachable
    errno.EOPNOTSUPP: NfsStat.NOTSUPP,
}


def status_of(exc: OSError) -> NfsStat:
    """The NFS status for an OS error (NFS3ERR_IO when there is no closer one)."""
    return _ERRNO_STATUS.get(exc.errno or 0, NfsStat.IO)


class VfsEntry(NamedTuple):
    """A name in a directory listing and its file number. A NamedTuple: a listing builds one
    per name (0.55 against 0.89 µs for a frozen dataclass)."""

    name: str
    ino: int


@dataclass(frozen=True, slots=True)
class SetAttrs:
    """Attributes to change; None means leave unchanged. Times in ns; -1 means server time."""

    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    atime_ns: int | None = None
    mtime_ns: int | None = None

    @property
    def empty(self) -> bool:
        return all(v is None for v in (self.mode, self.uid, self.gid, self.size, self.atime_ns,
                                       self.mtime_ns))  # fmt: skip


@dataclass(frozen=True, slots=True)
class FsStat:
    total_bytes: int
    free_bytes: int
    avail_bytes: int
    total_files: int
    free_files: int
    avail_files: int


class Vfs(Protocol):
    """Storage operations on export-relative paths; errors are raised as OSError or NfsError.

    Wrappers compose around any Vfs (`NotifyingVfs`, `FaultyVfs`); `close` reaches the storage.
    """

    @property
    def readonly(self) -> bool:
        """Whether the storage refuses changes right now (an injected read-only flip)."""

    def stat(self, path: str) -> Attrs:
        """lstat of `path` (never follows a final symlink)."""

    def read(self, path: str, offset: int, count: int) -> bytes: ...

    def open_read(self, path: str) -> int:
        """An fd of the regular file `path` open for reading, which the caller closes (a large
        READ sends its data from the file)."""

    def write(self, path: str, offset: int, data: memoryview | bytes, sync: bool) -> None: ...

    def commit(self, path: str, complete: bool) -> None:
        """Make `path`'s written data stable. `complete`: the writer is done with the file
        (an NFSv3 COMMIT, or the last NFSv4 writer's); False while a writer still has it open."""

    def create(
        self, path: str, mode: int, exclusive: bool, owner: tuple[int, int] | None,
        initial: SetAttrs,
    ) -> None:  # fmt: skip
        """Create a regular file; `exclusive` fails with EEXIST when it exists. `initial` sets
        its size and times as part of the creation (an EXCLUSIVE verifier lives in the times)."""

    def truncate(self, path: str, size: int) -> None:
        """Set the size of an existing regular file as a data change (a CREATE of an existing
        file with a size, as open(O_TRUNC) asks), unlike a SETATTR."""

    def mkdir(self, path: str, mode: int, owner: tuple[int, int] | None) -> None: ...

    def symlink(self, path: str, target: str, owner: tuple[int, int] | None) -> None: ...

    def mknod(self, path: str, mode: int, owner: tuple[int, int] | None, rdev: int) -> None:
        """Create a FIFO, socket or device node (`mode` carries the S_IF* type; `rdev` the
        device number of a block or character device, `os.makedev(major, minor)`)."""

    def seek(self, path: str, offset: int, whence: int) -> int:
        """lseek with SEEK_DATA or SEEK_HOLE (NFSv4.2 SEEK); OSError(ENXIO) past the data."""
        ...

    def allocate(self, path: str, offset: int, length: int, punch: bool) -> None:
        """Reserve the range (NFSv4.2 ALLOCATE), or punch a hole in it (DEALLOCATE)."""
        ...

    def readlink(self, path: str) -> str: ...

    def remove(self, path: str) -> None: ...

    def rmdir(self, path: str) -> None: ...

    def rename(self, src: str, dst: str) -> None: ...

    def link(self, src: str, dst: str) -> None: ...

    def setattr(self, path: str, attrs: SetAttrs) -> None: ...

    def listdir(self, path: str) -> list[VfsEntry]: ...

    def statvfs(self) -> FsStat: ...

    def find(self, ino: int, budget: int | None = None) -> str | None:
        """The path of the node with inode number `ino`, searched under the root, or None.
        SearchTooLong when more than `budget` directory entries would have to be read."""

    def call_scope(self, proc: int) -> AbstractContextManager[None]:
        """A context around one call of NFS procedure `proc`, within which the storage may
        reuse what it looked up (one call visits the same directories several times) and a
        fault layer decides which of its rules fire for this call. `FRAME` for a frame
        around calls that open their own scopes (an NFSv4 COMPOUND's operations)."""

    def close(self) -> None:
        """Release the storage (descriptors); no call may follow."""


SEEK_DATA: int = getattr(os, "SEEK_DATA", 3)
SEEK_HOLE: int = getattr(os, "SEEK_HOLE", 4)
"""`Vfs.seek`'s whence values (Linux's numbers where the platform has none)."""


def times_for(st: Attrs | os.stat_result, attrs: SetAttrs) -> tuple[int, int]:
    """(atime, mtime) in ns for os.utime: `attrs`' times over `st`'s (-1: the server's now)."""
    now = time.time_ns()

    def pick(value: int | None, current: int) -> int:
        if value is None:
            return current
        return now if value < 0 else value

    return pick(attrs.atime_ns, st.st_atime_ns), pick(attrs.mtime_ns, st.st_mtime_ns)


FRAME = -1
"""`call_scope`'s procedure for a frame that is no call itself: no fault fires on it."""


def join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]
