"""Servers in worker processes (`processes: per-server`): each NFS server in a process of its
own, so servers busy at once use every core instead of sharing one interpreter lock.

The topology's process keeps the control plane: sync agents, events, HTTP API, metrics,
faults and health. It talks to each worker over one `multiprocessing` pipe:

- worker to topology: `("changes", [(kind, path, dest), ...])` (what clients changed, at
  most one message per `CHANGES_EVERY_S`), `("log", level, logger, text)`, and the replies;
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


class _RemoteFaults:
    """`ServerFaults.apply` of a worker's server, as the fault controller calls it."""

    def __init__(self, owner: ServerProcess) -> None:
        self._owner = owner

    def apply(self, specs: Sequence[FaultSpec]) -> bool:
        """In force in the worker when this returns; the worker drops its own connections.
        A worker that has ended has nothing to apply them to, and one not yet listening gets
        them when it does (`FaultController.reapply`)."""
        if self._owner.listening and self._owner.down is None:
            try:
                self._owner.request("faults", list(specs))
            except WorkerError as exc:
                if self._owner.down is None:
                    name = self._owner.name
                    raise FaultError(f"cannot change the faults of {name}: {exc}") from None
        return False


class ServerProcess:
    """One server's NFS side in a worker process, seen as the runtime sees an `NfsServer`.

    Create it on the topology's event loop; the process is spawned at once (so several
    servers start side by side) and `start` waits until it listens."""

    def __init__(self, spec: WorkerSpec, on_changes: Callable[[list[Change]], None]) -> None:
        self.name = spec.server.name
        self.host, self.port, self.rpcbind_port = spec.host, spec.port, spec.rpcbind_port
        self.faults = _RemoteFaults(self)
        self.exit_code: int | None = None
        """Set once the process has ended."""
        self.started = time.monotonic()
        self.listening = False
        """True once `start` has seen it listen: requests before that would wait on it."""
        self.stats = Stats({}, 0)
        """What the last `pull` read."""
        self._on_changes = on_changes
        self.on_exit: Callable[[int | None], None] = _ignore
        """Called on the loop when the process ends other than by `stop` (its exit code)."""
        self._loop = asyncio.get_running_loop()
        self._replies: queue.Queue[tuple[Any, ...]] = queue.Queue()
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
            reply = await asyncio.to_thread(self._replies.get, True, START_TIMEOUT)
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

    def request(self, command: str, argument: object = None) -> Any:
        """Ask the worker and wait for its answer (it answers within milliseconds)."""
        with self._lock:
            if self._gone:
                raise WorkerError(self._exited())
            ident = next(self._ids)
            try:
                self._conn.send((ident, command, argument))
            except OSError:
                raise WorkerError(self._exited()) from None
            while True:
                try:
                    reply = self._replies.get(timeout=REQUEST_TIMEOUT)
                except queue.Empty:
                    raise WorkerError(
                        f"the NFS server process of {self.name} did not answer {command!r} "
                        f"in {REQUEST_TIMEOUT:.0f} s"
                    ) from None
                if reply[0] == "gone":
                    raise WorkerError(self._exited())
                if reply[0] == "reply" and reply[1] == ident:
                    break  # earlier ones are answers to requests that timed out
        if not reply[2]:
            raise WorkerError(f"the NFS server of {self.name}: {reply[3]}")
        return reply[3]

    def pull(self) -> Stats:
        """The worker's call counts and connections now (the last ones once it has ended)."""
        if self.listening and not self._gone:
            self.stats = self.request("stats")
        return self.stats

    def drop_connections(self) -> None:
        return None  # the worker drops them itself when its faults say so

    async def stop(self) -> None:
        self._stopping = True
        if not self._gone:
            with contextlib.suppress(WorkerError):
                await asyncio.to_thread(self.request, "stop")
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
        """The reader thread: changes and log lines to the loop, replies to `request`."""
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "changes":
                self._soon(self._on_changes, message[1])
            elif kind == "log":
                logging.getLogger(message[2]).log(message[1], "%s", message[3])
            else:
                self._replies.put(message)
        self._process.join(STOP_TIMEOUT)
        self._gone = True
        self.exit_code = self._process.exitcode
        self._replies.put(("gone",))
        self._soon(self._ended)

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
