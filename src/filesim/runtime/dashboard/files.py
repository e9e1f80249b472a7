"""One side of a server's files (the tester's folder or the export store), confined like the
synchroniser: what the dashboard reads, uploads, deletes and creates.

Paths are bytes (names are bytes on POSIX, any bytes but '/' and NUL) split into components,
each checked (no '', '.', '..', no NUL, at most 255 bytes). Every walk goes through the
synchroniser's own trees (`filesim.sync.tree`: directory descriptors where the platform has
them, lstat-checked paths on Windows), so a symlink anywhere in a path is refused, never
followed, and nothing outside the root is ever read or written, on every platform.
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
from filesim.sync.backend import open_tree
from filesim.sync.tree import Dir, Refused
from filesim.sync.tree import Tree as SyncTree
from filesim.topology.layout import TEMP_PREFIX

Parts = tuple[bytes, ...]
Kind = Literal["file", "dir", "symlink", "other"]

# getattr: Windows has no O_NONBLOCK (nor FIFOs to hang on); Dir.open adds O_NOFOLLOW.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
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
    if isinstance(exc, Refused):  # a symlink or a file where a directory should be
        return PathError(404, f"{what}: no such directory (symlinks are never followed)")
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


def _path(parts: Parts) -> str:
    """The sync trees' form of a path: str, undecodable bytes as surrogate escapes."""
    return "/".join(os.fsdecode(p) for p in parts)


class Tree:
    """The files under `root`, reached only through confined walks."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @contextlib.contextmanager
    def directory(self, parts: Parts) -> Iterator[Dir]:
        """The directory `parts`, walked without following symlinks (closed afterwards)."""
        with open_tree(self.root) as tree:
            d = tree.acquire(_path(parts))
            try:
                yield d
            finally:
                tree.release(d)

    # -- reading ----------------------------------------------------------------------------

    def list(self, parts: Parts) -> list[Item] | None:
        """The entries of directory `parts`, or None when it does not exist on this side."""
        try:
            with self.directory(parts) as d, d.scandir() as entries:
                items = []
                for entry in entries:
                    name = os.fsencode(entry.name)
                    if is_hidden(name):
                        continue
                    try:
                        items.append(Item.of(name, d.entry_stat(entry)))
                    except FileNotFoundError:  # gone while listing
                        continue
                return items
        except (FileNotFoundError, NotADirectoryError, Refused):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None
            raise

    def stat(self, parts: Parts) -> Item | None:
        if not parts:
            return Item.of(b"", os.stat(self.root, follow_symlinks=False))
        with open_tree(self.root) as tree:
            st = tree.lstat(_path(parts))
        return None if st is None else Item.of(parts[-1], st)

    def open_file(self, parts: Parts) -> tuple[int, int]:
        """(fd, size) of the regular file `parts`, opened for reading; the caller closes fd.
        O_NONBLOCK: opening a FIFO put there meanwhile must not hang the API."""
        if not parts:
            raise PathError(400, "the root is a directory")
        try:
            with self.directory(parts[:-1]) as d:
                fd = d.open(os.fsdecode(parts[-1]), _READ_FLAGS)
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
        tree = open_tree(self.root)
        try:
            start = tree.acquire("")
        except (FileNotFoundError, NotADirectoryError, Refused):
            tree.close()
            return None
        start = _owned(tree, start)
        return _entries(tree, start, max_entries)

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
        name = os.fsdecode(parts[-1])
        tmp = os.fsdecode(_TEMP + b"upload-" + secrets.token_hex(8).encode())
        try:
            with self.directory(parts[:-1]) as d:
                existing = _lstat(d, name)
                if existing is not None and stat.S_ISDIR(existing.st_mode):
                    raise PathError(409, "a directory of that name is already there")
                keep = d.dup()
            try:
                fd = keep.open(tmp, _NEW_FLAGS, 0o644)
            except BaseException:
                keep.close()
                raise
        except OSError as exc:
            raise _os_error(exc, "cannot write it") from None
        return Upload(keep, fd, tmp, name)

    def remove(self, parts: Parts) -> Kind:
        """Delete the file, symlink or empty directory `parts`; returns what it was."""
        if not parts:
            raise PathError(400, "the root cannot be deleted")
        name = os.fsdecode(parts[-1])
        try:
            with self.directory(parts[:-1]) as d:
                item = Item.of(parts[-1], d.lstat(name))
                if item.kind == "dir":
                    d.rmdir(name)
                else:
                    d.unlink(name)
                return item.kind
        except OSError as exc:
            if exc.errno == errno.ENOTEMPTY:
                raise PathError(409, "the directory is not empty") from None
            raise _os_error(exc, "cannot delete it") from None

    def mkdir(self, parts: Parts) -> None:
        if not parts:
            raise PathError(400, "a directory needs a name")
        try:
            with self.directory(parts[:-1]) as d:
                d.mkdir(os.fsdecode(parts[-1]), 0o755)
        except OSError as exc:
            raise _os_error(exc, "cannot create it") from None


def _owned(tree: SyncTree, d: Dir) -> Dir:
    """A handle on `d` the caller owns (closes), independent of the tree's cache."""
    try:
        return d.dup()
    finally:
        tree.release(d)


def _entries(tree: SyncTree, start: Dir, max_entries: int) -> Iterator[tuple[Parts, bool]]:
    todo: list[tuple[Dir, Parts]] = [(start, ())]
    seen = 0
    try:
        while todo:
            d, here = todo.pop()
            try:
                with d.scandir() as found:
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
                                todo.append((d.child(entry.name), (*here, name)))
            finally:
                d.close()
    finally:
        for d, _ in todo:
            d.close()
        tree.close()


class Upload:
    """A file being uploaded: `write` chunks, then `finish` (publish) or `abort` (discard).
    Holds the parent directory, so the file lands where the walk found it."""

    def __init__(self, parent: Dir, fd: int, tmp: str, name: str) -> None:
        self._parent: Dir | None = parent
        self._fd, self._tmp, self.name = fd, tmp, name
        self.size = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
            self.size += written

    def finish(self) -> Item:
        parent = self._parent
        assert parent is not None, "the upload is over"
        try:
            os.close(self._fd)
            self._fd = -1
            parent.rename(self._tmp, parent, self.name)
            st = parent.lstat(self.name)
        except OSError as exc:
            self.abort()
            raise _os_error(exc, "cannot write it") from None
        parent.close()
        self._parent = None
        return Item.of(os.fsencode(self.name), st)

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._parent is not None:
            with contextlib.suppress(OSError):
                self._parent.unlink(self._tmp)
            self._parent.close()
            self._parent = None


def _lstat(d: Dir, name: str) -> os.stat_result | None:
    try:
        return d.lstat(name)
    except FileNotFoundError:
        return None
