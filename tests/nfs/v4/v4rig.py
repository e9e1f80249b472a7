"""Building NFSv4 COMPOUND calls by hand, for tests that need exact bytes (fuzzing, limits)."""

from __future__ import annotations

import struct
from pathlib import Path

from filesim.nfs.dispatch import Dispatcher
from filesim.nfs.export import Export, ExportConfig
from filesim.nfs.v4.const import Op
from filesim.oncrpc.const import AuthFlavor
from filesim.oncrpc.message import Credentials, encode_call
from filesim.oncrpc.programs import NFS_PROGRAM
from filesim.oncrpc.xdr import Packer, Unpacker
from tests.support.backend import store

ROOT = Credentials(AuthFlavor.AUTH_SYS, 0, 0, (), "test")


def dispatcher(root: Path, **options: object) -> Dispatcher:
    root.mkdir(parents=True, exist_ok=True)
    export = Export(ExportConfig(name="t", **options), store(root), b"s" * 32)  # type: ignore[arg-type]
    return Dispatcher(export, 2049)


def compound(ops: list[tuple[int, bytes]], minor: int = 0, tag: bytes = b"t") -> bytes:
    p = Packer()
    p.opaque(tag)
    p.uint32(minor)
    p.uint32(len(ops))
    for op, args in ops:
        p.uint32(op)
        p.raw(args)
    return bytes(p.buf)


def call(d: Dispatcher, args: bytes, xid: int = 7) -> tuple[int, list[tuple[int, int]], bytes]:
    """(compound status, [(op, status)...], raw reply) of a COMPOUND sent to `d`."""
    parts = d.dispatch(encode_call(xid, NFS_PROGRAM, 4, 1, args, ROOT), "127.0.0.1")
    assert parts is not None
    reply = b"".join(parts)
    u = Unpacker(reply)
    assert u.uint32() == xid
    assert u.uint32() == 1  # REPLY
    assert u.uint32() == 0  # MSG_ACCEPTED
    u.uint32(), u.opaque()  # verifier
    assert u.uint32() == 0  # SUCCESS
    status = u.uint32()
    u.opaque()  # tag
    n = u.uint32()
    results = []
    for _ in range(n):
        op, op_status = u.uint32(), u.uint32()
        results.append((op, op_status))
        if op_status or _skip(op, u) is None:
            break
    return status, results, reply


def _skip(op: int, u: Unpacker) -> object:
    """Step over the result body of the few operations tests chain; None: stop reading."""
    if op in (Op.PUTROOTFH, Op.PUTFH, Op.SAVEFH, Op.RESTOREFH, Op.LOOKUP):
        return True
    if op == Op.GETFH:
        return u.opaque()
    if op == Op.SEQUENCE:
        return u.fixed_opaque(16), [u.uint32() for _ in range(5)]
    return None


def name(value: str) -> bytes:
    p = Packer()
    p.string(value)
    return bytes(p.buf)


def bitmap(*words: int) -> bytes:
    return struct.pack(f">I{len(words)}I", len(words), *words)


def session(d: Dispatcher) -> bytes:
    """EXCHANGE_ID + CREATE_SESSION + RECLAIM_COMPLETE: a fresh 4.2 session id."""
    import os

    exchange = os.urandom(8) + name("rig-" + os.urandom(4).hex()) + bytes(12)
    _, _, reply = call(d, compound([(Op.EXCHANGE_ID, exchange)], minor=2))
    u = Unpacker(reply[-_tail(reply) :])
    clientid, seq = u.uint64(), u.uint32()
    chan = struct.pack(">7I", 0, 1 << 20, 1 << 20, 4096, 16, 4, 0)
    create = struct.pack(">QII", clientid, seq, 0) + chan + chan + struct.pack(">II", 0, 0)
    _, results, reply = call(d, compound([(Op.CREATE_SESSION, create)], minor=2))
    assert results == [(Op.CREATE_SESSION, 0)], results
    sessionid = reply[reply.index(struct.pack(">II", Op.CREATE_SESSION, 0)) + 8 :][:16]
    seq_args = struct.pack(">16sIIII", sessionid, 1, 1, 1, 0)
    # slot 1 for RECLAIM_COMPLETE, so callers can start at slot 0, sequence 1
    call(d, compound([(Op.SEQUENCE, seq_args), (Op.RECLAIM_COMPLETE, bytes(4))], minor=2))
    return sessionid


def _tail(reply: bytes) -> int:
    """Bytes from the start of the EXCHANGE_ID result body to the end of the reply."""
    return len(reply) - (reply.index(struct.pack(">II", Op.EXCHANGE_ID, 0)) + 8)
