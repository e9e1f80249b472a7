"""Servers in worker processes (`processes: per-server`): each NFS server in a process of its
own, so servers busy at once use every core instead of sharing one interpreter lock.

The topology's process keeps the control plane: sync agents, events, HTTP API, metrics,
faults and health. It talks to each worker over one `multiprocessing` pipe:

- worker to topology: `("changes", [(kind, path, dest), ...])` (what clients changed, at
  most one message per `CHANGES_EVERY_S`), `("log", level, logger, text)`, and the replies;
- worker to topology, unasked: `("stats", Stats)` every `STATS_EVERY_S` while calls come;
- topology to worker: `(id, command, argument)` with the commands `faults` (the active NFS
  faults; in force when answered), `stats` (per-call counts and open connections) and
  `stop`; each is answered `("reply", id, ok, value)`.

The worker's own side is `runtime.workermain`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import queue
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

from filesim.errors import FilesimError
from filesim.runtime.faults import FaultError
from filesim.runtime.workermain import Change, Stats, WorkerSpec, worker_main
from filesim.topology.faults import FaultSpec
from filesim.topology.model import ProcessMode

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0
"""Seconds a worker may take to import filesim, open its store and bind its ports."""
REQUEST_TIMEOUT = 10.0
"""Seconds a worker may take to answer a request (its loop may be busy with big calls)."""
STOP_TIMEOUT = 10.0
"""Seconds a worker may take to stop before it is killed."""


PER_SERVER_CORES = 2
"""`processes: auto` runs servers in workers from this many CPU cores on. On 2 cores, seven
clients at once (bench/README.md): with the default topology's sync agents 2.1-2.2x faster
than one process; NFS alone 1.2x on a quiet machine, 0.65-1.04x with other sessions busy;
two clients of two servers 1.51x. One core has nothing to share the work with."""


def process_mode(mode: ProcessMode, servers: int, cores: int | None = None) -> ProcessMode:
    """What `mode` means for `servers` servers on this machine (`cores`: its usable CPUs)."""
    if mode is not ProcessMode.AUTO:
        return mode
    if cores is None:
        cores = usable_cores()
    return ProcessMode.PER_SERVER if servers > 1 and cores >= PER_SERVER_CORES else ProcessMode.ONE


def usable_cores() -> int:
    """CPUs this process may run on (its affinity where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class WorkerError(FilesimError):
    """A worker process that failed to start, stopped, or did not answer."""


class ServerProcess:
    """One server's NFS side in a worker process, seen as the runtime sees an `NfsServer`.

    Create it on the topology's event loop; the process is spawned at once (so several
    servers start side by side) and `start` waits until it listens. Requests are answered
    by id: the event loop awaits its answers (`ask`) and never blocks on a busy worker."""

    def __init__(self, spec: WorkerSpec, on_changes: Callable[[list[Change]], None]) -> None:
        self.name = spec.server.name
        self.host, self.port, self.rpcbind_port = spec.host, spec.port, spec.rpcbind_port
        self.exit_code: int | None = None
        """Set once the process has ended."""
        self.started = time.monotonic()
        self.listening = False
        """True once `start` has seen it listen: requests before that would wait on it."""
        self.stats = Stats({}, 0)
        """The worker's call counts and connections: pulled (`pull`), and sent by the worker
        every `workermain.STATS_EVERY_S` while calls come, so a worker that dies takes at most
        that much of its counts with it."""
        self._on_changes = on_changes
        self.on_exit: Callable[[int | None], None] = _ignore
        """Called on the loop when the process ends other than by `stop` (its exit code)."""
        self._loop = asyncio.get_running_loop()
        self._started: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._waiting: dict[int, Future[Any]] = {}
        """Requests sent and not yet answered, by id."""
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stopping = False
        self._gone = False
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=worker_main, args=(spec, child), name=f"filesim {self.name}", daemon=True
        )
        with _main_not_imported():
            self._process.start()
        child.close()
        self._reader = threading.Thread(target=self._read, name=f"worker-{self.name}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def connections(self) -> int:
        return self.stats.connections

    @property
    def down(self) -> str | None:
        """Why this server no longer answers: its process has ended (None while it runs)."""
        return self._exited() if self._gone else None

    async def start(self) -> None:
        """Wait until the worker listens; OSError as binding raised it there."""
        try:
            reply = await asyncio.to_thread(self._started.get, True, START_TIMEOUT)
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
        raise WorkerError(self._exited("at start"))

    def _send(self, command: str, argument: object) -> tuple[int, Future[Any]]:
        """Send a request; the future gets the worker's answer, or WorkerError."""
        answer: Future[Any] = Future()
        with self._lock:
            if self._gone:
                raise WorkerError(self._exited())
            ident = next(self._ids)
            self._waiting[ident] = answer
            try:
                self._conn.send((ident, command, argument))
            except OSError:
                del self._waiting[ident]
                raise WorkerError(self._exited()) from None
        return ident, answer

    async def ask(self, command: str, argument: object = None) -> Any:
        """Ask the worker and await its answer (the event loop goes on meanwhile)."""
        ident, answer = self._send(command, argument)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(answer), REQUEST_TIMEOUT)
        except TimeoutError:
            raise self._late(ident, command) from None

    def _late(self, ident: int, command: str) -> WorkerError:
        with self._lock:  # an answer that comes after all is dropped
            self._waiting.pop(ident, None)
        return WorkerError(
            f"the NFS server process of {self.name} did not answer {command!r} "
            f"in {REQUEST_TIMEOUT:.0f} s"
        )

    async def apply_faults(self, specs: Sequence[FaultSpec]) -> None:
        """In force in the worker when this returns; the worker drops its own connections.
        A worker that has ended has nothing to apply them to, and one not yet listening gets
        them when it does (`FaultController.reapply`)."""
        if not self.listening or self._gone:
            return
        try:
            await self.ask("faults", list(specs))
        except WorkerError as exc:
            if not self._gone:
                raise FaultError(f"cannot change the faults of {self.name}: {exc}") from None

    async def pull(self) -> Stats:
        """The worker's call counts and connections now (the last ones once it has ended)."""
        if self.listening and not self._gone:
            self.stats = await self.ask("stats")
        return self.stats

    async def stop(self) -> None:
        self._stopping = True
        if not self._gone:
            with contextlib.suppress(WorkerError):
                await self.ask("stop")
        await asyncio.to_thread(self._process.join, STOP_TIMEOUT)
        if self._process.exitcode is None:
            log.error("the NFS server process of %s did not stop: killed", self.name)
            self._process.kill()
            await asyncio.to_thread(self._process.join, STOP_TIMEOUT)
        await asyncio.to_thread(self._reader.join, STOP_TIMEOUT)
        self._conn.close()

    def close(self) -> None:
        return None  # the worker closed its storage when it stopped

    def _read(self) -> None:
        """The reader thread: changes, stats and log lines to their places, answers to the
        requests waiting for them."""
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "changes":
                self._soon(self._on_changes, message[1])
            elif kind == "stats":
                self.stats = message[1]
            elif kind == "log":
                logging.getLogger(message[2]).log(message[1], "%s", message[3])
            elif kind == "reply":
                self._answered(message[1], message[2], message[3])
            else:
                self._started.put(message)
        self._process.join(STOP_TIMEOUT)
        with self._lock:
            self._gone = True
            waiting, self._waiting = self._waiting, {}
        self.exit_code = self._process.exitcode
        for answer in waiting.values():
            if not answer.done():  # not cancelled by its asker
                answer.set_exception(WorkerError(self._exited()))
        self._started.put(("gone",))
        self._soon(self._ended)

    def _answered(self, ident: int, ok: bool, value: Any) -> None:
        with self._lock:
            answer = self._waiting.pop(ident, None)
        if answer is None or answer.done():
            return  # its asker gave up waiting (a late answer, or a cancelled `ask`)
        if ok:
            answer.set_result(value)
        else:
            answer.set_exception(WorkerError(f"the NFS server of {self.name}: {value}"))

    def _ended(self) -> None:
        if not self._stopping:
            log.error("%s", self._exited())
            self.on_exit(self.exit_code)

    def _soon(self, fn: Callable[..., None], *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody listens
            self._loop.call_soon_threadsafe(fn, *args)

    def _exited(self, when: str = "") -> str:
        code = self._process.exitcode
        how = "" if code is None else f" with code {code}"
        return f"the NFS server process of {self.name} exited{(' ' + when) if when else ''}{how}"


def _ignore(code: int | None) -> None:
    return None


@contextlib.contextmanager
def _main_not_imported() -> Iterator[None]:
    """Spawn imports the parent's `__main__` module in the child (the whole CLI: 0.4 s of CPU
    per worker); the worker needs none of it, so the child is shown a bare one."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main
