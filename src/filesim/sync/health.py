"""Whether an agent does its job, said truthfully: its state, why, and since when.

An agent is *starting* (initial sync running), *running*, *done* (an initial-sync-only policy
that finished), *failing* (its cycles keep failing, or some paths keep failing: it runs but
does not sync everything), *halted* (the mass-deletion guard holds it) or *stopped* (its run
ended: shut down, or crashed). Every change of state is an event (`sync.failing`,
`sync.recovered`, `sync.stopped`; `sync.halt` and `sync.resume` come from the loop) and a log
line; `SyncStatus` carries state, reason and since, which `/readyz`, `filesim status` and
`filesim verify` show.

Also here: the log limiter. A failure is retried with a growing delay (schedule.py), but many
paths failing at once would still flood the log; past a few lines a minute, lines are counted
instead and the count is logged with the next line let through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import StrEnum

from filesim.events import Event
from filesim.sync.state import shown

log = logging.getLogger("filesim.sync")

FAILING_AFTER = 3
"""Failures in a row (of cycles, or of one path) from which an agent is failing."""


class AgentState(StrEnum):
    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    DONE = "done"
    FAILING = "failing"
    HALTED = "halted"
    STOPPED = "stopped"


HEALTHY = frozenset({AgentState.RUNNING, AgentState.DONE})


class LogLimiter:
    """At most `lines` log lines per `window` seconds; the rest counted, then reported."""

    def __init__(self, lines: int = 10, window: float = 60.0) -> None:
        self.lines, self.window = lines, window
        self._start = -window
        self._used = 0
        self.suppressed = 0

    def warning(self, message: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now - self._start >= self.window:
            self._start, self._used = now, 0
        if self._used >= self.lines:
            self.suppressed += 1
            return
        self._used += 1
        if self.suppressed:
            message += f" ({self.suppressed} similar lines were not logged; see sync.error events)"
            self.suppressed = 0
        log.warning("%s", message)


class Health:
    """The state of one agent, kept up to date by its loop and its run."""

    def __init__(self, name: str, send: Callable[[Event], None]) -> None:
        self.name = name
        self._send = send
        self.state = AgentState.IDLE
        self.reason: str | None = None
        self.since: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.cycle_failures = 0
        """Cycles failed in a row (the folder unreadable, the archive broken...)."""
        self.failing_paths = 0
        """Paths that failed FAILING_AFTER times in a row and are still being retried."""
        self.limiter = LogLimiter()
        self.events_lost = 0
        self.events_lost_at: float | None = None
        self._ready = False
        self._continuous = True

    def _enter(self, state: AgentState, reason: str | None) -> bool:
        """Switch state (the reason may change within a state); True when the state changed."""
        changed = state is not self.state
        if changed:
            self.state, self.since = state, time.time()
        self.reason = reason
        return changed

    # -- the run

    def starting(self, continuous: bool) -> None:
        self._continuous = continuous
        if not self._ready:
            self._enter(AgentState.STARTING, "initial sync running")
        elif self._enter(self._settled_state(), None):
            self._assess()

    def _settled_state(self) -> AgentState:
        if not self._ready:
            return AgentState.STARTING
        return AgentState.RUNNING if self._continuous else AgentState.DONE

    def ready(self) -> None:
        self._ready = True
        if self.state in (AgentState.STARTING, AgentState.IDLE):
            self._enter(self._settled_state(), None)
        self._assess()

    def stopped(self, reason: str, crashed: bool) -> None:
        if self.state is AgentState.STOPPED:
            return
        self._enter(AgentState.STOPPED, reason)
        if crashed:
            log.error("%s: the sync agent stopped: %s", self.name, reason)
        self._send(Event("sync.stopped", self.name, detail={"reason": reason}))

    def halted(self, reason: str) -> None:
        self._enter(AgentState.HALTED, reason)

    def resumed(self) -> None:
        if self.state is AgentState.HALTED:
            self._enter(self._settled_state(), None)
            self._assess()

    def lost_events(self, side: str) -> None:
        """A watcher of `side` reported that the OS dropped events (a queue or buffer
        overflow): the agent rescans everything; said in the log, an event and the status."""
        self.events_lost += 1
        self.events_lost_at = time.time()
        log.warning("%s: the OS dropped file events of the %s (its event queue overflowed); "
                    "rescanning everything", self.name, side)  # fmt: skip
        self._send(Event("sync.events-lost", self.name, side))

    # -- failures

    def error(self, message: str) -> None:
        """A path or a cycle failed: `message` is display text."""
        self.last_error, self.last_error_at = message, time.time()
        self.limiter.warning(f"{self.name}: {message}")

    def cycle_failed(self, exc: BaseException) -> None:
        self.cycle_failures += 1
        self.error(f"sync cycle failed: {type(exc).__name__}: {shown(str(exc))}")
        self._assess()

    def cycle_done(self, failing_paths: int) -> None:
        self.cycle_failures = 0
        self.failing_paths = failing_paths
        self._assess()

    def _assess(self) -> None:
        """Failing or not, from the failure counts (halted, stopped, done: left alone)."""
        if self.state not in (AgentState.STARTING, AgentState.RUNNING, AgentState.FAILING):
            return
        why = None
        if self.cycle_failures >= FAILING_AFTER:
            why = f"{self.cycle_failures} sync cycles failed in a row; last: {self.last_error}"
        elif self.failing_paths:
            why = f"{self.failing_paths} paths keep failing; last: {self.last_error}"
        if why is not None:
            if self._enter(AgentState.FAILING, why):
                log.error("%s: the sync agent is failing: %s", self.name, why)
                self._send(Event("sync.failing", self.name, detail={"reason": why}))
        elif self.state is AgentState.FAILING:
            settled = self._settled_state()
            self._enter(settled, None if self._ready else "initial sync running")
            log.info("%s: the sync agent recovered", self.name)
            self._send(Event("sync.recovered", self.name))
