"""Client-side XDR for NFSv3 and MOUNT v3 (RFC 1813): result types and their decoders.

Pure functions over `Packer`/`Unpacker`, no I/O, so `client.py` stays about the conversation and
these can be tested from bytes alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from filesim.nfs.const import NFS3_FHSIZE, Ftype
from filesim.oncrpc.xdr import Packer, Unpacker

WCC_ATTR_BYTES = 24  # size (8) + mtime (8) + ctime (8)


@dataclass(frozen=True, slots=True)
class Fattr:
    """fattr3: the attributes of a file as the server reports them."""

    type: Ftype
    mode: int
    nlink: int
    uid: int
    gid: int
    size: int
    used: int
    fsid: int
    fileid: int
    atime: float
    mtime: float
    ctime: float

    @property
    def is_dir(self) -> bool:
        return self.type is Ftype.DIR


@dataclass(frozen=True, slots=True)
class DirEntry:
    """One READDIRPLUS entry; `attrs` and `fh` are optional in the protocol."""

    name: str
    fileid: int
    cookie: int
    attrs: Fattr | None
    fh: bytes | None


@dataclass(frozen=True, slots=True)
class FsInfo:
    rtmax: int
    rtpref: int
    wtmax: int
    wtpref: int
    dtpref: int
    maxfilesize: int
    properties: int


@dataclass(frozen=True, slots=True)
class ExportEntry:
    """One entry of the MOUNT EXPORT list."""

    path: str
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WriteResult:
    count: int
    committed: int
    verifier: bytes


def _time(u: Unpacker) -> float:
    seconds, nanos = u.uint32(), u.uint32()
    return seconds + nanos / 1e9


def unpack_fattr(u: Unpacker) -> Fattr:
    ftype = Ftype(u.uint32())
    mode, nlink, uid, gid = u.uint32(), u.uint32(), u.uint32(), u.uint32()
    size, used = u.uint64(), u.uint64()
    u.uint32(), u.uint32()  # rdev (specdata3)
    fsid, fileid = u.uint64(), u.uint64()
    atime, mtime, ctime = _time(u), _time(u), _time(u)
    return Fattr(ftype, mode, nlink, uid, gid, size, used, fsid, fileid, atime, mtime, ctime)


def unpack_post_op_attr(u: Unpacker) -> Fattr | None:
    return unpack_fattr(u) if u.bool() else None


def unpack_fh(u: Unpacker) -> bytes:
    return bytes(u.opaque(NFS3_FHSIZE))


def unpack_post_op_fh(u: Unpacker) -> bytes | None:
    return unpack_fh(u) if u.bool() else None


def skip_wcc_data(u: Unpacker) -> Fattr | None:
    """Skip pre_op_attr and return the post-operation attributes of a wcc_data."""
    if u.bool():
        u.fixed_opaque(WCC_ATTR_BYTES)
    return unpack_post_op_attr(u)


def pack_diropargs(p: Packer, dir_fh: bytes, name: str) -> None:
    p.opaque(dir_fh)
    p.string(name)


def pack_sattr(p: Packer, mode: int | None = None, size: int | None = None) -> None:
    """sattr3 setting only `mode` and/or `size`; uid, gid and times stay as the server picks."""
    p.bool(mode is not None)
    if mode is not None:
        p.uint32(mode)
    p.bool(False)  # uid
    p.bool(False)  # gid
    p.bool(size is not None)
    if size is not None:
        p.uint64(size)
    p.uint32(0)  # atime: DONT_CHANGE
    p.uint32(0)  # mtime: DONT_CHANGE


def unpack_dirlistplus(u: Unpacker) -> tuple[list[DirEntry], bool]:
    """The entries of one READDIRPLUS reply page and its eof flag."""
    entries: list[DirEntry] = []
    while u.bool():
        fileid = u.uint64()
        name = u.string()
        cookie = u.uint64()
        attrs = unpack_post_op_attr(u)
        fh = unpack_post_op_fh(u)
        entries.append(DirEntry(name, fileid, cookie, attrs, fh))
    return entries, u.bool()


def unpack_fsinfo(u: Unpacker) -> FsInfo:
    rtmax, rtpref, _rtmult = u.uint32(), u.uint32(), u.uint32()
    wtmax, wtpref, _wtmult = u.uint32(), u.uint32(), u.uint32()
    dtpref = u.uint32()
    maxfilesize = u.uint64()
    _time(u)  # time_delta
    properties = u.uint32()
    return FsInfo(rtmax, rtpref, wtmax, wtpref, dtpref, maxfilesize, properties)


def unpack_exports(u: Unpacker) -> list[ExportEntry]:
    exports: list[ExportEntry] = []
    while u.bool():
        path = u.string()
        groups: list[str] = []
        while u.bool():
            groups.append(u.string())
        exports.append(ExportEntry(path, tuple(groups)))
    return exports
