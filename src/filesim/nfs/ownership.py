"""`OwnershipVfs`: owners, modes and device nodes for a server that runs without root.

An unprivileged process cannot chown, cannot keep S_ISUID/S_ISGID for another owner and
cannot mknod a device. This layer keeps what clients set in filesim's own metadata (the
`user.filesim.node` extended attribute, `filesim.nodemeta`; where a node cannot hold one, a
symlink, FIFO or socket, a small per-export file keyed by inode) and presents it in every
`stat`, so GETATTR, READDIRPLUS, ACCESS, the NFSv4 attributes and the permission policy all
see one owner:

- every node created over NFS records its owner, group and mode; a chown or chmod updates
  them. Nodes without metadata (the tester's own files) show their real owner and mode.
- on disk, a node keeps its permission bits with the owner's read/write (and search) added,
  so that the server itself can always serve it; S_ISUID/S_ISGID/S_ISVTX live only in the
  metadata.
- a block or character device is an empty regular file on disk (a placeholder), presented
  with its type and rdev; it cannot be read or written (the procedures see no regular file).
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from filesim import nodemeta
from filesim.errors import FilesimError
from filesim.nfs.attrs import Attrs
from filesim.nfs.layer import VfsLayer
from filesim.nfs.vfs import SetAttrs, Vfs
from filesim.nodemeta import NodeMeta

_NO_XATTR = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP)


class XattrVfs(Protocol):
    """A backend that can keep an extended attribute on a node (LocalVfs on Linux)."""

    def getxattr(self, path: str, name: str) -> bytes | None: ...

    def setxattr(self, path: str, name: str, value: bytes) -> None: ...


class MetaStore:
    """Node metadata in extended attributes, or (symlinks, filesystems without user xattrs)
    in `side_file`, a JSON map of inode number -> metadata, rewritten on each change."""

    def __init__(self, xattrs: XattrVfs | None, side_file: Path) -> None:
        self._xattrs = xattrs
        self._side_file = side_file
        self._side: dict[int, NodeMeta] = _load_side(side_file)

    def in_xattr(self, st: Attrs) -> bool:
        """Linux allows user attributes on regular files and directories only."""
        return self._xattrs is not None and (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode))

    def get(self, path: str, st: Attrs) -> NodeMeta | None:
        if self._xattrs is not None and self.in_xattr(st):
            try:
                raw = self._xattrs.getxattr(path, nodemeta.XATTR)
                return None if raw is None else nodemeta.decode(raw)
            except OSError as exc:
                if exc.errno not in _NO_XATTR:
                    raise
        return self._side.get(st.st_ino)

    def put(self, path: str, st: Attrs, meta: NodeMeta) -> None:
        if self._xattrs is not None and self.in_xattr(st):
            try:
                self._xattrs.setxattr(path, nodemeta.XATTR, meta.encode())
                return
            except OSError as exc:
                if exc.errno not in _NO_XATTR:
                    raise
        self._side[st.st_ino] = meta
        self._save_side()

    def forget(self, st: Attrs) -> None:
        """The node `st` is gone (its last name removed): drop what the side file held."""
        if self._side.pop(st.st_ino, None) is not None:
            self._save_side()

    def _save_side(self) -> None:
        data = {str(ino): m.encode().decode() for ino, m in self._side.items()}
        tmp = self._side_file.with_name(self._side_file.name + ".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self._side_file)


def _load_side(path: Path) -> dict[int, NodeMeta]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise FilesimError(
            f"cannot read the owner table {path}: {exc} (restore it, or remove it to start over)"
        ) from None
    out = {}
    for ino, raw in data.items():
        meta = nodemeta.decode(raw.encode())
        if meta is not None:
            out[int(ino)] = meta
    return out


def present(st: Attrs, meta: NodeMeta | None) -> Attrs:
    """The attributes a client sees: the recorded owner, mode and device over the disk's."""
    if meta is None:
        return st
    if meta.placeholder:
        return st.but(st_mode=meta.mode, st_uid=meta.uid, st_gid=meta.gid, st_rdev=meta.rdev,
                      st_size=0, st_blocks=0)  # fmt: skip
    mode = stat.S_IFMT(st.st_mode) | stat.S_IMODE(meta.mode)
    return st.but(st_mode=mode, st_uid=meta.uid, st_gid=meta.gid)


def disk_mode(mode: int, is_dir: bool) -> int:
    """Permission bits kept on disk: the client's, plus what the server needs to serve it."""
    return (mode & 0o777) | (0o700 if is_dir else 0o600)


class OwnershipVfs(VfsLayer):
    """A `Vfs` around `inner` that emulates ownership, modes and devices (see module doc)."""

    def __init__(self, inner: Vfs, store: MetaStore) -> None:
        super().__init__(inner)
        self.store = store
        self.uid, self.gid = os.geteuid(), os.getegid()

    # -- what is presented --------------------------------------------------------------------

    def stat(self, path: str) -> Attrs:
        st = self._disk(path)
        return present(st, self.store.get(path, st))

    def _disk(self, path: str) -> Attrs:
        return self.inner.stat(path)

    def _meta(self, path: str) -> tuple[Attrs, NodeMeta]:
        """The node's disk attributes and its metadata (its real owner when it has none)."""
        st = self._disk(path)
        meta = self.store.get(path, st)
        return st, meta or NodeMeta(st.st_uid, st.st_gid, st.st_mode)

    def _record(self, path: str, owner: tuple[int, int] | None, mode: int, rdev: int = 0) -> None:
        st = self._disk(path)
        uid, gid = owner if owner is not None else (self.uid, self.gid)
        kind = stat.S_IFMT(mode) or stat.S_IFMT(st.st_mode)
        self.store.put(path, st, NodeMeta(uid, gid, kind | stat.S_IMODE(mode), rdev))

    # -- creation -----------------------------------------------------------------------------

    def create(
        self, path: str, mode: int, exclusive: bool, owner: tuple[int, int] | None,
        initial: SetAttrs,
    ) -> None:  # fmt: skip
        existed = not exclusive and _exists(self.inner, path)
        self.inner.create(path, disk_mode(mode, False), exclusive, None, initial)
        if not existed:
            self._record(path, owner, stat.S_IFREG | mode)

    def mkdir(self, path: str, mode: int, owner: tuple[int, int] | None) -> None:
        self.inner.mkdir(path, disk_mode(mode, True), None)
        self._record(path, owner, stat.S_IFDIR | mode)

    def symlink(self, path: str, target: str, owner: tuple[int, int] | None) -> None:
        self.inner.symlink(path, target, None)
        self._record(path, owner, stat.S_IFLNK | 0o777)

    def mknod(self, path: str, mode: int, owner: tuple[int, int] | None, rdev: int) -> None:
        if stat.S_ISBLK(mode) or stat.S_ISCHR(mode):  # a placeholder: no CAP_MKNOD here
            self.inner.create(path, 0o600, True, None, SetAttrs())
            self._record(path, owner, mode, rdev)
            return
        self.inner.mknod(path, stat.S_IFMT(mode) | disk_mode(mode, False), None, 0)
        self._record(path, owner, mode)

    # -- changes ------------------------------------------------------------------------------

    def setattr(self, path: str, attrs: SetAttrs) -> None:
        st, meta = self._meta(path)
        if attrs.size is not None and _is_placeholder(meta):
            raise OSError(errno.EINVAL, "size can only be set on a regular file")
        disk = SetAttrs(
            size=attrs.size, atime_ns=attrs.atime_ns, mtime_ns=attrs.mtime_ns,
            mode=None if attrs.mode is None else disk_mode(attrs.mode, stat.S_ISDIR(st.st_mode)),
        )  # fmt: skip
        if not disk.empty:
            self.inner.setattr(path, disk)
        if attrs.uid is None and attrs.gid is None and attrs.mode is None:
            return
        changed = NodeMeta(
            meta.uid if attrs.uid is None else attrs.uid,
            meta.gid if attrs.gid is None else attrs.gid,
            meta.mode if attrs.mode is None else stat.S_IFMT(meta.mode) | (attrs.mode & 0o7777),
            meta.rdev,
        )
        now = self._disk(path)
        self.store.put(path, now, changed)
        if not self.store.in_xattr(now):  # the node itself did not change: its ctime must
            same = SetAttrs(atime_ns=now.st_atime_ns, mtime_ns=now.st_mtime_ns)
            self.inner.setattr(path, same)

    def remove(self, path: str) -> None:
        st = self._disk(path)
        self.inner.remove(path)
        if st.st_nlink <= 1:
            self.store.forget(st)

    def rename(self, src: str, dst: str) -> None:
        try:
            replaced: Attrs | None = self._disk(dst)
        except OSError:
            replaced = None
        self.inner.rename(src, dst)
        if replaced is not None and replaced.st_nlink <= 1 and not stat.S_ISDIR(replaced.st_mode):
            self.store.forget(replaced)

    # -- data and the rest: the inner storage's ----------------------------------------------


def _is_placeholder(meta: NodeMeta) -> bool:
    return meta.placeholder


def _exists(vfs: Vfs, path: str) -> bool:
    try:
        vfs.stat(path)
    except FileNotFoundError:
        return False
    return True


def emulating() -> bool:
    """Whether this process needs the layer: it cannot chown or mknod (not root)."""
    geteuid: Callable[[], int] | None = getattr(os, "geteuid", None)
    return geteuid is not None and geteuid() != 0
