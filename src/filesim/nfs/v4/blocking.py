"""Whether an NFSv4 COMPOUND may block on the disk (COMMIT, a stable WRITE), from its bytes.

The server runs such a COMPOUND in a thread, as it does an NFSv3 COMMIT. Only the operations
clients put before a COMMIT or WRITE (SEQUENCE, PUTFH, PUTROOTFH, LOOKUP, SAVEFH, RESTOREFH)
are stepped over; at any other operation the answer is no: such a COMPOUND is rare, and
answering it on the event loop is what happened before (correct, only slower for others).
"""

from __future__ import annotations

import struct

from filesim.nfs.v4.const import Op, Stable

_U32 = struct.Struct(">I")
_SKIP_FIXED = {Op.SEQUENCE: 32, Op.PUTROOTFH: 0, Op.PUTPUBFH: 0, Op.SAVEFH: 0, Op.RESTOREFH: 0}
_SKIP_OPAQUE = frozenset({Op.PUTFH, Op.LOOKUP})
_MAX_STEPS = 8


def may_block(args: memoryview | bytes, sync_export: bool) -> bool:
    """`args`: the COMPOUND4args (after the RPC header). True for a COMMIT, or a WRITE that is
    stable (or on a `sync` export), among its first operations."""
    try:
        pos = _opaque_end(args, 0)  # tag
        pos += 4  # minorversion
        (nops,) = _U32.unpack_from(args, pos)
        pos += 4
        for _ in range(min(nops, _MAX_STEPS)):
            (op,) = _U32.unpack_from(args, pos)
            pos += 4
            if op == Op.COMMIT:
                return True
            if op == Op.WRITE:
                (stable,) = _U32.unpack_from(args, pos + 16 + 8)  # after stateid and offset
                return sync_export or stable != Stable.UNSTABLE
            fixed = _SKIP_FIXED.get(op)
            if fixed is not None:
                pos += fixed
            elif op in _SKIP_OPAQUE:
                pos = _opaque_end(args, pos)
            else:
                return False
    except struct.error:
        return False  # truncated: the COMPOUND answers BADXDR, quickly
    return False


def _opaque_end(data: memoryview | bytes, pos: int) -> int:
    length: int = _U32.unpack_from(data, pos)[0]
    return pos + 4 + length + (-length % 4)
