"""I/O operations: READ, WRITE, COMMIT and (4.2) SEEK, and the stateid check they share."""

from __future__ import annotations

import errno
import stat
import struct

from filesim.nfs import policy
from filesim.nfs.access import R, W, permits
from filesim.nfs.filedata import FileData, Part, streamed
from filesim.nfs.locks import SHARE_READ, SHARE_WRITE
from filesim.nfs.v4.attrs import MAX_IO
from filesim.nfs.v4.const import (
    ACCESS_WRITE,
    DATA_CONTENT_DATA,
    DATA_CONTENT_HOLE,
    Op,
    Stable,
    Status,
)
from filesim.nfs.v4.context import V42, Compound, Node, operation, storage
from filesim.nfs.v4.stateids import LockState, OpenState
from filesim.nfs.v4.wire import Stateid, V4Error, read_stateid, status_of_v3
from filesim.nfs.vfs import SEEK_DATA, SEEK_HOLE, SetAttrs, status_of
from filesim.oncrpc.xdr import Unpacker, padding

_READ_HEAD = struct.Struct(">II")
_WRITE_RES = struct.Struct(">II8s")
_SEEK_RES = struct.Struct(">IQ")
_MAX_OFFSET = (1 << 64) - 1


def check_io_stateid(
    c: Compound, node: Node, sid: Stateid, write: bool
) -> OpenState | LockState | None:
    """The open or lock state `sid` names for I/O on `node` (None: a special stateid), after
    the checks of RFC 7530 9.1.4 and the share reservations of other opens."""
    svc = c.svc
    sid = c.stateid(sid)
    key = svc.file_key(node)
    if sid.special:
        if not (sid.anonymous or sid.bypass):
            raise V4Error(Status.BAD_STATEID, "malformed special stateid")
        if (write or not sid.bypass) and svc.locks.denied(
            key, SHARE_WRITE if write else SHARE_READ
        ):
            if svc.reap() and not svc.locks.denied(key, SHARE_WRITE if write else SHARE_READ):
                return None
            raise V4Error(Status.LOCKED, "denied by a share reservation")
        return None
    state = svc.states.find(sid, c.minor)
    client = state.owner.client
    if c.minor == 0:
        svc.check_lease(client)
    if state.file != key:
        raise V4Error(Status.BAD_STATEID, "stateid of another file")
    opened = state.open if isinstance(state, LockState) else state
    if write and not opened.access & ACCESS_WRITE:
        raise V4Error(Status.OPENMODE)
    return state


def _regular(node: Node) -> str:
    if node.is_dir:
        raise V4Error(Status.ISDIR)
    if not stat.S_ISREG(node.st.st_mode):
        raise V4Error(Status.INVAL)
    assert node.path is not None
    return node.path


@operation(Op.READ)
def read(c: Compound, u: Unpacker) -> list[Part]:
    sid = read_stateid(u)
    offset, count = u.uint64(), u.uint32()
    node = c.node()
    path = _regular(node)
    check_io_stateid(c, node, sid, write=False)
    if not permits(node.st, c.caller, R) and node.st.st_uid != c.caller.uid:
        raise V4Error(Status.ACCESS)
    size, count = node.st.st_size, min(count, MAX_IO)
    if length := streamed(count, offset, size):
        return _from_file(c, path, offset, length, size)
    data = b""
    if count and offset < size:
        out: list[bytes] = []
        storage(lambda: out.append(c.export.vfs.read(path, offset, count)))
        data = out[0]
    eof = offset + len(data) >= node.st.st_size
    head = _READ_HEAD.pack(eof, len(data))
    return [head, data, padding(len(data))] if data else [head]


def _from_file(c: Compound, path: str, offset: int, count: int, size: int) -> list[Part]:
    """A large READ: its data is sent from the file (as NFSv3's), as far as `size`."""
    opened: list[int] = []
    storage(lambda: opened.append(c.export.vfs.open_read(path)))
    data = FileData(opened[0], offset, count)
    return [_READ_HEAD.pack(offset + count >= size, count), data, padding(count)]


@operation(Op.WRITE, mutating=True)
def write(c: Compound, u: Unpacker) -> bytes:
    sid = read_stateid(u)
    offset, stable = u.uint64(), u.uint32()
    data = u.opaque(MAX_IO)
    if stable > Stable.FILE_SYNC:
        raise V4Error(Status.INVAL)
    node = c.node()
    path = _regular(node)
    if offset + len(data) > _MAX_OFFSET:
        raise V4Error(Status.FBIG)
    state = check_io_stateid(c, node, sid, write=True)
    if not permits(node.st, c.caller, W) and node.st.st_uid != c.caller.uid:
        raise V4Error(Status.ACCESS)
    sync = c.export.config.sync or stable != Stable.UNSTABLE
    if data:
        storage(lambda: c.export.vfs.write(path, offset, data, sync))
        killed = policy.mode_after_write(node.st, c.caller)
        if killed is not None:  # the kernel does this for a local writer; we write as ourselves
            storage(lambda: c.export.vfs.setattr(path, SetAttrs(mode=killed)))
    if state is not None:
        (state.open if isinstance(state, LockState) else state).wrote = True
    committed = Stable.FILE_SYNC if sync else Stable.UNSTABLE
    return _WRITE_RES.pack(len(data), committed, c.export.write_verifier)


@operation(Op.COMMIT, mutating=True)
def commit(c: Compound, u: Unpacker) -> bytes:
    offset, count = u.uint64(), u.uint32()
    node = c.node()
    if node.is_dir:
        raise V4Error(Status.ISDIR)
    if not stat.S_ISREG(node.st.st_mode):
        raise V4Error(Status.SYMLINK if stat.S_ISLNK(node.st.st_mode) else Status.INVAL)
    if count and offset + count > _MAX_OFFSET:
        raise V4Error(Status.INVAL)
    path = _regular(node)
    # A file still open for writing is not complete: its CLOSE tells the sync agent.
    complete = not c.svc.writers(c.svc.file_key(node))
    storage(lambda: c.export.vfs.commit(path, complete))
    return bytes(c.export.write_verifier)


@operation(Op.SEEK, minors=V42)
def seek(c: Compound, u: Unpacker) -> bytes:
    sid = read_stateid(u)
    offset, what = u.uint64(), u.uint32()
    if what not in (DATA_CONTENT_DATA, DATA_CONTENT_HOLE):
        raise V4Error(Status.UNION_NOTSUPP)
    node = c.node()
    path = _regular(node)
    check_io_stateid(c, node, sid, write=False)
    size = node.st.st_size
    if offset >= size:
        raise V4Error(Status.NXIO)
    whence = SEEK_DATA if what == DATA_CONTENT_DATA else SEEK_HOLE
    try:
        found = c.export.vfs.seek(path, offset, whence)
    except OSError as exc:
        if exc.errno != errno.ENXIO:
            raise V4Error(status_of_v3(status_of(exc)), str(exc)) from None
        return _SEEK_RES.pack(1, size)
    return _SEEK_RES.pack(1 if found >= size else 0, found)


def _allocate(c: Compound, u: Unpacker, punch: bool) -> bytes:
    sid = read_stateid(u)
    offset, length = u.uint64(), u.uint64()
    node = c.node()
    path = _regular(node)
    if not length or offset + length > _MAX_OFFSET:
        raise V4Error(Status.INVAL)
    state = check_io_stateid(c, node, sid, write=True)
    if not permits(node.st, c.caller, W) and node.st.st_uid != c.caller.uid:
        raise V4Error(Status.ACCESS)
    storage(lambda: c.export.vfs.allocate(path, offset, length, punch))
    if state is not None:
        (state.open if isinstance(state, LockState) else state).wrote = True
    return b""


@operation(Op.ALLOCATE, minors=V42, mutating=True)
def allocate(c: Compound, u: Unpacker) -> bytes:
    return _allocate(c, u, punch=False)


@operation(Op.DEALLOCATE, minors=V42, mutating=True)
def deallocate(c: Compound, u: Unpacker) -> bytes:
    return _allocate(c, u, punch=True)
