"""NFSv3 wire structures (RFC 1813), each encoded and decoded side by side.

The server encodes on every call, from what the storage hands it (`Attrs`, handles), with
precompiled structs; those encoders return bytes to concatenate. The client decodes into the
dataclasses here, from an `Unpacker` positioned at the structure. MOUNT's own structures are
in `filesim.nfs.mount`.
"""

from __future__ import annotations

import stat
import struct
from dataclasses import dataclass

from filesim.nfs.attrs import Attrs, split_rdev
from filesim.nfs.const import NFS3_FHSIZE, NFS3_WRITEVERFSIZE, Ftype, TimeHow
from filesim.nfs.vfs import FsStat, SetAttrs
from filesim.oncrpc.xdr import Packer, Unpacker, XdrError, padding

_FATTR = struct.Struct(">IIIIIQQIIQQIIIIII")
_WCC_ATTR = struct.Struct(">QIIII")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_ENTRY_HEAD = struct.Struct(">IQI")  # value follows, fileid, name length
_READ_HEAD = struct.Struct(">III")  # count, eof, opaque length
_WRITE_RES = struct.Struct(">II8s")
_FSINFO = struct.Struct(">IIIIIIIQIII")
_FSSTAT = struct.Struct(">QQQQQQI")
_PATHCONF = struct.Struct(">IIIIII")
TRUE = b"\0\0\0\1"
FALSE = b"\0\0\0\0"
_MAX_U32 = 0xFFFFFFFF
_NS = 1_000_000_000

_FTYPES = {
    stat.S_IFREG: Ftype.REG,
    stat.S_IFDIR: Ftype.DIR,
    stat.S_IFBLK: Ftype.BLK,
    stat.S_IFCHR: Ftype.CHR,
    stat.S_IFLNK: Ftype.LNK,
    stat.S_IFSOCK: Ftype.SOCK,
    stat.S_IFIFO: Ftype.FIFO,
}
_FTYPE_INTS = {kind: int(value) for kind, value in _FTYPES.items()}
"""Plain ints: packing an IntEnum member costs more (once per attribute set encoded)."""


def _time(ns: int) -> tuple[int, int]:
    sec, nsec = divmod(ns, _NS)
    return sec & _MAX_U32, nsec


def _decode_time(u: Unpacker) -> float:
    seconds, nanos = u.uint32(), u.uint32()
    return seconds + nanos / 1e9


# -- fattr3, post_op_attr ------------------------------------------------------------------------


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
    rdev: tuple[int, int] = (0, 0)
    """specdata3: major and minor of a device node."""

    @property
    def is_dir(self) -> bool:
        return self.type is Ftype.DIR


def fattr3_values(st: Attrs, fsid: int) -> tuple[int, ...]:
    """The fields of a fattr3 in wire order (for `_FATTR`, alone or inside a larger pack)."""
    (mode, ino, _dev, nlink, uid, gid, size, blocks, rdev,
     atime, mtime, ctime, _birth) = st  # fmt: skip
    a_sec, a_nsec = divmod(atime, _NS)
    m_sec, m_nsec = divmod(mtime, _NS)
    c_sec, c_nsec = divmod(ctime, _NS)
    major, minor = split_rdev(rdev) if rdev else (0, 0)
    return (
        _FTYPE_INTS.get(mode & 0o170000, 1), mode & 0o7777,
        nlink if nlink < _MAX_U32 else _MAX_U32, uid & _MAX_U32, gid & _MAX_U32,
        size, blocks * 512, major, minor, fsid, ino,
        a_sec & _MAX_U32, a_nsec, m_sec & _MAX_U32, m_nsec, c_sec & _MAX_U32, c_nsec,
    )  # fmt: skip


def encode_fattr3(st: Attrs, fsid: int) -> bytes:
    return _FATTR.pack(*fattr3_values(st, fsid))


def decode_fattr3(u: Unpacker) -> Fattr:
    ftype = Ftype(u.uint32())
    mode, nlink, uid, gid = u.uint32(), u.uint32(), u.uint32(), u.uint32()
    size, used = u.uint64(), u.uint64()
    rdev = u.uint32(), u.uint32()
    fsid, fileid = u.uint64(), u.uint64()
    atime, mtime, ctime = _decode_time(u), _decode_time(u), _decode_time(u)
    return Fattr(ftype, mode, nlink, uid, gid, size, used, fsid, fileid, atime, mtime, ctime, rdev)


def encode_post_op_attr(st: Attrs | None, fsid: int) -> bytes:
    if st is None:
        return FALSE
    return TRUE + encode_fattr3(st, fsid)


def decode_post_op_attr(u: Unpacker) -> Fattr | None:
    return decode_fattr3(u) if u.bool() else None


# -- wcc_data (pre_op_attr + post_op_attr) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WccAttr:
    """wcc_attr: what a client needs to validate its cache before an operation."""

    size: int
    mtime: float
    ctime: float


@dataclass(frozen=True, slots=True)
class WccData:
    before: WccAttr | None
    after: Fattr | None


def encode_pre_op_attr(st: Attrs | None) -> bytes:
    if st is None:
        return FALSE
    m_sec, m_nsec = _time(st.st_mtime_ns)
    c_sec, c_nsec = _time(st.st_ctime_ns)
    return TRUE + _WCC_ATTR.pack(st.st_size, m_sec, m_nsec, c_sec, c_nsec)


def decode_pre_op_attr(u: Unpacker) -> WccAttr | None:
    if not u.bool():
        return None
    return WccAttr(u.uint64(), _decode_time(u), _decode_time(u))


def encode_wcc_data(before: Attrs | None, after: Attrs | None, fsid: int) -> bytes:
    return encode_pre_op_attr(before) + encode_post_op_attr(after, fsid)


def decode_wcc_data(u: Unpacker) -> WccData:
    return WccData(decode_pre_op_attr(u), decode_post_op_attr(u))


# -- nfs_fh3, post_op_fh3, diropargs3 -------------------------------------------------------------


def encode_fh3(handle: bytes) -> bytes:
    n = len(handle)
    return _U32.pack(n) + handle + padding(n)


def decode_fh3(u: Unpacker) -> bytes:
    return bytes(u.opaque(NFS3_FHSIZE))


def encode_post_op_fh3(handle: bytes | None) -> bytes:
    return FALSE if handle is None else TRUE + encode_fh3(handle)


def decode_post_op_fh3(u: Unpacker) -> bytes | None:
    return decode_fh3(u) if u.bool() else None


def encode_diropargs3(dir_handle: bytes, name: str) -> bytes:
    """The client's side; the server reads a diropargs3 with its checks on the name
    (`filesim.nfs.procedures.common`)."""
    p = Packer()
    p.opaque(dir_handle)
    p.string(name)
    return bytes(p.buf)


# -- sattr3 ----------------------------------------------------------------------------------------


def encode_sattr3(attrs: SetAttrs) -> bytes:
    p = Packer()
    for value in (attrs.mode, attrs.uid, attrs.gid):
        p.bool(value is not None)
        if value is not None:
            p.uint32(value)
    p.bool(attrs.size is not None)
    if attrs.size is not None:
        p.uint64(attrs.size)
    for ns in (attrs.atime_ns, attrs.mtime_ns):
        if ns is None:
            p.uint32(TimeHow.DONT_CHANGE)
        elif ns < 0:
            p.uint32(TimeHow.SET_TO_SERVER_TIME)
        else:
            p.uint32(TimeHow.SET_TO_CLIENT_TIME)
            p.two_uint32(*divmod(ns, _NS))
    return bytes(p.buf)


def decode_sattr3(u: Unpacker) -> SetAttrs:
    mode = u.uint32() if u.bool() else None
    uid = u.uint32() if u.bool() else None
    gid = u.uint32() if u.bool() else None
    size = u.uint64() if u.bool() else None
    atime = _decode_set_time(u)
    mtime = _decode_set_time(u)
    return SetAttrs(mode=mode, uid=uid, gid=gid, size=size, atime_ns=atime, mtime_ns=mtime)


def _decode_set_time(u: Unpacker) -> int | None:
    how = u.uint32()
    if how == TimeHow.DONT_CHANGE:
        return None
    if how == TimeHow.SET_TO_SERVER_TIME:
        return -1
    if how == TimeHow.SET_TO_CLIENT_TIME:
        sec, nsec = u.uint32(), u.uint32()
        return sec * _NS + nsec
    raise XdrError(f"bad time_how {how}")


# -- READ and WRITE results ------------------------------------------------------------------------


def encode_read3_head(count: int, eof: bool) -> bytes:
    """What follows the attributes of a READ3resok, up to the data (then data and padding)."""
    return _READ_HEAD.pack(count, eof, count)


def decode_read3_data(u: Unpacker) -> tuple[bytes, bool]:
    """(data, eof) of a READ3resok, after its attributes."""
    u.uint32()  # count, repeated by the opaque's length
    eof = u.bool()
    return bytes(u.opaque()), eof


def encode_write3resok(count: int, committed: int, verifier: bytes) -> bytes:
    """WRITE3resok after its wcc_data (the server's side: no object on the hot path)."""
    return _WRITE_RES.pack(count, committed, verifier)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """WRITE3resok after its wcc_data."""

    count: int
    committed: int
    verifier: bytes

    def encode(self) -> bytes:
        return encode_write3resok(self.count, self.committed, self.verifier)

    @classmethod
    def decode(cls, u: Unpacker) -> WriteResult:
        count, committed = u.uint32(), u.uint32()
        return cls(count, committed, bytes(u.fixed_opaque(NFS3_WRITEVERFSIZE)))


# -- directory entries -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryPlus3:
    """One READDIRPLUS entry; `attrs` and `fh` are optional in the protocol."""

    name: str
    fileid: int
    cookie: int
    attrs: Fattr | None
    fh: bytes | None


def encode_entry3(fileid: int, name: str, cookie: int) -> bytes:
    """An entry3 with the "value follows" flag before it; an entryplus3 appends
    post_op_attr and post_op_fh3 to it."""
    raw = name.encode("utf-8", "surrogateescape")
    n = len(raw)
    return _ENTRY_HEAD.pack(1, fileid, n) + raw + padding(n) + _U64.pack(cookie)


_ENTRYPLUS: dict[tuple[int, int], struct.Struct] = {}
"""One struct per (padded name length, padded handle length): at most 64 x a few."""


def _entryplus_struct(name_len: int, fh_len: int) -> struct.Struct:
    key = (name_len + 3) & ~3, (fh_len + 3) & ~3
    packer = _ENTRYPLUS.get(key)
    if packer is None:
        # "s" pads a shorter value with zero bytes: the XDR padding of the name and handle.
        packer = _ENTRYPLUS[key] = struct.Struct(f">IQI{key[0]}sQI{_FATTR.format[1:]}II{key[1]}s")
    return packer


def entryplus3_head_size(name_len: int) -> int:
    """The bytes of an entryplus3 that count against READDIRPLUS's dircount: the entry3."""
    return 24 + ((name_len + 3) & ~3)


def encode_entryplus3(raw: bytes, cookie: int, st: Attrs, fsid: int, handle: bytes) -> bytes:
    """An entryplus3 with attributes and handle ("value follows" flag first), in one pack:
    the same bytes as `encode_entry3` + `encode_post_op_attr` + `encode_post_op_fh3`, for
    a fraction of the calls (it runs for every entry of a READDIRPLUS page)."""
    n = len(raw)
    return _entryplus_struct(n, len(handle)).pack(
        1, st.st_ino, n, raw, cookie, 1, *fattr3_values(st, fsid), 1, len(handle), handle
    )


def decode_dirlistplus3(u: Unpacker) -> tuple[list[EntryPlus3], bool]:
    """The entries of one READDIRPLUS reply page and its eof flag."""
    entries: list[EntryPlus3] = []
    while u.bool():
        fileid = u.uint64()
        name = u.string()
        cookie = u.uint64()
        attrs = decode_post_op_attr(u)
        fh = decode_post_op_fh3(u)
        entries.append(EntryPlus3(name, fileid, cookie, attrs, fh))
    return entries, u.bool()


# -- file system information -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FsInfo:
    """FSINFO3resok after its attributes."""

    rtmax: int
    rtpref: int
    rtmult: int
    wtmax: int
    wtpref: int
    wtmult: int
    dtpref: int
    maxfilesize: int
    time_delta_ns: int
    properties: int

    def encode(self) -> bytes:
        return _FSINFO.pack(
            self.rtmax, self.rtpref, self.rtmult, self.wtmax, self.wtpref, self.wtmult,
            self.dtpref, self.maxfilesize, *divmod(self.time_delta_ns, _NS), self.properties,
        )  # fmt: skip

    @classmethod
    def decode(cls, u: Unpacker) -> FsInfo:
        rtmax, rtpref, rtmult = u.uint32(), u.uint32(), u.uint32()
        wtmax, wtpref, wtmult = u.uint32(), u.uint32(), u.uint32()
        dtpref = u.uint32()
        maxfilesize = u.uint64()
        delta = u.uint32() * _NS + u.uint32()
        properties = u.uint32()
        return cls(rtmax, rtpref, rtmult, wtmax, wtpref, wtmult, dtpref, maxfilesize, delta,
                   properties)  # fmt: skip


def encode_fsstat3(fs: FsStat, invarsec: int = 0) -> bytes:
    """FSSTAT3resok after its attributes."""
    return _FSSTAT.pack(
        fs.total_bytes, fs.free_bytes, fs.avail_bytes, fs.total_files, fs.free_files,
        fs.avail_files, invarsec,
    )  # fmt: skip


def encode_pathconf3(
    linkmax: int, name_max: int, no_trunc: bool, chown_restricted: bool,
    case_insensitive: bool, case_preserving: bool,
) -> bytes:  # fmt: skip
    """PATHCONF3resok after its attributes."""
    return _PATHCONF.pack(linkmax, name_max, no_trunc, chown_restricted, case_insensitive,
                          case_preserving)  # fmt: skip
