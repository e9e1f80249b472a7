"""Namespace operations: CREATE, REMOVE, RENAME, LINK, READLINK, READDIR."""

from __future__ import annotations

import stat
import struct

from filesim.nfs import policy
from filesim.nfs.access import R, W, X, permits
from filesim.nfs.attrs import Attrs, make_rdev
from filesim.nfs.v4 import attrs
from filesim.nfs.v4.const import Ftype4, Op, Status
from filesim.nfs.v4.context import Compound, Node, operation, ruled, storage
from filesim.nfs.v4.wire import V4Error, bitmap, change_info, read_bitmap, read_name, read_utf8
from filesim.nfs.vfs import SetAttrs, VfsEntry, join
from filesim.oncrpc.xdr import Packer, Unpacker, padding

_ENTRY_HEAD = struct.Struct(">IQI")  # value_follows, cookie, name length
_TRUE, _FALSE = struct.pack(">I", 1), struct.pack(">I", 0)
_FIRST_COOKIE = 3  # cookies 1 and 2 are reserved for "." and ".." (RFC 7530 16.24)


def _writable_dir(c: Compound) -> tuple[Node, str]:
    node = c.directory()
    if not permits(node.st, c.caller, W | X):
        raise V4Error(Status.ACCESS)
    assert node.path is not None
    return node, node.path


def _stat_or_none(c: Compound, path: str) -> Attrs | None:
    try:
        return c.export.vfs.stat(path)
    except OSError:
        return None


def _cinfo(before: Attrs, c: Compound, path: str) -> bytes:
    after = _stat_or_none(c, path)
    return change_info(before.st_ctime_ns, after.st_ctime_ns if after else before.st_ctime_ns)


@operation(Op.CREATE, mutating=True)
def create(c: Compound, u: Unpacker) -> bytes:
    kind = u.uint32()
    target, rdev = "", 0
    if kind == Ftype4.LNK:
        target = read_utf8(u, 4096)
    elif kind in (Ftype4.BLK, Ftype4.CHR):
        rdev = make_rdev(u.uint32(), u.uint32())
    name = read_name(u)
    mask, values = attrs.read_fattr4(u)
    if kind in (Ftype4.REG, Ftype4.ATTRDIR, Ftype4.NAMEDATTR) or not 1 <= kind <= 9:
        raise V4Error(Status.BADTYPE)
    set_attrs = attrs.decode_settable(mask, values, c.minor)
    node, dir_path = _writable_dir(c)
    if kind == Ftype4.LNK and not target:
        raise V4Error(Status.INVAL, "empty symlink target")
    if kind in (Ftype4.BLK, Ftype4.CHR):
        ruled(lambda: policy.check_device(c.caller))
    path = join(dir_path, name)
    owner = ruled(lambda: policy.new_owner(node.st, c.caller, set_attrs.uid, set_attrs.gid))
    vfs = c.export.vfs
    if _stat_or_none(c, path) is not None:
        raise V4Error(Status.EXIST)
    is_dir = kind == Ftype4.DIR
    asked = set_attrs.mode
    mode = policy.new_mode(
        node.st, c.caller, (0o755 if is_dir else 0o644) if asked is None else asked, owner[1],
        is_dir,
    )  # fmt: skip
    if is_dir:
        storage(lambda: vfs.mkdir(path, mode, owner))
    elif kind == Ftype4.LNK:
        storage(lambda: vfs.symlink(path, target, owner))
    else:
        storage(lambda: vfs.mknod(path, _NODE_TYPES[kind] | mode, owner, rdev))
    rest = SetAttrs(  # the mode again: mkdir and mknod are subject to the server's umask
        mode=None if kind == Ftype4.LNK or asked is None else mode,
        atime_ns=set_attrs.atime_ns, mtime_ns=set_attrs.mtime_ns,
    )  # fmt: skip
    if not rest.empty:
        storage(lambda: vfs.setattr(path, rest))
    cinfo = _cinfo(node.st, c, dir_path)
    c.set_fh(c.svc.node_at(path).handle)
    return cinfo + bitmap(mask)


_NODE_TYPES: dict[int, int] = {
    Ftype4.FIFO: stat.S_IFIFO, Ftype4.SOCK: stat.S_IFSOCK,
    Ftype4.BLK: stat.S_IFBLK, Ftype4.CHR: stat.S_IFCHR,
}  # fmt: skip


@operation(Op.REMOVE, mutating=True)
def remove(c: Compound, u: Unpacker) -> bytes:
    name = read_name(u)
    node, dir_path = _writable_dir(c)
    path = join(dir_path, name)
    st = _stat_or_none(c, path)
    if st is None:
        raise V4Error(Status.NOENT)
    ruled(lambda: policy.check_delete(node.st, st, c.caller))
    is_dir = stat.S_ISDIR(st.st_mode)
    storage(lambda: (c.export.vfs.rmdir if is_dir else c.export.vfs.remove)(path))
    c.export.index.forget(st)
    return _cinfo(node.st, c, dir_path)


def _saved_dir(c: Compound) -> Node:
    if c.sfh is None:
        raise V4Error(Status.NOFILEHANDLE)
    saved = c.node(c.sfh)
    return saved


@operation(Op.RENAME, mutating=True)
def rename(c: Compound, u: Unpacker) -> bytes:
    old, new = read_name(u), read_name(u)
    src_dir = _saved_dir(c)
    dst_dir = c.node()
    if src_dir.pseudo != dst_dir.pseudo:
        raise V4Error(Status.XDEV)
    if not src_dir.is_dir or not dst_dir.is_dir:
        raise V4Error(Status.NOTDIR)
    if src_dir.pseudo:
        raise V4Error(Status.ROFS)
    for d in (src_dir, dst_dir):
        if not permits(d.st, c.caller, W | X):
            raise V4Error(Status.ACCESS)
    assert src_dir.path is not None and dst_dir.path is not None
    src, dst = join(src_dir.path, old), join(dst_dir.path, new)
    moved = _stat_or_none(c, src)
    if moved is None:
        raise V4Error(Status.NOENT)
    replaced = _stat_or_none(c, dst)
    same = src_dir.path == dst_dir.path
    ruled(lambda: policy.check_rename(src_dir.st, moved, dst_dir.st, replaced, c.caller, same))
    if replaced is not None and src != dst:
        if replaced.st_ino == moved.st_ino:
            return _cinfo(src_dir.st, c, src_dir.path) + _cinfo(dst_dir.st, c, dst_dir.path)
        if stat.S_ISDIR(replaced.st_mode) != stat.S_ISDIR(moved.st_mode):
            raise V4Error(Status.EXIST)
        if stat.S_ISDIR(replaced.st_mode) and c.export.vfs.listdir(dst):
            raise V4Error(Status.EXIST)
    if src != dst:
        storage(lambda: c.export.vfs.rename(src, dst))
        if replaced is not None:
            c.export.index.forget(replaced)
        c.export.index.renamed(src, dst)
    return _cinfo(src_dir.st, c, src_dir.path) + _cinfo(dst_dir.st, c, dst_dir.path)


@operation(Op.LINK, mutating=True)
def link(c: Compound, u: Unpacker) -> bytes:
    name = read_name(u)
    if c.sfh is None:
        raise V4Error(Status.NOFILEHANDLE)
    source = c.node(c.sfh)
    target_dir = c.node()
    if source.pseudo != target_dir.pseudo:
        raise V4Error(Status.XDEV)
    if not target_dir.is_dir:
        raise V4Error(Status.NOTDIR)
    if source.is_dir:
        raise V4Error(Status.ISDIR)
    node, dir_path = _writable_dir(c)
    assert source.path is not None
    path = join(dir_path, name)
    if _stat_or_none(c, path) is not None:
        raise V4Error(Status.EXIST)
    src = source.path
    storage(lambda: c.export.vfs.link(src, path))
    return _cinfo(node.st, c, dir_path)


@operation(Op.READLINK)
def readlink(c: Compound, u: Unpacker) -> bytes:
    node = c.node()
    if not stat.S_ISLNK(node.st.st_mode):
        raise V4Error(Status.INVAL)
    assert node.path is not None
    path = node.path
    out: list[str] = []
    storage(lambda: out.append(c.export.vfs.readlink(path)))
    p = Packer()
    p.string(out[0])
    return bytes(p.buf)


@operation(Op.READDIR)
def readdir(c: Compound, u: Unpacker) -> bytes:
    cookie = u.uint64()
    verifier = bytes(u.fixed_opaque(8))
    u.uint32()  # dircount: a hint
    maxcount = u.uint32()
    request = read_bitmap(u)
    if cookie in (1, 2):
        raise V4Error(Status.BAD_COOKIE)
    attrs.check_readable(request)
    if maxcount < 16:  # not even the verifier and an empty list fit
        raise V4Error(Status.TOOSMALL)
    node = c.node()
    if not node.is_dir:
        raise V4Error(Status.NOTDIR)
    if not node.pseudo and not permits(node.st, c.caller, R):
        raise V4Error(Status.ACCESS)
    entries, skip, verifier = _listing(c, node, cookie, verifier)
    out = [verifier]
    budget = min(maxcount, 1 << 20) - 8 - 8
    index = max(cookie - _FIRST_COOKIE + 1, 0) if cookie else 0
    first, count = index, len(entries) - skip
    while index < count:
        entry = _entry(c, node, entries[index + skip].name, index + _FIRST_COOKIE, request)
        if entry is None:
            index += 1
            continue
        if len(entry) > budget:
            if index == first:
                raise V4Error(Status.TOOSMALL)
            break
        budget -= len(entry)
        out.append(entry)
        index += 1
    out.append(_FALSE)
    out.append(_TRUE if index >= count else _FALSE)
    return b"".join(out)


def _listing(
    c: Compound, node: Node, cookie: int, verifier: bytes
) -> tuple[list[VfsEntry], int, bytes]:
    """(entries, how many to skip at their start: "." and "..", the cookie verifier)."""
    if node.pseudo:
        assert node.depth is not None
        return [VfsEntry(c.svc.pseudo.entry(node.depth), 0)], 0, bytes(8)
    assert node.path is not None
    entries, verifier = c.export.listings.listing(
        c.export.vfs, node.path, node.st.st_ino, cookie - 2 if cookie else 0, verifier
    )
    return entries, 2, verifier  # the kept listing itself: no copy of its names per page


def _entry(c: Compound, node: Node, name: str, cookie: int, request: int) -> bytes | None:
    try:
        if node.pseudo:
            from filesim.nfs.v4.ops_fh import child  # (not per entry of a real directory)

            entry_node = child(c, node, name)
        else:
            assert node.path is not None
            entry_node = c.svc.node_at(join(node.path, name))
    except V4Error:
        return None
    raw = name.encode("utf-8", "surrogateescape")
    n = len(raw)
    head = _ENTRY_HEAD.pack(1, cookie, n) + raw + padding(n)
    return head + attrs.fattr4(request, c.svc.source(entry_node, c.minor))
