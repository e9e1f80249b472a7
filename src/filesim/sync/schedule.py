"""When the agent looks at what: the dirty-path map, the full-cycle clock and retry delays.

Pure: no I/O and no clock of its own. Every call that depends on time is given `now` (monotonic
seconds), so a test drives a schedule through any sequence of events without an event loop.

A path is *marked* when an event points at it. When its mark is *due* depends on the event:

- a change that is whole (a rename, a removal, a new directory) is due at once on the export
  side, after `settle_s` on the folder side (to take a burst of them in one cycle);
- a file its writer declared complete — an NFS COMMIT (which Linux clients send on close; an
  NFSv4 CLOSE is reported as one), or an inotify close-write in the folder — is due once it has
  been quiet for `settle_s`;
- a data write without such a close is due only after `stall_s` of quiet: a writer pausing
  between pieces (a slow download, a logger) is not done, and a file is never published while
  it is still being written. Until then the path is *held*: not even a full cycle copies it.

The agent takes the due paths into a cycle, and with each the other end of a rename the NFS
server reported, due or not: a cycle that sees both ends sees a rename. A path that did not
finish is marked again after a retry delay that depends on why, and grows with each consecutive
failure up to RETRY_MAX_S (`backoff`), keeping the time of its first event so the latency it
reports includes the retries: no error of any kind makes the agent spin. Besides marks there
are full cycles (scan everything): every `rescan_interval_s`, at once when asked (a watcher
lost track, a resume), and after a failed one, later each time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from filesim.sync.outcome import Status

EXPORT_CHANGE_KINDS = frozenset(
    {"create", "write", "commit", "close", "setattr", "remove", "rmdir", "mkdir", "rename",
     "link", "symlink", "mknod", "rename-from", "rename-to"}
)  # fmt: skip
"""What the NFS server reports (see `SyncAgent.notify_export_change`)."""
WRITES = frozenset({"create", "write", "setattr"})
"""Changes to a file's data that its writer may not be done with."""
CLOSES = frozenset({"commit", "close"})
"""The writer declared the file complete (NFSv3 COMMIT, NFSv4 CLOSE, inotify close-write)."""
_REMOVALS = frozenset({"remove", "rmdir", "rename", "rename-from"})

RETRY_MIN_S = 1.0
"""The first retry of a failed path (or full cycle); each further failure doubles it..."""
RETRY_MAX_S = 60.0
"""...up to this."""
FREE_STALE_RETRIES = 3
"""A path found changed under the plan (stale) is planned again after a settle time this many
times in a row, then with the growing delay: a path that never holds still does not spin."""
MIN_RETRY_S = 0.01
"""No retry comes sooner than this, whatever the reason."""
MIN_CONVERGE_PAUSE_S = 0.05
"""The shortest pause between two rounds of an initial sync waiting for files to settle."""


def backoff(failures: int) -> float:
    """The delay after the `failures`-th failure in a row: 1 s, 2 s, 4 s ... at most 60 s."""
    if failures <= 0:
        return 0.0
    return min(RETRY_MAX_S, RETRY_MIN_S * 2.0 ** min(failures - 1, 32))


@dataclass(slots=True)
class Mark:
    """A path some event pointed at, not synced yet."""

    since: float
    """Time of the first event not yet synced (the sync latency is measured from it)."""
    due: float
    """When the path is to be looked at."""
    forced: bool = False
    """Its writer declared it complete: copy it without the executor's settle check."""
    writing: bool = False
    """The last event was a data write without a close: held until `due`."""
    failures: int = 0
    """Consecutive failed (or stale) attempts; a success leaves no mark, so it starts at 0."""
    errors: int = 0
    """Of those, the failures in a row that were errors (not a change under the plan)."""
    not_before: float = 0.0
    """The backoff: no event brings the path forward of this."""


class Schedule:
    """The dirty-path map and full-cycle clock of one agent."""

    def __init__(self, settle_s: float, rescan_interval_s: float, stall_s: float = 5.0) -> None:
        self.settle_s = settle_s
        self.rescan_interval_s = rescan_interval_s
        self.stall_s = max(stall_s, settle_s)
        self.marks: dict[str, Mark] = {}
        self.full_due = 0.0
        """When the next full cycle is due (0: at once)."""
        self.full_failures = 0
        """Full cycles failed in a row."""
        self.rescan_requested = False
        """A full cycle was asked for (a watcher overflow, a resume): due at once."""
        self.trusted: set[str] = set()
        """Paths whose removal was seen one by one (the NFS server reported it): the
        mass-deletion guard does not count them."""
        self.moves: dict[str, set[str]] = {}
        """The marked paths a rename joined, each to the other end(s). They go into a cycle
        together whichever is due first: the cycle sees the old path gone and its inode at the
        new one, a rename. Taken apart (a later event, such as the echo of the agent's own
        copy, put one end off), the new path alone is a new file to copy, the old one a
        deletion: the same result, by a copy and a delete, for a new inode in the folder."""

    # -- marks

    @property
    def pending(self) -> int:
        return len(self.marks)

    def mark(
        self,
        path: str,
        now: float,
        *,
        delay: float | None = None,
        forced: bool = False,
        kind: str = "",
    ) -> None:
        """`path` changed at `now`: look at it after `delay` (default: the settle time), or
        as `kind` says (one of WRITES: after the stall time, held meanwhile; one of CLOSES:
        after the settle time; "attrib": keeps a pending write pending). A later event replaces
        an earlier one's due time (a write after a COMMIT has to wait again); the first event's
        time, the failure count and the backoff are kept."""
        mark = self.marks.get(path)
        if kind == "attrib" and mark is not None and mark.writing:
            return  # a mode or times change says nothing about whether the writer is done
        writing = kind in WRITES
        if writing:
            delay = self.stall_s
        elif kind in CLOSES:
            delay = self.settle_s
        due = now if forced and delay is None else now + (self.settle_s if delay is None else delay)
        if mark is None:
            self.marks[path] = Mark(now, due, forced, writing)
        else:
            mark.due, mark.forced, mark.writing = max(due, mark.not_before), forced, writing

    def export_change(self, path: str, kind: str, now: float, dest: str | None = None) -> None:
        """The NFS server changed `path` (kind: one of EXPORT_CHANGE_KINDS; an unknown kind
        is looked at at once). A COMMIT makes the file due once it has settled."""
        if kind in _REMOVALS:
            self.trusted.add(path)
        if kind in WRITES or kind in CLOSES:
            self.mark(path, now, kind=kind, forced=kind in CLOSES)
        else:
            self.mark(path, now, delay=0.0)
        if dest:
            self.mark(dest, now, delay=0.0)
            self.moves.setdefault(path, set()).add(dest)
            self.moves.setdefault(dest, set()).add(path)

    def trust_removal(self, path: str) -> None:
        """`path` was seen being removed on its own (not as part of a vanished tree)."""
        self.trusted.add(path)

    def trusted_done(self, trusted: frozenset[str], looked_at: Iterable[str] | None) -> None:
        """A cycle that had `trusted` looked at `looked_at` (None: everything): those
        removals are settled."""
        self.trusted -= trusted if looked_at is None else set(looked_at) & trusted

    def due(self, now: float) -> list[str]:
        """The marked paths whose time has come, with the other ends of their renames."""
        due = [path for path, mark in self.marks.items() if mark.due <= now]
        if self.moves:
            seen = set(due)
            for path in due:  # grows as it goes: a chain of renames comes whole
                for end in self.moves.get(path, ()):
                    if end not in seen and end in self.marks:
                        seen.add(end)
                        due.append(end)
        return due

    def held(self, now: float) -> dict[str, float]:
        """Paths a writer is still at (a write without a close, not quiet for the stall time
        yet), with the seconds until they may move: no cycle copies them before."""
        return {p: m.due - now for p, m in self.marks.items() if m.writing and m.due > now}

    def failing(self, threshold: int) -> int:
        """How many paths failed with an error at least `threshold` times in a row (and are
        still to be retried)."""
        return sum(1 for mark in self.marks.values() if mark.errors >= threshold)

    def take(self, paths: Iterable[str]) -> dict[str, Mark]:
        """Unmark `paths` for a cycle; their marks are returned (paths not marked are left
        out)."""
        taken = {p: self.marks.pop(p) for p in paths if p in self.marks}
        for path in taken if self.moves else ():
            for end in self.moves.pop(path, ()):
                ends = self.moves.get(end)
                if ends is not None:
                    ends.discard(path)
                    if not ends:
                        del self.moves[end]
        return taken

    def restore(self, taken: Mapping[str, Mark]) -> None:
        """Put back marks a cycle did not get to use (it was halted). A mark that arrived
        meanwhile is kept: it is newer."""
        for path, mark in taken.items():
            self.marks.setdefault(path, mark)

    def failed(self, taken: Mapping[str, Mark], now: float) -> None:
        """The cycle that had taken these marks failed as a whole: each path is tried again
        after its backoff."""
        for path, mark in taken.items():
            n = mark.failures + 1
            self._again(path, now, mark, n, backoff(n), mark.errors)

    def retry(
        self,
        paths: Iterable[str],
        now: float,
        status: Status,
        taken: Mapping[str, Mark],
        ready_in: float = 0.0,
    ) -> None:
        """Mark `paths` (of a step that ended in `status`) again, after a delay that depends
        on why and on how often it failed in a row; keep the first event's time of the marks
        the cycle had taken."""
        for path in paths:
            prior = taken.get(path)
            failures = 0 if prior is None else prior.failures
            errors = 0 if prior is None else prior.errors
            if status is not Status.UNSETTLED:
                failures += 1
            errors = errors + 1 if status is Status.FAILED else 0
            delay = self.retry_delay(status, ready_in, failures)
            self._again(path, now, prior, failures, delay, errors)

    def _again(
        self, path: str, now: float, prior: Mark | None, failures: int, delay: float, errors: int
    ) -> None:
        delay = max(delay, MIN_RETRY_S)
        current = self.marks.get(path)
        if current is None:  # no event since the cycle took it
            since = now if prior is None else prior.since
            writing = prior is not None and prior.writing
            current = self.marks[path] = Mark(since, now + delay, writing=writing)
        else:  # an event arrived meanwhile: its due time, but not before the backoff
            current.due = max(current.due, now + delay)
            if prior is not None:
                current.since = min(current.since, prior.since)
        current.failures = max(current.failures, failures)
        current.errors = max(current.errors, errors)
        current.not_before = now + delay if failures else 0.0

    def retry_delay(self, status: Status, ready_in: float = 0.0, failures: int = 1) -> float:
        """How long a path waits after a step that ended in `status`, its `failures`-th
        failure in a row. `ready_in`: for UNSETTLED, the seconds until it may move."""
        if status is Status.UNSETTLED:
            return max(0.0, ready_in)
        if status is Status.STALE:  # it is being written: give it a settle time
            return max(self.settle_s, backoff(failures - FREE_STALE_RETRIES))
        if status is Status.FAILED:
            return backoff(failures)
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

    def full_done(self) -> None:
        self.full_failures = 0

    def full_failed(self, now: float) -> None:
        """A full cycle failed: try again after a backoff (or earlier, if due anyway)."""
        self.full_failures += 1
        self.full_due = min(self.full_due, now + backoff(self.full_failures))

    # -- sleeping

    def next_due(self) -> float | None:
        """When the earliest mark is due (None: no marks)."""
        return min((mark.due for mark in self.marks.values()), default=None)

    def sleep_for(self, now: float) -> float:
        """How long the loop may sleep: until the earliest mark or the next full cycle."""
        first = self.next_due()
        wake = self.full_due if first is None else min(first, self.full_due)
        return max(0.0, wake - now)
