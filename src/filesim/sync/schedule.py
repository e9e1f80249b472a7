"""When the agent looks at what: the dirty-path map, the full-cycle clock and retry delays.

Pure: no I/O and no clock of its own. Every call that depends on time is given `now` (monotonic
seconds), so a test drives a schedule through any sequence of events without an event loop.

A path is *marked* when an event points at it. Its mark is *due* once the path has been quiet
for `settle_s` (a data write), at once for a change that is whole (a rename, a removal, a new
directory) or that its writer declared complete (an NFS COMMIT: *forced*). The agent takes the
due paths into a cycle; a path that did not finish is marked again after a retry delay that
depends on why (`retry_delay`), keeping the time of its first event so the latency it reports
includes the retries. Besides marks there are full cycles (scan everything): every
`rescan_interval_s`, and at once when asked (a watcher lost track, a resume).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from filesim.sync.outcome import Status

EXPORT_CHANGE_KINDS = frozenset(
    {"create", "write", "commit", "setattr", "remove", "rmdir", "mkdir", "rename", "link",
     "symlink", "mknod", "rename-from", "rename-to"}
)  # fmt: skip
"""What the NFS server reports (see `SyncAgent.notify_export_change`)."""
_DATA_WRITES = frozenset({"create", "write", "setattr"})
"""The kinds of change that must settle; a rename, a removal or a new directory is whole."""
_REMOVALS = frozenset({"remove", "rmdir", "rename", "rename-from"})

RETRY_FAILED_S = 5.0
"""A path whose action failed with an OS error (permissions, disk full...), or a full cycle
that failed, is tried again after this long."""

MIN_CONVERGE_PAUSE_S = 0.05
"""The shortest pause between two rounds of an initial sync waiting for files to settle."""


@dataclass(slots=True)
class Mark:
    """A path some event pointed at, not synced yet."""

    since: float
    """Time of the first event not yet synced (the sync latency is measured from it)."""
    due: float
    """When the path is to be looked at."""
    forced: bool = False
    """Its writer declared it complete: copy it without waiting for it to settle."""
    # Per-path retry backoff (issue 10) slots in here: a `failures` count that `retry` carries
    # over from the taken mark (a success leaves no mark, so it starts again from 0) is all
    # `retry_delay` needs to grow FAILED's delay up to a cap.


class Schedule:
    """The dirty-path map and full-cycle clock of one agent."""

    def __init__(self, settle_s: float, rescan_interval_s: float) -> None:
        self.settle_s = settle_s
        self.rescan_interval_s = rescan_interval_s
        self.marks: dict[str, Mark] = {}
        self.full_due = 0.0
        """When the next full cycle is due (0: at once)."""
        self.rescan_requested = False
        """A full cycle was asked for (a watcher overflow, a resume): due at once."""
        self.trusted: set[str] = set()
        """Paths whose removal was seen one by one (the NFS server reported it): the
        mass-deletion guard does not count them."""

    # -- marks

    @property
    def pending(self) -> int:
        return len(self.marks)

    def mark(
        self, path: str, now: float, *, delay: float | None = None, forced: bool = False
    ) -> None:
        """`path` changed at `now`: look at it after `delay` (default: the settle time), or at
        once when `forced`. A later event replaces an earlier one's due time and force (a
        write after a COMMIT has to settle again); the first event's time is kept."""
        due = now if forced else now + (self.settle_s if delay is None else delay)
        mark = self.marks.get(path)
        if mark is None:
            self.marks[path] = Mark(now, due, forced)
        else:
            mark.due, mark.forced = due, forced

    def export_change(self, path: str, kind: str, now: float, dest: str | None = None) -> None:
        """The NFS server changed `path` (kind: one of EXPORT_CHANGE_KINDS; an unknown kind
        is looked at at once). A COMMIT makes the file due at once."""
        if kind in _REMOVALS:
            self.trusted.add(path)
        delay = None if kind in _DATA_WRITES else 0.0
        self.mark(path, now, forced=kind == "commit", delay=delay)
        if dest:
            self.mark(dest, now, delay=0.0)

    def trust_removal(self, path: str) -> None:
        """`path` was seen being removed on its own (not as part of a vanished tree)."""
        self.trusted.add(path)

    def trusted_done(self, trusted: frozenset[str], looked_at: Iterable[str] | None) -> None:
        """A cycle that had `trusted` looked at `looked_at` (None: everything): those
        removals are settled."""
        self.trusted -= trusted if looked_at is None else set(looked_at) & trusted

    def due(self, now: float) -> list[str]:
        """The marked paths whose time has come."""
        return [path for path, mark in self.marks.items() if mark.due <= now]

    def take(self, paths: Iterable[str]) -> dict[str, Mark]:
        """Unmark `paths` for a cycle; their marks are returned (paths not marked are left
        out)."""
        return {p: self.marks.pop(p) for p in paths if p in self.marks}

    def restore(self, taken: Mapping[str, Mark]) -> None:
        """Put back marks a cycle did not get to use (it failed or was halted). A mark that
        arrived meanwhile is kept: it is newer."""
        for path, mark in taken.items():
            self.marks.setdefault(path, mark)

    def retry(
        self, paths: Iterable[str], now: float, delay: float, taken: Mapping[str, Mark]
    ) -> None:
        """Mark `paths` (of a step that did not finish) again after `delay`, keeping the first
        event's time of the marks the cycle had taken."""
        for path in paths:
            self.mark(path, now, delay=delay)
            if path in taken:
                mark = self.marks[path]
                mark.since = min(mark.since, taken[path].since)

    def retry_delay(self, status: Status, ready_in: float = 0.0) -> float:
        """How long a path waits after a step that ended in `status`. `ready_in`: for
        UNSETTLED, the seconds until its source will have settled."""
        if status is Status.UNSETTLED:
            return max(0.0, ready_in)
        if status is Status.STALE:
            return self.settle_s  # it is being written: give it a settle time
        if status is Status.FAILED:
            return RETRY_FAILED_S
        raise ValueError(f"a step that is {status.value} is not retried")

    def converge_pause(self, ready_ins: Iterable[float]) -> float:
        """The pause between two full rounds of an initial sync that left work: until the
        first unsettled source settles, or a settle time when none is waiting to settle."""
        waits = list(ready_ins)
        if waits:
            return max(0.01, min(waits))
        return max(MIN_CONVERGE_PAUSE_S, self.settle_s)

    # -- full cycles

    def request_full(self) -> None:
        self.rescan_requested = True

    def full_is_due(self, now: float) -> bool:
        return self.rescan_requested or now >= self.full_due

    def start_full(self, now: float) -> None:
        """A full cycle starts: the next one is a rescan interval away."""
        self.full_due = now + self.rescan_interval_s
        self.rescan_requested = False

    def full_failed(self, now: float) -> None:
        """A full cycle failed: try again after RETRY_FAILED_S (or earlier, if due anyway)."""
        self.full_due = min(self.full_due, now + RETRY_FAILED_S)

    # -- sleeping

    def next_due(self) -> float | None:
        """When the earliest mark is due (None: no marks)."""
        return min((mark.due for mark in self.marks.values()), default=None)

    def sleep_for(self, now: float) -> float:
        """How long the loop may sleep: until the earliest mark or the next full cycle."""
        first = self.next_due()
        wake = self.full_due if first is None else min(first, self.full_due)
        return max(0.0, wake - now)
