"""The 22 NFSv3 procedures (RFC 1813), each a function from decoded arguments to a result body.

Every procedure takes the export, the caller and an Unpacker positioned at its arguments, and
returns the encoded body that follows `NFS3_OK` (a list of buffers, so READ data is never
copied). Failures are raised as `NfsError`; the dispatcher turns them into the status and the
procedure's (attribute-less) failure body from `FAILURE_BODY`.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Callable

from filesim.nfs.access import Caller, R, W, X, access_bits, permits
from filesim.nfs.const import (
    FSF_CANSETTIME,
    FSF_HOMOGENEOUS,
    FSF_LINK,
    FSF_SYMLINK,
    NAME_MAX,
    NFS3_FHSIZE,
    PATH_MAX,
    CreateMode,
    Ftype,
    StableHow,
)
from filesim.nfs.export import Export
from filesim.nfs.types import (
    decode_sattr3 as read_sattr3,
)
from filesim.nfs.types import (
    encode_fattr3 as fattr3,
)
from filesim.nfs.types import (
    encode_post_op_attr as post_op_attr,
)
from filesim.nfs.types import (
    encode_post_op_fh3 as post_op_fh,
)
from filesim.nfs.types import (
    encode_wcc_data as wcc_data,
)
from filesim.nfs.vfs import NfsError, SetAttrs, join, parent_of, status_of
from filesim.oncrpc.programs import NfsProc, NfsStat
from filesim.oncrpc.xdr import Packer, Unpacker, padding

MAX_IO = 1 << 20
_U32 = struct.Struct(">I")
_READ_HDR = struct.Struct(">III")  # count, eof, opaque length (after post_op_attr)
_WRITE_RES = struct.Struct(">II8s")

Result = list[bytes]
Procedure = Callable[[Export, Caller, Unpacker], Result]


# -- argument helpers ---------------------------------------------------------------------------


def _node(x: Export, u: Unpacker) -> tuple[str, os.stat_result]:
    handle = u.opaque(NFS3_FHSIZE)
    return x.index.resolve(x.codec.decode(handle))


def _name(u: Unpacker) -> str:
    raw = u.opaque(NAME_MAX + 1)
    if len(raw) > NAME_MAX:
        raise NfsError(NfsStat.NAMETOOLONG)
    name = str(raw, "utf-8", "surrogateescape")
    if not name or "/" in name or "\0" in name:
        raise NfsError(NfsStat.INVAL if not name else NfsStat.ACCES, f"bad name {name!r}")
    return name


def _dir(x: Export, u: Unpacker) -> tuple[str, os.stat_result]:
    path, st = _node(x, u)
    if not stat.S_ISDIR(st.st_mode):
        raise NfsError(NfsStat.NOTDIR)
    return path, st


def _new_name(u: Unpacker) -> str:
    name = _name(u)
    if name in (".", ".."):
        raise NfsError(NfsStat.EXIST)
    return name


def _require(st: os.stat_result, caller: Caller, want: int, owner_override: bool = False) -> None:
    if permits(st, caller, want):
        return
    if owner_override and st.st_uid == caller.uid:
        return
    raise NfsError(NfsStat.ACCES)


def _stat_or_none(x: Export, path: str) -> os.stat_result | None:
    try:
        return x.vfs.stat(path)
    except OSError:
        return None


def _owner(caller: Caller, attrs: SetAttrs) -> tuple[int, int]:
    uid = caller.uid if attrs.uid is None else attrs.uid
    gid = caller.gid if attrs.gid is None else attrs.gid
    return uid, gid


def _os(call: Callable[[], object]) -> None:
    try:
        call()
    except OSError as exc:
        raise NfsError(status_of(exc), str(exc)) from None


def _created(x: Export, dir_path: str, dir_before: os.stat_result, path: str) -> Result:
    """post_op_fh3 + post_op_attr of the new node, then wcc_data of its directory."""
    st = x.vfs.stat(path)
    handle = x.handle_for(st, path)
    return [
        post_op_fh(handle) + post_op_attr(st, x.fsid)
        + wcc_data(dir_before, _stat_or_none(x, dir_path), x.fsid)
    ]  # fmt: skip


# -- procedures -------------------------------------------------------------------------------


def null(x: Export, caller: Caller, u: Unpacker) -> Result:
    return []


def getattr_(x: Export, caller: Caller, u: Unpacker) -> Result:
    _, st = _node(x, u)
    return [fattr3(st, x.fsid)]


def setattr_(x: Export, caller: Caller, u: Unpacker) -> Result:
    path, before = _node(x, u)
    attrs = read_sattr3(u)
    if u.bool():  # guard: the client's idea of ctime must still hold
        sec, nsec = u.uint32(), u.uint32()
        if (sec, nsec) != divmod(before.st_ctime_ns, 1_000_000_000):
            raise NfsError(NfsStat.NOT_SYNC)
    _check_setattr(before, caller, attrs)
    _os(lambda: x.vfs.setattr(path, attrs))
    return [wcc_data(before, _stat_or_none(x, path), x.fsid)]


def _check_setattr(st: os.stat_result, caller: Caller, attrs: SetAttrs) -> None:
    if caller.is_root:
        return
    owner = st.st_uid == caller.uid
    if attrs.uid is not None and attrs.uid != st.st_uid:
        raise NfsError(NfsStat.PERM)
    if (
        attrs.gid is not None
        and attrs.gid != st.st_gid
        and not (owner and (attrs.gid == caller.gid or attrs.gid in caller.gids))
    ):
        raise NfsError(NfsStat.PERM)
    if attrs.mode is not None and not owner:
        raise NfsError(NfsStat.PERM)
    explicit_time = any(t is not None and t >= 0 for t in (attrs.atime_ns, attrs.mtime_ns))
    if explicit_time and not owner:
        raise NfsError(NfsStat.PERM)
    if attrs.size is not None or (attrs.atime_ns == -1 or attrs.mtime_ns == -1):
        _require(st, caller, W, owner_override=True)


def lookup(x: Export, caller: Caller, u: Unpacker) -> Result:
    dir_path, dir_st = _dir(x, u)
    name = _name(u)
    _require(dir_st, caller, X)
    if name == ".":
        path = dir_path
    elif name == "..":
        path = parent_of(dir_path) if dir_path else ""
    else:
        path = join(dir_path, name)
    try:
        st = x.vfs.stat(path)
    except OSError as exc:
        raise NfsError(status_of(exc)) from None
    handle = x.handle_for(st, path)
    p = Packer()
    p.opaque(handle)
    return [bytes(p.buf) + post_op_attr(st, x.fsid) + post_op_attr(dir_st, x.fsid)]


def access(x: Export, caller: Caller, u: Unpacker) -> Result:
    _, st = _node(x, u)
    requested = u.uint32()
    granted = access_bits(st, caller, requested, x.readonly)
    return [post_op_attr(st, x.fsid) + _U32.pack(granted)]


def readlink(x: Export, caller: Caller, u: Unpacker) -> Result:
    path, st = _node(x, u)
    if not stat.S_ISLNK(st.st_mode):
        raise NfsError(NfsStat.INVAL)
    try:
        target = x.vfs.readlink(path)
    except OSError as exc:
        raise NfsError(status_of(exc)) from None
    p = Packer()
    p.string(target)
    return [post_op_attr(st, x.fsid) + bytes(p.buf)]


def read(x: Export, caller: Caller, u: Unpacker) -> Result:
    path, st = _node(x, u)
    offset, count = u.uint64(), u.uint32()
    _require_file(st)
    _require(st, caller, R, owner_override=True)
    try:
        data = x.vfs.read(path, offset, min(count, MAX_IO))
    except OSError as exc:
        raise NfsError(status_of(exc)) from None
    eof = offset + len(data) >= st.st_size
    header = post_op_attr(st, x.fsid) + _READ_HDR.pack(len(data), eof, len(data))
    return [header, data, padding(len(data))] if data else [header]


def _require_file(st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise NfsError(NfsStat.ISDIR)
    if not stat.S_ISREG(st.st_mode):
        raise NfsError(NfsStat.INVAL)


def write(x: Export, caller: Caller, u: Unpacker) -> Result:
    path, before = _node(x, u)
    offset, count, stable = u.uint64(), u.uint32(), u.uint32()
    data = u.opaque(MAX_IO)
    if count > len(data) or stable > StableHow.FILE_SYNC:
        raise NfsError(NfsStat.INVAL)
    _require_file(before)
    _require(before, caller, W, owner_override=True)
    sync = x.config.sync or stable != StableHow.UNSTABLE
    _os(lambda: x.vfs.write(path, offset, data[:count], sync))
    committed = StableHow.FILE_SYNC if sync else StableHow.UNSTABLE
    wcc = wcc_data(before, _stat_or_none(x, path), x.fsid)
    return [wcc + _WRITE_RES.pack(count, committed, x.write_verifier)]


def create(x: Export, caller: Caller, u: Unpacker) -> Result:
    dir_path, dir_st = _dir(x, u)
    name = _new_name(u)
    how = u.uint32()
    if how == CreateMode.EXCLUSIVE:
        verifier = bytes(u.fixed_opaque(8))
        attrs = SetAttrs()
    elif how in (CreateMode.UNCHECKED, CreateMode.GUARDED):
        verifier = b""
        attrs = read_sattr3(u)
    else:
        raise NfsError(NfsStat.INVAL, f"bad create mode {how}")
    _require(dir_st, caller, W | X)
    path = join(dir_path, name)
    existing = _stat_or_none(x, path)
    if existing is not None:
        _create_existing(x, caller, path, existing, how, verifier, attrs)
    else:
        mode = attrs.mode if attrs.mode is not None else 0o644
        if verifier:  # keep the verifier where a retried EXCLUSIVE create can find it
            hi, lo = struct.unpack(">II", verifier)
            initial = SetAttrs(atime_ns=hi * 10**9, mtime_ns=lo * 10**9)
        else:
            initial = SetAttrs(size=attrs.size, atime_ns=attrs.atime_ns, mtime_ns=attrs.mtime_ns)
        try:
            x.vfs.create(path, mode, True, _owner(caller, attrs), initial)
        except FileExistsError:
            raise NfsError(NfsStat.EXIST) from None
        except OSError as exc:
            raise NfsError(status_of(exc)) from None
    return _created(x, dir_path, dir_st, path)


def _create_existing(
    x: Export, caller: Caller, path: str, st: os.stat_result, how: int, verifier: bytes,
    attrs: SetAttrs,
) -> None:  # fmt: skip
    if how == CreateMode.GUARDED:
        raise NfsError(NfsStat.EXIST)
    if how == CreateMode.EXCLUSIVE:
        hi, lo = struct.unpack(">II", verifier)
        if (st.st_atime_ns // 10**9, st.st_mtime_ns // 10**9) != (hi, lo):
            raise NfsError(NfsStat.EXIST)
        return
    if stat.S_ISDIR(st.st_mode):
        raise NfsError(NfsStat.ISDIR)
    if attrs.size is not None:  # UNCHECKED with a size: truncate, as open(O_TRUNC) asks
        _require(st, caller, W, owner_override=True)
        size = attrs.size
        _os(lambda: x.vfs.truncate(path, size))


def mkdir(x: Export, caller: Caller, u: Unpacker) -> Result:
    dir_path, dir_st = _dir(x, u)
    name = _new_name(u)
    attrs = read_sattr3(u)
    _require(dir_st, caller, W | X)
    path = join(dir_path, name)
    mode = attrs.mode if attrs.mode is not None else 0o755
    _os(lambda: x.vfs.mkdir(path, mode, owner=_owner(caller, attrs)))
    return _created(x, dir_path, dir_st, path)


def symlink(x: Export, caller: Caller, u: Unpacker) -> Result:
    dir_path, dir_st = _dir(x, u)
    name = _new_name(u)
    attrs = read_sattr3(u)
    target = u.string(PATH_MAX)
    _require(dir_st, caller, W | X)
    path = join(dir_path, name)
    _os(lambda: x.vfs.symlink(path, target, owner=_owner(caller, attrs)))
    return _created(x, dir_path, dir_st, path)


def mknod(x: Export, caller: Caller, u: Unpacker) -> Result:
    dir_path, dir_st = _dir(x, u)
    name = _new_name(u)
    ftype = u.uint32()
    if ftype in (Ftype.CHR, Ftype.BLK):
        read_sattr3(u)
        u.uint32(), u.uint32()
        raise NfsError(NfsStat.NOTSUPP, "device nodes are not supported")
    if ftype not in (Ftype.SOCK, Ftype.FIFO):
        raise NfsError(NfsStat.BADTYPE)
    attrs = read_sattr3(u)
    _require(dir_st, caller, W | X)
    path = join(dir_path, name)
    kind = stat.S_IFIFO if ftype == Ftype.FIFO else stat.S_IFSOCK
    mode = kind | (attrs.mode if attrs.mode is not None else 0o644)
    _os(lambda: x.vfs.mknod(path, mode, owner=_owner(caller, attrs)))
    return _created(x, dir_path, dir_st, path)


def _unlink(x: Export, caller: Caller, u: Unpacker, directory: bool) -> Result:
    dir_path, dir_st = _dir(x, u)
    name = _name(u)
    if name in (".", ".."):
        raise NfsError(NfsStat.INVAL if name == "." else NfsStat.NOTEMPTY)
    _require(dir_st, caller, W | X)
    path = join(dir_path, name)
    st = _stat_or_none(x, path)
    if st is None:
        raise NfsError(NfsStat.NOENT)
    if directory:
        _os(lambda: x.vfs.rmdir(path))
    else:
        _os(lambda: x.vfs.remove(path))
    x.index.forget(st.st_ino)
    return [wcc_data(dir_st, _stat_or_none(x, dir_path), x.fsid)]


def remove(x: Export, caller: Caller, u: Unpacker) -> Result:
    return _unlink(x, caller, u, directory=False)


def rmdir(x: Export, caller: Caller, u: Unpacker) -> Result:
    return _unlink(x, caller, u, directory=True)


def rename(x: Export, caller: Caller, u: Unpacker) -> Result:
    from_dir, from_st = _dir(x, u)
    from_name = _name(u)
    to_dir, to_st = _dir(x, u)
    to_name = _name(u)
    if {from_name, to_name} & {".", ".."}:
        raise NfsError(NfsStat.INVAL)
    _require(from_st, caller, W | X)
    _require(to_st, caller, W | X)
    src, dst = join(from_dir, from_name), join(to_dir, to_name)
    replaced = _stat_or_none(x, dst)
    _os(lambda: x.vfs.rename(src, dst))
    if replaced is not None and src != dst:
        x.index.forget(replaced.st_ino)
    x.index.renamed(src, dst)
    return [
        wcc_data(from_st, _stat_or_none(x, from_dir), x.fsid)
        + wcc_data(to_st, _stat_or_none(x, to_dir), x.fsid)
    ]


def link(x: Export, caller: Caller, u: Unpacker) -> Result:
    file_path, file_st = _node(x, u)
    dir_path, dir_st = _dir(x, u)
    name = _new_name(u)
    _require(dir_st, caller, W | X)
    if stat.S_ISDIR(file_st.st_mode):
        raise NfsError(NfsStat.ISDIR)
    path = join(dir_path, name)
    _os(lambda: x.vfs.link(file_path, path))
    return [
        post_op_attr(_stat_or_none(x, file_path), x.fsid)
        + wcc_data(dir_st, _stat_or_none(x, dir_path), x.fsid)
    ]


def _listing_args(x: Export, caller: Caller, u: Unpacker) -> tuple[str, os.stat_result, int, bytes]:
    dir_path, dir_st = _dir(x, u)
    cookie = u.uint64()
    verifier = bytes(u.fixed_opaque(8))
    _require(dir_st, caller, R)
    return dir_path, dir_st, cookie, verifier


def readdir(x: Export, caller: Caller, u: Unpacker) -> Result:
    dir_path, dir_st, cookie, verifier = _listing_args(x, caller, u)
    count = u.uint32()
    entries, verifier = x.listings.listing(x.vfs, dir_path, dir_st.st_ino, cookie, verifier)
    p = Packer()
    p.raw(post_op_attr(dir_st, x.fsid))
    p.raw(verifier)
    budget = count - len(p.buf) - 8
    index = cookie
    while index < len(entries):
        entry = entries[index]
        encoded = Packer()
        encoded.bool(True)
        encoded.uint64(entry.ino)
        encoded.string(entry.name)
        encoded.uint64(index + 1)
        if len(encoded.buf) > budget:
            if index == cookie:
                raise NfsError(NfsStat.TOOSMALL)
            break
        budget -= len(encoded.buf)
        p.raw(encoded.buf)
        index += 1
    p.bool(False)
    p.bool(index >= len(entries))
    return [bytes(p.buf)]


def readdirplus(x: Export, caller: Caller, u: Unpacker) -> Result:
    dir_path, dir_st, cookie, verifier = _listing_args(x, caller, u)
    dircount, maxcount = u.uint32(), u.uint32()
    entries, verifier = x.listings.listing(x.vfs, dir_path, dir_st.st_ino, cookie, verifier)
    p = Packer()
    p.raw(post_op_attr(dir_st, x.fsid))
    p.raw(verifier)
    budget = min(maxcount, MAX_IO) - len(p.buf) - 8
    dir_budget = dircount or budget
    index = cookie
    while index < len(entries):
        entry = entries[index]
        path = _entry_path(dir_path, entry.name)
        st = _stat_or_none(x, path)
        encoded = Packer()
        encoded.bool(True)
        encoded.uint64(entry.ino if st is None else st.st_ino)
        encoded.string(entry.name)
        encoded.uint64(index + 1)
        dir_bytes = len(encoded.buf)
        if st is None:
            encoded.raw(post_op_attr(None, x.fsid) + post_op_fh(None))
        else:
            encoded.raw(post_op_attr(st, x.fsid) + post_op_fh(x.handle_for(st, path)))
        if len(encoded.buf) > budget or dir_bytes > dir_budget:
            if index == cookie:
                raise NfsError(NfsStat.TOOSMALL)
            break
        budget -= len(encoded.buf)
        dir_budget -= dir_bytes
        p.raw(encoded.buf)
        index += 1
    p.bool(False)
    p.bool(index >= len(entries))
    return [bytes(p.buf)]


def _entry_path(dir_path: str, name: str) -> str:
    if name == ".":
        return dir_path
    if name == "..":
        return parent_of(dir_path) if dir_path else ""
    return join(dir_path, name)


def fsstat(x: Export, caller: Caller, u: Unpacker) -> Result:
    _, st = _node(x, u)
    try:
        fs = x.vfs.statvfs()
    except OSError as exc:
        raise NfsError(status_of(exc)) from None
    body = struct.pack(
        ">QQQQQQI", fs.total_bytes, fs.free_bytes, fs.avail_bytes, fs.total_files,
        fs.free_files, fs.avail_files, 0,
    )  # fmt: skip
    return [post_op_attr(st, x.fsid) + body]


def fsinfo(x: Export, caller: Caller, u: Unpacker) -> Result:
    _, st = _node(x, u)
    properties = FSF_LINK | FSF_SYMLINK | FSF_HOMOGENEOUS | FSF_CANSETTIME
    body = struct.pack(
        ">IIIIIIIQIII", MAX_IO, MAX_IO, 4096, MAX_IO, MAX_IO, 4096, 64 << 10,
        (1 << 63) - 1, 0, 1, properties,
    )  # fmt: skip
    return [post_op_attr(st, x.fsid) + body]


def pathconf(x: Export, caller: Caller, u: Unpacker) -> Result:
    _, st = _node(x, u)
    body = struct.pack(">IIIIII", 32000, NAME_MAX, 1, 1, 0, 1)
    return [post_op_attr(st, x.fsid) + body]


def commit(x: Export, caller: Caller, u: Unpacker) -> Result:
    path, before = _node(x, u)
    u.uint64(), u.uint32()  # offset and count: we flush the whole file
    _require_file(before)
    _os(lambda: x.vfs.commit(path))
    return [wcc_data(before, _stat_or_none(x, path), x.fsid) + x.write_verifier]


PROCEDURES: dict[int, Procedure] = {
    NfsProc.NULL: null,
    NfsProc.GETATTR: getattr_,
    NfsProc.SETATTR: setattr_,
    NfsProc.LOOKUP: lookup,
    NfsProc.ACCESS: access,
    NfsProc.READLINK: readlink,
    NfsProc.READ: read,
    NfsProc.WRITE: write,
    NfsProc.CREATE: create,
    NfsProc.MKDIR: mkdir,
    NfsProc.SYMLINK: symlink,
    NfsProc.MKNOD: mknod,
    NfsProc.REMOVE: remove,
    NfsProc.RMDIR: rmdir,
    NfsProc.RENAME: rename,
    NfsProc.LINK: link,
    NfsProc.READDIR: readdir,
    NfsProc.READDIRPLUS: readdirplus,
    NfsProc.FSSTAT: fsstat,
    NfsProc.FSINFO: fsinfo,
    NfsProc.PATHCONF: pathconf,
    NfsProc.COMMIT: commit,
}

MUTATING = frozenset(
    {
        NfsProc.SETATTR, NfsProc.WRITE, NfsProc.CREATE, NfsProc.MKDIR, NfsProc.SYMLINK,
        NfsProc.MKNOD, NfsProc.REMOVE, NfsProc.RMDIR, NfsProc.RENAME, NfsProc.LINK,
    }
)  # fmt: skip

# The body after a failure status: every optional attribute absent (RFC 1813 allows it).
_POST_OP = 4
_WCC = 8
FAILURE_BODY: dict[int, bytes] = {
    NfsProc.GETATTR: b"",
    NfsProc.SETATTR: bytes(_WCC),
    NfsProc.LOOKUP: bytes(_POST_OP),
    NfsProc.ACCESS: bytes(_POST_OP),
    NfsProc.READLINK: bytes(_POST_OP),
    NfsProc.READ: bytes(_POST_OP),
    NfsProc.WRITE: bytes(_WCC),
    NfsProc.CREATE: bytes(_WCC),
    NfsProc.MKDIR: bytes(_WCC),
    NfsProc.SYMLINK: bytes(_WCC),
    NfsProc.MKNOD: bytes(_WCC),
    NfsProc.REMOVE: bytes(_WCC),
    NfsProc.RMDIR: bytes(_WCC),
    NfsProc.RENAME: bytes(2 * _WCC),
    NfsProc.LINK: bytes(_POST_OP + _WCC),
    NfsProc.READDIR: bytes(_POST_OP),
    NfsProc.READDIRPLUS: bytes(_POST_OP),
    NfsProc.FSSTAT: bytes(_POST_OP),
    NfsProc.FSINFO: bytes(_POST_OP),
    NfsProc.PATHCONF: bytes(_POST_OP),
    NfsProc.COMMIT: bytes(_WCC),
}
