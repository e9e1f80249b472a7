"""Keeping the worker processes of `processes: per-server` running.

A worker that exits is an event (`server.exit`) and is started again on the same port with
its faults in force (`server.restart`), after a wait that grows while it keeps exiting soon
after starting. Its call counts reach the topology's metrics, and go on across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from filesim.errors import FilesimError
from filesim.events import Event, EventBus
from filesim.logs import RateLimited
from filesim.runtime.changes import ChangeRelay
from filesim.runtime.faults import FaultController
from filesim.runtime.metrics import CallCounts, TopologyMetrics, summed
from filesim.runtime.worker import ServerProcess, WorkerError
from filesim.runtime.workermain import WorkerSpec

if TYPE_CHECKING:
    from filesim.runtime.runner import RunningServer

log = logging.getLogger(__name__)
_limited = RateLimited(log)  # called at each scrape

RESTART_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
"""Waits before a worker process that exited is started again, longer while it keeps exiting."""
RESTART_QUICK_S = 60.0
"""A worker that exits sooner than this after its start counts towards the longer waits."""


class WorkerSupervisor:
    """The worker processes of one running topology."""

    def __init__(self, events: EventBus, faults: FaultController, metrics: TopologyMetrics) -> None:
        self._events, self._faults, self._metrics = events, faults, metrics
        self._restarts: dict[str, int] = {}
        """Restarts of each server's worker in a row, each soon after the one before."""
        self._calls_before: dict[str, CallCounts] = {}
        """The call counts of each server's earlier workers."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @staticmethod
    def spawn(relay: ChangeRelay, spec: WorkerSpec) -> ServerProcess:
        """A worker for `spec`, whose clients' changes go to `relay`."""
        return ServerProcess(spec, relay.each)

    def watch(self, running: RunningServer, spec: WorkerSpec) -> None:
        """Start `running`'s worker (built from `spec`) again whenever it exits."""
        assert running.process is not None
        running.process.on_exit = lambda code: self._exited(running, spec, code)

    def _exited(self, running: RunningServer, spec: WorkerSpec, code: int | None) -> None:
        self._events.emit(Event("server.exit", running.name, detail={"code": code}))
        if not self._closed:
            task = asyncio.create_task(self._restart(running, spec))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _restart(self, running: RunningServer, spec: WorkerSpec) -> None:
        old = running.process
        assert old is not None
        name = running.name
        quick = time.monotonic() - old.started < RESTART_QUICK_S
        restarts = self._restarts.get(name, 0) if quick else 0
        delay = RESTART_DELAYS_S[min(restarts, len(RESTART_DELAYS_S) - 1)]
        self._restarts[name] = restarts + 1
        # What it answered since it last sent its counts (`STATS_EVERY_S`) died with it.
        self._calls_before[name] = summed(self._calls_before.get(name, {}), old.stats.calls)
        log.warning("%s: restarting its NFS server process in %.0f s", name, delay)
        await asyncio.sleep(delay)
        await old.stop()
        again = dataclasses.replace(spec, host=old.host, port=old.port)
        process = self.spawn(running.relay, again)
        running.nfs = running.process = process  # what stop() ends, should it come now
        self.watch(running, again)
        try:
            await process.start()
            await self._faults.reapply(name)
        except (OSError, FilesimError) as exc:
            log.error("%s: its NFS server process did not start again: %s", name, exc)
            return  # it exits (or is stopped by a fault it could not take): that tries again
        self._events.emit(Event("server.restart", name, detail={"pid": process.pid}))

    async def pull_metrics(self, servers: Iterable[RunningServer]) -> None:
        """The workers' call counts into the topology's metrics, asked of all at once (a busy
        worker delays only its own answer, never the event loop)."""
        workers = [running for running in servers if running.process is not None]
        await asyncio.gather(*(self._pull(running) for running in workers))

    async def _pull(self, running: RunningServer) -> None:
        process = running.process
        assert process is not None
        try:
            stats = await process.pull()
        except WorkerError as exc:
            _limited.warning(f"metrics {process.name}", "no metrics from %s: %s", process.name, exc)
            stats = process.stats
        if process is running.process:  # not restarted meanwhile
            before = self._calls_before.get(process.name, {})
            self._metrics.absorb(process.name, summed(before, stats.calls))

    async def close(self) -> None:
        """No more restarts (the topology is stopping); a restart under way is cancelled."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
