"""Opens: OPEN (every claim the clients send), OPEN_CONFIRM, OPEN_DOWNGRADE, CLOSE."""

from __future__ import annotations

import stat
import struct

from filesim.nfs import policy
from filesim.nfs.access import R, W, X, permits
from filesim.nfs.v4 import attrs
from filesim.nfs.v4.clients import Client
from filesim.nfs.v4.const import (
    ACCESS_READ,
    ACCESS_WRITE,
    OPEN_DELEGATE_NONE,
    OPEN_DELEGATE_NONE_EXT,
    OPEN_RESULT_CONFIRM,
    OPEN_RESULT_LOCKTYPE_POSIX,
    V41_WANT_NO_DELEG,
    WND4_NOT_WANTED,
    WND4_RESOURCE,
    Attr,
    Claim,
    CreateMode,
    Op,
    OpenType,
    Status,
)
from filesim.nfs.v4.context import V40, Compound, Node, SeqReplay, operation, ruled, storage
from filesim.nfs.v4.stateids import OpenState, Owner, check_seqid
from filesim.nfs.v4.wire import (
    INVALID,
    Stateid,
    V4Error,
    bitmap,
    change_info,
    read_name,
    read_stateid,
    u32,
)
from filesim.nfs.vfs import SetAttrs, join
from filesim.oncrpc.xdr import Unpacker

_VERF = struct.Struct(">II")
_EXCL_ATTRS = (1 << Attr.TIME_ACCESS_SET) | (1 << Attr.TIME_MODIFY_SET)


def client_of(c: Compound, clientid: int) -> Client:
    """The confirmed client `clientid` names (4.0), or the session's (4.1); lease renewed."""
    svc = c.svc
    if c.minor:
        client = c.client
        assert client is not None
        return client
    if svc.clients.stale(clientid):
        raise V4Error(Status.STALE_CLIENTID)
    client = svc.clients.by_id.get(clientid)
    if client is None or not client.confirmed:
        expired = clientid in svc.clients.expired_ids
        raise V4Error(Status.EXPIRED if expired else Status.STALE_CLIENTID)
    svc.check_lease(client)
    return client


def _seqid_owner(c: Compound, owner: Owner, seqid: int, op: int) -> None:
    if not check_seqid(owner, seqid, op, c.minor):
        assert owner.last is not None
        raise SeqReplay(owner.last[1], owner.last[2])
    c.seq_owner = (owner, seqid)


@operation(Op.OPEN)
def open_(c: Compound, u: Unpacker) -> bytes:
    seqid, access, deny = u.uint32(), u.uint32(), u.uint32()
    clientid, owner_name = u.uint64(), bytes(u.opaque(1024))
    how = u.uint32()
    mode = verifier = None
    mask, values = 0, memoryview(b"")
    if how == OpenType.CREATE:
        mode = u.uint32()
        if mode in (CreateMode.UNCHECKED, CreateMode.GUARDED):
            mask, values = attrs.read_fattr4(u)
        elif mode == CreateMode.EXCLUSIVE:
            verifier = bytes(u.fixed_opaque(8))
        elif mode == CreateMode.EXCLUSIVE4_1 and c.minor:
            verifier = bytes(u.fixed_opaque(8))
            mask, values = attrs.read_fattr4(u)
        else:
            raise V4Error(Status.BADXDR if mode > 3 else Status.INVAL)
    elif how != OpenType.NOCREATE:
        raise V4Error(Status.BADXDR)
    claim = u.uint32()
    name = None
    if claim in (Claim.NULL, Claim.DELEGATE_PREV):
        name = read_name(u)
    elif claim == Claim.PREVIOUS:
        u.uint32()
    elif claim == Claim.DELEGATE_CUR:
        read_stateid(u)
        name = read_name(u)
    elif claim == Claim.DELEG_CUR_FH:
        read_stateid(u)
    elif claim not in (Claim.FH, Claim.DELEG_PREV_FH) or (claim >= Claim.FH and not c.minor):
        raise V4Error(Status.BADXDR if claim > Claim.DELEG_PREV_FH else Status.NOTSUPP)
    want = access & ~0xFF
    access &= 0xFF
    if access not in (1, 2, 3) or deny > 3 or (want and not c.minor):
        raise V4Error(Status.INVAL, "bad share access or deny")
    c.fh()
    client = client_of(c, clientid)
    owner = client.owner_of(owner_name, lock=False)
    if owner is None:
        owner = client.new_owner(owner_name, lock=False)
    if c.minor == 0 and not owner.confirmed and not owner.states:
        owner.seqid = None  # an unconfirmed owner starts afresh
    _seqid_owner(c, owner, seqid, Op.OPEN)
    if claim in (Claim.DELEGATE_CUR, Claim.DELEGATE_PREV, Claim.DELEG_CUR_FH, Claim.DELEG_PREV_FH):
        raise V4Error(Status.NOTSUPP if c.minor else Status.RECLAIM_BAD, "no delegations here")
    _grace(c, client, claim == Claim.PREVIOUS)
    created, attrset, cinfo, node = _target(c, claim, name, mode, verifier, mask, values)
    if not created:
        _permitted(c, node, access)
    state = _share(c, owner, node, access, deny)
    c.set_fh(node.handle)
    c.cur_sid = state.stateid()
    if claim == Claim.PREVIOUS:
        owner.confirmed = True  # a reclaim needs no OPEN_CONFIRM (RFC 7530 16.16.5)
    rflags = OPEN_RESULT_LOCKTYPE_POSIX
    if c.minor == 0 and not owner.confirmed:
        rflags |= OPEN_RESULT_CONFIRM
    if c.minor == 0 or not want:
        deleg = u32(OPEN_DELEGATE_NONE)
    elif want & 0xFF00 == V41_WANT_NO_DELEG:
        deleg = u32(OPEN_DELEGATE_NONE_EXT) + u32(WND4_NOT_WANTED)
    else:
        deleg = u32(OPEN_DELEGATE_NONE_EXT) + u32(WND4_RESOURCE) + u32(0)
    return state.stateid().encode() + cinfo + u32(rflags) + bitmap(attrset) + deleg


def _grace(c: Compound, client: Client, reclaim: bool) -> None:
    svc = c.svc
    in_grace = svc.recovery.in_grace()
    if reclaim:
        if not in_grace or client.reclaim_complete:
            raise V4Error(Status.NO_GRACE)
        if not svc.recovery.may_reclaim(client.owner):
            raise V4Error(Status.RECLAIM_BAD)
    elif in_grace or svc.locks.in_grace() or (c.minor and not client.reclaim_complete):
        # 4.1: a client locks nothing new before its RECLAIM_COMPLETE (RFC 8881 18.51.3)
        raise V4Error(Status.GRACE)


def _target(
    c: Compound, claim: int, name: str | None, mode: int | None, verifier: bytes | None,
    mask: int, values: memoryview,
) -> tuple[bool, int, bytes, Node]:  # fmt: skip
    """(created, attrset, change_info, node) of the file an OPEN names."""
    if claim in (Claim.PREVIOUS, Claim.FH):
        node = c.real(Status.ISDIR)
        _regular(node, c.minor)
        return False, 0, change_info(0, 0), node
    assert name is not None
    directory = c.node()
    if not directory.is_dir:
        raise V4Error(Status.SYMLINK if stat.S_ISLNK(directory.st.st_mode) else Status.NOTDIR)
    if directory.pseudo:
        raise V4Error(Status.ROFS if mode is not None else Status.NOENT)
    assert directory.path is not None
    dir_path = directory.path
    path = join(dir_path, name)
    set_attrs = attrs.decode_settable(mask, values, c.minor) if mask else SetAttrs()
    if mode is None:
        if not permits(directory.st, c.caller, X):
            raise V4Error(Status.ACCESS)
        node = c.svc.node_at(path)
        _regular(node, c.minor)
        return False, 0, change_info(0, 0), node
    if c.export.readonly:
        raise V4Error(Status.ROFS)
    if not permits(directory.st, c.caller, W | X):
        raise V4Error(Status.ACCESS)
    before = directory.st.st_ctime_ns
    try:
        existing: Node | None = c.svc.node_at(path)
    except V4Error as exc:
        if exc.status != Status.NOENT:
            raise
        existing = None
    if existing is not None:
        _regular(existing, c.minor)
        if mode == CreateMode.GUARDED:
            raise V4Error(Status.EXIST)
        if verifier is not None:
            hi, lo = _VERF.unpack(verifier)
            st = existing.st
            if (st.st_atime_ns // 10**9, st.st_mtime_ns // 10**9) != (hi, lo):
                raise V4Error(Status.EXIST)
            return False, _EXCL_ATTRS, change_info(before, before), existing
        if set_attrs.size == 0:  # O_TRUNC; other attributes of a re-create are ignored
            _permitted(c, existing, ACCESS_WRITE)
            storage(lambda: c.export.vfs.truncate(path, 0))
            return False, 1 << Attr.SIZE, change_info(before, before), c.svc.node_at(path)
        return False, 0, change_info(before, before), existing
    owner = ruled(lambda: policy.new_owner(directory.st, c.caller, set_attrs.uid, set_attrs.gid))
    asked = 0o644 if set_attrs.mode is None else set_attrs.mode
    create_mode = policy.new_mode(directory.st, c.caller, asked, owner[1], False)
    try:
        storage(lambda: c.export.vfs.create(path, create_mode, True, owner, SetAttrs()))
    except V4Error as exc:
        raise V4Error(Status.EXIST if exc.status == Status.EXIST else exc.status) from None
    attrset = mask
    if verifier is not None:
        hi, lo = _VERF.unpack(verifier)
        stamp = SetAttrs(atime_ns=hi * 10**9, mtime_ns=lo * 10**9)
        storage(lambda: c.export.vfs.setattr(path, stamp))
        attrset = mask | _EXCL_ATTRS
    rest = SetAttrs(
        mode=None if set_attrs.mode is None else create_mode,
        size=set_attrs.size,
        atime_ns=set_attrs.atime_ns,
        mtime_ns=set_attrs.mtime_ns,
    )  # fmt: skip  (the mode again: create() is subject to the server's umask)
    if not rest.empty and verifier is None:
        storage(lambda: c.export.vfs.setattr(path, rest))
    after = c.export.vfs.stat(dir_path).st_ctime_ns
    node = c.svc.node_at(path)
    c.svc.new_file(c.svc.file_key(node))
    return True, attrset, change_info(before, after), node


def _regular(node: Node, minor: int) -> None:
    if node.is_dir:
        raise V4Error(Status.ISDIR)
    if stat.S_ISLNK(node.st.st_mode) or (not minor and not stat.S_ISREG(node.st.st_mode)):
        raise V4Error(Status.SYMLINK)
    if not stat.S_ISREG(node.st.st_mode):
        raise V4Error(Status.WRONG_TYPE)


def _permitted(c: Compound, node: Node, access: int) -> None:
    st, caller = node.st, c.caller
    if access & ACCESS_READ and not permits(st, caller, R):
        raise V4Error(Status.ACCESS)
    if access & ACCESS_WRITE:
        if c.export.readonly:
            raise V4Error(Status.ROFS)
        if not permits(st, caller, W):
            raise V4Error(Status.ACCESS)


def _share(c: Compound, owner: Owner, node: Node, access: int, deny: int) -> OpenState:
    """The owner's open state of the file, created or upgraded, with the reservation set."""
    svc = c.svc
    key = svc.file_key(node)
    state = next(
        (
            s for other in owner.states
            if isinstance(s := svc.states.states[other], OpenState) and s.file == key
        ),
        None,
    )  # fmt: skip
    new_access = access | (state.access if state else 0)
    new_deny = deny | (state.deny if state else 0)
    # checked against every reservation, the owner's own too (RFC 7530 9.9, 16.16.5)
    if svc.locks.share_conflict(key, None, access, deny) and (
        not svc.reap() or svc.locks.share_conflict(key, None, access, deny)
    ):
        raise V4Error(Status.SHARE_DENIED)
    if state is None:
        state = OpenState(svc.states.new_other(), owner, key, node.handle)
        svc.states.add(state)
    else:
        state.seqid += 1
    state.access, state.deny = new_access, new_deny
    state.access_seen.add(access)
    state.deny_seen.add(deny)
    svc.locks.set_share(key, state.other, new_access, new_deny)
    return state


def open_state(c: Compound, sid: Stateid, seqid: int | None = None, op: int = 0) -> OpenState:
    """The open state `sid` names for the current file; with `seqid`, the 4.0 owner's seqid is
    checked first (a retransmission answers from the owner's cache, whatever its stateid)."""
    sid = c.stateid(sid)
    state = c.svc.states.lookup(sid, c.minor)
    if not isinstance(state, OpenState):
        raise V4Error(Status.BAD_STATEID, "not an open stateid")
    if seqid is not None:
        _seqid_owner(c, state.owner, seqid, op)
    c.svc.states.check_age(state, sid, c.minor)
    if state.handle != c.fh():  # by handle: the file may be gone (removed while open)
        if c.node().is_dir:
            raise V4Error(Status.ISDIR)
        raise V4Error(Status.BAD_STATEID, "stateid of another file")
    if c.minor == 0:
        c.svc.check_lease(state.owner.client)
    return state


@operation(Op.OPEN_CONFIRM, minors=V40)
def open_confirm(c: Compound, u: Unpacker) -> bytes:
    sid, seqid = read_stateid(u), u.uint32()
    node = c.node()
    if node.is_dir:
        raise V4Error(Status.ISDIR)
    state = open_state(c, sid, seqid, Op.OPEN_CONFIRM)
    owner = state.owner
    if owner.confirmed:
        raise V4Error(Status.BAD_STATEID, "owner already confirmed")
    owner.confirmed = True
    state.seqid += 1
    return state.stateid().encode()


@operation(Op.OPEN_DOWNGRADE)
def open_downgrade(c: Compound, u: Unpacker) -> bytes:
    sid, seqid = read_stateid(u), u.uint32()
    access, deny = u.uint32() & 0xFF, u.uint32()
    state = open_state(c, sid, seqid, Op.OPEN_DOWNGRADE)
    if (
        access & ~state.access
        or deny & ~state.deny
        or access not in state.access_seen
        or (deny not in state.deny_seen)
    ):
        raise V4Error(Status.INVAL, "not a downgrade")
    dropped_write = state.access & ACCESS_WRITE and not access & ACCESS_WRITE
    state.access, state.deny = access, deny
    state.access_seen = {a for a in state.access_seen if not a & ~access}
    state.deny_seen = {d for d in state.deny_seen if not d & ~deny}
    state.seqid += 1
    c.svc.locks.set_share(state.file, state.other, access, deny)
    if dropped_write:
        c.svc.closed_for_write(state)
    c.cur_sid = state.stateid()
    return state.stateid().encode()


@operation(Op.CLOSE)
def close(c: Compound, u: Unpacker) -> bytes:
    seqid, sid = u.uint32(), read_stateid(u)
    c.fh()
    try:
        state = open_state(c, sid, seqid, Op.CLOSE)
    except V4Error as exc:
        owner = c.svc.states.closed.get(sid.other)
        if c.minor or exc.status != Status.BAD_STATEID or owner is None:
            raise
        _seqid_owner(c, owner, seqid, Op.CLOSE)
        raise
    c.svc.release(state)
    state.seqid += 1
    result = INVALID if c.minor else state.stateid()
    c.cur_sid = None
    return result.encode()
