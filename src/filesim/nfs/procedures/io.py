"""File data: READ, WRITE, COMMIT."""

from __future__ import annotations

from filesim.nfs import policy
from filesim.nfs.access import Caller, R, W
from filesim.nfs.attrs import Attrs
from filesim.nfs.const import StableHow
from filesim.nfs.export import Export
from filesim.nfs.filedata import FileData, streamed
from filesim.nfs.procedures.common import (
    MAX_IO,
    os_call,
    read_node,
    require,
    require_file,
    stat_or_none,
)
from filesim.nfs.registry import WCC, Result, procedure
from filesim.nfs.types import (
    encode_post_op_attr,
    encode_read3_head,
    encode_wcc_data,
    encode_write3resok,
)
from filesim.nfs.vfs import NfsError, SetAttrs, status_of
from filesim.oncrpc.programs import NfsProc, NfsStat
from filesim.oncrpc.xdr import Unpacker, padding


@procedure(NfsProc.READ)
def read(x: Export, caller: Caller, u: Unpacker) -> Result:
    path, st = read_node(x, u)
    offset, count = u.uint64(), u.uint32()
    require_file(st)
    require(st, caller, R, owner_override=True)
    count = min(count, MAX_IO)
    if length := streamed(count, offset, st.st_size):
        return _from_file(x, path, st, offset, length)
    try:
        data = x.vfs.read(path, offset, count)
    except OSError as exc:
        raise NfsError(status_of(exc)) from None
    eof = offset + len(data) >= st.st_size
    header = encode_post_op_attr(st, x.fsid) + encode_read3_head(len(data), eof)
    return [header, data, padding(len(data))] if data else [header]


def _from_file(x: Export, path: str, st: Attrs, offset: int, count: int) -> Result:
    """A large READ: its data is sent from the file, as far as the size just taken."""
    try:
        fd = x.vfs.open_read(path)
    except OSError as exc:
        raise NfsError(status_of(exc)) from None
    eof = offset + count >= st.st_size
    header = encode_post_op_attr(st, x.fsid) + encode_read3_head(count, eof)
    return [header, FileData(fd, offset, count), padding(count)]


def _sync_export(x: Export) -> bool:
    return x.config.sync


@procedure(NfsProc.WRITE, mutating=True, blocking=_sync_export, failure=WCC)
def write(x: Export, caller: Caller, u: Unpacker) -> Result:
    path, before = read_node(x, u)
    offset, count, stable = u.uint64(), u.uint32(), u.uint32()
    data = u.opaque(MAX_IO)
    if count > len(data) or stable > StableHow.FILE_SYNC:
        raise NfsError(NfsStat.INVAL)
    require_file(before)
    require(before, caller, W, owner_override=True)
    sync = x.config.sync or stable != StableHow.UNSTABLE
    os_call(lambda: x.vfs.write(path, offset, data[:count], sync))
    killed = policy.mode_after_write(before, caller)
    if killed is not None:  # the kernel does this for a local writer; we write as ourselves
        os_call(lambda: x.vfs.setattr(path, SetAttrs(mode=killed)))
    committed = StableHow.FILE_SYNC if sync else StableHow.UNSTABLE
    wcc = encode_wcc_data(before, stat_or_none(x, path), x.fsid)
    return [wcc + encode_write3resok(count, committed, x.write_verifier)]


@procedure(NfsProc.COMMIT, blocking=True, failure=WCC)
def commit(x: Export, caller: Caller, u: Unpacker) -> Result:
    path, before = read_node(x, u)
    u.uint64(), u.uint32()  # offset and count: we flush the whole file
    require_file(before)
    os_call(lambda: x.vfs.commit(path, True))
    return [encode_wcc_data(before, stat_or_none(x, path), x.fsid) + x.write_verifier]
