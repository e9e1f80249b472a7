"""`VfsLayer`: a storage wrapper that passes every operation to the layer inside it.

The wrappers composed around the store (change notification, case-exact names, emulated
ownership) each change a few operations; they subclass this and override only those, so an
operation added to `Vfs` is passed through by every layer in one place."""

from __future__ import annotations

from contextlib import AbstractContextManager

from filesim.nfs.attrs import Attrs
from filesim.nfs.vfs import FsStat, SetAttrs, Vfs, VfsEntry


class VfsLayer:
    """`inner`, unchanged: the base of every wrapper that changes only some operations."""

    def __init__(self, inner: Vfs) -> None:
        self.inner = inner

    @property
    def readonly(self) -> bool:
        return self.inner.readonly

    def stat(self, path: str) -> Attrs:
        return self.inner.stat(path)

    def read(self, path: str, offset: int, count: int) -> bytes:
        return self.inner.read(path, offset, count)

    def open_read(self, path: str) -> int:
        return self.inner.open_read(path)

    def write(self, path: str, offset: int, data: memoryview | bytes, sync: bool) -> None:
        self.inner.write(path, offset, data, sync)

    def commit(self, path: str, complete: bool) -> None:
        self.inner.commit(path, complete)

    def create(
        self, path: str, mode: int, exclusive: bool, owner: tuple[int, int] | None,
        initial: SetAttrs,
    ) -> None:  # fmt: skip
        self.inner.create(path, mode, exclusive, owner, initial)

    def truncate(self, path: str, size: int) -> None:
        self.inner.truncate(path, size)

    def mkdir(self, path: str, mode: int, owner: tuple[int, int] | None) -> None:
        self.inner.mkdir(path, mode, owner)

    def symlink(self, path: str, target: str, owner: tuple[int, int] | None) -> None:
        self.inner.symlink(path, target, owner)

    def mknod(self, path: str, mode: int, owner: tuple[int, int] | None, rdev: int) -> None:
        self.inner.mknod(path, mode, owner, rdev)

    def seek(self, path: str, offset: int, whence: int) -> int:
        return self.inner.seek(path, offset, whence)

    def allocate(self, path: str, offset: int, length: int, punch: bool) -> None:
        self.inner.allocate(path, offset, length, punch)

    def readlink(self, path: str) -> str:
        return self.inner.readlink(path)

    def remove(self, path: str) -> None:
        self.inner.remove(path)

    def rmdir(self, path: str) -> None:
        self.inner.rmdir(path)

    def rename(self, src: str, dst: str) -> None:
        self.inner.rename(src, dst)

    def link(self, src: str, dst: str) -> None:
        self.inner.link(src, dst)

    def setattr(self, path: str, attrs: SetAttrs) -> None:
        self.inner.setattr(path, attrs)

    def listdir(self, path: str) -> list[VfsEntry]:
        return self.inner.listdir(path)

    def statvfs(self) -> FsStat:
        return self.inner.statvfs()

    def find(self, ino: int, budget: int | None = None) -> str | None:
        return self.inner.find(ino, budget)

    def call_scope(self, proc: int) -> AbstractContextManager[None]:
        return self.inner.call_scope(proc)

    def close(self) -> None:
        self.inner.close()
