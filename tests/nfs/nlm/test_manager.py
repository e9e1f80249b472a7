"""The NLM lock manager without I/O: locks, blocked requests and their grants, shares, host
restarts and the grace period, on the server's one lock table."""

from __future__ import annotations

from collections.abc import Hashable

import pytest

from filesim.nfs.locks import TO_EOF, FileKey, LockTable
from filesim.nfs.nlm.manager import (
    WAITER_TTL_S,
    LockManager,
    StaleHandle,
    Waiter,
    lock_owner,
)
from filesim.nfs.nlm.types import (
    CancelArgs,
    LockArgs,
    NlmLock,
    ShareArgs,
    TestArgs,
    UnlockArgs,
)
from filesim.oncrpc.programs import NlmStat

FH = b"handle-1"
KEY = FileKey(7, 100)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Hosts:
    def __init__(self) -> None:
        self.monitored: dict[str, tuple[str, str]] = {}

    def monitor(self, name: str, address: str, local: str) -> None:
        self.monitored[name] = (address, local)

    def forget(self, name: str) -> None:
        self.monitored.pop(name, None)


class Granter:
    def __init__(self, reachable: bool = True) -> None:
        self.can_reach = reachable
        self.sent: list[Waiter] = []

    def reachable(self, waiter: Waiter) -> bool:
        return self.can_reach

    def granted(self, waiter: Waiter) -> None:
        self.sent.append(waiter)


def resolve(fh: bytes) -> FileKey:
    if fh != FH:
        raise StaleHandle(fh.hex())
    return KEY


def manager(grace_s: float = 0.0, table: LockTable | None = None) -> tuple[LockManager, Clock]:
    clock = Clock()
    m = LockManager(table or LockTable(), resolve, Hosts(), grace_s, clock)
    return m, clock


def nlock(host: str = "alpha", svid: int = 1, offset: int = 0, length: int = 0) -> NlmLock:
    return NlmLock(host, FH, f"{svid}@{host}".encode(), svid, offset, length)


def lock(
    m: LockManager, lk: NlmLock, *, exclusive: bool = True, block: bool = False,
    reclaim: bool = False, address: str = "10.0.0.1",
) -> NlmStat:  # fmt: skip
    args = LockArgs(b"c", block, exclusive, lk, reclaim, 3)
    return m.lock(args, address, "10.0.0.100").stat


def unlock(m: LockManager, lk: NlmLock) -> NlmStat:
    return m.unlock(UnlockArgs(b"c", lk)).stat


def test_lock_conflict_and_release() -> None:
    m, _ = manager()
    a, b = nlock("alpha", 1), nlock("beta", 1)
    assert lock(m, a) is NlmStat.GRANTED
    assert lock(m, b) is NlmStat.DENIED
    assert lock(m, nlock("alpha", 2)) is NlmStat.DENIED  # another process of the same host
    assert lock(m, a) is NlmStat.GRANTED  # the owner again: no conflict with itself
    res = m.test(TestArgs(b"t", True, b))
    assert res.stat is NlmStat.DENIED and res.holder is not None
    assert (res.holder.svid, res.holder.oh, res.holder.length) == (1, b"1@alpha", 0)
    assert unlock(m, a) is NlmStat.GRANTED
    assert m.test(TestArgs(b"t", True, b)).stat is NlmStat.GRANTED
    assert lock(m, b) is NlmStat.GRANTED


def test_shared_locks_coexist_and_ranges_are_half_open() -> None:
    m, _ = manager()
    assert lock(m, nlock("alpha", 1, 0, 10), exclusive=False) is NlmStat.GRANTED
    assert lock(m, nlock("beta", 1, 5, 10), exclusive=False) is NlmStat.GRANTED
    assert lock(m, nlock("gamma", 1, 10, 5)) is NlmStat.DENIED  # beta holds 5..14
    assert lock(m, nlock("gamma", 1, 15, 5)) is NlmStat.GRANTED
    assert m.table.locks_of(KEY)[-1].end == 20
    assert lock(m, nlock("delta", 1, 1 << 62, 0)) is NlmStat.GRANTED  # to end of file
    assert m.table.locks_of(KEY)[-1].end == TO_EOF


def test_a_handle_that_names_nothing_is_stale() -> None:
    m, _ = manager()
    stale = NlmLock("alpha", b"nope", b"", 1, 0, 0)
    assert lock(m, stale) is NlmStat.STALE_FH
    assert m.test(TestArgs(b"", True, stale)).stat is NlmStat.STALE_FH


def test_blocked_lock_is_granted_to_the_client_s_repoll() -> None:
    m, _ = manager()
    a, b = nlock("alpha"), nlock("beta")
    lock(m, a)
    assert lock(m, b, block=True) is NlmStat.BLOCKED
    assert lock(m, b, block=True) is NlmStat.BLOCKED  # re-poll while still held
    assert len(m.waiters[KEY]) == 1
    unlock(m, a)
    assert m.table.test(KEY, "nobody", True, 0, 1) is None  # nobody was called back: free
    assert lock(m, b, block=True) is NlmStat.GRANTED
    assert KEY not in m.waiters


def test_blocked_lock_is_taken_for_a_reachable_client_and_called_back() -> None:
    m, _ = manager()
    granter = m.granter = Granter()
    a, b = nlock("alpha"), nlock("beta")
    lock(m, a)
    lock(m, b, block=True)
    unlock(m, a)
    (waiter,) = granter.sent
    assert waiter.taken and waiter.lock == b and waiter.address == "10.0.0.1"
    held = m.table.test(KEY, "nobody", False, 0, 1)
    assert held is not None and held.owner == lock_owner("beta", 1)
    m.callback_done(waiter, ok=True)
    assert KEY not in m.waiters
    assert m.table.test(KEY, "nobody", False, 0, 1) is not None  # beta keeps it


def test_a_failed_callback_gives_the_lock_back_and_leaves_it_to_the_repoll() -> None:
    m, _ = manager()
    granter = m.granter = Granter()
    a, b, c = nlock("alpha"), nlock("beta"), nlock("gamma")
    lock(m, a)
    lock(m, b, block=True)
    lock(m, c, block=True)
    unlock(m, a)
    (to_beta,) = granter.sent
    m.callback_done(to_beta, ok=False)  # beta unreachable: the lock goes to gamma instead
    assert to_beta.unreachable and not to_beta.taken
    (_, to_gamma) = granter.sent
    assert to_gamma.lock == c and to_gamma.taken
    assert lock(m, b, block=True) is NlmStat.BLOCKED  # beta re-polls: gamma has it now
    m.callback_done(to_gamma, ok=True)
    unlock(m, c)
    assert len(granter.sent) == 2  # beta is not called again ...
    assert lock(m, b, block=True) is NlmStat.GRANTED  # ... its re-poll gets it


def test_a_repoll_while_the_callback_is_under_way_wins() -> None:
    m, _ = manager()
    granter = m.granter = Granter()
    a, b = nlock("alpha"), nlock("beta")
    lock(m, a)
    lock(m, b, block=True)
    unlock(m, a)
    (waiter,) = granter.sent
    assert lock(m, b, block=True) is NlmStat.GRANTED
    m.callback_done(waiter, ok=False)  # late failure: must not take the lock away
    held = m.table.test(KEY, "nobody", False, 0, 1)
    assert held is not None and held.owner == lock_owner("beta", 1)


def test_a_failed_upgrade_puts_back_what_the_owner_had() -> None:
    m, _ = manager()
    granter = m.granter = Granter()
    mine, other = nlock("alpha", 1, 0, 10), nlock("beta", 1, 0, 10)
    lock(m, mine, exclusive=False)
    lock(m, other, exclusive=False)
    assert lock(m, mine, exclusive=True, block=True) is NlmStat.BLOCKED
    unlock(m, other)
    (waiter,) = granter.sent
    assert m.table.locks_of(KEY)[0].exclusive
    m.callback_done(waiter, ok=False)
    (held,) = m.table.locks_of(KEY)
    assert (held.owner, held.exclusive, held.start, held.end) == (
        lock_owner("alpha", 1), False, 0, 10,
    )  # fmt: skip


def test_cancel() -> None:
    m, _ = manager()
    granter = m.granter = Granter()
    a, b = nlock("alpha"), nlock("beta")
    lock(m, a)
    lock(m, b, block=True)
    assert m.cancel(CancelArgs(b"c", True, True, b)).stat is NlmStat.GRANTED
    assert KEY not in m.waiters
    lock(m, b, block=True)
    unlock(m, a)
    (waiter,) = granter.sent
    m.cancel(CancelArgs(b"c", True, True, b))  # gave up before the callback arrived
    assert m.table.test(KEY, "nobody", True, 0, 1) is None
    m.callback_done(waiter, ok=True)
    assert m.table.test(KEY, "nobody", True, 0, 1) is None


def test_a_waiter_that_stops_polling_is_dropped() -> None:
    m, clock = manager()
    a, b = nlock("alpha"), nlock("beta")
    lock(m, a)
    lock(m, b, block=True)
    clock.now += WAITER_TTL_S + 1
    unlock(m, a)
    assert KEY not in m.waiters


def test_waiters_that_gave_up_do_not_pile_up_while_the_lock_is_held() -> None:
    m, clock = manager()
    lock(m, nlock("alpha"))
    for svid in range(5):  # processes that gave up without CANCEL
        lock(m, nlock("beta", svid), block=True)
    clock.now += WAITER_TTL_S + 1
    lock(m, nlock("gamma"), block=True)
    assert [w.lock.caller for w in m.waiters[KEY]] == ["gamma"]


def share(m: LockManager, host: str, access: int, mode: int, oh: bytes = b"o") -> NlmStat:
    return m.share(ShareArgs(b"s", host, FH, oh, mode, access, False), "10.0.0.1", "").stat


def test_share_reservations() -> None:
    m, _ = manager()
    assert share(m, "alpha", access=3, mode=2) is NlmStat.GRANTED  # read-write, deny write
    assert share(m, "beta", access=1, mode=0) is NlmStat.GRANTED  # read only: allowed
    assert share(m, "gamma", access=2, mode=0) is NlmStat.DENIED  # write: denied by alpha
    assert share(m, "gamma", access=1, mode=1) is NlmStat.DENIED  # denies read: alpha reads
    args = ShareArgs(b"s", "alpha", FH, b"o", 2, 3, False)
    assert m.unshare(args).stat is NlmStat.GRANTED
    assert share(m, "gamma", access=2, mode=0) is NlmStat.GRANTED


def test_a_restarted_host_loses_everything_and_only_it() -> None:
    m, _ = manager()
    lock(m, nlock("alpha", 1, 0, 10))
    lock(m, nlock("alpha", 2, 20, 10))
    lock(m, nlock("beta", 1, 40, 10))
    share(m, "alpha", access=1, mode=2)
    lock(m, nlock("gamma", 1, 0, 10), block=True)
    lock(m, nlock("alpha", 3, 40, 10), block=True)
    assert m.hosts.monitored == {  # type: ignore[attr-defined]
        "alpha": ("10.0.0.1", "10.0.0.100"), "beta": ("10.0.0.1", "10.0.0.100"),
    }  # fmt: skip
    assert m.host_rebooted("alpha") == 1
    owners: set[Hashable] = {h.owner for h in m.table.locks_of(KEY)}
    assert lock_owner("beta", 1) in owners and lock_owner("alpha", 1) not in owners
    assert not m.table.shares(KEY)
    assert [w.lock.caller for w in m.waiters[KEY]] == ["gamma"]
    assert "alpha" not in m.hosts.monitored  # type: ignore[attr-defined]


def test_grace_period_admits_only_reclaims() -> None:
    m, clock = manager(grace_s=15)
    a = nlock("alpha", 1, 0, 10)
    assert lock(m, a) is NlmStat.DENIED_GRACE_PERIOD
    assert m.test(TestArgs(b"", True, a)).stat is NlmStat.DENIED_GRACE_PERIOD
    assert share(m, "beta", access=1, mode=0) is NlmStat.DENIED_GRACE_PERIOD
    assert lock(m, a, reclaim=True) is NlmStat.GRANTED
    clock.now += 16
    assert lock(m, nlock("beta"), reclaim=True) is NlmStat.DENIED_GRACE_PERIOD  # too late
    assert lock(m, nlock("beta", 2, 100, 1)) is NlmStat.GRANTED


@pytest.mark.parametrize("other_in_grace", [True, False])
def test_another_protocol_s_grace_holds_new_nlm_locks(other_in_grace: bool) -> None:
    table = LockTable()
    table.graces.append(lambda: other_in_grace)
    m, _ = manager(table=table)
    expected = NlmStat.DENIED_GRACE_PERIOD if other_in_grace else NlmStat.GRANTED
    assert lock(m, nlock("alpha")) is expected
    assert table.in_grace() is other_in_grace
