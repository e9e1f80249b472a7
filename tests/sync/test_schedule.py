"""The schedule on its own: no event loop, no clock, no disk — times are given."""

from __future__ import annotations

import pytest

from filesim.sync.outcome import Status
from filesim.sync.schedule import RETRY_MAX_S, RETRY_MIN_S, Schedule, backoff

SETTLE = 0.1
STALL = 5.0


@pytest.fixture
def sched() -> Schedule:
    return Schedule(settle_s=SETTLE, rescan_interval_s=60.0, stall_s=STALL)


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


def test_a_write_without_commit_is_held_until_it_stalls(sched: Schedule) -> None:
    sched.export_change("f", "create", now=1.0)
    sched.export_change("f", "write", now=1.2)
    assert sched.due(1.2 + SETTLE) == [], "a pause longer than settle_ms is not the end"
    assert sched.held(2.0) == {"f": pytest.approx(1.2 + STALL - 2.0)}
    assert sched.due(1.2 + STALL) == ["f"] and sched.held(1.2 + STALL) == {}


@pytest.mark.parametrize("close", ["commit", "close"])
def test_commit_makes_a_file_due_once_settled_and_a_write_after_it_holds_it_again(
    sched: Schedule, close: str
) -> None:
    sched.export_change("f", "write", now=1.0)
    sched.export_change("f", close, now=1.01)
    assert sched.held(1.01) == {} and sched.due(1.01) == []
    assert sched.due(1.01 + SETTLE) == ["f"] and sched.marks["f"].forced
    sched.export_change("f", "write", now=1.02)
    assert sched.due(1.02 + SETTLE) == [] and not sched.marks["f"].forced
    assert "f" in sched.held(1.03)


def test_folder_writes_wait_for_the_close_and_attributes_change_nothing(sched: Schedule) -> None:
    sched.mark("f", now=1.0, kind="write")
    sched.mark("f", now=1.1, kind="attrib")
    assert "f" in sched.held(1.5), "a chmod mid-write does not complete the file"
    sched.mark("f", now=2.0, kind="close")
    assert sched.due(2.0 + SETTLE) == ["f"] and not sched.marks["f"].forced
    sched.mark("g", now=1.0, kind="attrib")
    assert sched.due(1.0 + SETTLE) == ["g"], "on its own, an attribute change settles"


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


def test_the_ends_of_a_rename_are_taken_together_whichever_is_due(sched: Schedule) -> None:
    """The echo of the agent's own copy of `old` arrives just after the NFS rename and puts
    `old` off by a settle time: `new` alone would be copied and `old` deleted later."""
    sched.export_change("old", "rename", now=1.0, dest="new")
    sched.mark("old", now=1.001)  # the folder watcher's echo, a settle time away
    sched.export_change("new", "rename", now=1.002, dest="newer")  # and renamed again
    sched.mark("unrelated", now=1.001)
    assert sorted(sched.due(1.002)) == ["new", "newer", "old"]
    sched.take(sched.due(1.002))
    assert sched.moves == {} and list(sched.marks) == ["unrelated"]


def test_a_rename_end_not_marked_any_more_is_not_pulled_in(sched: Schedule) -> None:
    sched.export_change("old", "rename", now=1.0, dest="new")
    sched.take(["old"])  # a full cycle took it (new was held, say)
    assert sched.due(1.0) == ["new"] and sched.moves == {}


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
    sched.retry(["a"], now=2.0, status=Status.STALE, taken=taken)
    assert sched.marks["a"].since == 1.0, "the latency includes the retries"
    assert sched.marks["a"].due == pytest.approx(2.0 + SETTLE)


@pytest.mark.parametrize(
    ("status", "ready_in", "delay"),
    [
        (Status.STALE, 0.0, SETTLE),
        (Status.UNSETTLED, 0.03, 0.03),
        (Status.UNSETTLED, -1.0, 0.0),
        (Status.FAILED, 0.0, RETRY_MIN_S),
    ],
)
def test_retry_delay_depends_on_why(
    sched: Schedule, status: Status, ready_in: float, delay: float
) -> None:
    assert sched.retry_delay(status, ready_in) == pytest.approx(delay)


def test_backoff_doubles_from_one_second_up_to_a_minute() -> None:
    assert [backoff(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff(10_000) == RETRY_MAX_S


def failing_cycles(sched: Schedule, status: Status, seconds: float) -> int:
    """Drive the schedule like the loop does with a path that always ends in `status`:
    how many cycles does it get in `seconds`? (Events of the agent's own doing included: each
    attempt is reported again as a change, as a failing copy's inotify echo would be.)"""
    sched.mark("p", now=0.0)
    now, cycles = 0.0, 0
    while True:
        first = sched.next_due()
        assert first is not None, "the path was dropped"
        now = max(now, first)
        if now > seconds:
            return cycles
        taken = sched.take(sched.due(now))
        cycles += 1
        sched.mark("p", now=now + 0.001)  # the echo of the attempt
        sched.retry(["p"], now=now + 0.002, status=status, taken=taken)


@pytest.mark.parametrize("status", [Status.FAILED, Status.STALE])
def test_no_error_of_any_kind_busy_loops(status: Status) -> None:
    sched = Schedule(settle_s=0.0, rescan_interval_s=60.0, stall_s=1.0)  # no settle time at all
    # FAILED: 1 + 2 + ... 32 s, then every 60 s: 6 + 10 in 10 minutes; STALE: 3 free more.
    assert failing_cycles(sched, status, 600.0) <= 20
    assert sched.marks["p"].not_before > 0


def test_a_failing_path_counts_as_failing_until_it_succeeds(sched: Schedule) -> None:
    sched.mark("p", now=0.0)
    for n in range(3):
        now = sched.marks["p"].due
        sched.retry(["p"], now, Status.FAILED, sched.take(["p"]))
        assert sched.failing(3) == (1 if n == 2 else 0)
    sched.take(["p"])  # the next attempt succeeds: no retry, no mark
    assert sched.failing(3) == 0 and sched.pending == 0


def test_a_failed_cycle_backs_its_paths_off(sched: Schedule) -> None:
    sched.mark("a", now=0.0)
    taken = sched.take(["a"])
    sched.failed(taken, now=1.0)
    sched.mark("a", now=1.1)  # a new event does not bring it forward of the backoff
    assert sched.due(1.5) == [] and sched.due(2.0) == ["a"]
    assert sched.marks["a"].since == 0.0


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
    assert sched.full_due == pytest.approx(101.0 + RETRY_MIN_S)
    sched.start_full(now=102.0)
    sched.full_failed(now=102.0)
    assert sched.full_due == pytest.approx(102.0 + 2 * RETRY_MIN_S), "later each time"
    sched.full_done()
    assert sched.full_failures == 0


def test_sleep_until_the_first_mark_or_the_next_full_cycle(sched: Schedule) -> None:
    sched.start_full(now=0.0)
    assert sched.next_due() is None
    assert sched.sleep_for(10.0) == pytest.approx(50.0)
    sched.mark("a", now=10.0)
    assert sched.next_due() == pytest.approx(10.1)
    assert sched.sleep_for(10.0) == pytest.approx(SETTLE)
    assert sched.sleep_for(11.0) == 0.0, "overdue: no sleep"
