"""The NFSv3 lock manager (NLM v4): its locks and shares live in the server's one `LockTable`,
beside NFSv4's, so a v3 and a v4 lock on one file conflict.

No I/O: the procedures (`procedures.py`) decode a call, ask this, encode the answer. What needs
the network (a GRANTED callback when a blocked lock frees) goes to a `Granter`, which reports
back with `callback_done`. A blocked request waits here until its lock frees; then it is taken
on the client's behalf and the client told by callback, or, when the client cannot be reached
(kclient's slirp, a firewall), left for the client's own re-poll (Linux re-sends a blocked
LOCK every 30 s).

Owners: an NLM lock belongs to ("nlm", caller_name, svid), the host name the client sends and
the process id on it, as the Linux server compares them; a share to ("nlm-share", caller_name,
oh). A host's locks go when it says it rebooted (NSM NOTIFY, NLM FREE_ALL).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Protocol

from filesim.nfs.locks import ByteLock, FileKey, LockTable
from filesim.nfs.nlm.types import (
    CancelArgs,
    Holder,
    LockArgs,
    NlmLock,
    Res,
    ShareArgs,
    ShareRes,
    TestArgs,
    UnlockArgs,
    lock_range,
    nlm_length,
)
from filesim.oncrpc.programs import NlmStat

log = logging.getLogger(__name__)

WAITER_TTL_S = 120.0
"""A blocked request the client has not re-polled for this long is dropped (it gave up)."""

Resolve = Callable[[bytes], FileKey]
"""A file handle to the file it names; raises `StaleHandle` when it names none."""
Target = tuple[FileKey, Hashable, int, int]
"""The file, owner and byte range [start, end) a lock request names."""


class StaleHandle(Exception):
    """A handle that names no file of this export (NLM4_STALE_FH)."""


class Granter(Protocol):
    """The I/O the lock manager needs: telling a client its blocked lock is granted."""

    def reachable(self, waiter: Waiter) -> bool:
        """Whether a GRANTED callback can reach the client that is waiting."""

    def granted(self, waiter: Waiter) -> None:
        """Send the GRANTED callback; later call `LockManager.callback_done(waiter, ok)`."""


def lock_owner(caller: str, svid: int) -> Hashable:
    return ("nlm", caller, svid)


def share_holder(caller: str, oh: bytes) -> Hashable:
    return ("nlm-share", caller, oh)


def _host_of(owner: Hashable) -> str | None:
    if isinstance(owner, tuple) and len(owner) == 3 and owner[0] in ("nlm", "nlm-share"):
        return str(owner[1])
    return None


@dataclass(eq=False)
class Waiter:
    """A blocked LOCK: what it wants, and where its client is."""

    key: FileKey
    owner: Hashable
    exclusive: bool
    start: int
    end: int
    lock: NlmLock
    cookie: bytes
    address: str
    """The client's IP address (where a GRANTED callback goes)."""
    local: str
    """Our address the client called (a callback to it would come back to us)."""
    polled: float = field(default_factory=time.monotonic)
    taken: bool = False
    """Taken on the client's behalf; its GRANTED callback is under way."""
    unreachable: bool = False
    """A callback failed: only the client's re-poll gets it the lock."""
    restore: list[ByteLock] = field(default_factory=list)
    """The owner's own locks in the range before it was taken for it (put back on failure)."""

    def same(self, key: FileKey, owner: Hashable, start: int, end: int, exclusive: bool) -> bool:
        return (self.key, self.owner, self.start, self.end, self.exclusive) == (
            key, owner, start, end, exclusive,
        )  # fmt: skip


class Hosts(Protocol):
    """Where the lock manager records which hosts hold locks (NSM keeps it across restarts)."""

    def monitor(self, name: str, address: str, local: str) -> None: ...

    def forget(self, name: str) -> None: ...


class LockManager:
    """NLM state of one export: blocked requests, and the hosts that hold locks."""

    def __init__(
        self, table: LockTable, resolve: Resolve, hosts: Hosts, grace_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        """`grace_s`: how long after start only reclaims are granted (0: no grace period;
        the server gives one when hosts held locks before it restarted)."""
        self.table = table
        self.resolve = resolve
        self.hosts = hosts
        self.clock = clock
        self.grace_end = clock() + grace_s if grace_s > 0 else 0.0
        self.granter: Granter | None = None
        self.waiters: dict[FileKey, list[Waiter]] = {}
        self.holders: set[str] = set()
        """Hosts that took a lock or share (monitored: told of our restart, see `Hosts`)."""
        table.on_release.append(self._released)
        table.graces.append(self.in_grace)

    # -- grace ----------------------------------------------------------------------------------

    def in_grace(self) -> bool:
        """Whether NLM's own grace period runs (only reclaims are granted)."""
        if self.grace_end and self.clock() >= self.grace_end:
            self.grace_end = 0.0
            log.info("NLM grace period over")
        return bool(self.grace_end)

    def _refused_in_grace(self, reclaim: bool) -> bool:
        """A new lock waits out every protocol's grace; a reclaim needs NLM's own."""
        return not self.in_grace() if reclaim else self.table.in_grace()

    # -- requests -------------------------------------------------------------------------------

    def _admit(self, lock: NlmLock, refused_in_grace: bool) -> Target | NlmStat:
        """(file, owner, start, end) of the lock a request names, or the status that refuses
        the request before anything is looked at: a grace period, a stale handle."""
        if refused_in_grace:
            return NlmStat.DENIED_GRACE_PERIOD
        start, end = lock_range(lock.offset, lock.length)
        try:
            key = self.resolve(lock.fh)
        except StaleHandle:
            return NlmStat.STALE_FH
        return key, lock_owner(lock.caller, lock.svid), start, end

    def test(self, args: TestArgs) -> Res:
        target = self._admit(args.lock, self.table.in_grace())
        if isinstance(target, NlmStat):
            return Res(args.cookie, target)
        key, owner, start, end = target
        held = self.table.test(key, owner, args.exclusive, start, end)
        if held is None:
            return Res(args.cookie, NlmStat.GRANTED)
        return Res(args.cookie, NlmStat.DENIED, holder_of(held))

    def lock(self, args: LockArgs, address: str, local: str) -> Res:
        target = self._admit(args.lock, self._refused_in_grace(args.reclaim))
        if isinstance(target, NlmStat):
            return Res(args.cookie, target)
        key, owner, start, end = target
        waiter = self._find(key, owner, start, end, args.exclusive)
        held = self.table.lock(key, owner, args.exclusive, start, end)
        if held is None:
            if waiter is not None:
                self._unlink(waiter)  # a re-poll, or a grant the callback has not confirmed
            self._holds(args.lock.caller, key, address, local)
            return Res(args.cookie, NlmStat.GRANTED)
        if not args.block:
            return Res(args.cookie, NlmStat.DENIED)
        if waiter is None:
            self._prune(key)
            waiter = Waiter(key, owner, args.exclusive, start, end, args.lock, args.cookie,
                            address, local)  # fmt: skip
            self.waiters.setdefault(key, []).append(waiter)
        waiter.polled = self.clock()
        waiter.cookie, waiter.address, waiter.local = args.cookie, address, local
        return Res(args.cookie, NlmStat.BLOCKED)

    def cancel(self, args: CancelArgs) -> Res:
        target = self._admit(args.lock, self.table.in_grace())
        if isinstance(target, NlmStat):
            return Res(args.cookie, target)
        key, owner, start, end = target
        waiter = self._find(key, owner, start, end, args.exclusive)
        if waiter is not None:
            taken = waiter.taken
            self._unlink(waiter)
            if taken:  # granted for it, but the client gave up first
                self._undo(waiter)
        return Res(args.cookie, NlmStat.GRANTED)

    def unlock(self, args: UnlockArgs) -> Res:
        target = self._admit(args.lock, self.table.in_grace())
        if isinstance(target, NlmStat):
            return Res(args.cookie, target)
        key, owner, start, end = target
        self.table.unlock(key, owner, start, end)
        return Res(args.cookie, NlmStat.GRANTED)

    def share(self, args: ShareArgs, address: str, local: str) -> ShareRes:
        if self._refused_in_grace(args.reclaim):
            return ShareRes(args.cookie, NlmStat.DENIED_GRACE_PERIOD)
        try:
            key = self.resolve(args.fh)
        except StaleHandle:
            return ShareRes(args.cookie, NlmStat.STALE_FH)
        holder = share_holder(args.caller, args.oh)
        if self.table.share_conflict(key, holder, args.access, args.mode):
            return ShareRes(args.cookie, NlmStat.DENIED)
        self.table.set_share(key, holder, args.access, args.mode)
        self._holds(args.caller, key, address, local)
        return ShareRes(args.cookie, NlmStat.GRANTED)

    def unshare(self, args: ShareArgs) -> ShareRes:
        try:
            key = self.resolve(args.fh)
        except StaleHandle:
            return ShareRes(args.cookie, NlmStat.STALE_FH)
        self.table.drop_share(key, share_holder(args.caller, args.oh))
        return ShareRes(args.cookie, NlmStat.GRANTED)

    def host_rebooted(self, name: str) -> int:
        """Release every lock, share and blocked request of host `name` (it restarted: NSM
        NOTIFY or NLM FREE_ALL); the number of files that had any."""
        self.holders.discard(name)
        for waiters in list(self.waiters.values()):
            for waiter in list(waiters):
                if _host_of(waiter.owner) == name:
                    self._unlink(waiter)
        released = 0
        for key in self.table:  # a snapshot: every file with locks or shares, any protocol
            released += self.table.release_matching(key, lambda owner: _host_of(owner) == name)
        self.hosts.forget(name)
        if released:
            log.info("NLM: host %s restarted: released its locks on %d file(s)", name, released)
        return released

    # -- blocked requests -----------------------------------------------------------------------

    def _find(
        self, key: FileKey, owner: Hashable, start: int, end: int, exclusive: bool
    ) -> Waiter | None:
        for waiter in self.waiters.get(key, ()):
            if waiter.same(key, owner, start, end, exclusive):
                return waiter
        return None

    def _prune(self, key: FileKey) -> None:
        """Drop the requests on `key` whose clients stopped re-polling (they gave up without
        a CANCEL), so that waiting requests never pile up."""
        now = self.clock()
        for waiter in list(self.waiters.get(key, ())):
            if not waiter.taken and now - waiter.polled > WAITER_TTL_S:
                self._unlink(waiter)

    def _unlink(self, waiter: Waiter) -> None:
        """Forget `waiter`; a callback still under way for it then changes nothing."""
        waiter.taken = False
        waiters = self.waiters.get(waiter.key)
        if waiters is not None and waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                del self.waiters[waiter.key]

    def _released(self, key: FileKey) -> None:
        """Locks on `key` were released (by any protocol): grant what now can be."""
        now = self.clock()
        for waiter in list(self.waiters.get(key, ())):
            if waiter.taken:
                continue
            if now - waiter.polled > WAITER_TTL_S:
                self._unlink(waiter)
                continue
            granter = self.granter
            if waiter.unreachable or granter is None or not granter.reachable(waiter):
                continue  # the client's re-poll takes it
            before = [
                h
                for h in self.table.locks_of(key)
                if h.owner == waiter.owner and h.overlaps(waiter.start, waiter.end)
            ]
            if self.table.lock(key, waiter.owner, waiter.exclusive, waiter.start, waiter.end):
                continue
            waiter.taken, waiter.restore = True, before
            self._holds(waiter.lock.caller, key, waiter.address, waiter.local)
            granter.granted(waiter)

    def callback_done(self, waiter: Waiter, ok: bool) -> None:
        """The GRANTED callback for `waiter` was answered (ok) or could not be delivered."""
        if not waiter.taken:
            return  # cancelled, or its client re-polled and got it, meanwhile
        if ok:
            self._unlink(waiter)
            return
        waiter.unreachable = True
        self._undo(waiter)

    def _undo(self, waiter: Waiter) -> None:
        """Give back a lock taken for a client that did not get it, as the owner had it."""
        waiter.taken = False
        self.table.unlock(waiter.key, waiter.owner, waiter.start, waiter.end)
        for held in waiter.restore:
            start, end = max(held.start, waiter.start), min(held.end, waiter.end)
            self.table.lock(waiter.key, held.owner, held.exclusive, start, end)

    def _holds(self, name: str, key: FileKey, address: str, local: str) -> None:
        if name not in self.holders:
            self.holders.add(name)
            self.hosts.monitor(name, address, local)


def holder_of(held: ByteLock) -> Holder:
    """The nlm4_holder of a conflicting lock, whichever protocol took it."""
    owner = held.owner
    svid, oh = 0, b""
    if isinstance(owner, tuple) and len(owner) == 3:
        if owner[0] == "nlm":
            svid, oh = int(owner[2]), f"{owner[2]}@{owner[1]}".encode()
        elif owner[0] == "v4":
            oh = bytes(owner[2])[:1024]
    return Holder(held.exclusive, svid, oh, held.start, nlm_length(held.start, held.end))
