"""Prometheus metrics of a running topology: NFS calls per server and procedure, sync agents.

Each runner has its own registry (several topologies may run in one test process). The NFS
observer runs after every call on the event loop, so it only bumps plain counters of a
per-(server, program, procedure) record; the Prometheus families are built from them when
scraped. Sync agent gauges are read from the agents when scraped, not pushed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client import (
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from filesim.nfs.dispatch import Observer
from filesim.nfs.v4.const import Status as V4Status
from filesim.oncrpc.programs import NfsStat
from filesim.runtime.served import ServedNfs

if TYPE_CHECKING:
    from filesim.sync.agent import SyncAgent

NFS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
               0.5, 1.0, 2.5, 5.0, 10.0)  # fmt: skip
# `*_created` series double the output and no dashboard of ours uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

SYNC_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Observed(Protocol):
    """A running server, as the gauges read it at each scrape."""

    @property
    def name(self) -> str: ...

    nfs: ServedNfs
    agent: SyncAgent | None


def _status_name(status: int, program: str = "nfs") -> str:
    try:
        if program == "nfs4":
            return V4Status(status).name
        return NfsStat(status).name
    except ValueError:
        return str(status)


class _CallStats:
    """Counts of one (server, program, procedure): plain attributes, summed at scrape time.

    prometheus-client's own Counter and Histogram take a lock per update (~2.6 us a call
    together, 40% of a GETATTR); these updates cost a fraction of that. Calls dispatched in
    worker threads (COMMIT) may rarely lose an increment to a race: fine for metrics.
    """

    __slots__ = ("buckets", "count", "errors", "reply_bytes", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.reply_bytes = 0
        self.buckets = [0] * (len(NFS_BUCKETS) + 1)
        self.errors: dict[str, int] = {}

    def plus(self, other: _CallStats) -> _CallStats:
        total = _CallStats()
        total.count = self.count + other.count
        total.seconds = self.seconds + other.seconds
        total.reply_bytes = self.reply_bytes + other.reply_bytes
        total.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]
        total.errors = dict(self.errors)
        for name, n in other.errors.items():
            total.errors[name] = total.errors.get(name, 0) + n
        return total


CallCounts = dict[tuple[str, str, str], _CallStats]
"""Per (server, program, procedure): what a worker process sends when its metrics are pulled."""


def summed(earlier: CallCounts, now: CallCounts) -> CallCounts:
    """`now` with `earlier` added: a restarted worker's counts go on from its predecessor's."""
    if not earlier:
        return now
    total = dict(earlier)
    for key, stats in now.items():
        before = total.get(key)
        total[key] = stats if before is None else before.plus(stats)
    return total


class TopologyMetrics:
    """The metrics registry of one running topology.

    Servers in worker processes count their own calls; the runner `absorb`s those counts
    before each scrape and history sample."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.sync_latency = Histogram(
            "filesim_sync_latency_seconds", "From a change on one side to it being synced.",
            ["server"], buckets=SYNC_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self._calls: CallCounts = {}
        self.registry.register(_NfsCollector(self._calls))
        self._sources: _RuntimeCollector | None = None

    def nfs_observer(self, server: str) -> Observer:
        """The dispatcher observer that counts the calls of `server`."""
        calls = self._calls
        bounds = NFS_BUCKETS

        def observe(program: str, procedure: str, status: int, seconds: float, size: int) -> None:
            stats = calls.get((server, program, procedure))
            if stats is None:
                stats = calls[(server, program, procedure)] = _CallStats()
            stats.count += 1
            stats.seconds += seconds
            stats.reply_bytes += size
            stats.buckets[bisect_left(bounds, seconds)] += 1
            if status:
                name = _status_name(status, program)
                stats.errors[name] = stats.errors.get(name, 0) + 1

        return observe

    def sync_observer(self, server: str) -> Callable[[float], None]:
        return self.sync_latency.labels(server).observe

    def watch(
        self, servers: Callable[[], Iterable[Observed]], fault_count: Callable[[str], int]
    ) -> None:
        """Read sync agent, connection and fault gauges from `servers()` at each scrape."""
        if self._sources is None:
            self._sources = _RuntimeCollector(servers, fault_count)
            self.registry.register(self._sources)

    def counts(self, server: str) -> CallCounts:
        """The call counts of `server` (what a worker process hands over)."""
        return {key: stats for key, stats in list(self._calls.items()) if key[0] == server}

    def absorb(self, server: str, counts: CallCounts) -> None:
        """Make `counts` (pulled from `server`'s worker, cumulative) its call counts."""
        for key in [key for key in self._calls if key[0] == server]:
            if key not in counts:
                del self._calls[key]
        self._calls.update(counts)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def nfs_calls(self) -> dict[str, int]:
        """NFS calls answered so far, per server (MOUNT, rpcbind, NLM and NSM not counted)."""
        totals: dict[str, int] = {}
        for (server, program, _), stats in list(self._calls.items()):
            if program.startswith("nfs"):
                totals[server] = totals.get(server, 0) + stats.count
        return totals


class _NfsCollector(Collector):
    """The NFS call metrics, from the observers' plain counts."""

    def __init__(self, calls: dict[tuple[str, str, str], _CallStats]) -> None:
        self._calls = calls

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        labels = ["server", "program", "procedure"]
        requests = CounterMetricFamily(
            "filesim_nfs_requests", "RPC calls answered, by server and procedure.", labels=labels
        )
        errors = CounterMetricFamily(
            "filesim_nfs_errors", "NFS calls answered with an error status.",
            labels=[*labels, "status"],
        )  # fmt: skip
        latency = HistogramMetricFamily(
            "filesim_nfs_request_duration_seconds",
            "Time to answer a call (not counting injected latency).", labels=labels,
        )  # fmt: skip
        reply_bytes = CounterMetricFamily(
            "filesim_nfs_reply_bytes", "Bytes of RPC replies (READ data included).", labels=labels
        )
        for key, stats in sorted(list(self._calls.items())):
            values = list(key)
            requests.add_metric(values, stats.count)
            reply_bytes.add_metric(values, stats.reply_bytes)
            cumulative, running = [], 0
            for bound, n in zip((*NFS_BUCKETS, float("inf")), stats.buckets, strict=True):
                running += n
                cumulative.append((floatToGoString(bound), running))  # type: ignore[no-untyped-call]
            latency.add_metric(values, cumulative, stats.seconds)
            for status, n in sorted(dict(stats.errors).items()):
                errors.add_metric([*values, status], n)
        yield from (requests, errors, latency, reply_bytes)


class _RuntimeCollector(Collector):
    """Gauges read from the running servers when scraped."""

    def __init__(
        self, servers: Callable[[], Iterable[Observed]], fault_count: Callable[[str], int]
    ) -> None:
        self._servers = servers
        self._fault_count = fault_count

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        pending = GaugeMetricFamily(
            "filesim_sync_pending", "Paths waiting to be synced.", labels=["server"]
        )
        actions = CounterMetricFamily(
            "filesim_sync_actions", "Sync actions carried out, by kind.", labels=["server", "kind"]
        )
        conflicts = CounterMetricFamily(
            "filesim_sync_conflicts", "Paths changed on both sides.", labels=["server"]
        )
        errors = CounterMetricFamily(
            "filesim_sync_errors", "Sync actions that failed.", labels=["server"]
        )
        halted = GaugeMetricFamily(
            "filesim_sync_halted", "1 while the mass-deletion guard holds the sync.",
            labels=["server"],
        )  # fmt: skip
        connections = GaugeMetricFamily(
            "filesim_nfs_connections", "Open client connections.", labels=["server"]
        )
        faults = GaugeMetricFamily(
            "filesim_faults_active", "Injected faults in force.", labels=["server"]
        )
        for running in self._servers():
            name = running.name
            connections.add_metric([name], running.nfs.connections)
            faults.add_metric([name], self._fault_count(name))
            if running.agent is None:
                continue
            status = running.agent.status()
            pending.add_metric([name], status.pending)
            for kind, count in sorted(status.by_kind.items()):
                actions.add_metric([name, kind.removeprefix("sync.")], count)
            conflicts.add_metric([name], status.conflicts)
            errors.add_metric([name], status.errors)
            halted.add_metric([name], 1 if status.halted else 0)
        yield from (pending, actions, conflicts, errors, halted, connections, faults)
