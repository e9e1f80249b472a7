"""The last hour of each server, in memory: NFS operations per second and sync latency.

The dashboard's charts read it (`GET /api/history`). Every `interval_s` the runtime takes one
sample per server: the NFS calls answered since the previous sample (as a rate) and the p50 and
p99 of the sync latencies observed in that interval. Each server keeps at most `keep` samples
(a ring: one hour at the default five seconds), and an interval keeps at most
`MAX_LATENCIES` latencies, so memory stays bounded whatever the load.
"""

from __future__ import annotations

import math
import random
import statistics
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

INTERVAL_S = 5.0
KEEP = 720
MAX_LATENCIES = 4096


class ServerHistory(BaseModel):
    """One server's samples, column by column (uPlot's data layout)."""

    model_config = ConfigDict(extra="forbid")

    time: list[float] = Field(description="Unix time of each sample.")
    nfs_ops: list[float] = Field(description="NFS calls answered per second.")
    p50_ms: list[float | None] = Field(description="Median sync latency in the interval.")
    p99_ms: list[float | None] = Field(description="99th percentile sync latency.")
    synced: list[int] = Field(description="Sync latencies measured in the interval.")


class HistoryDoc(BaseModel):
    """`GET /api/history`: the samples of every server (or of one)."""

    model_config = ConfigDict(extra="forbid")

    interval_s: float
    keep: int
    servers: dict[str, ServerHistory]


@dataclass
class _Ring:
    keep: int
    time: deque[float] = field(init=False)
    nfs_ops: deque[float] = field(init=False)
    p50: deque[float | None] = field(init=False)
    p99: deque[float | None] = field(init=False)
    synced: deque[int] = field(init=False)
    latencies: list[float] = field(default_factory=list)
    seen: int = 0
    calls: int | None = None

    def __post_init__(self) -> None:
        self.time, self.nfs_ops = deque(maxlen=self.keep), deque(maxlen=self.keep)
        self.p50, self.p99 = deque(maxlen=self.keep), deque(maxlen=self.keep)
        self.synced = deque(maxlen=self.keep)

    def doc(self) -> ServerHistory:
        return ServerHistory(
            time=list(self.time), nfs_ops=list(self.nfs_ops), p50_ms=list(self.p50),
            p99_ms=list(self.p99), synced=list(self.synced),
        )  # fmt: skip


def _percentile(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


class MetricsHistory:
    """Bounded per-server rings of samples; `record_latency` may be called from any thread."""

    def __init__(self, interval_s: float = INTERVAL_S, keep: int = KEEP) -> None:
        if not (math.isfinite(interval_s) and interval_s > 0 and keep > 0):
            raise ValueError("the history needs a positive interval and size")
        self.interval_s = interval_s
        self.keep = keep
        self._rings: dict[str, _Ring] = {}
        self._last: float | None = None
        self._lock = threading.Lock()

    def _ring(self, server: str) -> _Ring:
        ring = self._rings.get(server)
        if ring is None:
            ring = self._rings[server] = _Ring(self.keep)
        return ring

    def record_latency(self, server: str, seconds: float) -> None:
        """One sync latency of `server` (from a change to it being synced)."""
        with self._lock:
            ring = self._ring(server)
            ring.seen += 1
            if len(ring.latencies) < MAX_LATENCIES:
                ring.latencies.append(seconds * 1000)
            else:  # keep a uniform sample of the interval (reservoir), not its first part
                slot = random.randrange(ring.seen)
                if slot < MAX_LATENCIES:
                    ring.latencies[slot] = seconds * 1000

    def sample(self, now: float, calls: Mapping[str, int]) -> None:
        """Close the current interval at `now`; `calls`: NFS calls answered so far, per
        server (a running total, as the metrics count them)."""
        with self._lock:
            elapsed = None if self._last is None else now - self._last
            self._last = now
            for server in sorted(set(calls) | set(self._rings)):
                ring = self._ring(server)
                total = calls.get(server, 0)
                rate = 0.0
                if ring.calls is not None and elapsed and elapsed > 0:
                    rate = max(0, total - ring.calls) / elapsed
                ring.calls = total
                values = sorted(ring.latencies)
                ring.time.append(round(now, 3))
                ring.nfs_ops.append(round(rate, 2))
                ring.p50.append(_percentile(values, 50))
                ring.p99.append(_percentile(values, 99))
                ring.synced.append(ring.seen)
                ring.latencies, ring.seen = [], 0

    def doc(self, server: str | None = None) -> HistoryDoc:
        with self._lock:
            rings = {n: r.doc() for n, r in self._rings.items() if server in (None, n)}
        return HistoryDoc(interval_s=self.interval_s, keep=self.keep, servers=rings)
