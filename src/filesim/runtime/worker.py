"""Servers in worker processes (`processes: per-server` or `per-core`): the NFS side of each
server in a process of its own, or of several servers in each of as many processes as there
are cores, so servers busy at once use every core instead of sharing one interpreter lock.

The topology's process keeps the control plane: sync agents, events, HTTP API, metrics,
faults and health. It talks to each worker over one `multiprocessing` pipe:

- worker to topology, per server as it starts: `("ready", name, host, port, rpcbind_port)`,
  or `("bind", name, errno, text)` / `("failed", name, text)`, after which the worker ends;
- worker to topology: `("changes", {name: [(kind, path, dest), ...]})` (what clients
  changed, at most one message per `CHANGES_EVERY_S`), `("log", level, logger, text)`,
  `("stats", {name: Stats})` every `STATS_EVERY_S` while calls come, and the replies;
- topology to worker: `(id, command, argument)` with the commands `faults` (`(name, specs)`:
  a server's active NFS faults, in force when answered), `stats` (each server's per-call
  counts and open connections), `stop-server` (`name`: that server alone) and `stop` (the
  worker); each is answered `("reply", id, ok, value)`.

The worker's own side is `runtime.workermain`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import queue
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

from filesim.errors import FilesimError
from filesim.runtime.cores import usable_cores
from filesim.runtime.faults import FaultError
from filesim.runtime.workermain import Change, Hosted, Stats, WorkerSpec, worker_main
from filesim.topology.faults import FaultSpec
from filesim.topology.model import ProcessMode

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0
"""Seconds a worker may take to import filesim, open its store and bind its ports."""
REQUEST_TIMEOUT = 5.0
"""Seconds a worker may take to answer a request (its loop may be busy with big calls). Less
than the CLI's wait for the API (`api_client.TIMEOUT`), so `filesim fault add` on a stuck
worker gets the worker's error, not a timeout of its own."""
STOP_TIMEOUT = 10.0
"""Seconds a worker may take to stop before it is killed."""


WORKER_CORES = 2
"""`processes: auto` runs servers in worker processes (per-core) from this many CPU cores on.
On 2 cores, seven clients at once (bench/README.md): per-core 1.14-1.45x as fast as one
process for NFS alone, 2.55-2.76x with the default topology's sync agents copying every file;
per-server 0.80-1.15x and 1.39-2.36x (seven processes waking and switching for each call on
two cores). One core has nothing to share the work with."""


def process_mode(mode: ProcessMode, servers: int, cores: int | None = None) -> ProcessMode:
    """What `mode` means for `servers` servers on this machine (`cores`: its usable CPUs)."""
    if mode is not ProcessMode.AUTO:
        return mode
    if cores is None:
        cores = usable_cores()
    return ProcessMode.PER_CORE if servers > 1 and cores >= WORKER_CORES else ProcessMode.ONE


def worker_groups(mode: ProcessMode, servers: int, cores: int | None = None) -> list[list[int]]:
    """Which servers (by index) each worker process serves: one each (per-server), or spread
    over as many workers as there are usable cores (`cores.usable_cores`: affinity and cgroup
    CPU quota), at most one per server (per-core)."""
    if mode is ProcessMode.PER_SERVER:
        return [[i] for i in range(servers)]
    if mode is not ProcessMode.PER_CORE:
        raise ValueError(f"no worker processes in mode {mode.value!r}")
    workers = max(1, min(servers, usable_cores() if cores is None else cores))
    return [list(range(first, servers, workers)) for first in range(workers)]


class WorkerError(FilesimError):
    """A worker process that failed to start, stopped, or did not answer."""


class WorkerProcess:
    """One worker process and its pipe, seen from the topology's process.

    Create it on the topology's event loop; the process is spawned at once (so several
    workers start side by side). Its servers are reached through their `ServerProcess`es.
    Requests are answered by id: the event loop awaits its answers (`ask`) and never blocks on
    a busy worker."""

    def __init__(self, spec: WorkerSpec, on_changes: Callable[[str, list[Change]], None]) -> None:
        self.spec = spec
        """What it was started with (its servers and their ports)."""
        self.exit_code: int | None = None
        """Set once the process has ended."""
        self.started = time.monotonic()
        self.servers = {hosted.server.name: ServerProcess(self, hosted) for hosted in spec.servers}
        self.on_exit: Callable[[int | None], None] = _ignore
        """Called on the loop when the process ends other than by `stop` (its exit code)."""
        self._on_changes = on_changes
        self._loop = asyncio.get_running_loop()
        self._waiting: dict[int, Future[Any]] = {}
        """Requests sent and not yet answered, by id."""
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stopping: asyncio.Task[None] | None = None
        self.gone = False
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        title = self.names[0] if len(self.names) == 1 else f"{len(self.names)} servers"
        self._process = context.Process(
            target=worker_main, args=(spec, child), name=f"filesim {title}", daemon=True
        )
        with _main_not_imported():
            self._process.start()
        child.close()
        self._reader = threading.Thread(target=self._read, name=f"worker-{title}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def names(self) -> list[str]:
        return self.spec.names

    def _send(self, command: str, argument: object) -> tuple[int, Future[Any]]:
        """Send a request; the future gets the worker's answer, or WorkerError."""
        answer: Future[Any] = Future()
        with self._lock:
            if self.gone:
                raise WorkerError(self.exited())
            ident = next(self._ids)
            self._waiting[ident] = answer
            try:
                self._conn.send((ident, command, argument))
            except OSError:
                del self._waiting[ident]
                raise WorkerError(self.exited()) from None
        return ident, answer

    async def ask(self, command: str, argument: object = None) -> Any:
        """Ask the worker and await its answer (the event loop goes on meanwhile)."""
        ident, answer = self._send(command, argument)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(answer), REQUEST_TIMEOUT)
        except TimeoutError:
            with self._lock:  # an answer that comes after all is dropped
                self._waiting.pop(ident, None)
            raise WorkerError(
                f"the NFS server process of {', '.join(self.names)} did not answer "
                f"{command!r} in {REQUEST_TIMEOUT:.0f} s"
            ) from None

    async def pull(self) -> None:
        """Every server's call counts and connections now, into its `stats`."""
        if not self.gone and all(s.listening for s in self.servers.values()):
            self._took(await self.ask("stats"))

    def _took(self, stats: dict[str, Stats]) -> None:
        for name, one in stats.items():
            self.servers[name].stats = one

    async def stop(self) -> None:
        """Stop the worker and every server in it (once, however many of them ask)."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        if not self.gone:
            with contextlib.suppress(WorkerError):
                await self.ask("stop")
        # The reader thread reaps the process when its pipe closes; it alone waits for it, since
        # two threads waiting for one child race (the loser reads no exit code).
        await asyncio.to_thread(self._reader.join, STOP_TIMEOUT)
        if self._reader.is_alive():
            log.error("the NFS server process of %s did not stop: killed", ", ".join(self.names))
            self._process.kill()
            await asyncio.to_thread(self._reader.join, STOP_TIMEOUT)
        self._conn.close()

    def _read(self) -> None:
        """The reader thread: changes, stats, start reports and log lines to their places,
        answers to the requests waiting for them."""
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "changes":
                for name, batch in message[1].items():
                    self._soon(self._on_changes, name, batch)
            elif kind == "stats":
                self._took(message[1])
            elif kind == "log":
                logging.getLogger(message[2]).log(message[1], "%s", message[3])
            elif kind == "reply":
                self._answered(message[1], message[2], message[3])
            else:  # ready, bind, failed: how one server's start went
                self.servers[message[1]].started.put((kind, *message[2:]))
        self._process.join(STOP_TIMEOUT)
        if self._process.exitcode is None:  # its pipe closed, yet it runs on: no way to reach it
            log.error("the NFS server process of %s closed its pipe: killed", ", ".join(self.names))
            self._process.kill()
            self._process.join(STOP_TIMEOUT)
        self.exit_code = self._process.exitcode  # known to whoever sees `gone`
        with self._lock:
            self.gone = True
            waiting, self._waiting = self._waiting, {}
        for answer in waiting.values():
            if not answer.done():  # not cancelled by its asker
                answer.set_exception(WorkerError(self.exited()))
        for server in self.servers.values():
            server.started.put(("gone",))
        self._soon(self._ended)

    def _answered(self, ident: int, ok: bool, value: Any) -> None:
        with self._lock:
            answer = self._waiting.pop(ident, None)
        if answer is None or answer.done():
            return  # its asker gave up waiting (a late answer, or a cancelled `ask`)
        if ok:
            answer.set_result(value)
        else:
            answer.set_exception(WorkerError(f"the NFS server process: {value}"))

    def _ended(self) -> None:
        if self._stopping is None:
            log.error("%s", self.exited())
            self.on_exit(self.exit_code)

    def _soon(self, fn: Callable[..., None], *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody listens
            self._loop.call_soon_threadsafe(fn, *args)

    def exited(self, when: str = "", name: str | None = None) -> str:
        """Why the servers (or `name`) no longer answer."""
        code = self.exit_code
        how = "" if code is None else f" with code {code}"
        whose = name or ", ".join(self.names)
        return f"the NFS server process of {whose} exited{(' ' + when) if when else ''}{how}"


class ServerProcess:
    """One server's NFS side in a worker process, seen as the runtime sees an `NfsServer`."""

    def __init__(self, worker: WorkerProcess, hosted: Hosted) -> None:
        self.worker = worker
        self.name = hosted.server.name
        self.host, self.port, self.rpcbind_port = hosted.host, hosted.port, hosted.rpcbind_port
        self.listening = False
        """True once `start` has seen it listen: requests before that would wait on it."""
        self.stats = Stats({}, 0)
        """Its call counts and connections: pulled at each scrape, and sent by the worker
        every `workermain.STATS_EVERY_S` while calls come, so a worker that dies takes at most
        that much of its counts with it."""
        self.started: queue.Queue[tuple[Any, ...]] = queue.Queue()
        """How its start went, as the worker reported it."""
        self.stopped = False
        """Stopped (`stop`): its worker serves it no more, whatever the others do."""

    @property
    def pid(self) -> int | None:
        return self.worker.pid

    @property
    def connections(self) -> int:
        return self.stats.connections

    @property
    def down(self) -> str | None:
        """Why this server no longer answers: its process has ended (None while it runs)."""
        return self.worker.exited(name=self.name) if self.worker.gone else None

    async def start(self) -> None:
        """Wait until the worker listens for this server; OSError as binding raised it there."""
        try:
            reply = await asyncio.to_thread(self.started.get, True, START_TIMEOUT)
        except queue.Empty:
            raise WorkerError(
                f"the NFS server process of {self.name} did not start in {START_TIMEOUT:.0f} s"
            ) from None
        kind = reply[0]
        if kind == "ready":
            self.host, self.port, self.rpcbind_port = reply[1], reply[2], reply[3]
            self.listening = True
            return
        if kind == "bind":
            raise OSError(reply[1], reply[2])
        if kind == "failed":
            raise WorkerError(f"the NFS server of {self.name} could not start: {reply[1]}")
        raise WorkerError(self.worker.exited("at start", self.name))

    async def apply_faults(self, specs: Sequence[FaultSpec]) -> None:
        """In force in the worker when this returns; the worker drops the server's own
        connections. A worker that has ended has nothing to apply them to, and one not yet
        listening gets them when it does (`FaultController.reapply`)."""
        if not self.listening or self.stopped or self.worker.gone:
            return
        try:
            await self.worker.ask("faults", (self.name, list(specs)))
        except WorkerError as exc:
            if not self.worker.gone:
                raise FaultError(f"cannot change the faults of {self.name}: {exc}") from None

    async def stop(self) -> None:
        """Stop this server; its worker with it once none of its servers serves any more."""
        if self.stopped:
            return
        self.stopped = True
        worker = self.worker
        if all(server.stopped for server in worker.servers.values()):
            await worker.stop()
        elif not worker.gone:
            with contextlib.suppress(WorkerError):  # it ended meanwhile: nothing to stop
                await worker.ask("stop-server", self.name)

    def close(self) -> None:
        return None  # the worker closed its storage when it stopped


def _ignore(code: int | None) -> None:
    return None


_spawning = threading.Lock()


@contextlib.contextmanager
def _main_not_imported() -> Iterator[None]:
    """Spawn imports the parent's `__main__` module in the child (the whole CLI: 0.4 s of CPU
    per worker); the worker needs none of it, so the child is shown a bare one."""
    with _spawning:  # topologies on other threads (tests) may spawn at the same moment
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main
