"""Attributes: GETATTR, SETATTR, ACCESS."""

from __future__ import annotations

import struct

from filesim.nfs.access import Caller, W, access_bits
from filesim.nfs.attrs import Attrs
from filesim.nfs.export import Export
from filesim.nfs.procedures.common import os_call, read_node, require, stat_or_none
from filesim.nfs.registry import NOTHING, WCC, Result, procedure
from filesim.nfs.types import decode_sattr3, encode_fattr3, encode_post_op_attr, encode_wcc_data
from filesim.nfs.vfs import NfsError, SetAttrs
from filesim.oncrpc.programs import NfsProc, NfsStat
from filesim.oncrpc.xdr import Unpacker

_U32 = struct.Struct(">I")


@procedure(NfsProc.GETATTR, failure=NOTHING)
def getattr_(x: Export, caller: Caller, u: Unpacker) -> Result:
    _, st = read_node(x, u)
    return [encode_fattr3(st, x.fsid)]


@procedure(NfsProc.SETATTR, mutating=True, failure=WCC)
def setattr_(x: Export, caller: Caller, u: Unpacker) -> Result:
    path, before = read_node(x, u)
    attrs = decode_sattr3(u)
    if u.bool():  # guard: the client's idea of ctime must still hold
        sec, nsec = u.uint32(), u.uint32()
        if (sec, nsec) != divmod(before.st_ctime_ns, 1_000_000_000):
            raise NfsError(NfsStat.NOT_SYNC)
    _check_setattr(before, caller, attrs)
    os_call(lambda: x.vfs.setattr(path, attrs))
    return [encode_wcc_data(before, stat_or_none(x, path), x.fsid)]


def _check_setattr(st: Attrs, caller: Caller, attrs: SetAttrs) -> None:
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
        require(st, caller, W, owner_override=True)


@procedure(NfsProc.ACCESS)
def access(x: Export, caller: Caller, u: Unpacker) -> Result:
    _, st = read_node(x, u)
    requested = u.uint32()
    granted = access_bits(st, caller, requested, x.config.readonly or x.vfs.readonly)
    return [encode_post_op_attr(st, x.fsid) + _U32.pack(granted)]
