"""Attributes: GETATTR, SETATTR, ACCESS."""

from __future__ import annotations

import struct

from filesim.nfs import policy
from filesim.nfs.access import Caller, access_bits
from filesim.nfs.export import Export
from filesim.nfs.procedures.common import os_call, read_node, stat_or_none
from filesim.nfs.registry import NOTHING, WCC, Result, procedure
from filesim.nfs.types import decode_sattr3, encode_fattr3, encode_post_op_attr, encode_wcc_data
from filesim.nfs.vfs import NfsError
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
    allowed = policy.settable(before, caller, attrs)
    os_call(lambda: x.vfs.setattr(path, allowed))
    return [encode_wcc_data(before, stat_or_none(x, path), x.fsid)]


@procedure(NfsProc.ACCESS)
def access(x: Export, caller: Caller, u: Unpacker) -> Result:
    _, st = read_node(x, u)
    requested = u.uint32()
    granted = access_bits(st, caller, requested, x.config.readonly or x.vfs.readonly)
    return [encode_post_op_attr(st, x.fsid) + _U32.pack(granted)]
