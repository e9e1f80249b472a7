"""Exact names on a case-insensitive export root (macOS and Windows defaults, NTFS).

On such a root `report.txt` opens `Report.txt`: an NFS CREATE of `report.txt` would truncate
Report.txt, a LOOKUP of `REPORT.TXT` would hand out Report.txt's handle, a REMOVE of
`report.txt` would delete it. `CaseExactVfs` makes the root behave as NFS clients expect:
a name exists only as the directory lists it, so the variants answer NOENT (LOOKUP, REMOVE)
or EXIST (CREATE, RENAME onto another file), and a case-only RENAME (Report.txt to
REPORT.TXT) goes through a temporary name, which the filesystem would otherwise ignore.

Whether a root is case-insensitive is found out once, at start
(`filesim.topology.layout.case_insensitive`).
"""

from __future__ import annotations

import errno
import secrets
import threading
from collections import OrderedDict

from filesim.nfs.attrs import Attrs
from filesim.nfs.layer import VfsLayer
from filesim.nfs.vfs import SetAttrs, Vfs, join, parent_of

_KEEP_DIRS = 32  # directory listings kept for name checks (validated by the directory's times)


class CaseExactVfs(VfsLayer):
    """`inner` (a case-insensitive root) with exact-name semantics; see the module doc."""

    def __init__(self, inner: Vfs) -> None:
        super().__init__(inner)
        self._names: OrderedDict[str, tuple[tuple[int, int, int], frozenset[str]]] = OrderedDict()
        self._lock = threading.Lock()  # COMMITs and sync WRITEs run in executor threads

    # -- the name check -----------------------------------------------------------------------

    def _listed(self, directory: str, fresh: bool = False) -> tuple[frozenset[str], bool]:
        """(the names in `directory`, whether they come from a listing kept while the
        directory is unchanged); `fresh`: list it again whatever was kept."""
        st = self.inner.stat(directory)
        stamp = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
        with self._lock:
            kept = self._names.get(directory)
            if kept is not None and kept[0] == stamp and not fresh:
                self._names.move_to_end(directory)
                return kept[1], True
        names = frozenset(e.name for e in self.inner.listdir(directory))
        with self._lock:
            self._names[directory] = (stamp, names)
            while len(self._names) > _KEEP_DIRS:
                self._names.popitem(last=False)
        return names, False

    def _exact(self, path: str) -> bool:
        if not path:
            return True
        directory, _, name = path.rpartition("/")
        names, kept = self._listed(directory)
        # A name missing from a kept listing is looked for again in a new one: on FAT and
        # exFAT a directory's times tick in steps of up to 2 s, so they need not show a change.
        # A listing made just now is not made twice.
        return name in names or (kept and name in self._listed(directory, fresh=True)[0])

    def _require(self, path: str) -> None:
        if not self._exact(path):
            raise OSError(errno.ENOENT, f"no such file (only another case of {path!r} exists)")

    def _stat_or_none(self, path: str) -> Attrs | None:
        try:
            return self.inner.stat(path)
        except FileNotFoundError:
            return None

    # -- operations that take a name ----------------------------------------------------------

    def stat(self, path: str) -> Attrs:
        st = self.inner.stat(path)
        self._require(path)
        return st

    def create(
        self, path: str, mode: int, exclusive: bool, owner: tuple[int, int] | None,
        initial: SetAttrs,
    ) -> None:  # fmt: skip
        if not exclusive and self._stat_or_none(path) is not None and not self._exact(path):
            raise OSError(errno.EEXIST, f"another case of {path!r} exists")
        self.inner.create(path, mode, exclusive, owner, initial)

    def remove(self, path: str) -> None:
        self._require(path)
        self.inner.remove(path)

    def rmdir(self, path: str) -> None:
        self._require(path)
        self.inner.rmdir(path)

    def rename(self, src: str, dst: str) -> None:
        self._require(src)
        target = self._stat_or_none(dst)
        if target is None or self._exact(dst):
            self.inner.rename(src, dst)
            return
        if target.st_ino != self.inner.stat(src).st_ino:
            raise OSError(errno.EEXIST, f"another case of {dst!r} exists")
        # A case-only rename: the filesystem sees one name, so it goes through another.
        parent = parent_of(src)
        # Not a TEMP_PREFIX name: the storage hides those, even from this layer.
        tmp = join(parent, f".filesim-case-{secrets.token_hex(6)}")
        self.inner.rename(src, tmp)
        try:
            self.inner.rename(tmp, dst)
        except BaseException:
            self.inner.rename(tmp, src)
            raise

    def link(self, src: str, dst: str) -> None:
        self._require(src)
        self.inner.link(src, dst)

    def readlink(self, path: str) -> str:
        self._require(path)
        return self.inner.readlink(path)

    # -- the rest reaches the storage as it is (paths from handles are exact) ------------------
