"""4.1 sessions: CREATE_SESSION, SEQUENCE, DESTROY_SESSION, BIND_CONN_TO_SESSION,
RECLAIM_COMPLETE, BACKCHANNEL_CTL."""

from __future__ import annotations

import struct

from filesim.nfs.v4.clients import ChannelAttrs
from filesim.nfs.v4.const import (
    CDFC4_BACK,
    CDFC4_FORE,
    CDFS4_BACK,
    CDFS4_BOTH,
    CDFS4_FORE,
    CREATE_SESSION4_FLAG_CONN_RDMA,
    CREATE_SESSION4_FLAG_PERSIST,
    NFS4_SESSIONID_SIZE,
    Op,
    Status,
)
from filesim.nfs.v4.context import V41, Compound, Replay, operation
from filesim.nfs.v4.ops_client import principal
from filesim.nfs.v4.wire import V4Error, u32
from filesim.oncrpc.xdr import Unpacker

MAX_SLOTS = 64
MAX_OPS = 64
MAX_REQUEST = (1 << 20) + (64 << 10)
MAX_CACHED = 64 << 10
MIN_REQUEST = 256
_SEQ_RES = struct.Struct(">16sIIIII")


def _read_channel(u: Unpacker) -> ChannelAttrs:
    pad, req, resp, cached, ops, reqs = (u.uint32() for _ in range(6))
    n = u.uint32()
    if n > 1:
        raise V4Error(Status.BADXDR)
    ird = tuple(u.uint32() for _ in range(n))
    return ChannelAttrs(pad, req, resp, cached, ops, reqs, rdma_ird=ird)


def _channel(a: ChannelAttrs) -> bytes:
    return (
        u32(a.headerpadsize) + u32(a.maxrequestsize) + u32(a.maxresponsesize)
        + u32(a.maxresponsesize_cached) + u32(a.maxoperations) + u32(a.maxrequests)
        + u32(len(a.rdma_ird)) + b"".join(u32(x) for x in a.rdma_ird)
    )  # fmt: skip


def _skip_sec_parms(u: Unpacker) -> None:
    for _ in range(u.uint32()):
        flavor = u.uint32()
        if flavor == 1:  # AUTH_SYS
            u.uint32(), u.opaque(255), u.uint32(), u.uint32()
            for _ in range(u.uint32()):
                u.uint32()
        elif flavor == 6:  # RPCSEC_GSS
            u.uint32(), u.opaque(1024), u.opaque(1024)
        elif flavor != 0:
            raise V4Error(Status.INVAL, f"unknown callback flavor {flavor}")


@operation(Op.CREATE_SESSION, minors=V41, sessionless=True)
def create_session(c: Compound, u: Unpacker) -> bytes:
    clientid, sequence, flags = u.uint64(), u.uint32(), u.uint32()
    fore, back = _read_channel(u), _read_channel(u)
    cb_program = u.uint32()
    _skip_sec_parms(u)
    clients = c.svc.clients
    client = clients.by_id.get(clientid)
    if client is None or client.expired:
        raise V4Error(Status.STALE_CLIENTID)
    if not client.confirmed and clients.lapsed(client):
        clients.drop(client)  # an unconfirmed record is kept for one lease only
        raise V4Error(Status.STALE_CLIENTID)
    if sequence == (client.cs_seq - 1) & 0xFFFFFFFF and client.cs_reply is not None:
        return client.cs_reply
    if sequence != client.cs_seq:
        raise V4Error(Status.SEQ_MISORDERED)
    if client.principal != principal(c):
        raise V4Error(Status.CLID_INUSE)
    if flags & ~0x7:
        raise V4Error(Status.INVAL, "unknown CREATE_SESSION flags")
    for chan in (fore, back):
        if chan.maxrequestsize < MIN_REQUEST or chan.maxresponsesize < MIN_REQUEST:
            raise V4Error(Status.TOOSMALL)
    if fore.maxrequests == 0 or back.maxrequests == 0:
        raise V4Error(Status.INVAL)
    fore = ChannelAttrs(
        0, min(fore.maxrequestsize, MAX_REQUEST), min(fore.maxresponsesize, MAX_REQUEST),
        min(fore.maxresponsesize_cached, MAX_CACHED), min(fore.maxoperations, MAX_OPS),
        min(fore.maxrequests, MAX_SLOTS),
    )  # fmt: skip
    back = ChannelAttrs(
        0, min(back.maxrequestsize, 4096), min(back.maxresponsesize, 4096),
        0, min(back.maxoperations, 2), 1,
    )  # fmt: skip
    # The back channel is accepted (some clients insist on one) but never called: filesim
    # hands out no delegations or layouts, so it has nothing to recall.
    flags &= ~(CREATE_SESSION4_FLAG_PERSIST | CREATE_SESSION4_FLAG_CONN_RDMA)
    if not client.confirmed:
        previous = clients.confirmed.get(client.owner)
        if previous is not None and previous is not client:
            c.svc.expire(previous)
        clients.unconfirmed.pop(client.owner, None)
        client.confirmed = True
        client.may_reclaim = c.svc.recovery.may_reclaim(client.owner)
        clients.confirmed[client.owner] = client
        c.svc.recovery.confirmed(client.owner)
    session = clients.new_session(client, fore, back, flags, cb_program)
    clients.renew(client)
    result = session.sessionid + u32(sequence) + u32(flags) + _channel(fore) + _channel(back)
    client.cs_seq = (client.cs_seq + 1) & 0xFFFFFFFF
    client.cs_reply = result
    return result


@operation(Op.SEQUENCE, minors=V41)
def sequence(c: Compound, u: Unpacker) -> bytes:
    sessionid = bytes(u.fixed_opaque(NFS4_SESSIONID_SIZE))
    seqid, slotid, highest = u.uint32(), u.uint32(), u.uint32()
    cachethis = u.bool()
    clients = c.svc.clients
    session = clients.sessions.get(sessionid)
    if session is None:
        raise V4Error(Status.BADSESSION)
    client = session.client
    if client.expired:
        raise V4Error(Status.BADSESSION)
    if slotid >= len(session.slots) or highest >= len(session.slots):
        raise V4Error(Status.BADSLOT)
    slot = session.slots[slotid]
    retry = seqid == slot.seqid and c.request_crc == slot.crc
    if retry:
        if slot.reply is not None:
            raise Replay(slot.reply)
        raise V4Error(Status.RETRY_UNCACHED_REP)
    # Another request under the last sequence id is not a retry (SEQ_FALSE_RETRY would be the
    # strict answer); nfs-rs sends one after abandoning read-ahead past EOF, so it is served.
    if seqid != slot.seqid and seqid != (slot.seqid + 1) & 0xFFFFFFFF:
        raise V4Error(Status.SEQ_MISORDERED)
    if c.nops > session.fore.maxoperations:
        raise V4Error(Status.TOO_MANY_OPS)
    if c.request_size > session.fore.maxrequestsize:
        raise V4Error(Status.REQ_TOO_BIG)
    slot.seqid = seqid
    slot.crc = c.request_crc
    slot.reply = None
    slot.in_progress = True
    c.session, c.slot, c.cachethis = session, slot, cachethis
    clients.renew(client)
    top = len(session.slots) - 1
    return _SEQ_RES.pack(sessionid, seqid, slotid, highest, top, 0)


@operation(Op.DESTROY_SESSION, minors=V41, sessionless=True)
def destroy_session(c: Compound, u: Unpacker) -> bytes:
    sessionid = bytes(u.fixed_opaque(NFS4_SESSIONID_SIZE))
    session = c.svc.clients.sessions.get(sessionid)
    if session is None:
        raise V4Error(Status.BADSESSION)
    c.svc.clients.drop_session(session)
    return b""


@operation(Op.BIND_CONN_TO_SESSION, minors=V41, sessionless=True)
def bind_conn_to_session(c: Compound, u: Unpacker) -> bytes:
    sessionid = bytes(u.fixed_opaque(NFS4_SESSIONID_SIZE))
    direction = u.uint32()
    u.bool()
    if direction not in (1, 2, 3, 7):
        raise V4Error(Status.INVAL)
    if sessionid not in c.svc.clients.sessions:
        raise V4Error(Status.BADSESSION)
    result = {CDFC4_FORE: CDFS4_FORE, CDFC4_BACK: CDFS4_BACK}.get(direction, CDFS4_BOTH)
    return sessionid + u32(result) + u32(0)


@operation(Op.RECLAIM_COMPLETE, minors=V41)
def reclaim_complete(c: Compound, u: Unpacker) -> bytes:
    one_fs = u.bool()
    client = c.client
    assert client is not None
    if one_fs:
        c.fh()
        return b""
    if client.reclaim_complete:
        raise V4Error(Status.COMPLETE_ALREADY)
    client.reclaim_complete = True
    c.svc.recovery.reclaimed(client.owner)
    return b""


@operation(Op.BACKCHANNEL_CTL, minors=V41)
def backchannel_ctl(c: Compound, u: Unpacker) -> bytes:
    u.uint32()
    _skip_sec_parms(u)
    return b""
