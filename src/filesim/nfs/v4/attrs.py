"""fattr4 (RFC 7530 5, RFC 8881 5): encoding from `Attrs`, decoding of the settable ones.

Owners and groups go out as numeric strings ("1000"); numeric strings and names known to the
local password/group database are accepted back.
"""

from __future__ import annotations

import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass

from filesim.nfs.attrs import Attrs, split_rdev
from filesim.nfs.v4.attrplan import Encoder, compile_encoder
from filesim.nfs.v4.const import Attr, Ftype4, Status
from filesim.nfs.v4.wire import V4Error, bitmap, opaque, read_bitmap, string
from filesim.nfs.vfs import FsStat, SetAttrs
from filesim.oncrpc.xdr import Unpacker, XdrError

MAX_IO = 1 << 20
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_U32_PAIR = struct.Struct(">II")
_TIME = struct.Struct(">qI")
_TRUE, _FALSE = _U32.pack(1), _U32.pack(0)

_FTYPES = {
    stat.S_IFREG: Ftype4.REG, stat.S_IFDIR: Ftype4.DIR, stat.S_IFBLK: Ftype4.BLK,
    stat.S_IFCHR: Ftype4.CHR, stat.S_IFLNK: Ftype4.LNK, stat.S_IFSOCK: Ftype4.SOCK,
    stat.S_IFIFO: Ftype4.FIFO,
}  # fmt: skip


@dataclass
class Source:
    """What the attributes of one node are made of."""

    st: Attrs
    handle: bytes
    fsid: tuple[int, int]
    lease: int
    minor: int
    fs: Callable[[], FsStat]
    mounted_on_fileid: int | None = None


def _bits(*attrs: Attr) -> int:
    v = 0
    for a in attrs:
        v |= 1 << a
    return v


WRITABLE = _bits(
    Attr.SIZE, Attr.MODE, Attr.OWNER, Attr.OWNER_GROUP, Attr.TIME_ACCESS_SET,
    Attr.TIME_MODIFY_SET,
)  # fmt: skip
_READABLE = _bits(
    Attr.SUPPORTED_ATTRS, Attr.TYPE, Attr.FH_EXPIRE_TYPE, Attr.CHANGE, Attr.SIZE,
    Attr.LINK_SUPPORT, Attr.SYMLINK_SUPPORT, Attr.NAMED_ATTR, Attr.FSID, Attr.UNIQUE_HANDLES,
    Attr.LEASE_TIME, Attr.RDATTR_ERROR, Attr.FILEHANDLE, Attr.ACLSUPPORT, Attr.CANSETTIME,
    Attr.CASE_INSENSITIVE, Attr.CASE_PRESERVING, Attr.CHOWN_RESTRICTED, Attr.FILEID,
    Attr.FILES_AVAIL, Attr.FILES_FREE, Attr.FILES_TOTAL, Attr.HOMOGENEOUS, Attr.MAXFILESIZE,
    Attr.MAXLINK, Attr.MAXNAME, Attr.MAXREAD, Attr.MAXWRITE, Attr.MODE, Attr.NO_TRUNC,
    Attr.NUMLINKS, Attr.OWNER, Attr.OWNER_GROUP, Attr.RAWDEV, Attr.SPACE_AVAIL,
    Attr.SPACE_FREE, Attr.SPACE_TOTAL, Attr.SPACE_USED, Attr.TIME_ACCESS, Attr.TIME_DELTA,
    Attr.TIME_METADATA, Attr.TIME_MODIFY, Attr.MOUNTED_ON_FILEID,
)  # fmt: skip
SUPPORTED_40 = _READABLE | WRITABLE
SUPPORTED_41 = SUPPORTED_40 | _bits(Attr.SUPPATTR_EXCLCREAT)
SUPPORTED_42 = SUPPORTED_41 | _bits(Attr.XATTR_SUPPORT)
# Not the times: an exclusive create keeps its verifier in atime and mtime until the client
# sets them, and a client sets only what the server did not claim here (RFC 8881 18.16.3).
EXCLCREAT = _bits(Attr.SIZE, Attr.MODE, Attr.OWNER, Attr.OWNER_GROUP)


WRITE_ONLY = _bits(Attr.TIME_ACCESS_SET, Attr.TIME_MODIFY_SET)


def check_readable(request: int) -> None:
    """GETATTR, READDIR and VERIFY may not ask for write-only attributes."""
    if request & WRITE_ONLY:
        raise V4Error(Status.INVAL, "write-only attribute requested")


def supported(minor: int) -> int:
    return (SUPPORTED_40, SUPPORTED_41, SUPPORTED_42)[min(minor, 2)]


def ftype(mode: int) -> Ftype4:
    return _FTYPES.get(stat.S_IFMT(mode), Ftype4.REG)


def _time(ns: int) -> bytes:
    sec, nsec = divmod(ns, 1_000_000_000)
    return _TIME.pack(sec, nsec)


def _u64(v: int) -> bytes:
    return _U64.pack(max(0, min(v, (1 << 64) - 1)))


_IDS: dict[int, bytes] = {}


def _id(value: int) -> bytes:
    """An owner or group as its numeric string, encoded; the few ids in use are kept."""
    encoded = _IDS.get(value)
    if encoded is None:
        if len(_IDS) > 1024:
            _IDS.clear()
        encoded = _IDS[value] = string(str(value))
    return encoded


def _fs(field: Callable[[FsStat], int]) -> Callable[[Source], bytes]:
    return lambda s: _u64(field(s.fs()))


def _encoders() -> dict[int, Callable[[Source], bytes]]:
    fs = _fs
    return {
        Attr.SUPPORTED_ATTRS: lambda s: bitmap(supported(s.minor)),
        Attr.TYPE: lambda s: _U32.pack(ftype(s.st.st_mode)),
        Attr.FH_EXPIRE_TYPE: lambda s: _U32.pack(0),  # FH4_PERSISTENT
        Attr.CHANGE: lambda s: _u64(s.st.st_ctime_ns),
        Attr.SIZE: lambda s: _u64(s.st.st_size),
        Attr.LINK_SUPPORT: lambda s: _TRUE,
        Attr.SYMLINK_SUPPORT: lambda s: _TRUE,
        Attr.NAMED_ATTR: lambda s: _FALSE,
        Attr.FSID: lambda s: _U64.pack(s.fsid[0]) + _U64.pack(s.fsid[1]),
        Attr.UNIQUE_HANDLES: lambda s: _TRUE,
        Attr.LEASE_TIME: lambda s: _U32.pack(s.lease),
        Attr.RDATTR_ERROR: lambda s: _U32.pack(0),
        Attr.FILEHANDLE: lambda s: opaque(s.handle),
        Attr.ACLSUPPORT: lambda s: _U32.pack(0),
        Attr.CANSETTIME: lambda s: _TRUE,
        Attr.CASE_INSENSITIVE: lambda s: _FALSE,
        Attr.CASE_PRESERVING: lambda s: _TRUE,
        Attr.CHOWN_RESTRICTED: lambda s: _TRUE,
        Attr.FILEID: lambda s: _u64(s.st.st_ino),
        Attr.FILES_AVAIL: fs(lambda f: f.avail_files),
        Attr.FILES_FREE: fs(lambda f: f.free_files),
        Attr.FILES_TOTAL: fs(lambda f: f.total_files),
        Attr.HOMOGENEOUS: lambda s: _TRUE,
        Attr.MAXFILESIZE: lambda s: _u64((1 << 63) - 1),
        Attr.MAXLINK: lambda s: _U32.pack(32000),
        Attr.MAXNAME: lambda s: _U32.pack(255),
        Attr.MAXREAD: lambda s: _u64(MAX_IO),
        Attr.MAXWRITE: lambda s: _u64(MAX_IO),
        Attr.MODE: lambda s: _U32.pack(stat.S_IMODE(s.st.st_mode)),
        Attr.NO_TRUNC: lambda s: _TRUE,
        Attr.NUMLINKS: lambda s: _U32.pack(min(s.st.st_nlink, 0xFFFFFFFF)),
        Attr.OWNER: lambda s: _id(s.st.st_uid),
        Attr.OWNER_GROUP: lambda s: _id(s.st.st_gid),
        Attr.RAWDEV: lambda s: _U32_PAIR.pack(*split_rdev(s.st.st_rdev)),
        Attr.SPACE_AVAIL: fs(lambda f: f.avail_bytes),
        Attr.SPACE_FREE: fs(lambda f: f.free_bytes),
        Attr.SPACE_TOTAL: fs(lambda f: f.total_bytes),
        Attr.SPACE_USED: lambda s: _u64(s.st.st_blocks * 512),
        Attr.TIME_ACCESS: lambda s: _time(s.st.st_atime_ns),
        Attr.TIME_DELTA: lambda s: _TIME.pack(0, 1),
        Attr.TIME_METADATA: lambda s: _time(s.st.st_ctime_ns),
        Attr.TIME_MODIFY: lambda s: _time(s.st.st_mtime_ns),
        Attr.MOUNTED_ON_FILEID: lambda s: _u64(
            s.st.st_ino if s.mounted_on_fileid is None else s.mounted_on_fileid
        ),
        Attr.SUPPATTR_EXCLCREAT: lambda s: bitmap(EXCLCREAT),
        Attr.XATTR_SUPPORT: lambda s: _FALSE,
    }


_ENCODERS = _encoders()
_PLANS: dict[int, tuple[int, bytes, Encoder]] = {}
"""Per request bitmap and minor version: the attributes returned, their bitmap encoded and
one encoder of their values. Built once: READDIR encodes the same request for every entry."""


def _plan(request: int, minor: int) -> tuple[int, bytes, Encoder]:
    key = request << 2 | min(minor, 2)
    plan = _PLANS.get(key)
    if plan is None:
        want = request & supported(minor) & ~WRITE_ONLY
        if len(_PLANS) > 256:  # clients send a handful of masks; a hostile one, many
            _PLANS.clear()
        plan = _PLANS[key] = want, bitmap(want), compile_encoder(want, _ENCODERS)
    return plan


def encode(request: int, src: Source) -> tuple[int, bytes]:
    """(bitmap of the attributes returned, their values) for the `request` bitmap."""
    want, _, encoder = _plan(request, src.minor)
    return want, encoder(src)


def fattr4(request: int, src: Source) -> bytes:
    """An encoded fattr4 (bitmap and attrlist4) for `request`."""
    _, words, encoder = _plan(request, src.minor)
    return words + opaque(encoder(src))


def read_fattr4(u: Unpacker) -> tuple[int, memoryview]:
    """The bitmap and the raw attribute values of a fattr4."""
    mask = read_bitmap(u)
    return mask, u.opaque(1 << 20)


def decode_settable(mask: int, values: memoryview, minor: int) -> SetAttrs:
    """SetAttrs from a fattr4 given to SETATTR, CREATE or OPEN; errors per RFC 7530 16.32."""
    if mask & ~supported(minor):
        raise V4Error(Status.ATTRNOTSUPP)
    if mask & ~WRITABLE:
        raise V4Error(Status.INVAL, "read-only attribute in a set")
    u = Unpacker(values)
    size = mode = uid = gid = atime = mtime = None
    try:
        if mask & (1 << Attr.SIZE):
            size = u.uint64()
        if mask & (1 << Attr.MODE):
            mode = u.uint32()
            if mode > 0o7777:
                raise V4Error(Status.INVAL, "mode beyond 07777")
        if mask & (1 << Attr.OWNER):
            uid = parse_owner(u.opaque(1024), group=False)
        if mask & (1 << Attr.OWNER_GROUP):
            gid = parse_owner(u.opaque(1024), group=True)
        if mask & (1 << Attr.TIME_ACCESS_SET):
            atime = _settime(u)
        if mask & (1 << Attr.TIME_MODIFY_SET):
            mtime = _settime(u)
        u.done()
    except XdrError:
        raise V4Error(Status.BADXDR, "bad attribute values") from None
    return SetAttrs(mode=mode, uid=uid, gid=gid, size=size, atime_ns=atime, mtime_ns=mtime)


def _settime(u: Unpacker) -> int:
    how = u.uint32()
    if how == 0:  # SET_TO_SERVER_TIME4
        return -1
    if how != 1:
        raise XdrError(f"bad time_how4 {how}")
    sec, nsec = u.int64(), u.uint32()
    if nsec >= 1_000_000_000 or sec < 0:
        raise V4Error(Status.INVAL, "bad time")
    return sec * 1_000_000_000 + nsec


def parse_owner(raw: memoryview, group: bool) -> int:
    if not raw:
        raise V4Error(Status.INVAL, "empty owner")
    try:
        text = str(raw, "utf-8")
    except UnicodeDecodeError:
        raise V4Error(Status.BADOWNER) from None
    if text.isdigit() and len(text) < 11 and int(text) < 1 << 32:
        return int(text)
    name = text.split("@", 1)[0]
    try:
        return _id_of(name, group)
    except KeyError:
        raise V4Error(Status.BADOWNER, f"unknown owner {text!r}") from None


def _id_of(name: str, group: bool) -> int:
    """The uid or gid of a user or group name in the local database (KeyError: unknown;
    Windows has no such database: names are unknown there, numeric strings still work)."""
    try:
        import grp
        import pwd
    except ImportError:
        raise KeyError(name) from None
    return grp.getgrnam(name).gr_gid if group else pwd.getpwnam(name).pw_uid
