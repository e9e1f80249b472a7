"""ONC RPC (RFC 5531) call and reply messages, with no I/O, both directions.

Server side: `parse_call` decodes a call header and its credentials; the `*_reply` functions and
`accepted_header` build replies. Client side: `encode_call` builds a call, `parse_reply` checks a
reply and hands back its results, or raises a `ReplyError` that says what was wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from filesim.oncrpc.const import (
    CALL,
    MAX_AUTH_BYTES,
    MAX_AUX_GIDS,
    MAX_MACHINE_NAME,
    REPLY,
    RPC_VERSION,
    AcceptStat,
    AuthFlavor,
    AuthStat,
    RejectStat,
    ReplyStat,
)
from filesim.oncrpc.record import RecordError
from filesim.oncrpc.xdr import Packer, Unpacker, XdrError

_U32 = struct.Struct(">I")
_ACCEPTED = struct.Struct(">IIIIII")
_MISMATCH = struct.Struct(">IIIIIIII")
_DENIED_MISMATCH = struct.Struct(">IIIIII")
_DENIED_AUTH = struct.Struct(">IIIII")
_CALL_HEADER = struct.Struct(">IIIIIIII")  # xid, type, rpcvers, prog, vers, proc, flavor, len
_REPLY_HEADER = struct.Struct(">III")  # xid, type, reply_stat
_VERIFIER = struct.Struct(">II")  # flavor, body length


@dataclass(frozen=True, slots=True)
class Credentials:
    flavor: int = AuthFlavor.AUTH_NONE
    uid: int = 65534
    gid: int = 65534
    gids: tuple[int, ...] = ()
    machine: str = ""

    @property
    def is_sys(self) -> bool:
        return self.flavor == AuthFlavor.AUTH_SYS


# -- calls --------------------------------------------------------------------------------------


@dataclass(slots=True)
class RpcCall:
    xid: int
    prog: int
    vers: int
    proc: int
    cred: Credentials
    args: Unpacker = field(repr=False)


class CallRejected(Exception):
    """A call that gets an error reply at the RPC level; `reply` is the encoded reply body."""

    def __init__(self, reply: bytes, reason: str) -> None:
        super().__init__(reason)
        self.reply = reply


class NotACall(Exception):
    """A well-formed message that is not a call (a stray reply): ignored."""


_CRED_CACHE: dict[bytes, Credentials] = {}
_NO_CREDENTIALS = Credentials()


def parse_call(record: memoryview | bytes) -> RpcCall:
    """Decode the RPC call header of `record`.

    Raises RecordError when not even the header can be read (close the connection),
    CallRejected with a ready reply for version and credential errors, NotACall for replies.
    """
    if len(record) < 8:
        raise RecordError("RPC message shorter than its header")
    if len(record) < _CALL_HEADER.size:
        return _parse_call_slowly(record)
    xid, msg_type, rpcvers, prog, vers, proc, flavor, cred_len = _CALL_HEADER.unpack_from(record)
    # The verifier's flavor and length sit right after the padded credential body: read them
    # in place (an Unpacker step per field cost more than the rest of a NULL call's parsing).
    verf_at = _CALL_HEADER.size + cred_len + (-cred_len & 3)
    if (
        msg_type != CALL or rpcvers != RPC_VERSION or cred_len > MAX_AUTH_BYTES
        or len(record) < verf_at + 8
    ):  # fmt: skip
        return _parse_call_slowly(record)
    verf_len = _VERIFIER.unpack_from(record, verf_at)[1]  # flavor: AUTH_NONE, not checked
    args_at = verf_at + 8 + verf_len + (-verf_len & 3)
    if verf_len > MAX_AUTH_BYTES or args_at > len(record):
        return _parse_call_slowly(record)
    cred_end = _CALL_HEADER.size + cred_len
    if flavor == AuthFlavor.AUTH_SYS:
        key = bytes(record[_CALL_HEADER.size : cred_end])
        cred = _CRED_CACHE.get(key)
        if cred is None:
            cred = _decode_credentials(xid, flavor, memoryview(key))
            if len(_CRED_CACHE) > 1024:
                _CRED_CACHE.clear()
            _CRED_CACHE[key] = cred
    else:
        cred = _decode_credentials(xid, flavor, memoryview(record)[_CALL_HEADER.size : cred_end])
    return RpcCall(xid, prog, vers, proc, cred, Unpacker(record, args_at))


def _parse_call_slowly(record: memoryview | bytes) -> RpcCall:
    """The general path: short or unusual headers, with the precise error for each."""
    u = Unpacker(record)
    try:
        xid = u.uint32()
        msg_type = u.uint32()
    except XdrError as exc:
        raise RecordError("RPC message shorter than its header") from exc
    if msg_type != CALL:
        if msg_type == REPLY:
            raise NotACall(f"xid {xid}: a reply where a call was expected")
        raise RecordError(f"xid {xid}: unknown message type {msg_type}")
    try:
        rpcvers = u.uint32()
        if rpcvers != RPC_VERSION:
            raise CallRejected(rpc_mismatch_reply(xid), f"RPC version {rpcvers}")
        prog, vers, proc = u.uint32(), u.uint32(), u.uint32()
        flavor = u.uint32()
        cred_body = u.opaque(MAX_AUTH_BYTES)
        u.uint32()
        u.opaque(MAX_AUTH_BYTES)
    except XdrError as exc:
        raise CallRejected(auth_error_reply(xid, AuthStat.AUTH_BADCRED), str(exc)) from exc
    cred = _decode_credentials(xid, flavor, cred_body)
    return RpcCall(xid, prog, vers, proc, cred, u)


def _decode_credentials(xid: int, flavor: int, body: memoryview) -> Credentials:
    if flavor == AuthFlavor.AUTH_NONE:
        return _NO_CREDENTIALS  # frozen: one for every such call
    if flavor != AuthFlavor.AUTH_SYS:
        raise CallRejected(
            auth_error_reply(xid, AuthStat.AUTH_BADCRED), f"unsupported auth flavor {flavor}"
        )
    u = Unpacker(body)
    try:
        u.uint32()  # stamp
        machine = u.string(MAX_MACHINE_NAME)
        uid, gid = u.uint32(), u.uint32()
        ngids = u.uint32()
        if ngids > MAX_AUX_GIDS:
            raise XdrError(f"{ngids} auxiliary gids")
        gids = tuple(u.uint32() for _ in range(ngids))
        u.done()
    except XdrError as exc:
        raise CallRejected(
            auth_error_reply(xid, AuthStat.AUTH_BADCRED), f"bad AUTH_SYS credentials: {exc}"
        ) from exc
    return Credentials(AuthFlavor.AUTH_SYS, uid, gid, gids, machine)


def encode_call(
    xid: int, prog: int, vers: int, proc: int, args: bytes = b"", cred: Credentials | None = None
) -> bytes:
    """An RPC call message (our client's, and the tests')."""
    p = Packer()
    p.two_uint32(xid, CALL)
    p.uint32(RPC_VERSION)
    p.uint32(prog)
    p.uint32(vers)
    p.uint32(proc)
    if cred is None or cred.flavor == AuthFlavor.AUTH_NONE:
        p.two_uint32(AuthFlavor.AUTH_NONE, 0)
    else:
        body = Packer()
        body.uint32(0)
        body.string(cred.machine)
        body.uint32(cred.uid)
        body.uint32(cred.gid)
        body.uint32(len(cred.gids))
        for g in cred.gids:
            body.uint32(g)
        p.uint32(AuthFlavor.AUTH_SYS)
        p.opaque(body.buf)
    p.two_uint32(AuthFlavor.AUTH_NONE, 0)
    p.raw(args)
    return p.getvalue()


# -- replies ------------------------------------------------------------------------------------


def accepted_header(xid: int, stat: int = AcceptStat.SUCCESS) -> bytes:
    """Reply header of an accepted call, with an AUTH_NONE verifier; results follow."""
    return _ACCEPTED.pack(xid, REPLY, ReplyStat.MSG_ACCEPTED, AuthFlavor.AUTH_NONE, 0, stat)


def prog_mismatch_reply(xid: int, low: int, high: int) -> bytes:
    return _MISMATCH.pack(
        xid, REPLY, ReplyStat.MSG_ACCEPTED, AuthFlavor.AUTH_NONE, 0, AcceptStat.PROG_MISMATCH,
        low, high,
    )  # fmt: skip


def rpc_mismatch_reply(xid: int) -> bytes:
    return _DENIED_MISMATCH.pack(
        xid, REPLY, ReplyStat.MSG_DENIED, RejectStat.RPC_MISMATCH, RPC_VERSION, RPC_VERSION
    )


def auth_error_reply(xid: int, stat: AuthStat) -> bytes:
    return _DENIED_AUTH.pack(xid, REPLY, ReplyStat.MSG_DENIED, RejectStat.AUTH_ERROR, stat)


class ReplyError(Exception):
    """A reply that carries no results; the message says why, in a few words."""


class MalformedReply(ReplyError):
    """Not a valid RPC reply (truncated, or a call where a reply was expected)."""


class CallDenied(ReplyError):
    """MSG_DENIED: an RPC version mismatch (`auth` None) or an authentication error."""

    def __init__(self, auth: AuthStat | int | None) -> None:
        if auth is None:
            reason = "RPC version mismatch"
        else:
            reason = f"authentication error {_name(AuthStat, auth)}"
        super().__init__(f"call denied: {reason}")
        self.reason = reason
        self.auth = auth


class CallNotAccepted(ReplyError):
    """MSG_ACCEPTED with a status other than SUCCESS; `versions` for PROG_MISMATCH."""

    def __init__(self, stat: int, versions: tuple[int, int] | None = None) -> None:
        self.name = _name(AcceptStat, stat)
        super().__init__(f"call not accepted ({self.name})")
        self.status = stat
        self.versions = versions


def _name(enum: type[AcceptStat] | type[AuthStat], value: int) -> str:
    return enum(value).name if value in enum._value2member_map_ else str(value)


def reply_xid(record: bytes | memoryview) -> int:
    """The xid of a reply, to match it with its call before `parse_reply`."""
    if len(record) < 4:
        raise MalformedReply(f"reply of {len(record)} bytes is shorter than an RPC header")
    xid: int = _U32.unpack_from(record)[0]
    return xid


def parse_reply(record: bytes | memoryview) -> Unpacker:
    """The results of a successful reply, as an Unpacker positioned at their start.

    Raises MalformedReply, CallDenied or CallNotAccepted otherwise.
    """
    if len(record) < _REPLY_HEADER.size:
        raise MalformedReply(f"reply of {len(record)} bytes is shorter than an RPC header")
    _, msg_type, reply_stat = _REPLY_HEADER.unpack_from(record)
    if msg_type != REPLY:
        raise MalformedReply(f"a message of type {msg_type} where a reply was expected")
    u = Unpacker(record, _REPLY_HEADER.size)
    try:
        if reply_stat == ReplyStat.MSG_DENIED:
            if u.uint32() == RejectStat.RPC_MISMATCH:
                raise CallDenied(None)
            raise CallDenied(u.uint32())
        if reply_stat != ReplyStat.MSG_ACCEPTED:
            raise MalformedReply(f"unknown reply_stat {reply_stat}")
        try:
            u.uint32()  # verifier flavor
            u.opaque(MAX_AUTH_BYTES)  # verifier body
        except XdrError:
            raise MalformedReply("reply truncated in the verifier") from None
        try:
            stat = u.uint32()
        except XdrError:
            raise MalformedReply("reply truncated before accept_stat") from None
        if stat == AcceptStat.PROG_MISMATCH:
            raise CallNotAccepted(stat, (u.uint32(), u.uint32()))
        if stat != AcceptStat.SUCCESS:
            raise CallNotAccepted(stat)
    except XdrError as exc:
        raise MalformedReply(f"malformed reply: {exc}") from None
    return u
