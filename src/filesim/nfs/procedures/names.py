"""Names in directories: LOOKUP, READLINK, and the changes CREATE, MKDIR, SYMLINK, MKNOD,
REMOVE, RMDIR, RENAME, LINK."""

from __future__ import annotations

import stat
import struct

from filesim.nfs import policy
from filesim.nfs.access import Caller, W, X
from filesim.nfs.attrs import Attrs, make_rdev
from filesim.nfs.const import NFS3_CREATEVERFSIZE, PATH_MAX, CreateMode, Ftype
from filesim.nfs.export import Export
from filesim.nfs.procedures.common import (
    created,
    entry_path,
    new_mode,
    os_call,
    owner,
    read_dir,
    read_name,
    read_new_name,
    read_node,
    require,
    stat_or_none,
)
from filesim.nfs.registry import POST_OP, WCC, Result, procedure
from filesim.nfs.types import decode_sattr3, encode_fh3, encode_post_op_attr, encode_wcc_data
from filesim.nfs.vfs import NfsError, SetAttrs, join, status_of
from filesim.oncrpc.programs import NfsProc, NfsStat
from filesim.oncrpc.xdr import Packer, Unpacker

_VERIFIER = struct.Struct(">II")


@procedure(NfsProc.LOOKUP)
def lookup(x: Export, caller: Caller, u: Unpacker) -> Result:
    dir_path, dir_st = read_dir(x, u)
    name = read_name(u)
    require(dir_st, caller, X)
    path = entry_path(dir_path, name)
    try:
        st = x.vfs.stat(path)
    except OSError as exc:
        raise NfsError(status_of(exc)) from None
    handle = x.handle_for(st, path)
    return [encode_fh3(handle) + encode_post_op_attr(st, x.fsid)
            + encode_post_op_attr(dir_st, x.fsid)]  # fmt: skip


@procedure(NfsProc.READLINK)
def readlink(x: Export, caller: Caller, u: Unpacker) -> Result:
    path, st = read_node(x, u)
    if not stat.S_ISLNK(st.st_mode):
        raise NfsError(NfsStat.INVAL)
    try:
        target = x.vfs.readlink(path)
    except OSError as exc:
        raise NfsError(status_of(exc)) from None
    p = Packer()
    p.string(target)
    return [encode_post_op_attr(st, x.fsid) + bytes(p.buf)]


@procedure(NfsProc.CREATE, mutating=True, failure=WCC)
def create(x: Export, caller: Caller, u: Unpacker) -> Result:
    dir_path, dir_st = read_dir(x, u)
    name = read_new_name(u)
    how = u.uint32()
    if how == CreateMode.EXCLUSIVE:
        verifier = bytes(u.fixed_opaque(NFS3_CREATEVERFSIZE))
        attrs = SetAttrs()
    elif how in (CreateMode.UNCHECKED, CreateMode.GUARDED):
        verifier = b""
        attrs = decode_sattr3(u)
    else:
        raise NfsError(NfsStat.INVAL, f"bad create mode {how}")
    require(dir_st, caller, W | X)
    path = join(dir_path, name)
    who = owner(dir_st, caller, attrs)
    mode = new_mode(dir_st, caller, 0o644 if attrs.mode is None else attrs.mode, who, False)
    if verifier:  # kept in the times, where a retried EXCLUSIVE create finds it
        hi, lo = _VERIFIER.unpack(verifier)
        initial = SetAttrs(atime_ns=hi * 10**9, mtime_ns=lo * 10**9)
    else:
        initial = SetAttrs(size=attrs.size, atime_ns=attrs.atime_ns, mtime_ns=attrs.mtime_ns)
    # Create first, look only when the name is taken: the usual new name costs no stat.
    try:
        x.vfs.create(path, mode, True, who, initial)
    except FileExistsError:
        existing = stat_or_none(x, path)
        if existing is None:  # taken, then gone again while we looked
            raise NfsError(NfsStat.EXIST) from None
        _create_existing(x, caller, path, existing, how, verifier, attrs)
    except OSError as exc:
        raise NfsError(status_of(exc)) from None
    return created(x, dir_path, dir_st, path)


def _create_existing(
    x: Export, caller: Caller, path: str, st: Attrs, how: int, verifier: bytes,
    attrs: SetAttrs,
) -> None:  # fmt: skip
    if how == CreateMode.GUARDED:
        raise NfsError(NfsStat.EXIST)
    if how == CreateMode.EXCLUSIVE:
        hi, lo = _VERIFIER.unpack(verifier)
        if (st.st_atime_ns // 10**9, st.st_mtime_ns // 10**9) != (hi, lo):
            raise NfsError(NfsStat.EXIST)
        return
    if stat.S_ISDIR(st.st_mode):
        raise NfsError(NfsStat.ISDIR)
    size = attrs.size
    if size is not None:  # UNCHECKED with a size: truncate, as open(O_TRUNC) asks
        policy.check_truncate(st, caller)
        os_call(lambda: x.vfs.truncate(path, size))


@procedure(NfsProc.MKDIR, mutating=True, failure=WCC)
def mkdir(x: Export, caller: Caller, u: Unpacker) -> Result:
    dir_path, dir_st = read_dir(x, u)
    name = read_new_name(u)
    attrs = decode_sattr3(u)
    require(dir_st, caller, W | X)
    path = join(dir_path, name)
    who = owner(dir_st, caller, attrs)
    mode = new_mode(dir_st, caller, 0o755 if attrs.mode is None else attrs.mode, who, True)
    os_call(lambda: x.vfs.mkdir(path, mode, owner=who))
    return created(x, dir_path, dir_st, path)


@procedure(NfsProc.SYMLINK, mutating=True, failure=WCC)
def symlink(x: Export, caller: Caller, u: Unpacker) -> Result:
    dir_path, dir_st = read_dir(x, u)
    name = read_new_name(u)
    attrs = decode_sattr3(u)
    target = u.string(PATH_MAX)
    require(dir_st, caller, W | X)
    path = join(dir_path, name)
    who = owner(dir_st, caller, attrs)
    os_call(lambda: x.vfs.symlink(path, target, owner=who))
    return created(x, dir_path, dir_st, path)


@procedure(NfsProc.MKNOD, mutating=True, failure=WCC)
def mknod(x: Export, caller: Caller, u: Unpacker) -> Result:
    dir_path, dir_st = read_dir(x, u)
    name = read_new_name(u)
    ftype = u.uint32()
    if ftype not in _NODE_TYPES:
        raise NfsError(NfsStat.BADTYPE)
    attrs = decode_sattr3(u)
    rdev = make_rdev(u.uint32(), u.uint32()) if ftype in (Ftype.CHR, Ftype.BLK) else 0
    require(dir_st, caller, W | X)
    if ftype in (Ftype.CHR, Ftype.BLK):
        policy.check_device(caller)
    path = join(dir_path, name)
    who = owner(dir_st, caller, attrs)
    perms = new_mode(dir_st, caller, 0o644 if attrs.mode is None else attrs.mode, who, False)
    os_call(lambda: x.vfs.mknod(path, _NODE_TYPES[ftype] | perms, who, rdev))
    return created(x, dir_path, dir_st, path)


_NODE_TYPES: dict[int, int] = {
    Ftype.FIFO: stat.S_IFIFO, Ftype.SOCK: stat.S_IFSOCK,
    Ftype.CHR: stat.S_IFCHR, Ftype.BLK: stat.S_IFBLK,
}  # fmt: skip


def _unlink(x: Export, caller: Caller, u: Unpacker, directory: bool) -> Result:
    dir_path, dir_st = read_dir(x, u)
    name = read_name(u)
    if name in (".", ".."):
        raise NfsError(NfsStat.INVAL if name == "." else NfsStat.NOTEMPTY)
    require(dir_st, caller, W | X)
    path = join(dir_path, name)
    st = stat_or_none(x, path)
    if st is None:
        raise NfsError(NfsStat.NOENT)
    policy.check_delete(dir_st, st, caller)
    if directory:
        os_call(lambda: x.vfs.rmdir(path))
    else:
        os_call(lambda: x.vfs.remove(path))
    x.index.forget(st)
    return [encode_wcc_data(dir_st, stat_or_none(x, dir_path), x.fsid)]


@procedure(NfsProc.REMOVE, mutating=True, failure=WCC)
def remove(x: Export, caller: Caller, u: Unpacker) -> Result:
    return _unlink(x, caller, u, directory=False)


@procedure(NfsProc.RMDIR, mutating=True, failure=WCC)
def rmdir(x: Export, caller: Caller, u: Unpacker) -> Result:
    return _unlink(x, caller, u, directory=True)


@procedure(NfsProc.RENAME, mutating=True, failure=2 * WCC)
def rename(x: Export, caller: Caller, u: Unpacker) -> Result:
    from_dir, from_st = read_dir(x, u)
    from_name = read_name(u)
    to_dir, to_st = read_dir(x, u)
    to_name = read_name(u)
    if {from_name, to_name} & {".", ".."}:
        raise NfsError(NfsStat.INVAL)
    require(from_st, caller, W | X)
    src, dst = join(from_dir, from_name), join(to_dir, to_name)
    moved = stat_or_none(x, src)
    if moved is None:
        raise NfsError(NfsStat.NOENT)
    replaced = stat_or_none(x, dst)
    policy.check_rename(from_st, moved, to_st, replaced, caller, from_dir == to_dir)
    os_call(lambda: x.vfs.rename(src, dst))
    if replaced is not None and src != dst:
        x.index.forget(replaced)
    x.index.renamed(src, dst)
    return [
        encode_wcc_data(from_st, stat_or_none(x, from_dir), x.fsid)
        + encode_wcc_data(to_st, stat_or_none(x, to_dir), x.fsid)
    ]


@procedure(NfsProc.LINK, mutating=True, failure=POST_OP + WCC)
def link(x: Export, caller: Caller, u: Unpacker) -> Result:
    file_path, file_st = read_node(x, u)
    dir_path, dir_st = read_dir(x, u)
    name = read_new_name(u)
    require(dir_st, caller, W | X)
    if stat.S_ISDIR(file_st.st_mode):
        raise NfsError(NfsStat.ISDIR)
    path = join(dir_path, name)
    os_call(lambda: x.vfs.link(file_path, path))
    return [
        encode_post_op_attr(stat_or_none(x, file_path), x.fsid)
        + encode_wcc_data(dir_st, stat_or_none(x, dir_path), x.fsid)
    ]
