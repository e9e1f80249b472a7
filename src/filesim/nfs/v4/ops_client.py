"""Client ids: 4.0 SETCLIENTID, SETCLIENTID_CONFIRM, RENEW; 4.1 EXCHANGE_ID, DESTROY_CLIENTID.

Owner ids of 4.0 and 4.1 clients live in separate name spaces ("4.0:" and "4.1:" prefixes),
as RFC 8881 2.4 allows.
"""

from __future__ import annotations

import os
import struct

from filesim.nfs.v4.clients import Client, Principal
from filesim.nfs.v4.const import (
    EXCHGID4_FLAG_CONFIRMED_R,
    EXCHGID4_FLAG_MASK_A,
    EXCHGID4_FLAG_UPD_CONFIRMED_REC_A,
    EXCHGID4_FLAG_USE_NON_PNFS,
    SP4_MACH_CRED,
    SP4_NONE,
    Op,
    Status,
)
from filesim.nfs.v4.context import V40, V41, Compound, operation
from filesim.nfs.v4.wire import V4Error, bitmap, opaque, read_bitmap, read_utf8, string, u32
from filesim.oncrpc.xdr import Unpacker

_U64 = struct.Struct(">Q")


def principal(c: Compound) -> Principal:
    return (c.cred.flavor, c.cred.uid)


# -- 4.0 -------------------------------------------------------------------------------------


@operation(Op.SETCLIENTID, minors=V40)
def setclientid(c: Compound, u: Unpacker) -> bytes:
    verifier = bytes(u.fixed_opaque(8))
    owner = b"4.0:" + bytes(u.opaque(1024))
    u.uint32()  # cb_program
    netid, addr = read_utf8(u, 64), read_utf8(u, 256)
    u.uint32()  # callback_ident
    clients = c.svc.clients
    me = principal(c)
    conf = clients.confirmed.get(owner)
    if conf is not None and conf.principal != me:
        if conf.has_state() and not clients.lapsed(conf):
            raise V4Error(
                Status.CLID_INUSE, "client id in use by another principal",
                string(conf.callback[0]) + string(conf.callback[1]),
            )  # fmt: skip
        c.svc.expire(conf)
        conf = None
    old = clients.unconfirmed.pop(owner, None)
    if old is not None:
        clients.drop(old)
    if conf is not None and conf.verifier == verifier:
        client = Client(conf.clientid, owner, verifier, me, 0, clients.expiry())
    else:
        client = clients.new(owner, verifier, me, 0)
    client.confirm = os.urandom(8)
    client.callback = (netid, addr)
    clients.unconfirmed[owner] = client
    if client.clientid not in clients.by_id:
        clients.by_id[client.clientid] = client
    return _U64.pack(client.clientid) + client.confirm


@operation(Op.SETCLIENTID_CONFIRM, minors=V40)
def setclientid_confirm(c: Compound, u: Unpacker) -> bytes:
    clientid, confirm = u.uint64(), bytes(u.fixed_opaque(8))
    clients = c.svc.clients
    if clients.stale(clientid):
        raise V4Error(Status.STALE_CLIENTID)
    unconf = next((x for x in clients.unconfirmed.values() if x.clientid == clientid), None)
    conf = clients.by_id.get(clientid)
    if unconf is None:
        if conf is not None and conf.confirmed and conf.confirm == confirm:
            return b""  # a retransmission
        raise V4Error(Status.STALE_CLIENTID)
    if unconf.principal != principal(c):
        raise V4Error(Status.CLID_INUSE, body=string("tcp") + string("0.0.0.0.0.0"))
    if unconf.confirm != confirm:
        raise V4Error(Status.STALE_CLIENTID, "wrong confirm verifier")
    del clients.unconfirmed[unconf.owner]
    previous = clients.confirmed.get(unconf.owner)
    if previous is not None and previous.clientid == unconf.clientid:
        previous.callback, previous.confirm = unconf.callback, unconf.confirm
        clients.renew(previous)
        return b""
    if previous is not None:
        c.svc.expire(previous)
    unconf.confirmed = True
    unconf.may_reclaim = c.svc.recovery.may_reclaim(unconf.owner)
    clients.confirmed[unconf.owner] = unconf
    clients.by_id[unconf.clientid] = unconf
    c.svc.recovery.confirmed(unconf.owner)
    return b""


@operation(Op.RENEW, minors=V40)
def renew(c: Compound, u: Unpacker) -> bytes:
    clientid = u.uint64()
    clients = c.svc.clients
    if clients.stale(clientid):
        raise V4Error(Status.STALE_CLIENTID)
    client = clients.by_id.get(clientid)
    if client is None or not client.confirmed:
        expired = clientid in clients.expired_ids
        raise V4Error(Status.EXPIRED if expired else Status.STALE_CLIENTID)
    c.svc.check_lease(client)
    return b""


# -- 4.1 -------------------------------------------------------------------------------------


@operation(Op.EXCHANGE_ID, minors=V41, sessionless=True)
def exchange_id(c: Compound, u: Unpacker) -> bytes:
    verifier = bytes(u.fixed_opaque(8))
    owner = b"4.1:" + bytes(u.opaque(1024))
    flags = u.uint32()
    how = u.uint32()
    protect = b""
    if how == SP4_MACH_CRED:
        enforce, allow = read_bitmap(u), read_bitmap(u)
        protect = bitmap(enforce) + bitmap(allow)
    elif how != SP4_NONE:
        raise V4Error(Status.ENCR_ALG_UNSUPP if how == 2 else Status.BADXDR)
    impl = u.uint32()  # client_impl_id<1>: domain, name, date
    if impl > 1:
        raise V4Error(Status.BADXDR)
    if impl:
        u.opaque(1024), u.opaque(1024), u.int64(), u.uint32()
    if flags & ~EXCHGID4_FLAG_MASK_A:
        raise V4Error(Status.INVAL, "unknown EXCHANGE_ID flags")
    client = _exchange(c, owner, verifier, flags)
    result_flags = EXCHGID4_FLAG_USE_NON_PNFS
    if client.confirmed:
        result_flags |= EXCHGID4_FLAG_CONFIRMED_R
    svc = c.svc
    return (
        _U64.pack(client.clientid) + u32(client.cs_seq) + u32(result_flags) + u32(how) + protect
        + _U64.pack(0) + opaque(svc.server_major) + opaque(svc.scope) + u32(0)
    )  # fmt: skip


def _exchange(c: Compound, owner: bytes, verifier: bytes, flags: int) -> Client:
    clients = c.svc.clients
    me = principal(c)
    conf = clients.confirmed.get(owner)
    if flags & EXCHGID4_FLAG_UPD_CONFIRMED_REC_A:
        if conf is None:
            raise V4Error(Status.NOENT)
        if conf.verifier != verifier:
            raise V4Error(Status.NOT_SAME)
        if conf.principal != me:
            raise V4Error(Status.PERM)
        return conf
    if conf is not None:
        if conf.principal != me:
            if conf.has_state() and not clients.lapsed(conf):
                raise V4Error(Status.CLID_INUSE)
            c.svc.expire(conf)
        elif conf.verifier == verifier:
            return conf
    old = clients.unconfirmed.pop(owner, None)
    if old is not None:
        clients.drop(old)
    client = clients.new(owner, verifier, me, c.minor)
    clients.unconfirmed[owner] = client
    return client


@operation(Op.DESTROY_CLIENTID, minors=V41, sessionless=True)
def destroy_clientid(c: Compound, u: Unpacker) -> bytes:
    clientid = u.uint64()
    clients = c.svc.clients
    client = clients.by_id.get(clientid)
    if client is None:
        raise V4Error(Status.STALE_CLIENTID)
    if client.sessions or client.has_state():
        raise V4Error(Status.CLIENTID_BUSY)
    c.svc.expire(client)
    return b""
