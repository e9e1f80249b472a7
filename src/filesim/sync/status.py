"""What a sync agent reports about itself: one typed value (`SyncStatus`, read by the runtime
document, the HTTP API, `filesim status`, `filesim verify`, the metrics and the pytest fixture),
and the two measurements behind it that need memory: the latency window and the echo check."""

from __future__ import annotations

import statistics
from collections import OrderedDict, deque

from pydantic import BaseModel, ConfigDict, Field

from filesim.sync.state import Entry, Side, other


class SyncStatus(BaseModel):
    """A snapshot of one agent's state and counters."""

    model_config = ConfigDict(extra="forbid")

    server: str
    direction: str = Field(description="both | folder-to-export | export-to-folder | none")
    continuous: bool = Field(description="Whether the agent keeps syncing after the start.")
    running: bool = Field(False, description="The agent's loop is alive (not ended or crashed).")
    ready: bool = Field(False, description="The initial sync (if any) is over.")
    pending: int = Field(0, description="Paths waiting to be synced.")
    last_sync: float | None = Field(None, description="Unix time of the last completed action.")
    p50_ms: float | None = None
    p99_ms: float | None = None
    conflicts: int = 0
    halted: str | None = Field(None, description="Why the mass-deletion guard holds the sync.")
    actions: int = Field(0, description="Sync actions carried out.")
    by_kind: dict[str, int] = Field(default_factory=dict)
    echoes: int = Field(
        0, description="Copies that carried back a version filesim itself had published: a loop."
    )
    errors: int = 0
    watcher: str | None = Field(
        None,
        description="What watches the folder: 'events (local folder)', 'polling (9p folder)'...; "
        "None while the agent watches nothing (not continuous, or not started).",
    )
    state: str = Field(
        "idle",
        description=(
            "idle (not started) | starting (initial sync running) | running | done (an "
            "initial-sync-only policy that finished) | failing (its cycles or some paths keep "
            "failing: see reason) | halted (the mass-deletion guard) | stopped (its run ended: "
            "see reason)"
        ),
    )
    reason: str | None = Field(None, description="Why the agent is in its state (if not running).")
    since: float | None = Field(None, description="Unix time the agent entered its state.")
    failing_paths: int = Field(0, description="Paths that failed several times in a row.")
    last_error: str | None = Field(None, description="The last error of a path or a cycle.")
    last_error_at: float | None = Field(None, description="Unix time of the last error.")
    cycles: int = Field(0, description="Sync cycles run (full and partial).")
    events_lost: int = Field(
        0, description="Times the OS dropped file events (a watcher overflow): each a rescan."
    )
    events_lost_at: float | None = Field(None, description="Unix time of the last such drop.")

    @property
    def healthy(self) -> bool:
        """Doing its job: running, or an initial-sync-only agent that is done."""
        return self.state in ("running", "done")


class LatencyWindow:
    """The most recent sync latencies, in milliseconds, and their percentiles."""

    def __init__(self, size: int = 2048) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, ms: float) -> None:
        self._values.append(ms)

    def __len__(self) -> int:
        return len(self._values)

    def percentile(self, q: float) -> float | None:
        """The q-quantile (0 < q < 1, in hundredths) rounded to 0.1 ms; None when empty."""
        if not self._values:
            return None
        if len(self._values) == 1:
            return round(self._values[0], 1)
        cuts = statistics.quantiles(self._values, n=100, method="inclusive")
        return round(cuts[int(q * 100) - 1], 1)


class EchoCheck:
    """Counts copies that carry back a version this agent itself published: a sync loop.

    The archive is what keeps an agent from copying its own publish back (the copy is
    recorded, so its echo on the other side is no change); this is the independent check that
    notices when that failed. It remembers what each recent copy published, per side and path
    (the inode included: only that very file is an echo, not an equal one), and a later copy
    *from* that side and path of exactly that file is an echo.
    """

    def __init__(self, size: int = 4096) -> None:
        self.count = 0
        self._size = size
        self._published: OrderedDict[tuple[Side, str], Entry] = OrderedDict()

    def copied(self, src: Side, path: str, entry: Entry, published: Entry | None) -> bool:
        """A copy of `entry` from `src` at `path` was published as `published` on the other
        side. True (and counted) when `entry` is a version this agent had published itself."""
        mine = self._published.pop((src, path), None)
        echo = mine is not None and entry.unchanged(mine)
        if echo:
            self.count += 1
        if published is not None:
            key = (other(src), path)
            self._published[key] = published
            self._published.move_to_end(key)
            while len(self._published) > self._size:
                self._published.popitem(last=False)
        return echo
