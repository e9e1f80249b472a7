"""The worker process of `processes: per-server` and `per-core`: the NFS side of one or more
servers, reporting to the topology's process over a pipe (the protocol is described in
`runtime.worker`).

A worker whose pipe closes stops: a topology killed outright leaves no server behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from filesim.nfs.server import NfsServer
from filesim.runtime.build import build_nfs_server
from filesim.runtime.loop import loop_factory
from filesim.runtime.memory import tune_malloc
from filesim.runtime.metrics import CallCounts, TopologyMetrics
from filesim.topology import Layout, Server

CHANGES_EVERY_S = 0.01
"""A worker sends what clients changed at most this often: a message per change would cost
both processes a wake-up per NFS call, and the sync agent waits 100 ms for a file to settle."""
STATS_EVERY_S = 1.0
"""While calls come, a worker sends its call counts this often unasked: the topology asks for
them at each scrape, and a worker that dies takes only the counts since its last send along."""

Change = tuple[str, str, str | None]


@dataclass(frozen=True)
class Hosted:
    """One server a worker serves, and where."""

    server: Server
    host: str
    port: int
    rpcbind_port: int | None


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to build its servers (pickled into the new process)."""

    layout: Layout
    servers: tuple[Hosted, ...]

    @property
    def names(self) -> list[str]:
        return [hosted.server.name for hosted in self.servers]


@dataclass(frozen=True)
class Stats:
    calls: CallCounts
    connections: int


def worker_main(spec: WorkerSpec, conn: Connection) -> None:
    """The worker process: serve until told to stop or the topology's pipe closes."""
    for name in ("SIGINT", "SIGBREAK"):  # Ctrl-C reaches the whole group: the topology stops us
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    tune_malloc()
    channel = _Channel(conn)
    logging.basicConfig(level=logging.INFO, handlers=[_PipeLog(channel)], force=True)
    try:
        # The loop `filesim up` serves on (uvloop when installed): a worker wakes per call.
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(_serve(spec, channel))
    finally:
        conn.close()


class _Channel:
    """The worker's end of the pipe: sends from any thread, one message at a time."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._lock = threading.Lock()

    def send(self, message: tuple[Any, ...]) -> None:
        with self._lock, contextlib.suppress(OSError):  # the topology is gone: we stop anyway
            self.conn.send(message)


class _PipeLog(logging.Handler):
    """Log records go to the topology's process, which logs them as its own."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            self._channel.send(("log", record.levelno, record.name, text))
        except Exception:
            self.handleError(record)


async def _serve(spec: WorkerSpec, channel: _Channel) -> None:
    """Start every server of `spec`, in order; the first that cannot start ends the worker
    (the topology's start fails with its error)."""
    worker = _Worker(channel)
    for hosted in spec.servers:
        name = hosted.server.name
        try:
            nfs = build_nfs_server(
                hosted.server, spec.layout, hosted.host, hosted.port,
                worker.listener(name), hosted.rpcbind_port,
            )  # fmt: skip
            nfs.dispatcher.observer = worker.metrics.nfs_observer(name)
            await nfs.start()
        except OSError as exc:
            channel.send(("bind", name, exc.errno, exc.strerror or str(exc)))
            break
        except Exception as exc:
            channel.send(("failed", name, str(exc) or type(exc).__name__))
            break
        worker.servers[name] = nfs
        channel.send(("ready", name, nfs.host, nfs.port, nfs.rpcbind_port))
    else:
        await worker.serve()
    await worker.close()


class _Worker:
    """The running worker: batches changes, answers requests, stops when told."""

    def __init__(self, channel: _Channel) -> None:
        self.servers: dict[str, NfsServer] = {}
        self.metrics = TopologyMetrics()
        self._channel = channel
        self._changes: dict[str, list[Change]] = {}
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._stop_ident = 0
        self._answering: set[asyncio.Future[None]] = set()
        """Requests being answered (their tasks, kept until done)."""

    def listener(self, name: str) -> Callable[[str, str, str | None], None]:
        """The change listener of server `name`: a message per `CHANGES_EVERY_S` for all the
        worker's servers together, however many changes."""

        def on_change(kind: str, path: str, dest: str | None) -> None:
            if not self._changes:
                self._loop.call_later(CHANGES_EVERY_S, self._flush)
            self._changes.setdefault(name, []).append((kind, path, dest))

        return on_change

    def _flush(self) -> None:
        if self._changes:
            batch, self._changes = self._changes, {}
            self._channel.send(("changes", batch))

    async def serve(self) -> None:
        reader = threading.Thread(target=self._commands, name="topology-pipe", daemon=True)
        reader.start()
        reporter = asyncio.create_task(self._report_stats())
        await self._stop.wait()
        reporter.cancel()

    async def close(self) -> None:
        """Stop every server started; the changes they made are sent first."""
        for name in list(self.servers):
            await self._stop_one(name)
        self._flush()
        if self._stop_ident:
            self._channel.send(("reply", self._stop_ident, True, None))

    async def _stop_one(self, name: str) -> None:
        """Stop server `name` alone; the worker goes on serving the others."""
        nfs = self.servers.pop(name, None)
        if nfs is not None:
            await nfs.stop()
            nfs.close()

    def _stats(self) -> dict[str, Stats]:
        return {
            name: Stats(self.metrics.counts(name), nfs.connections)
            for name, nfs in self.servers.items()
        }

    async def _report_stats(self) -> None:
        """The call counts every `STATS_EVERY_S`, when they have changed."""
        sent = 0
        while True:
            await asyncio.sleep(STATS_EVERY_S)
            stats = self._stats()
            total = sum(c.count for one in stats.values() for c in one.calls.values())
            if total != sent:
                self._channel.send(("stats", stats))
                sent = total

    def _commands(self) -> None:
        """The reader thread: each request to the loop; a closed pipe stops the worker."""
        while True:
            try:
                ident, command, argument = self._channel.conn.recv()
            except (EOFError, OSError):
                self._loop.call_soon_threadsafe(self._stop.set)
                return
            self._loop.call_soon_threadsafe(self._begin, ident, command, argument)
            if command == "stop":
                return

    def _begin(self, ident: int, command: str, argument: Any) -> None:
        """Answer a request on the loop, in the order they came (each runs to its first
        wait before the next starts: faults are in force in the order they were sent)."""
        task = asyncio.ensure_future(self._answer(ident, command, argument))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _answer(self, ident: int, command: str, argument: Any) -> None:
        if command == "stop":
            self._stop_ident = ident  # answered once stopped
            self._stop.set()
            return
        try:
            value: object = None
            if command == "faults":
                name, specs = argument
                await self.servers[name].apply_faults(specs)
            elif command == "stats":
                value = self._stats()
            elif command == "stop-server":
                await self._stop_one(argument)
            else:
                raise ValueError(f"unknown request {command!r}")
        except Exception as exc:
            self._channel.send(("reply", ident, False, str(exc) or type(exc).__name__))
            return
        self._channel.send(("reply", ident, True, value))
