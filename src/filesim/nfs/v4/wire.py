"""NFSv4 wire structures shared by several operations: bitmaps, stateids, names, errors.

Encoding and decoding of each structure live together here; the operations compose them.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from filesim.nfs.v4.const import NFS4_OTHER_SIZE, Status
from filesim.oncrpc.programs import NfsStat
from filesim.oncrpc.xdr import Unpacker, XdrError, padding

_U32 = struct.Struct(">I")
_STATEID = struct.Struct(">I12s")
MAX_NAME = 255
MAX_BITMAP_WORDS = 64


class V4Error(Exception):
    """An operation failed with `status`; `body` is what follows the status in its result."""

    def __init__(self, status: Status, message: str = "", body: bytes = b"") -> None:
        super().__init__(message or status.name)
        self.status = status
        self.body = body


def status_of_v3(status: NfsStat) -> Status:
    """The NFSv4 status for a v3 one (storage errors, injected faults)."""
    try:
        return Status(int(status))
    except ValueError:
        pass
    if status == NfsStat.NODEV:
        return Status.NXIO
    if status == NfsStat.NOT_SYNC:
        return Status.NOT_SAME
    return Status.SERVERFAULT


class Stateid(NamedTuple):
    seqid: int
    other: bytes

    def encode(self) -> bytes:
        return _STATEID.pack(self.seqid, self.other)

    @property
    def anonymous(self) -> bool:
        return self.seqid == 0 and self.other == ANON_OTHER

    @property
    def bypass(self) -> bool:
        return self.seqid == 0xFFFFFFFF and self.other == BYPASS_OTHER

    @property
    def current(self) -> bool:
        return self.seqid == 1 and self.other == ANON_OTHER

    @property
    def special(self) -> bool:
        return self.other in (ANON_OTHER, BYPASS_OTHER)


ANON_OTHER = bytes(NFS4_OTHER_SIZE)
BYPASS_OTHER = b"\xff" * NFS4_OTHER_SIZE
ANONYMOUS = Stateid(0, ANON_OTHER)
INVALID = Stateid(0xFFFFFFFF, ANON_OTHER)


def read_stateid(u: Unpacker) -> Stateid:
    seqid = u.uint32()
    return Stateid(seqid, bytes(u.fixed_opaque(NFS4_OTHER_SIZE)))


def read_bitmap(u: Unpacker) -> int:
    """A bitmap4 as one integer (bit n is attribute n)."""
    n = u.uint32()
    if n > MAX_BITMAP_WORDS:
        raise XdrError(f"bitmap of {n} words")
    value = 0
    for i in range(n):
        value |= u.uint32() << (32 * i)
    return value


def bitmap(value: int) -> bytes:
    words = []
    while value:
        words.append(value & 0xFFFFFFFF)
        value >>= 32
    return _U32.pack(len(words)) + b"".join(_U32.pack(w) for w in words)


def read_name(u: Unpacker) -> str:
    """A component4: UTF-8, not empty, no '/' or NUL, not '.' or '..'."""
    raw = u.opaque(MAX_NAME * 4 + 4)
    if not raw:
        raise V4Error(Status.INVAL, "empty name")
    if len(raw) > MAX_NAME:
        raise V4Error(Status.NAMETOOLONG)
    try:
        name = str(raw, "utf-8")
    except UnicodeDecodeError:
        raise V4Error(Status.INVAL, "name is not UTF-8") from None
    if name in (".", "..") or "/" in name or "\0" in name:
        raise V4Error(Status.BADNAME, f"bad name {name!r}")
    return name


def read_utf8(u: Unpacker, limit: int = 4096) -> str:
    raw = u.opaque(limit)
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError:
        raise V4Error(Status.INVAL, "string is not UTF-8") from None


def change_info(before: int, after: int, atomic: bool = True) -> bytes:
    return struct.pack(">IQQ", 1 if atomic else 0, before, after)


def opaque(data: bytes) -> bytes:
    """A variable-length opaque, without a Packer (READDIR encodes one per entry)."""
    n = len(data)
    return _U32.pack(n) + data + padding(n)


def string(value: str) -> bytes:
    return opaque(value.encode("utf-8", "surrogateescape"))


def u32(value: int) -> bytes:
    return _U32.pack(value)
