"""ONC RPC (RFC 5531) over a byte stream, with no I/O: record marking, calls and replies.

`RecordReader` owns a receive buffer that a socket reads into (`get_buffer` / `advance`) and
hands back complete records as memoryviews into that buffer, so a large WRITE is never copied.
`parse_call` decodes a call header and credentials; the `*_reply` functions build replies.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from filesim.nfs.const import (
    CALL,
    REPLY,
    RPC_VERSION,
    AcceptStat,
    AuthFlavor,
    AuthStat,
    RejectStat,
    ReplyStat,
)
from filesim.nfs.xdr import Unpacker, XdrError

_U32 = struct.Struct(">I")
_ACCEPTED = struct.Struct(">IIIIII")
_MISMATCH = struct.Struct(">IIIIIIII")
_DENIED_MISMATCH = struct.Struct(">IIIIII")
_DENIED_AUTH = struct.Struct(">IIIII")

LAST_FRAGMENT = 0x80000000
MAX_AUTH_BYTES = 400
MAX_MACHINE_NAME = 255
MAX_AUX_GIDS = 16


class RecordError(Exception):
    """The byte stream cannot be trusted any further; the connection must be closed."""


class RecordReader:
    """Reassembles RPC records from a TCP stream (RFC 5531 section 11).

    Records are yielded as memoryviews into the reader's own buffer; each is valid only until
    the next `get_buffer` call, so a consumer that keeps one longer must copy it.
    """

    def __init__(
        self, max_record: int = 4 << 20, min_free: int = 256 << 10, buffer_size: int = 0
    ) -> None:
        self.max_record = max_record
        self._min_free = min_free
        # A buffer several records deep is compacted (its partial record moved to the front)
        # only every few records, so bulk WRITE data is rarely copied.
        self._buf = bytearray(max(buffer_size, max_record + min_free + 8))
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self._partial: bytearray | None = None

    def get_buffer(self) -> memoryview:
        """The free tail of the buffer for the next read; compacts the buffer when needed."""
        if len(self._buf) - self._end < self._min_free:
            pending = self._end - self._start
            self._buf[0:pending] = self._view[self._start : self._end]
            self._start, self._end = 0, pending
        return self._view[self._end :]

    def advance(self, nbytes: int) -> None:
        """Record that `nbytes` were read into the buffer from `get_buffer`."""
        self._end += nbytes

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Push `data` and return the records it completes, as bytes (for tests and clients)."""
        out: list[bytes] = []
        view = memoryview(data)
        while view:
            buf = self.get_buffer()
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            self.advance(n)
            view = view[n:]
            out.extend(bytes(r) for r in self.records())
        return out

    def records(self) -> Iterator[memoryview]:
        """Yield every complete record in the buffer."""
        while True:
            available = self._end - self._start
            if available < 4:
                if available == 0:
                    self._start = self._end = 0
                return
            header = _U32.unpack_from(self._buf, self._start)[0]
            length = header & 0x7FFFFFFF
            already = len(self._partial) if self._partial is not None else 0
            if length + already > self.max_record:
                raise RecordError(
                    f"record of {length + already} bytes exceeds the limit of {self.max_record}"
                )
            if available < 4 + length:
                return
            begin = self._start + 4
            self._start = begin + length
            fragment = self._view[begin : begin + length]
            if header & LAST_FRAGMENT:
                if self._partial is None:
                    yield fragment
                else:
                    self._partial += fragment
                    whole, self._partial = self._partial, None
                    yield memoryview(whole)
            else:
                if self._partial is None:
                    self._partial = bytearray()
                self._partial += fragment


def record_mark(length: int) -> bytes:
    """The 4-byte record mark of a single-fragment record of `length` bytes."""
    return _U32.pack(LAST_FRAGMENT | length)


def frame(payload: bytes | bytearray | memoryview, fragment_size: int | None = None) -> bytes:
    """Encode `payload` as one record, split into fragments of at most `fragment_size`."""
    if fragment_size is None or len(payload) <= fragment_size:
        return record_mark(len(payload)) + bytes(payload)
    parts = []
    view = memoryview(payload)
    while view:
        chunk, view = view[:fragment_size], view[fragment_size:]
        flag = LAST_FRAGMENT if not view else 0
        parts.append(_U32.pack(flag | len(chunk)))
        parts.append(bytes(chunk))
    return b"".join(parts)


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


_CALL_HEADER = struct.Struct(">IIIIIIII")  # xid, type, rpcvers, prog, vers, proc, flavor, len
_CRED_CACHE: dict[bytes, Credentials] = {}


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
    if msg_type != CALL or rpcvers != RPC_VERSION or cred_len > MAX_AUTH_BYTES:
        return _parse_call_slowly(record)
    u = Unpacker(record, _CALL_HEADER.size)
    try:
        cred_body = u.fixed_opaque(cred_len)
        u.uint32()  # verifier flavor: AUTH_NONE expected, not checked
        u.opaque(MAX_AUTH_BYTES)
    except XdrError as exc:
        raise CallRejected(auth_error_reply(xid, AuthStat.AUTH_BADCRED), str(exc)) from exc
    key = bytes(cred_body)
    cred = _CRED_CACHE.get(key) if flavor == AuthFlavor.AUTH_SYS else None
    if cred is None:
        cred = _decode_credentials(xid, flavor, cred_body)
        if flavor == AuthFlavor.AUTH_SYS:
            if len(_CRED_CACHE) > 1024:
                _CRED_CACHE.clear()
            _CRED_CACHE[key] = cred
    return RpcCall(xid, prog, vers, proc, cred, u)


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
        return Credentials()
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


def encode_call(
    xid: int, prog: int, vers: int, proc: int, args: bytes = b"", cred: Credentials | None = None
) -> bytes:
    """An RPC call message (used by our own client and by tests)."""
    from filesim.nfs.xdr import Packer

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
