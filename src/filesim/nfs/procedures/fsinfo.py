"""The server and its file system: NULL, FSSTAT, FSINFO, PATHCONF."""

from __future__ import annotations

from filesim.nfs.access import Caller
from filesim.nfs.const import FSF_CANSETTIME, FSF_HOMOGENEOUS, FSF_LINK, FSF_SYMLINK, NAME_MAX
from filesim.nfs.export import Export
from filesim.nfs.procedures.common import MAX_IO, read_node
from filesim.nfs.registry import NOTHING, Result, procedure
from filesim.nfs.types import FsInfo, encode_fsstat3, encode_pathconf3, encode_post_op_attr
from filesim.nfs.vfs import NfsError, status_of
from filesim.oncrpc.programs import NfsProc
from filesim.oncrpc.xdr import Unpacker

_FSINFO = FsInfo(
    rtmax=MAX_IO, rtpref=MAX_IO, rtmult=4096, wtmax=MAX_IO, wtpref=MAX_IO, wtmult=4096,
    dtpref=64 << 10, maxfilesize=(1 << 63) - 1, time_delta_ns=1,
    properties=FSF_LINK | FSF_SYMLINK | FSF_HOMOGENEOUS | FSF_CANSETTIME,
).encode()  # fmt: skip
_PATHCONF = encode_pathconf3(
    linkmax=32000, name_max=NAME_MAX, no_trunc=True, chown_restricted=True,
    case_insensitive=False, case_preserving=True,
)  # fmt: skip


@procedure(NfsProc.NULL, failure=NOTHING)
def null(x: Export, caller: Caller, u: Unpacker) -> Result:
    return []


@procedure(NfsProc.FSSTAT)
def fsstat(x: Export, caller: Caller, u: Unpacker) -> Result:
    _, st = read_node(x, u)
    try:
        fs = x.vfs.statvfs()
    except OSError as exc:
        raise NfsError(status_of(exc)) from None
    return [encode_post_op_attr(st, x.fsid) + encode_fsstat3(fs)]


@procedure(NfsProc.FSINFO)
def fsinfo(x: Export, caller: Caller, u: Unpacker) -> Result:
    _, st = read_node(x, u)
    return [encode_post_op_attr(st, x.fsid) + _FSINFO]


@procedure(NfsProc.PATHCONF)
def pathconf(x: Export, caller: Caller, u: Unpacker) -> Result:
    _, st = read_node(x, u)
    return [encode_post_op_attr(st, x.fsid) + _PATHCONF]
