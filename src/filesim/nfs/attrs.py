"""NFSv3 attribute structures: fattr3, wcc data, sattr3, and ACCESS from mode bits."""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass

from filesim.nfs.const import (
    ACCESS_DELETE,
    ACCESS_EXECUTE,
    ACCESS_EXTEND,
    ACCESS_LOOKUP,
    ACCESS_MODIFY,
    ACCESS_READ,
    Ftype,
    TimeHow,
)
from filesim.nfs.vfs import SetAttrs
from filesim.oncrpc.xdr import Packer, Unpacker, XdrError

_FATTR = struct.Struct(">IIIIIQQIIQQIIIIII")
_WCC_ATTR = struct.Struct(">QIIII")
_TRUE = b"\0\0\0\1"
_FALSE = b"\0\0\0\0"
_MAX_U32 = 0xFFFFFFFF


def ftype_of(mode: int) -> Ftype:
    fmt = stat.S_IFMT(mode)
    return _FTYPES.get(fmt, Ftype.REG)


_FTYPES = {
    stat.S_IFREG: Ftype.REG,
    stat.S_IFDIR: Ftype.DIR,
    stat.S_IFBLK: Ftype.BLK,
    stat.S_IFCHR: Ftype.CHR,
    stat.S_IFLNK: Ftype.LNK,
    stat.S_IFSOCK: Ftype.SOCK,
    stat.S_IFIFO: Ftype.FIFO,
}


def _time(ns: int) -> tuple[int, int]:
    sec, nsec = divmod(ns, 1_000_000_000)
    return sec & _MAX_U32, nsec


def fattr3(st: os.stat_result, fsid: int) -> bytes:
    mode = st.st_mode
    rdev = st.st_rdev
    a_sec, a_nsec = _time(st.st_atime_ns)
    m_sec, m_nsec = _time(st.st_mtime_ns)
    c_sec, c_nsec = _time(st.st_ctime_ns)
    return _FATTR.pack(
        _FTYPES.get(stat.S_IFMT(mode), Ftype.REG),
        stat.S_IMODE(mode),
        min(st.st_nlink, _MAX_U32),
        st.st_uid & _MAX_U32,
        st.st_gid & _MAX_U32,
        st.st_size,
        st.st_blocks * 512,
        os.major(rdev),
        os.minor(rdev),
        fsid,
        st.st_ino,
        a_sec, a_nsec, m_sec, m_nsec, c_sec, c_nsec,
    )  # fmt: skip


def post_op_attr(st: os.stat_result | None, fsid: int) -> bytes:
    if st is None:
        return _FALSE
    return _TRUE + fattr3(st, fsid)


def pre_op_attr(st: os.stat_result | None) -> bytes:
    if st is None:
        return _FALSE
    m_sec, m_nsec = _time(st.st_mtime_ns)
    c_sec, c_nsec = _time(st.st_ctime_ns)
    return _TRUE + _WCC_ATTR.pack(st.st_size, m_sec, m_nsec, c_sec, c_nsec)


def wcc_data(before: os.stat_result | None, after: os.stat_result | None, fsid: int) -> bytes:
    return pre_op_attr(before) + post_op_attr(after, fsid)


def post_op_fh(handle: bytes | None) -> bytes:
    if handle is None:
        return _FALSE
    p = Packer()
    p.bool(True)
    p.opaque(handle)
    return bytes(p.buf)


def read_sattr3(u: Unpacker) -> SetAttrs:
    mode = u.uint32() if u.bool() else None
    uid = u.uint32() if u.bool() else None
    gid = u.uint32() if u.bool() else None
    size = u.uint64() if u.bool() else None
    atime = _read_set_time(u)
    mtime = _read_set_time(u)
    return SetAttrs(mode=mode, uid=uid, gid=gid, size=size, atime_ns=atime, mtime_ns=mtime)


def _read_set_time(u: Unpacker) -> int | None:
    how = u.uint32()
    if how == TimeHow.DONT_CHANGE:
        return None
    if how == TimeHow.SET_TO_SERVER_TIME:
        return -1
    if how == TimeHow.SET_TO_CLIENT_TIME:
        sec, nsec = u.uint32(), u.uint32()
        return sec * 1_000_000_000 + nsec
    raise XdrError(f"bad time_how {how}")


@dataclass(frozen=True, slots=True)
class Caller:
    """The identity a call acts as, after squashing."""

    uid: int
    gid: int
    gids: tuple[int, ...] = ()

    @property
    def is_root(self) -> bool:
        return self.uid == 0


R, W, X = 4, 2, 1


def permits(st: os.stat_result, caller: Caller, want: int) -> bool:
    """Whether mode bits give `caller` the rwx bits `want` on the node `st`."""
    mode = st.st_mode
    if caller.is_root:
        # root may do anything but execute a file that nobody may execute
        return not (want & X) or stat.S_ISDIR(mode) or bool(mode & 0o111)
    if st.st_uid == caller.uid:
        bits = (mode >> 6) & 7
    elif st.st_gid == caller.gid or st.st_gid in caller.gids:
        bits = (mode >> 3) & 7
    else:
        bits = mode & 7
    return bits & want == want


def access_bits(st: os.stat_result, caller: Caller, requested: int, readonly: bool) -> int:
    """The ACCESS3 bits of `requested` that `caller` holds on `st`."""
    granted = 0
    is_dir = stat.S_ISDIR(st.st_mode)
    if permits(st, caller, R):
        granted |= ACCESS_READ
    if permits(st, caller, W) and not readonly:
        granted |= ACCESS_MODIFY | ACCESS_EXTEND
        if is_dir:
            granted |= ACCESS_DELETE
    if permits(st, caller, X):
        granted |= ACCESS_LOOKUP if is_dir else ACCESS_EXECUTE
    return granted & requested
