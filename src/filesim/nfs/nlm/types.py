"""NLM v4 and NSM v1 wire structures (X/Open XNFS "Protocols for Interworking", nlm_prot.x,
sm_inter.x), each encoded and decoded side by side.

The server decodes arguments and encodes results; the callbacks (`filesim.nfs.callback`) and
the tests encode arguments and decode results of the same structures.
"""

from __future__ import annotations

from dataclasses import dataclass

from filesim.nfs.locks import TO_EOF
from filesim.oncrpc.programs import NlmStat
from filesim.oncrpc.xdr import Packer, Unpacker

LM_MAXSTRLEN = 1024
MAXNETOBJ = 1024
SM_MAXSTRLEN = 1024
ALL_ONES = (1 << 64) - 1


# -- nlm4_lock and its argument structures -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class NlmLock:
    """nlm4_lock: who (caller_name, svid, oh) locks what (fh, offset, length; length 0: to the
    end of the file)."""

    caller: str
    fh: bytes
    oh: bytes
    svid: int
    offset: int
    length: int

    @classmethod
    def decode(cls, u: Unpacker) -> NlmLock:
        caller = u.string(LM_MAXSTRLEN)
        fh, oh = bytes(u.opaque(MAXNETOBJ)), bytes(u.opaque(MAXNETOBJ))
        return cls(caller, fh, oh, u.int32(), u.uint64(), u.uint64())

    def encode(self, p: Packer) -> None:
        p.string(self.caller)
        p.opaque(self.fh)
        p.opaque(self.oh)
        p.int32(self.svid)
        p.uint64(self.offset)
        p.uint64(self.length)


@dataclass(frozen=True, slots=True)
class LockArgs:
    """nlm4_lockargs (LOCK, LOCK_MSG, NM_LOCK)."""

    cookie: bytes
    block: bool
    exclusive: bool
    lock: NlmLock
    reclaim: bool
    state: int

    @classmethod
    def decode(cls, u: Unpacker) -> LockArgs:
        cookie, block, exclusive = bytes(u.opaque(MAXNETOBJ)), u.bool(), u.bool()
        lock = NlmLock.decode(u)
        return cls(cookie, block, exclusive, lock, u.bool(), u.int32())

    def encode(self) -> bytes:
        p = Packer()
        p.opaque(self.cookie)
        p.bool(self.block)
        p.bool(self.exclusive)
        self.lock.encode(p)
        p.bool(self.reclaim)
        p.int32(self.state)
        return p.getvalue()


@dataclass(frozen=True, slots=True)
class CancelArgs:
    """nlm4_cancargs (CANCEL, CANCEL_MSG)."""

    cookie: bytes
    block: bool
    exclusive: bool
    lock: NlmLock

    @classmethod
    def decode(cls, u: Unpacker) -> CancelArgs:
        cookie, block, exclusive = bytes(u.opaque(MAXNETOBJ)), u.bool(), u.bool()
        return cls(cookie, block, exclusive, NlmLock.decode(u))

    def encode(self) -> bytes:
        p = Packer()
        p.opaque(self.cookie)
        p.bool(self.block)
        p.bool(self.exclusive)
        self.lock.encode(p)
        return p.getvalue()


@dataclass(frozen=True, slots=True)
class TestArgs:
    """nlm4_testargs (TEST, TEST_MSG, and GRANTED, which the server sends)."""

    __test__ = False  # not a pytest test class, whatever its name

    cookie: bytes
    exclusive: bool
    lock: NlmLock

    @classmethod
    def decode(cls, u: Unpacker) -> TestArgs:
        cookie, exclusive = bytes(u.opaque(MAXNETOBJ)), u.bool()
        return cls(cookie, exclusive, NlmLock.decode(u))

    def encode(self) -> bytes:
        p = Packer()
        p.opaque(self.cookie)
        p.bool(self.exclusive)
        self.lock.encode(p)
        return p.getvalue()


@dataclass(frozen=True, slots=True)
class UnlockArgs:
    """nlm4_unlockargs (UNLOCK, UNLOCK_MSG)."""

    cookie: bytes
    lock: NlmLock

    @classmethod
    def decode(cls, u: Unpacker) -> UnlockArgs:
        return cls(bytes(u.opaque(MAXNETOBJ)), NlmLock.decode(u))

    def encode(self) -> bytes:
        p = Packer()
        p.opaque(self.cookie)
        self.lock.encode(p)
        return p.getvalue()


@dataclass(frozen=True, slots=True)
class ShareArgs:
    """nlm4_shareargs (SHARE, UNSHARE): a DOS-style share reservation on a whole file."""

    cookie: bytes
    caller: str
    fh: bytes
    oh: bytes
    mode: int
    """fsh4_mode: what it denies others (0 none, 1 read, 2 write, 3 both)."""
    access: int
    """fsh4_access: what it opens for (0 none, 1 read, 2 write, 3 both)."""
    reclaim: bool

    @classmethod
    def decode(cls, u: Unpacker) -> ShareArgs:
        cookie, caller = bytes(u.opaque(MAXNETOBJ)), u.string(LM_MAXSTRLEN)
        fh, oh = bytes(u.opaque(MAXNETOBJ)), bytes(u.opaque(MAXNETOBJ))
        mode, access = u.enum(range(4)), u.enum(range(4))
        return cls(cookie, caller, fh, oh, mode, access, u.bool())

    def encode(self) -> bytes:
        p = Packer()
        p.opaque(self.cookie)
        p.string(self.caller)
        p.opaque(self.fh)
        p.opaque(self.oh)
        p.uint32(self.mode)
        p.uint32(self.access)
        p.bool(self.reclaim)
        return p.getvalue()


@dataclass(frozen=True, slots=True)
class Notify:
    """nlm4_notify (FREE_ALL) and stat_chge (NSM NOTIFY): a host's name and its new state."""

    name: str
    state: int

    @classmethod
    def decode(cls, u: Unpacker) -> Notify:
        return cls(u.string(SM_MAXSTRLEN), u.int32())

    def encode(self) -> bytes:
        p = Packer()
        p.string(self.name)
        p.int32(self.state)
        return p.getvalue()


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Holder:
    """nlm4_holder: the lock that stands in the way of a TEST."""

    exclusive: bool
    svid: int
    oh: bytes
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Res:
    """nlm4_res (LOCK, CANCEL, UNLOCK, GRANTED) and nlm4_testres (TEST: `holder` when DENIED)."""

    cookie: bytes
    stat: NlmStat
    holder: Holder | None = None

    def encode(self) -> bytes:
        p = Packer()
        p.opaque(self.cookie)
        p.uint32(self.stat)
        if self.holder is not None:
            h = self.holder
            p.bool(h.exclusive)
            p.int32(h.svid)
            p.opaque(h.oh)
            p.uint64(h.offset)
            p.uint64(h.length)
        return p.getvalue()

    @classmethod
    def decode(cls, u: Unpacker, test: bool = False) -> Res:
        cookie, stat = bytes(u.opaque(MAXNETOBJ)), NlmStat(u.uint32())
        holder = None
        if test and stat is NlmStat.DENIED:
            exclusive, svid, oh = u.bool(), u.int32(), bytes(u.opaque(MAXNETOBJ))
            holder = Holder(exclusive, svid, oh, u.uint64(), u.uint64())
        return cls(cookie, stat, holder)


@dataclass(frozen=True, slots=True)
class ShareRes:
    """nlm4_shareres."""

    cookie: bytes
    stat: NlmStat
    sequence: int = 0

    def encode(self) -> bytes:
        p = Packer()
        p.opaque(self.cookie)
        p.uint32(self.stat)
        p.int32(self.sequence)
        return p.getvalue()

    @classmethod
    def decode(cls, u: Unpacker) -> ShareRes:
        return cls(bytes(u.opaque(MAXNETOBJ)), NlmStat(u.uint32()), u.int32())


def lock_range(offset: int, length: int) -> tuple[int, int]:
    """An NLM range as the lock table's half-open [start, end) (length 0: to end of file)."""
    if length == 0 or offset + length > ALL_ONES:
        return offset, TO_EOF
    return offset, offset + length


def nlm_length(start: int, end: int) -> int:
    """The NLM length of [start, end): 0 for a lock to the end of the file."""
    return 0 if end >= TO_EOF else end - start
