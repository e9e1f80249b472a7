"""The worker process of `processes: per-server`: one server's NFS side, reporting to the
topology's process over a pipe (the protocol is described in `runtime.worker`).

A worker whose pipe closes stops: a topology killed outright leaves no server behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
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
class WorkerSpec:
    """What a worker needs to build its server (pickled into the new process)."""

    server: Server
    layout: Layout
    host: str
    port: int
    rpcbind_port: int | None


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
    worker = _Worker(spec.server.name, channel)
    try:
        nfs = build_nfs_server(
            spec.server, spec.layout, spec.host, spec.port, worker.on_change, spec.rpcbind_port
        )
        nfs.dispatcher.observer = worker.metrics.nfs_observer(worker.name)
        await nfs.start()
    except OSError as exc:
        channel.send(("bind", exc.errno, exc.strerror or str(exc)))
        return
    except Exception as exc:
        channel.send(("failed", str(exc) or type(exc).__name__))
        return
    channel.send(("ready", nfs.host, nfs.port, nfs.rpcbind_port))
    await worker.serve(nfs)


class _Worker:
    """The running worker: batches changes, answers requests, stops when told."""

    def __init__(self, name: str, channel: _Channel) -> None:
        self.name = name
        self.metrics = TopologyMetrics()
        self._channel = channel
        self._changes: list[Change] = []
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._stop_ident = 0

    def on_change(self, kind: str, path: str, dest: str | None) -> None:
        """The server's change listener: one message per `CHANGES_EVERY_S`, however many."""
        if not self._changes:
            self._loop.call_later(CHANGES_EVERY_S, self._flush)
        self._changes.append((kind, path, dest))

    def _flush(self) -> None:
        if self._changes:
            batch, self._changes = self._changes, []
            self._channel.send(("changes", batch))

    async def serve(self, nfs: NfsServer) -> None:
        self._nfs = nfs
        reader = threading.Thread(target=self._commands, name="topology-pipe", daemon=True)
        reader.start()
        reporter = asyncio.create_task(self._report_stats())
        await self._stop.wait()
        reporter.cancel()
        await nfs.stop()
        nfs.close()
        self._flush()
        self._channel.send(("reply", self._stop_ident, True, None))

    def _stats(self) -> Stats:
        return Stats(self.metrics.counts(self.name), self._nfs.connections)

    async def _report_stats(self) -> None:
        """The call counts every `STATS_EVERY_S`, when they have changed."""
        sent = 0
        while True:
            await asyncio.sleep(STATS_EVERY_S)
            stats = self._stats()
            total = sum(calls.count for calls in stats.calls.values())
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
            self._loop.call_soon_threadsafe(self._answer, ident, command, argument)
            if command == "stop":
                return

    def _answer(self, ident: int, command: str, argument: Any) -> None:
        nfs = self._nfs
        try:
            value: object = None
            if command == "faults":
                if nfs.faults is not None and nfs.faults.apply(argument):
                    nfs.drop_connections()
            elif command == "stats":
                value = self._stats()
            elif command == "stop":
                self._stop_ident = ident  # answered once stopped
                self._stop.set()
                return
            else:
                raise ValueError(f"unknown request {command!r}")
        except Exception as exc:
            self._channel.send(("reply", ident, False, str(exc) or type(exc).__name__))
            return
        self._channel.send(("reply", ident, True, value))
