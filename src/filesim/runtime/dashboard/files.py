"""One side of a server's files (the tester's folder or the export store), confined like the
NFS server: what the dashboard reads, uploads, deletes and creates.

Paths are bytes (names are bytes on POSIX, any bytes but '/' and NUL) split into components,
each checked (no '', '.', '..', no NUL, at most 255 bytes). Every directory is opened one
component at a time from a descriptor of the root with O_NOFOLLOW|O_DIRECTORY, and the last
component is acted on through the `*at` calls without following symlinks: a symlink anywhere
in a path is refused, never followed, so nothing outside the root is ever read or written.
Names with the synchroniser's temporary prefix do not exist here (nor for NFS clients).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from filesim.errors import FilesimError
from filesim.topology.layout import TEMP_PREFIX

Parts = tuple[bytes, ...]
Kind = Literal["file", "dir", "symlink", "other"]

# getattr: imported on every platform; Windows has none of these flags (nor dir_fd calls: the
# file view answers an error there instead of keeping the whole program from starting).
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
MAX_NAME = 255
MAX_PATH = 4096
_TEMP = TEMP_PREFIX.encode()


class PathError(FilesimError):
    """A path the dashboard refuses or cannot act on; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def is_hidden(name: bytes) -> bool:
    """A file being published by the synchroniser (or uploaded): not shown, not reachable."""
    return name.startswith(_TEMP)


def split_path(raw: bytes) -> Parts:
    """The checked components of a root-relative path ('' or '/': the root itself)."""
    if len(raw) > MAX_PATH:
        raise PathError(400, f"the path is longer than {MAX_PATH} bytes")
    text = raw.strip(b"/")
    if not text:
        return ()
    parts = tuple(text.split(b"/"))
    for part in parts:
        if part in (b"", b".", b"..") or b"\0" in part:
            raise PathError(400, f"bad path component {part!r}: no empty, '.', '..' or NUL")
        if len(part) > MAX_NAME:
            raise PathError(400, f"a name may be at most {MAX_NAME} bytes")
        if is_hidden(part):
            raise PathError(404, "no such file")
    return parts


@dataclass(frozen=True, slots=True)
class Item:
    """One directory entry, as lstat sees it."""

    name: bytes
    kind: Kind
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, name: bytes, st: os.stat_result) -> Item:
        mode = st.st_mode
        kind: Kind = (
            "file" if stat.S_ISREG(mode) else "dir" if stat.S_ISDIR(mode)
            else "symlink" if stat.S_ISLNK(mode) else "other"
        )  # fmt: skip
        return cls(name, kind, st.st_size if kind != "dir" else 0, st.st_mtime_ns)


def _os_error(exc: OSError, what: str) -> PathError:
    code = exc.errno
    if code in (errno.ENOENT, errno.ENOTDIR):
        return PathError(404, f"{what}: no such file or directory")
    if code == errno.ELOOP:
        return PathError(409, f"{what}: a symlink is in the way (symlinks are never followed)")
    if code in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR):
        return PathError(409, f"{what}: {exc.strerror}")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PathError(403, f"{what}: {exc.strerror}")
    return PathError(500, f"{what}: {exc.strerror or exc}")


class Tree:
    """The files under `root`, reached only through confined walks."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @contextlib.contextmanager
    def directory(self, parts: Parts) -> Iterator[int]:
        """A descriptor of the directory `parts`, walked without following symlinks."""
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for part in parts:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nxt
            yield fd
        finally:
            os.close(fd)

    # -- reading ----------------------------------------------------------------------------

    def list(self, parts: Parts) -> list[Item] | None:
        """The entries of directory `parts`, or None when it does not exist on this side."""
        try:
            with self.directory(parts) as fd, os.scandir(fd) as entries:
                items = []
                for entry in entries:
                    name = os.fsencode(entry.name)
                    if is_hidden(name):
                        continue
                    try:
                        items.append(Item.of(name, entry.stat(follow_symlinks=False)))
                    except FileNotFoundError:  # gone while listing
                        continue
                return items
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None
            raise

    def stat(self, parts: Parts) -> Item | None:
        if not parts:
            return Item.of(b"", os.stat(self.root, follow_symlinks=False))
        try:
            with self.directory(parts[:-1]) as fd:
                return Item.of(parts[-1], os.stat(parts[-1], dir_fd=fd, follow_symlinks=False))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None
            raise

    def open_file(self, parts: Parts) -> tuple[int, int]:
        """(fd, size) of the regular file `parts`, opened for reading; the caller closes fd.
        O_NONBLOCK: opening a FIFO put there meanwhile must not hang the API."""
        if not parts:
            raise PathError(400, "the root is a directory")
        try:
            with self.directory(parts[:-1]) as dirfd:
                fd = os.open(parts[-1], _READ_FLAGS, dir_fd=dirfd)
        except OSError as exc:
            raise _os_error(exc, "cannot read it") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise PathError(409, "only regular files can be downloaded")
        return fd, st.st_size

    def entries(self, max_entries: int = 2_000_000) -> Iterator[tuple[Parts, bool]] | None:
        """(path, is a regular file) of every file and directory below the root, from the
        directory entries' types alone (no stat per entry: 10,000 files cost milliseconds);
        symlinks and special files are skipped, never followed. None: the root is missing."""
        try:
            with self.directory(()) as fd:
                start = os.dup(fd)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return self._entries(start, max_entries)

    def _entries(self, start: int, max_entries: int) -> Iterator[tuple[Parts, bool]]:
        todo: list[tuple[int, Parts]] = [(start, ())]
        seen = 0
        try:
            while todo:
                fd, here = todo.pop()
                try:
                    with os.scandir(fd) as found:
                        for entry in found:
                            name = os.fsencode(entry.name)
                            seen += 1
                            if is_hidden(name) or seen > max_entries:
                                continue
                            if entry.is_file(follow_symlinks=False):
                                yield (*here, name), True
                            elif entry.is_dir(follow_symlinks=False):
                                yield (*here, name), False
                                with contextlib.suppress(OSError):  # gone, or now a link
                                    sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                                    todo.append((sub, (*here, name)))
                finally:
                    os.close(fd)
        finally:
            for fd, _ in todo:
                os.close(fd)

    def count_files(self, max_entries: int = 2_000_000) -> int | None:
        """Regular files below the root (None when the root is missing)."""
        found = self.entries(max_entries)
        return None if found is None else sum(1 for _, is_file in found if is_file)

    # -- writing ----------------------------------------------------------------------------

    def upload(self, parts: Parts) -> Upload:
        """Start writing the file `parts`: into a temporary file beside it (invisible to the
        synchroniser and to NFS clients), renamed over the name by `Upload.finish`, so the sync
        sees a whole file appear, as when a tester drops one in."""
        if not parts:
            raise PathError(400, "a file needs a name")
        tmp = _TEMP + b"upload-" + secrets.token_hex(8).encode()
        try:
            with self.directory(parts[:-1]) as dirfd:
                existing = _lstat(parts[-1], dirfd)
                if existing is not None and stat.S_ISDIR(existing.st_mode):
                    raise PathError(409, "a directory of that name is already there")
                keep = os.dup(dirfd)
            try:
                fd = os.open(tmp, _NEW_FLAGS, 0o644, dir_fd=keep)
            except BaseException:
                os.close(keep)
                raise
        except OSError as exc:
            raise _os_error(exc, "cannot write it") from None
        return Upload(keep, fd, tmp, parts[-1])

    def remove(self, parts: Parts) -> Kind:
        """Delete the file, symlink or empty directory `parts`; returns what it was."""
        if not parts:
            raise PathError(400, "the root cannot be deleted")
        try:
            with self.directory(parts[:-1]) as dirfd:
                st = os.stat(parts[-1], dir_fd=dirfd, follow_symlinks=False)
                item = Item.of(parts[-1], st)
                if item.kind == "dir":
                    os.rmdir(parts[-1], dir_fd=dirfd)
                else:
                    os.unlink(parts[-1], dir_fd=dirfd)
                return item.kind
        except OSError as exc:
            if exc.errno == errno.ENOTEMPTY:
                raise PathError(409, "the directory is not empty") from None
            raise _os_error(exc, "cannot delete it") from None

    def mkdir(self, parts: Parts) -> None:
        if not parts:
            raise PathError(400, "a directory needs a name")
        try:
            with self.directory(parts[:-1]) as dirfd:
                os.mkdir(parts[-1], 0o755, dir_fd=dirfd)
        except OSError as exc:
            raise _os_error(exc, "cannot create it") from None


class Upload:
    """A file being uploaded: `write` chunks, then `finish` (publish) or `abort` (discard).
    Holds the parent directory open, so the file lands where the walk found it."""

    def __init__(self, dirfd: int, fd: int, tmp: bytes, name: bytes) -> None:
        self._dirfd, self._fd, self._tmp, self.name = dirfd, fd, tmp, name
        self.size = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
            self.size += written

    def finish(self) -> Item:
        try:
            os.close(self._fd)
            self._fd = -1
            os.rename(self._tmp, self.name, src_dir_fd=self._dirfd, dst_dir_fd=self._dirfd)
            st = os.stat(self.name, dir_fd=self._dirfd, follow_symlinks=False)
        except OSError as exc:
            self.abort()
            raise _os_error(exc, "cannot write it") from None
        os.close(self._dirfd)
        self._dirfd = -1
        return Item.of(self.name, st)

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._dirfd >= 0:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp, dir_fd=self._dirfd)
            os.close(self._dirfd)
            self._dirfd = -1


def _lstat(name: bytes, dirfd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return None
