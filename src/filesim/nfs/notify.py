"""`NotifyingVfs`: change notification as a wrapper around the storage.

After each change that succeeded, `listener(kind, path, dest)` is called on the thread that made
it (a COMMIT or a sync WRITE runs in an executor thread: a listener that needs the event loop
hands itself over, see `filesim.runtime.build`). The kinds are those the sync agent knows:

    create    a new regular file (CREATE; its initial size and times are part of it)
    write     data written (WRITE, ALLOCATE, DEALLOCATE), or a file truncated (CREATE, OPEN)
    commit    COMMIT: the client declared the file's data stable and is done with it
              (an NFSv4 COMMIT while the file is still open for writing: write)
    setattr   SETATTR
    mkdir, symlink, mknod, link (path: the new name), remove, rmdir
    rename    path: the old name, dest: the new one

Reads and the call scope are passed through as they are.
"""

from __future__ import annotations

from collections.abc import Callable

from filesim.nfs.layer import VfsLayer
from filesim.nfs.vfs import SetAttrs, Vfs

ChangeListener = Callable[[str, str, str | None], None]
"""Called as listener(kind, path, dest) after each change made to the store."""


class NotifyingVfs(VfsLayer):
    """`inner`, telling `listener` about every change made through it."""

    def __init__(self, inner: Vfs, listener: ChangeListener) -> None:
        super().__init__(inner)
        self.listener = listener

    # Reads, the call scope and close pass through (VfsLayer), looked up on `inner` at each
    # call: the inner layer may rebind its own operations.

    def write(self, path: str, offset: int, data: memoryview | bytes, sync: bool) -> None:
        self.inner.write(path, offset, data, sync)
        self.listener("write", path, None)

    def commit(self, path: str, complete: bool) -> None:
        self.inner.commit(path, complete)
        # A file a writer still has open is not complete: more data may follow.
        self.listener("commit" if complete else "write", path, None)

    def create(
        self, path: str, mode: int, exclusive: bool, owner: tuple[int, int] | None,
        initial: SetAttrs,
    ) -> None:  # fmt: skip
        self.inner.create(path, mode, exclusive, owner, initial)
        self.listener("create", path, None)

    def truncate(self, path: str, size: int) -> None:
        self.inner.truncate(path, size)
        self.listener("write", path, None)

    def allocate(self, path: str, offset: int, length: int, punch: bool) -> None:
        self.inner.allocate(path, offset, length, punch)
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

    def mknod(self, path: str, mode: int, owner: tuple[int, int] | None, rdev: int) -> None:
        self.inner.mknod(path, mode, owner, rdev)
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
