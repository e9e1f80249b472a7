"""Keeping the worker processes of `processes: per-server` and `per-core` running.

A worker that exits is an event for each of its servers (`server.exit`), and is started again
with each server on the same port and with its faults in force (`server.restart`), after a
wait that grows while it keeps exiting soon after starting. Its servers' call counts reach the
topology's metrics, and go on across restarts. The changes it made but had not yet sent (at
most its last 10 ms) are found by a full scan of its servers' trees at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from filesim.errors import FilesimError
from filesim.events import Event, EventBus
from filesim.logs import RateLimited
from filesim.runtime.changes import ChangeRelay
from filesim.runtime.faults import FaultController
from filesim.runtime.metrics import CallCounts, TopologyMetrics, summed
from filesim.runtime.worker import ServerProcess, WorkerError, WorkerProcess
from filesim.runtime.workermain import Hosted, WorkerSpec

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
        self._restarts: dict[tuple[str, ...], int] = {}
        """Restarts of each worker in a row (by its servers' names), each soon after the last."""
        self._calls_before: dict[str, CallCounts] = {}
        """The call counts of each server's earlier workers."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @staticmethod
    def spawn(relays: Mapping[str, ChangeRelay], spec: WorkerSpec) -> WorkerProcess:
        """A worker for `spec`, whose clients' changes go to each server's relay (by name)."""
        return WorkerProcess(spec, lambda name, batch: relays[name].each(batch))

    def watch(self, group: list[RunningServer]) -> None:
        """Start the worker of `group` (the servers it serves) again whenever it exits."""
        _worker_of(group).on_exit = lambda code: self._exited(group, code)

    def _exited(self, group: list[RunningServer], code: int | None) -> None:
        # A server stopped alone before its worker ended stays stopped.
        group = [r for r in group if r.process is not None and not r.process.stopped]
        if not group:
            return
        for running in group:
            self._events.emit(Event("server.exit", running.name, detail={"code": code}))
            if running.agent is not None:  # its last changes may have died with it, unsent:
                running.agent.notify_folder_change(None)  # lost track, so rescan everything
        if not self._closed:
            task = asyncio.create_task(self._restart(group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _restart(self, group: list[RunningServer]) -> None:
        old = _worker_of(group)
        names = tuple(r.name for r in group)
        quick = time.monotonic() - old.started < RESTART_QUICK_S
        restarts = self._restarts.get(names, 0) if quick else 0
        delay = RESTART_DELAYS_S[min(restarts, len(RESTART_DELAYS_S) - 1)]
        self._restarts[names] = restarts + 1
        for running in group:  # what it answered since it last sent its counts died with it
            stats = old.servers[running.name].stats
            self._calls_before[running.name] = summed(
                self._calls_before.get(running.name, {}), stats.calls
            )
        log.warning("%s: restarting the NFS server process in %.0f s", ", ".join(names), delay)
        await asyncio.sleep(delay)
        await old.stop()
        again = dataclasses.replace(old.spec, servers=tuple(
            self._as_now(h, old.servers[h.server.name]) for h in old.spec.servers
            if h.server.name in names
        ))  # fmt: skip
        worker = self.spawn({r.name: r.relay for r in group}, again)
        for running in group:  # what stop() ends, should it come now
            running.nfs = running.process = worker.servers[running.name]
        self.watch(group)
        for running in group:
            try:
                await worker.servers[running.name].start()
                await self._faults.reapply(running.name)
            except (OSError, FilesimError) as exc:
                log.error("%s: its NFS server process did not start again: %s", running.name, exc)
                return  # it exits (or is stopped by a fault it could not take): that tries again
        for running in group:
            self._events.emit(Event("server.restart", running.name, detail={"pid": worker.pid}))

    def _as_now(self, hosted: Hosted, was: ServerProcess) -> Hosted:
        """`hosted` to start again: on the port it had, and built with the faults in force now
        (some of the topology's may be cleared, others added since)."""
        faults = [f.spec for f in self._faults.active(hosted.server.name)]
        server = hosted.server.model_copy(update={"faults": faults})
        return dataclasses.replace(hosted, server=server, host=was.host, port=was.port)

    async def pull_metrics(self, servers: Iterable[RunningServer]) -> None:
        """The workers' call counts into the topology's metrics, asked of all at once (a busy
        worker delays only its own answer, never the event loop)."""
        workers: dict[int, tuple[WorkerProcess, list[RunningServer]]] = {}
        for running in servers:
            if running.process is not None:
                worker = running.process.worker
                workers.setdefault(id(worker), (worker, []))[1].append(running)
        await asyncio.gather(*(self._pull(worker, group) for worker, group in workers.values()))

    async def _pull(self, worker: WorkerProcess, group: list[RunningServer]) -> None:
        try:
            await worker.pull()
        except WorkerError as exc:
            names = ", ".join(worker.names)
            _limited.warning(f"metrics {names}", "no metrics from %s: %s", names, exc)
        for running in group:
            process = running.process
            if process is not None and process.worker is worker:  # not restarted meanwhile
                before = self._calls_before.get(running.name, {})
                self._metrics.absorb(running.name, summed(before, process.stats.calls))

    async def close(self) -> None:
        """No more restarts (the topology is stopping); a restart under way is cancelled."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _worker_of(group: Sequence[RunningServer]) -> WorkerProcess:
    process = group[0].process
    assert process is not None, "a server of a worker group runs in a worker"
    return process.worker
