"""Byte-range locks: LOCK, LOCKT, LOCKU, RELEASE_LOCKOWNER; 4.1 FREE_STATEID, TEST_STATEID."""

from __future__ import annotations

import stat
import struct
from collections.abc import Hashable

from filesim.nfs.locks import TO_EOF, ByteLock
from filesim.nfs.v4.const import ACCESS_READ, ACCESS_WRITE, LockType, Op, Status
from filesim.nfs.v4.context import V40, V41, Compound, operation
from filesim.nfs.v4.ops_open import _grace, _seqid_owner, client_of, open_state
from filesim.nfs.v4.stateids import LockState, OpenState
from filesim.nfs.v4.wire import Stateid, V4Error, opaque, read_stateid, u32
from filesim.oncrpc.xdr import Unpacker

_ALL = (1 << 64) - 1
_RANGE = struct.Struct(">QQI")


def _range(offset: int, length: int) -> tuple[int, int]:
    if length == 0:
        raise V4Error(Status.INVAL, "zero-length lock")
    if length == _ALL:
        return offset, TO_EOF
    if offset + length > _ALL:
        raise V4Error(Status.INVAL, "lock range beyond 2^64")
    return offset, offset + length


def _locktype(u: Unpacker) -> int:
    locktype = u.uint32()
    if locktype not in (LockType.READ, LockType.WRITE, LockType.READW, LockType.WRITEW):
        raise V4Error(Status.BADXDR if locktype > 4 or not locktype else Status.INVAL)
    return locktype


def _exclusive(locktype: int) -> bool:
    return locktype in (LockType.WRITE, LockType.WRITEW)


def _denied(held: ByteLock) -> V4Error:
    """NFS4ERR_DENIED with the LOCK4denied of the conflicting lock."""
    length = _ALL if held.end >= TO_EOF else held.end - held.start
    kind = LockType.WRITE if held.exclusive else LockType.READ
    owner = held.owner
    if isinstance(owner, tuple) and len(owner) == 3 and owner[0] == "v4":
        clientid, name = int(owner[1]), bytes(owner[2])
    else:
        clientid, name = 0, repr(owner).encode()[:1024]
    body = _RANGE.pack(held.start, length, kind) + struct.pack(">Q", clientid) + opaque(name)
    return V4Error(Status.DENIED, "lock held by another owner", body)


def _take(c: Compound, state: LockState, exclusive: bool, start: int, end: int) -> None:
    locks = c.svc.locks
    held = locks.lock(state.file, state.owner.key, exclusive, start, end)
    if held is not None and c.svc.reap():
        held = locks.lock(state.file, state.owner.key, exclusive, start, end)
    if held is not None:
        raise _denied(held)


def _lock_state(c: Compound, sid: Stateid, seqid: int, op: int) -> LockState:
    """The lock state `sid` names, after the 4.0 seqid check (a replay answers from cache)."""
    sid = c.stateid(sid)
    state = c.svc.states.lookup(sid, c.minor)
    if not isinstance(state, LockState):
        raise V4Error(Status.BAD_STATEID, "not a lock stateid")
    _seqid_owner(c, state.owner, seqid, op)
    c.svc.states.check_age(state, sid, c.minor)
    if state.open.handle != c.fh():
        raise V4Error(Status.BAD_STATEID, "stateid of another file")
    if c.minor == 0:
        c.svc.check_lease(state.owner.client)
    return state


@operation(Op.LOCK)
def lock(c: Compound, u: Unpacker) -> bytes:
    locktype = _locktype(u)
    reclaim = u.bool()
    start, end = u.uint64(), u.uint64()
    new_owner = u.bool()
    svc = c.svc
    if new_owner:
        open_seqid, open_sid, lock_seqid = u.uint32(), read_stateid(u), u.uint32()
        clientid, name = u.uint64(), bytes(u.opaque(1024))
        start, end = _range(start, end)
        opened = open_state(c, open_sid, open_seqid, Op.LOCK)
        client = opened.owner.client
        if c.minor == 0 and clientid != client.clientid:
            client_of(c, clientid)
            raise V4Error(Status.INVAL, "lock owner of another client")
        owner = client.owner_of(name, lock=True) or client.new_owner(name, lock=True)
        state = opened.locks.get(name)
        if state is None:
            owner.seqid = lock_seqid
            state = LockState(svc.states.new_other(), owner, opened, opened.file, seqid=0)
            svc.states.add(state)
            opened.locks[name] = state
    else:
        lock_sid, lock_seqid = read_stateid(u), u.uint32()
        start, end = _range(start, end)
        state = _lock_state(c, lock_sid, lock_seqid, Op.LOCK)
    _grace(c, state.owner.client, reclaim)
    exclusive = _exclusive(locktype)
    needed = ACCESS_WRITE if exclusive else ACCESS_READ
    if not state.open.access & needed:
        raise V4Error(Status.OPENMODE)
    try:
        _take(c, state, exclusive, start, end)
    except V4Error:
        if state.seqid == 0:  # a lock state that never got a lock is not kept
            svc.states.remove(state)
            state.open.locks.pop(state.owner.name, None)
        raise
    state.seqid += 1
    c.cur_sid = state.stateid()
    return state.stateid().encode()


@operation(Op.LOCKT)
def lockt(c: Compound, u: Unpacker) -> bytes:
    locktype = _locktype(u)
    start, end = u.uint64(), u.uint64()
    clientid, name = u.uint64(), bytes(u.opaque(1024))
    start, end = _range(start, end)
    node = c.node()
    if node.is_dir:
        raise V4Error(Status.ISDIR)
    if node.pseudo or not stat.S_ISREG(node.st.st_mode):
        raise V4Error(Status.INVAL)
    client = client_of(c, clientid)
    if c.svc.locks.in_grace():  # NFSv4's grace or NLM's
        raise V4Error(Status.GRACE)
    owner: Hashable = ("v4", client.clientid, name)
    held = c.svc.locks.test(c.svc.file_key(node), owner, _exclusive(locktype), start, end)
    if held is not None and c.svc.reap():
        held = c.svc.locks.test(c.svc.file_key(node), owner, _exclusive(locktype), start, end)
    if held is not None:
        raise _denied(held)
    return b""


@operation(Op.LOCKU)
def locku(c: Compound, u: Unpacker) -> bytes:
    _locktype(u)
    seqid, sid = u.uint32(), read_stateid(u)
    start, end = _range(u.uint64(), u.uint64())
    svc = c.svc
    state = _lock_state(c, sid, seqid, Op.LOCKU)
    svc.locks.unlock(state.file, state.owner.key, start, end)
    state.seqid += 1
    c.cur_sid = state.stateid()
    return state.stateid().encode()


@operation(Op.RELEASE_LOCKOWNER, minors=V40)
def release_lockowner(c: Compound, u: Unpacker) -> bytes:
    clientid, name = u.uint64(), bytes(u.opaque(1024))
    client = client_of(c, clientid)
    owner = client.owner_of(name, lock=True)
    if owner is None:
        return b""
    if c.svc.locks.holds_locks(owner.key):
        raise V4Error(Status.LOCKS_HELD)
    for other in list(owner.states):
        state = c.svc.states.states.get(other)
        if state is not None:
            c.svc.release(state)
    del client.lock_owners[name]
    return b""


@operation(Op.FREE_STATEID, minors=V41)
def free_stateid(c: Compound, u: Unpacker) -> bytes:
    sid = c.stateid(read_stateid(u))
    state = c.svc.states.find(sid, c.minor)
    if state.owner.client is not c.client:
        raise V4Error(Status.BAD_STATEID)
    if isinstance(state, OpenState) or c.svc.locks.holds_locks(state.owner.key, state.file):
        raise V4Error(Status.LOCKS_HELD)
    c.svc.release(state)
    return b""


@operation(Op.TEST_STATEID, minors=V41)
def test_stateid(c: Compound, u: Unpacker) -> bytes:
    n = u.uint32()
    if n > 1024:
        raise V4Error(Status.RESOURCE)
    sids = [read_stateid(u) for _ in range(n)]
    out = bytearray(u32(n))
    for sid in sids:
        status = Status.OK
        if sid.special:
            status = Status.BAD_STATEID
        else:
            try:
                state = c.svc.states.find(sid, c.minor)
                if state.owner.client is not c.client:
                    status = Status.BAD_STATEID
            except V4Error as exc:
                status = exc.status
        out += u32(status)
    return bytes(out)
