"""Cycles over time: which cycle runs when, and what its outcomes mean.

`SyncLoop` runs on the event loop; each cycle's blocking part runs in a worker thread
(`cycle.Cycles`), one at a time. It serves the schedule (continuous sync), converges (the
initial sync: full cycles until nothing is left), or drains what is due (a flush without a
running loop). After a cycle it turns the outcomes into retries, counters, events, and the halt
of the mass-deletion guard, which a resume (from this process or another) lifts.

Nothing that goes wrong in a cycle ends the loop: a failed action is retried after its backoff,
a failed cycle too (its paths, or the next full cycle), and the agent's health (health.py) says
when it keeps failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from filesim.errors import FilesimError
from filesim.events import Event
from filesim.sync.actions import Copy, MakeDir, Plan, Rename
from filesim.sync.archive import SyncArchive
from filesim.sync.cycle import CycleResult, Cycles
from filesim.sync.health import FAILING_AFTER, Health
from filesim.sync.outcome import Outcome, Status
from filesim.sync.schedule import Mark, Schedule
from filesim.sync.state import shown
from filesim.sync.status import EchoCheck, LatencyWindow
from filesim.sync.watch import WatcherGroup

T = TypeVar("T")

log = logging.getLogger("filesim.sync")

_HALT_POLL_S = 0.5
HALT_CONFIRM_S = 1.0
"""How long the guard's first verdict waits for removals reported one by one."""


async def _sleep(wake: asyncio.Event, seconds: float) -> None:
    """Sleep until `wake` is set or `seconds` have passed. Not asyncio.wait_for: in Python
    3.11 it drops a cancellation that arrives just as the event is set, and the loop would
    then never stop."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()


def only_adds(plan: Plan) -> bool:
    """Whether a plan, once every step of it is done, leaves nothing for a next full cycle
    to find in what its scans saw — so converging needs no confirming rescan of both trees.

    True when it only copies and makes directories, without conflicts: the planner defers
    nothing then (it defers only around renames, set-aside losers and case folding), every
    copy checked that its source was still what the scan saw and its target still what was
    planned, and the archive recorded each. A rescan would find only what others changed
    meanwhile, which no number of scans catches for sure: a change made just after the last
    one escapes it alike (rsync -a makes one pass too)."""
    if plan.conflicts:
        return False
    for action in plan.work:
        if isinstance(action, Copy) and action.to is None:
            continue
        if not isinstance(action, MakeDir):
            return False
    return True


class SyncLoop:
    """The cycles of one agent, and the counters they leave behind."""

    def __init__(
        self,
        name: str,
        cycles: Cycles,
        schedule: Schedule,
        archive: SyncArchive,
        watchers: WatcherGroup,
        send: Callable[[Event], None],
        on_ready: Callable[[], None],
        health: Health,
    ) -> None:
        self.name = name
        self.cycles, self.schedule, self.archive = cycles, schedule, archive
        self.watchers, self.health = watchers, health
        self._send, self._on_ready = send, on_ready
        self.halted: str | None = archive.halted()
        self.resume_pending = False
        self.busy = False
        """A cycle is running in the worker thread."""
        self.wake: asyncio.Event | None = None
        self.counts: Counter[str] = Counter()
        self.latency = LatencyWindow()
        self.echoes = EchoCheck()
        self.last_sync: float | None = None
        self.gate: Callable[[], Awaitable[None]] | None = None
        self.on_latency: Callable[[float], None] | None = None
        # This agent's own worker: cycles never queue behind another agent's or a server's
        # blocking calls (a flood of COMMITs), and one agent uses one thread at most.
        self.pool = ThreadPoolExecutor(1, thread_name_prefix=f"cycle-{name}")

    async def in_thread(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` in this agent's worker thread."""
        return await asyncio.get_running_loop().run_in_executor(
            self.pool, functools.partial(fn, *args)
        )

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def bind(self) -> None:
        """Wake-ups go to the running event loop (call from it)."""
        self.wake = asyncio.Event()

    def poke(self) -> None:
        if self.wake is not None:
            self.wake.set()

    @property
    def idle(self) -> bool:
        """Nothing marked, no full cycle asked for, no cycle running."""
        return not (self.schedule.pending or self.busy or self.schedule.rescan_requested)

    def resume(self) -> None:
        self.archive.set_halted(None)
        self.resume_pending = True
        self.poke()

    # -- the three ways of running cycles

    async def serve(self) -> None:
        """Continuous sync: due paths, full cycles when due, until cancelled."""
        assert self.wake is not None
        while True:
            if self.halted is not None and not self.resume_pending:
                await self._wait_resume()
                continue
            now = time.monotonic()
            if self.resume_pending or self.schedule.full_is_due(now):
                self.schedule.start_full(now)
                self._rearm_watchers()
                await self._survive(None)
                continue
            due = self.schedule.due(now)
            if due:
                await self._survive(due)
                continue
            self.wake.clear()
            await _sleep(self.wake, self.schedule.sleep_for(now))

    async def converge(self, max_idle_rounds: int = 20) -> None:
        """Full cycles until a plan has nothing left to do, or until `max_idle_rounds` in a
        row made no progress (a file written to all along, an error that persists): those are
        left to the continuous sync or the next run, and reported.

        Without watchers, a plan that only added and completed (only_adds) needs no
        confirming rescan. With watchers running, the confirming full cycle also takes the
        marks the initial sync's own copies left (their echoes), which the continuous loop
        would otherwise start with."""
        stuck = 0
        while True:
            if self.halted is not None and not self.resume_pending:
                if not await self.in_thread(self.archive.resume_requested):
                    return
                self.resume_pending = True
            cycle = await self.cycle(None)
            if cycle.plan.halt is not None or not cycle.plan.work:
                return
            waits = [o for o in cycle.outcomes if o.status is not Status.DONE]
            if not waits:
                if not self.watchers.watchers and only_adds(cycle.plan):
                    return  # nothing left of what the scan saw (see only_adds)
                continue
            progress = len(waits) < len(cycle.outcomes)
            stuck = 0 if progress else stuck + 1
            failed_only = all(o.status is Status.FAILED for o in waits)
            if stuck >= (3 if failed_only else max_idle_rounds):
                log.warning("%s: %d paths not synced yet", self.name, len(waits))
                return
            wall = time.time()
            ready_ins = [o.ready_at - wall for o in waits if o.status is Status.UNSETTLED]
            await asyncio.sleep(self.schedule.converge_pause(ready_ins))

    async def drain(self) -> None:
        """Cycles for the marked paths, each once it is due, until none is left (or halted)."""
        while self.halted is None or self.resume_pending:
            now = time.monotonic()
            due = self.schedule.due(now)
            if due:
                await self.cycle(due)
                continue
            first = self.schedule.next_due()
            if first is None:
                return
            await asyncio.sleep(first - now)

    async def _survive(self, paths: list[str] | None) -> None:
        """One cycle; whatever goes wrong in it (the folder unreadable, the disk gone, a bug)
        is reported and retried later — its paths after their backoff, a full cycle after
        the full cycles' backoff — instead of ending the agent."""
        try:
            await self.cycle(paths)
        except Exception as exc:
            self.report(exc)
            if paths is None:
                self.schedule.full_failed(time.monotonic())
        else:
            if paths is None:
                self.schedule.full_done()
                self._on_ready()  # after an initial sync that had failed

    def report(self, exc: BaseException) -> None:
        """A whole cycle failed."""
        self.counts["error"] += 1
        if not isinstance(exc, OSError | FilesimError):  # not the disk: a bug, show where
            log.error("%s: sync cycle failed", self.name, exc_info=exc)
        self.health.cycle_failed(exc)
        error = f"{type(exc).__name__}: {shown(str(exc))}"
        self._send(Event("sync.error", self.name, detail={"error": error}))

    def _rearm_watchers(self) -> None:
        try:
            if self.watchers.restart_if_unhealthy():
                log.info("%s: watching the folder again", self.name)
        except (OSError, FilesimError) as exc:
            log.warning("%s: cannot watch the folder again yet: %s", self.name, exc)

    async def _wait_resume(self) -> None:
        """Halted: watch the archive for a resume written by `filesim sync resume`."""
        assert self.wake is not None
        self.wake.clear()
        await _sleep(self.wake, _HALT_POLL_S)
        if await self.in_thread(self.archive.resume_requested):
            self.resume_pending = True

    # -- one cycle

    async def cycle(self, paths: list[str] | None, confirming: bool = False) -> CycleResult:
        """Plan and execute for `paths` (None: everything), in the worker thread.

        A plan the mass-deletion guard stops is planned once more HALT_CONFIRM_S later before
        the agent halts: a scan can see files gone a moment before the reports of their
        removal one by one (the NFS server's, the store watcher's) arrive, and removals
        reported that way are deliberate (a system consuming its inputs), not a vanished tree.
        """
        # Busy from here: a cycle held at a paused gate is work not done, and flush() must not
        # report the agent idle while a requested rescan waits there.
        self.busy = True
        try:
            if self.gate is not None:
                await self.gate()
            wall, started = time.time(), time.monotonic()
            held = {p: wall + wait for p, wait in self.schedule.held(started).items()}
            # A full cycle looks at every path: it takes every mark but those still held, so
            # what it syncs is accounted for (latency) and not looked at again.
            taken = self.schedule.take(
                paths if paths is not None else [p for p in self.schedule.marks if p not in held]
            )
            forced = frozenset(p for p, mark in taken.items() if mark.forced)
            guard = not self.resume_pending
            trusted = frozenset(self.schedule.trusted)
            self.counts["cycle"] += 1
            try:
                result = await self.in_thread(self.cycles.run, paths, forced, trusted, guard, held)
            except Exception:
                self.schedule.failed(taken, time.monotonic())  # nothing lost: later, less often
                raise
            except BaseException:
                self.schedule.restore(taken)  # cancelled: put the work back as it was
                raise
            if result.plan.halt is not None and guard and not confirming:
                self.schedule.restore(taken)  # nothing was done: the same work, re-planned
                await asyncio.sleep(HALT_CONFIRM_S)
                return await self.cycle(paths, confirming=True)
        finally:
            self.busy = False
        whole = paths is None or result.escalated
        self.schedule.trusted_done(trusted, None if whole else taken)
        self._after(result, taken, guard)
        self._batch(result, paths is None, time.monotonic() - started)
        return result

    def _batch(self, cycle: CycleResult, full: bool, seconds: float) -> None:
        """One `sync.batch` event per cycle that changed something, and per full cycle (a
        rescan) even when it found nothing: what `filesim sync` prints, one line each.
        detail.actions counts the actions done as "KIND:SIDE" (sync.copy:folder = a file
        copied into the folder)."""
        done: Counter[str] = Counter()
        for outcome in cycle.outcomes:
            if outcome.status is Status.DONE:
                for event in outcome.events:
                    done[f"{event.kind}:{event.side}"] += 1
        if done or full:
            detail = {"full": full, "ms": round(seconds * 1000), "actions": dict(done)}
            self._send(Event("sync.batch", self.name, detail=detail))

    def _after(self, cycle: CycleResult, taken: dict[str, Mark], guard: bool) -> None:
        plan = cycle.plan
        if plan.halt is not None:
            self._halt(plan.halt)
            self.schedule.restore(taken)
            return
        if not guard and self.resume_pending:
            self.resume_pending = False
            self.halted = None
            self.archive.set_halted(None)
            self.archive.clear_resume()
            self.health.resumed()
            self._send(Event("sync.resume", self.name))
        for conflict in plan.conflicts:
            self.counts["conflict"] += 1
            detail = {"winner": conflict.winner, "kept_as": conflict.kept_as}
            detail["why"] = conflict.reason
            self._send(Event("sync.conflict", self.name, conflict.loser, conflict.path, None,
                             detail))  # fmt: skip
        now = time.monotonic()
        for outcome in cycle.outcomes:
            self._account(outcome, taken, now)
        if cycle.outcomes:
            self.last_sync = time.time()
        self.health.cycle_done(self.schedule.failing(FAILING_AFTER))

    def _account(self, outcome: Outcome, taken: dict[str, Mark], now: float) -> None:
        for event in outcome.events:
            self.counts[event.kind] += 1
            self._send(event)
        if outcome.status is Status.DONE:
            starts = [taken[p].since for p in outcome.paths if p in taken]
            if starts and outcome.done:
                self.latency.add((now - min(starts)) * 1000)
                if self.on_latency is not None:
                    self.on_latency(now - min(starts))
            self._check_echoes(outcome)
            for action in outcome.step:  # a conflict copy is a new file: it must travel too
                if isinstance(action, Rename) and action.aside:
                    self.schedule.mark(action.dst, now, delay=0.0)
            return
        if outcome.status is Status.FAILED:
            self.counts["error"] += 1
            self._send(Event("sync.error", self.name, detail={"error": outcome.error}))
            self.health.error(outcome.error)
        ready_in = outcome.ready_at - time.time()
        self.schedule.retry(outcome.paths, now, outcome.status, taken, ready_in)

    def _check_echoes(self, outcome: Outcome) -> None:
        records = dict(outcome.updates)
        for action in outcome.step:
            if not isinstance(action, Copy):
                continue
            record = records.get(action.path)
            published = None if record is None else record.on(action.dst)
            if self.echoes.copied(action.src, action.path, action.entry, published):
                log.warning("%s: %s came back from the %s as this agent had published it: a "
                            "sync loop", self.name, shown(action.path), action.src)  # fmt: skip
                self._send(Event("sync.echo", self.name, action.src, action.path))

    def _halt(self, reason: str) -> None:
        folder, store = self.cycles.roots["folder"], self.cycles.roots["export"]
        message = (
            f"{self.name}: sync halted — {reason} (folder {folder}, export store {store}). "
            "Nothing was deleted. If that side was unmounted or emptied by mistake, restore it "
            f"first. Then run `filesim sync resume {self.name}`: whatever is still missing then "
            "is deleted on the other side too."
        )
        message = shown(message)
        if self.halted != message:
            log.error("%s", message)
            self._send(Event("sync.halt", self.name, detail={"reason": message}))
        self.halted = message
        self.health.halted(message)
        self.archive.set_halted(message)
