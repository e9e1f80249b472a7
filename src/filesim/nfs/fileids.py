"""`FileIdVfs`: file ids filesim allocates, for roots whose own file numbers do not last.

Handles and NFS file ids name a file by the number `stat` gives it. On FAT and exFAT that
number is not the file's for life (see `filesim.topology.filesystems`): after a remount of an
exFAT root through FUSE, the number a handle carries can belong to another file, and the
handle would read and write that file. Around such a root this layer puts a number of its
own in `st_ino` (and in listings): an id from `FileIdTable`, bound to the name the server
last saw the file under, kept across restarts and never reused.

The identity of a file is then its name, checked on every use: a name that now holds a file
of another type, another birth time (where the filesystem records one), or — where the native
numbers are stable and the table was asked for anyway — another native number, gets a new id,
so handles of the old file answer STALE. Renames and removals through the server move and drop
rows. A file renamed behind the server's back keeps its id only where its native number can
be trusted to find it again; elsewhere its old handles answer STALE, as they must when nothing
identifies the file.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from filesim.nfs.attrs import Attrs
from filesim.nfs.fileidtable import ROOT, FileIdTable, Row
from filesim.nfs.handles import birth_tag
from filesim.nfs.layer import VfsLayer
from filesim.nfs.vfs import SetAttrs, Vfs, VfsEntry, parent_of


def _kind(st: Attrs) -> int:
    return stat.S_IFMT(st.st_mode) >> 12


class FileIdVfs(VfsLayer):
    """`inner` with allocated file ids. `native_stable`: the filesystem's own numbers last
    (the table was chosen anyway): they then tell a replaced file and find a moved one."""

    def __init__(self, inner: Vfs, table_file: Path | None, native_stable: bool) -> None:
        super().__init__(inner)
        self.table = FileIdTable(table_file)
        self._native = native_stable

    # -- ids -----------------------------------------------------------------------------

    def _same(self, row: Row, st: Attrs) -> bool:
        """Whether `st` is the file row `row` was made for (unknown facts do not count)."""
        kind, birth = _kind(st), birth_tag(st)
        if row.kind and row.kind != kind:
            return False
        if row.birth and birth and row.birth != birth:
            return False
        return not (self._native and row.native and row.native != st.st_ino)

    def id_of(self, path: str, st: Attrs) -> int:
        """The id of the file `st` found at `path`: its row's, or a new row's."""
        table = self.table
        with table.lock:
            fid = table.lookup(path)
            if fid == ROOT:
                return fid
            native = st.st_ino if self._native else 0
            facts = (_kind(st), native, birth_tag(st))
            if fid is not None:
                row = table.rows[fid]
                if self._same(row, st):
                    if (row.kind, row.native, row.birth) != facts:
                        table.learn(fid, *facts)
                    return fid
            parent = self._dir_id(parent_of(path))
            return table.add(parent, path.rpartition("/")[2], *facts)

    def _dir_id(self, path: str) -> int:
        """The id of directory `path`, rows made for every name on the way that has none."""
        table = self.table
        fid = ROOT
        if not path:
            return fid
        for name in path.split("/"):
            found = table.children(fid).get(name)
            fid = table.add(fid, name, stat.S_IFDIR >> 12, 0, 0) if found is None else found
        return fid

    def _entry_id(self, parent: int, entry: VfsEntry) -> int:
        table = self.table
        fid = table.children(parent).get(entry.name)
        if fid is not None:
            row = table.rows[fid]
            if not (self._native and row.native and row.native != entry.ino):
                return fid
        native = entry.ino if self._native else 0
        return table.add(parent, entry.name, 0, native, 0)

    # -- operations that see ids ---------------------------------------------------------

    def stat(self, path: str) -> Attrs:
        st = self.inner.stat(path)
        return st._replace(st_ino=self.id_of(path, st))

    def listdir(self, path: str) -> list[VfsEntry]:
        entries = self.inner.listdir(path)
        table = self.table
        with table.lock:
            parent = self._dir_id(path)
            listed = {e.name for e in entries}
            for gone in [n for n in table.children(parent) if n not in listed]:
                table.drop_child(parent, gone)  # removed behind the server's back
            return [VfsEntry(e.name, self._entry_id(parent, e)) for e in entries]

    def find(self, ino: int, budget: int | None = None) -> str | None:
        table = self.table
        with table.lock:
            path = table.path_of(ino)
            row = table.rows.get(ino)
        if row is None:
            return None
        if path is not None:
            try:
                if self._same(row, self.inner.stat(path)):
                    return path
            except OSError:
                pass
        if not (self._native and row.native):
            return None
        moved = self.inner.find(row.native, budget)  # renamed behind the server's back
        if moved is None or not self._same(row, self.inner.stat(moved)):
            return None
        with table.lock:
            table.move(ino, self._dir_id(parent_of(moved)), moved.rpartition("/")[2])
        return moved

    # -- operations that change names ----------------------------------------------------

    def _forget(self, path: str) -> None:
        with self.table.lock:
            fid = self.table.lookup(path)
            if fid is not None:
                self.table.drop(fid)

    def create(
        self, path: str, mode: int, exclusive: bool, owner: tuple[int, int] | None,
        initial: SetAttrs,
    ) -> None:  # fmt: skip
        self.inner.create(path, mode, exclusive, owner, initial)
        if exclusive:  # the name was free: any row it had was a file removed behind our back
            self._forget(path)

    def mkdir(self, path: str, mode: int, owner: tuple[int, int] | None) -> None:
        self.inner.mkdir(path, mode, owner)
        self._forget(path)

    def symlink(self, path: str, target: str, owner: tuple[int, int] | None) -> None:
        self.inner.symlink(path, target, owner)
        self._forget(path)

    def mknod(self, path: str, mode: int, owner: tuple[int, int] | None, rdev: int) -> None:
        self.inner.mknod(path, mode, owner, rdev)
        self._forget(path)

    def link(self, src: str, dst: str) -> None:
        self.inner.link(src, dst)
        self._forget(dst)

    def remove(self, path: str) -> None:
        self.inner.remove(path)
        self._forget(path)

    def rmdir(self, path: str) -> None:
        self.inner.rmdir(path)
        self._forget(path)

    def rename(self, src: str, dst: str) -> None:
        self.inner.rename(src, dst)
        table = self.table
        with table.lock:
            fid = table.lookup(src)
            if fid is None:
                table.drop_child(self._dir_id(parent_of(dst)), dst.rpartition("/")[2])
            elif fid != ROOT:
                table.move(fid, self._dir_id(parent_of(dst)), dst.rpartition("/")[2])

    # -- the log -------------------------------------------------------------------------

    def call_scope(self, proc: int) -> AbstractContextManager[None]:
        return self._scope(proc)

    @contextmanager
    def _scope(self, proc: int) -> Iterator[None]:
        try:
            with self.inner.call_scope(proc):
                yield
        finally:
            with self.table.lock:
                self.table.flush()

    def close(self) -> None:
        with self.table.lock:
            self.table.close()
        self.inner.close()
