"""NFSv4 COMPOUND (procedure 1 of program 100003 version 4): the loop over the operations.

Reads the tag, minor version and operations one at a time, runs each through the checks every
operation shares (allowed client, read-only export, session rules, injected faults), stops at
the first failure and encodes COMPOUND4res. Garbage in an operation's arguments is that
operation's NFS4ERR_BADXDR; nothing a client sends stops the server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Sequence

from filesim.logs import RateLimited
from filesim.nfs.filedata import Part, close_all, materialized
from filesim.nfs.handles import NotFoundYet
from filesim.nfs.v4 import (  # noqa: F401 - each registers its operations
    ops_attr,
    ops_client,
    ops_fh,
    ops_file,
    ops_io,
    ops_lock,
    ops_none,
    ops_open,
    ops_session,
)
from filesim.nfs.v4.const import MAX_MINOR, Op, Status
from filesim.nfs.v4.context import OPS, Compound, OpResult, Replay, SeqReplay
from filesim.nfs.v4.service import V4Service
from filesim.nfs.v4.stateids import SEQID_KEEPING
from filesim.nfs.v4.wire import V4Error, status_of_v3, u32
from filesim.nfs.vfs import FRAME, NfsError, status_of
from filesim.oncrpc.message import RpcCall
from filesim.oncrpc.programs import NfsProc
from filesim.oncrpc.xdr import Packer, Unpacker, XdrError

log = logging.getLogger(__name__)
_limited = RateLimited(log)  # a client repeating a failing call must not fill the log

MAX_TAG = 1024
_SMALL_REPLY = 4096
MAX_OPS_40 = 256
Observer = Callable[[str, str, int, float, int], None]

# The v3 procedure a v4 operation stands for, so error faults given by procedure apply.
_V3_EQUIVALENT: dict[int, NfsProc] = {
    Op.ACCESS: NfsProc.ACCESS, Op.COMMIT: NfsProc.COMMIT, Op.CREATE: NfsProc.MKDIR,
    Op.GETATTR: NfsProc.GETATTR, Op.LINK: NfsProc.LINK, Op.LOOKUP: NfsProc.LOOKUP,
    Op.OPEN: NfsProc.CREATE, Op.READ: NfsProc.READ, Op.READDIR: NfsProc.READDIR,
    Op.READLINK: NfsProc.READLINK, Op.REMOVE: NfsProc.REMOVE, Op.RENAME: NfsProc.RENAME,
    Op.SETATTR: NfsProc.SETATTR, Op.WRITE: NfsProc.WRITE,
}  # fmt: skip
_SEQID_OPS = frozenset({Op.OPEN, Op.OPEN_CONFIRM, Op.OPEN_DOWNGRADE, Op.CLOSE, Op.LOCK, Op.LOCKU})
_STATEFUL = _SEQID_OPS | {Op.SETCLIENTID, Op.SETCLIENTID_CONFIRM, Op.RELEASE_LOCKOWNER}
_OP_NAMES = {int(op): op.name for op in Op}
_CHANGE_NOTHING = frozenset({
    Op.SEQUENCE, Op.PUTFH, Op.PUTROOTFH, Op.PUTPUBFH, Op.GETFH, Op.SAVEFH, Op.RESTOREFH,
    Op.GETATTR, Op.ACCESS, Op.LOOKUP, Op.LOOKUPP, Op.VERIFY, Op.NVERIFY, Op.SECINFO,
    Op.SECINFO_NO_NAME,
})  # fmt: skip
"""Operations after which a handle resolved in the COMPOUND still holds (`Compound.node`)."""


def compound(
    svc: V4Service,
    call: RpcCall,
    client_addr: str,
    observer: Observer | None = None,
    retry_key: Hashable | None = None,
    request_crc: int = 0,
) -> Sequence[Part]:
    """The COMPOUND4res body (after the RPC header) for `call`. A 4.0 COMPOUND that changed
    something is answered from the duplicate request cache when `retry_key` comes again.
    A large READ's data is left in its file (`FileData`) unless the reply is kept."""
    if retry_key is not None and (cached := svc.replies.get(retry_key)) is not None:
        return cached
    reply = _compound(svc, call, client_addr, observer, request_crc)
    if retry_key is not None and svc.last_changed:
        reply = materialized(reply)
        svc.remember_reply(retry_key, reply)
    return reply


def _compound(
    svc: V4Service, call: RpcCall, client_addr: str, observer: Observer | None,
    request_crc: int,
) -> Sequence[Part]:  # fmt: skip
    svc.last_changed = False
    u = call.args
    request_size = u.remaining()
    try:
        raw_tag = u.opaque()
        minor = u.uint32()
        nops = u.uint32()
    except XdrError:
        return _reply(Status.BADXDR, b"", [])
    tag = bytes(raw_tag)
    if len(tag) > MAX_TAG:
        return _reply(Status.REQ_TOO_BIG if minor else Status.RESOURCE, b"", [])
    if minor > MAX_MINOR:
        return _reply(Status.MINOR_VERS_MISMATCH, tag, [])
    try:
        tag.decode("utf-8")
    except UnicodeDecodeError:
        return _reply(Status.INVAL, tag, [])
    if minor == 0 and nops > MAX_OPS_40:
        return _reply(Status.RESOURCE, tag, [])
    export = svc.export
    c = Compound(svc, call.cred, export.caller(call.cred), client_addr, minor)
    c.nops = nops
    c.request_size = request_size
    c.request_crc = request_crc
    results: list[Part] = []
    count = 0
    size = 12 + len(tag)
    status = Status.OK
    allowed = export.allows(client_addr)
    try:
        with export.vfs.call_scope(FRAME):
            for index in range(nops):
                started = time.perf_counter()
                try:
                    opnum = u.uint32()
                except XdrError:
                    status = Status.BADXDR
                    results.append(u32(Op.ILLEGAL) + u32(status))
                    count += 1
                    break
                status, body = _one(c, u, opnum, index, allowed)
                if opnum not in _CHANGE_NOTHING:
                    c.forget_nodes()
                head = u32(Op.ILLEGAL if status == Status.OP_ILLEGAL else opnum) + u32(status)
                count += 1
                op_size = len(body) if isinstance(body, bytes) else sum(map(len, body))
                size += 8 + op_size
                if c.session is not None and (too_big := _too_big(c, size)):
                    status, body, op_size = too_big, b"", 0
                    head = head[:4] + u32(status)
                if isinstance(body, list):
                    results.append(head)
                    results.extend(body)
                else:
                    results.append(head + body)
                if observer is not None:
                    name = _OP_NAMES.get(opnum, "ILLEGAL")
                    observer("nfs4", name, status, time.perf_counter() - started, op_size)
                if status != Status.OK:
                    break
    except Replay as replay:
        close_all(results)
        return replay.reply
    except BaseException:
        close_all(results)
        raise
    reply = _reply(status, tag, results, count)
    if c.slot is None:
        return reply
    c.slot.in_progress = False
    # small replies are kept too: a client may retry without asking
    c.slot.reply = materialized(reply) if c.cachethis or size <= _SMALL_REPLY else None
    return c.slot.reply or reply


def _too_big(c: Compound, size: int) -> Status | None:
    """REP_TOO_BIG(_TO_CACHE) when the reply so far exceeds what the session allows."""
    assert c.session is not None
    fore = c.session.fore
    if size > fore.maxresponsesize:
        return Status.REP_TOO_BIG
    if c.cachethis and size > fore.maxresponsesize_cached:
        return Status.REP_TOO_BIG_TO_CACHE
    return None


def _one(
    c: Compound, u: Unpacker, opnum: int, index: int, allowed: bool
) -> tuple[Status, OpResult]:
    spec = OPS.get(opnum)
    if spec is None or (c.minor not in spec.minors and opnum > Op.RELEASE_LOCKOWNER):
        return Status.OP_ILLEGAL, b""
    if c.minor not in spec.minors:
        return Status.NOTSUPP, b""
    if c.minor:
        if opnum == Op.SEQUENCE and index:
            return Status.SEQUENCE_POS, b""
        if index == 0 and opnum != Op.SEQUENCE:
            if not spec.sessionless:
                return Status.OP_NOT_IN_SESSION, b""
            if c.nops > 1 and opnum != Op.DESTROY_SESSION:
                return Status.NOT_ONLY_OP, b""
    if not allowed:
        return Status.ACCESS, b""
    if spec.mutating and c.export.readonly:
        return Status.ROFS, b""
    c.seq_owner = None
    if not c.minor and (spec.mutating or opnum in _STATEFUL):
        c.svc.last_changed = True
    body: OpResult = b""
    try:
        v3 = _V3_EQUIVALENT.get(opnum)
        if v3 is None:
            body = spec.fn(c, u)
        else:  # error faults given by v3 procedure apply to this operation
            with c.export.vfs.call_scope(v3):
                body = spec.fn(c, u)
        status = Status.OK
    except V4Error as exc:
        status, body = exc.status, exc.body
    except SeqReplay as replay:
        return Status(replay.status), replay.body
    except XdrError:
        status = Status.BADXDR
    except NfsError as exc:
        status = status_of_v3(exc.status)
    except OSError as exc:
        status = status_of_v3(status_of(exc))
    except NotFoundYet as exc:  # a handle needs a search too long for the event loop
        status = Status.DELAY if c.export.index.search_later(exc.ino) else Status.STALE
    except Replay:
        raise
    except Exception:
        op, export = _OP_NAMES.get(opnum), c.export.config.name
        _limited.error(f"{op} {export}", "NFSv4 %s failed on %s", op, export, exc_info=True)
        status = Status.SERVERFAULT
    if c.seq_owner is not None and opnum in _SEQID_OPS and status not in SEQID_KEEPING:
        owner, seqid = c.seq_owner
        owner.seqid = seqid
        joined = body if isinstance(body, bytes) else b"".join(materialized(body))
        owner.last = (opnum, status, joined)
    return status, body


def _reply(status: Status, tag: bytes, results: list[Part], count: int = 0) -> list[Part]:
    p = Packer()
    p.uint32(status)
    p.opaque(tag)
    p.uint32(count)
    return [bytes(p.buf), *results]
