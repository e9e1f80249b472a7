"""`NotifyingVfs`: change notification as a wrapper around the storage.

After each change that succeeded, `listener(kind, path, dest)` is called on the thread that made
it (a COMMIT or a sync WRITE runs in an executor thread: a listener that needs the event loop
hands itself over, see `filesim.runtime.build`). The kinds are those the sync agent knows:

    create    a new regular file (CREATE; its initial size and times are part of it)
    write     data written (WRITE), or an existing file truncated by a CREATE
    commit    COMMIT: the client declared the file's data stable
    setattr   SETATTR
    mkdir, symlink, mknod, link (path: the new name), remove, rmdir
    rename    path: the old name, dest: the new one

Reads go straight to the inner storage (bound at construction): they cost nothing extra.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager

from filesim.nfs.vfs import FsStat, SetAttrs, Vfs, VfsEntry

ChangeListener = Callable[[str, str, str | None], None]
"""Called as listener(kind, path, dest) after each change made to the store."""


class NotifyingVfs:
    """`inner`, telling `listener` about every change made through it."""

    stat: Callable[[str], os.stat_result]
    read: Callable[[str, int, int], bytes]
    readlink: Callable[[str], str]
    listdir: Callable[[str], list[VfsEntry]]
    statvfs: Callable[[], FsStat]
    find: Callable[[int], str | None]
    call_scope: Callable[[int], AbstractContextManager[None]]

    def __init__(self, inner: Vfs, listener: ChangeListener) -> None:
        self.inner = inner
        self.listener = listener
        self.stat = inner.stat
        self.read = inner.read
        self.readlink = inner.readlink
        self.listdir = inner.listdir
        self.statvfs = inner.statvfs
        self.find = inner.find
        self.call_scope = inner.call_scope

    @property
    def readonly(self) -> bool:
        return self.inner.readonly

    def write(self, path: str, offset: int, data: memoryview | bytes, sync: bool) -> None:
        self.inner.write(path, offset, data, sync)
        self.listener("write", path, None)

    def commit(self, path: str) -> None:
        self.inner.commit(path)
        self.listener("commit", path, None)

    def create(
        self, path: str, mode: int, exclusive: bool, owner: tuple[int, int] | None,
        initial: SetAttrs,
    ) -> None:  # fmt: skip
        self.inner.create(path, mode, exclusive, owner, initial)
        self.listener("create", path, None)

    def truncate(self, path: str, size: int) -> None:
        self.inner.truncate(path, size)
        self.listener("write", path, None)

    def setattr(self, path: str, attrs: SetAttrs) -> None:
        self.inner.setattr(path, attrs)
        self.listener("setattr", path, None)

    def mkdir(self, path: str, mode: int, owner: tuple[int, int] | None) -> None:
        self.inner.mkdir(path, mode, owner)
        self.listener("mkdir", path, None)

    def symlink(self, path: str, target: str, owner: tuple[int, int] | None) -> None:
        self.inner.symlink(path, target, owner)
        self.listener("symlink", path, None)

    def mknod(self, path: str, mode: int, owner: tuple[int, int] | None) -> None:
        self.inner.mknod(path, mode, owner)
        self.listener("mknod", path, None)

    def remove(self, path: str) -> None:
        self.inner.remove(path)
        self.listener("remove", path, None)

    def rmdir(self, path: str) -> None:
        self.inner.rmdir(path)
        self.listener("rmdir", path, None)

    def rename(self, src: str, dst: str) -> None:
        self.inner.rename(src, dst)
        self.listener("rename", src, dst)

    def link(self, src: str, dst: str) -> None:
        self.inner.link(src, dst)
        self.listener("link", dst, None)

    def close(self) -> None:
        self.inner.close()
