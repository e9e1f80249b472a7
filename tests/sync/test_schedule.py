"""The schedule on its own: no event loop, no clock, no disk — times are given."""

from __future__ import annotations

import pytest

from filesim.sync.outcome import Status
from filesim.sync.schedule import RETRY_FAILED_S, Schedule

SETTLE = 0.1


@pytest.fixture
def sched() -> Schedule:
    return Schedule(settle_s=SETTLE, rescan_interval_s=60.0)


def test_a_write_is_due_once_it_has_settled(sched: Schedule) -> None:
    sched.mark("a", now=10.0)
    assert sched.due(10.05) == []
    assert sched.due(10.1) == ["a"]
    assert sched.pending == 1


def test_a_later_write_pushes_the_due_time_but_keeps_the_first_time(sched: Schedule) -> None:
    sched.mark("a", now=10.0)
    sched.mark("a", now=10.08)
    assert sched.due(10.1) == [], "still being written"
    mark = sched.marks["a"]
    assert mark.since == 10.0 and mark.due == pytest.approx(10.18) and not mark.forced


def test_commit_is_due_at_once_and_a_write_after_it_must_settle_again(sched: Schedule) -> None:
    sched.export_change("f", "write", now=1.0)
    sched.export_change("f", "commit", now=1.01)
    assert sched.due(1.01) == ["f"] and sched.marks["f"].forced
    sched.export_change("f", "write", now=1.02)
    assert sched.due(1.02) == [] and not sched.marks["f"].forced


@pytest.mark.parametrize("kind", ["remove", "rmdir", "mkdir", "rename", "symlink", "nonsense"])
def test_whole_changes_and_unknown_kinds_are_due_at_once(sched: Schedule, kind: str) -> None:
    sched.export_change("p", kind, now=5.0)
    assert sched.due(5.0) == ["p"]


def test_removals_reported_one_by_one_are_trusted_until_looked_at(sched: Schedule) -> None:
    sched.export_change("old", "rename", now=1.0, dest="new")
    sched.export_change("gone", "remove", now=1.0)
    assert sched.trusted == {"old", "gone"}
    assert set(sched.due(1.0)) == {"old", "new", "gone"}
    snapshot = frozenset(sched.trusted)
    sched.export_change("later", "remove", now=1.5)  # arrives while the cycle runs
    sched.trusted_done(snapshot, looked_at=["old", "new"])  # a partial cycle
    assert sched.trusted == {"gone", "later"}
    sched.trusted_done(frozenset(sched.trusted), looked_at=None)  # a full cycle
    assert sched.trusted == set()


def test_take_restore_and_retry_keep_the_first_event_time(sched: Schedule) -> None:
    sched.mark("a", now=1.0)
    sched.mark("b", now=1.0)
    taken = sched.take(["a", "b", "not-marked"])
    assert set(taken) == {"a", "b"} and sched.pending == 0
    sched.mark("b", now=1.5)  # a new event while the cycle ran
    sched.restore(taken)
    assert sched.marks["a"].since == 1.0
    assert sched.marks["b"].since == 1.5, "the newer mark wins over the restored one"
    taken = sched.take(["a"])
    sched.retry(["a"], now=2.0, delay=sched.retry_delay(Status.STALE), taken=taken)
    assert sched.marks["a"].since == 1.0, "the latency includes the retries"
    assert sched.marks["a"].due == pytest.approx(2.0 + SETTLE)


@pytest.mark.parametrize(
    ("status", "ready_in", "delay"),
    [
        (Status.STALE, 0.0, SETTLE),
        (Status.UNSETTLED, 0.03, 0.03),
        (Status.UNSETTLED, -1.0, 0.0),
        (Status.FAILED, 0.0, RETRY_FAILED_S),
    ],
)
def test_retry_delay_depends_on_why(
    sched: Schedule, status: Status, ready_in: float, delay: float
) -> None:
    assert sched.retry_delay(status, ready_in) == pytest.approx(delay)


def test_done_is_not_retried(sched: Schedule) -> None:
    with pytest.raises(ValueError, match="not retried"):
        sched.retry_delay(Status.DONE)


def test_converge_pause(sched: Schedule) -> None:
    assert sched.converge_pause([0.3, 0.02]) == pytest.approx(0.02)
    assert sched.converge_pause([-5.0]) == pytest.approx(0.01)
    assert sched.converge_pause([]) == pytest.approx(max(0.05, SETTLE))


def test_full_cycles_every_interval_at_once_when_asked_and_sooner_after_a_failure(
    sched: Schedule,
) -> None:
    assert sched.full_is_due(0.0), "the first full cycle is due at once"
    sched.start_full(now=100.0)
    assert not sched.full_is_due(159.9) and sched.full_is_due(160.0)
    sched.request_full()
    assert sched.full_is_due(100.1)
    sched.start_full(now=100.1)
    assert not sched.rescan_requested
    sched.full_failed(now=101.0)
    assert sched.full_due == pytest.approx(101.0 + RETRY_FAILED_S)


def test_sleep_until_the_first_mark_or_the_next_full_cycle(sched: Schedule) -> None:
    sched.start_full(now=0.0)
    assert sched.next_due() is None
    assert sched.sleep_for(10.0) == pytest.approx(50.0)
    sched.mark("a", now=10.0)
    assert sched.next_due() == pytest.approx(10.1)
    assert sched.sleep_for(10.0) == pytest.approx(SETTLE)
    assert sched.sleep_for(11.0) == 0.0, "overdue: no sleep"
