"""A topology running in this process for a test: life cycle, sync barrier, events, faults."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypedDict, TypeVar, Unpack

from filesim.errors import FilesimError
from filesim.events import Event, EventBus
from filesim.runtime.model import FaultDoc, RuntimeDoc
from filesim.testing.server import NasServer
from filesim.topology import Layout, Topology, load_topology, parse_topology
from filesim.topology.faults import FaultKind
from filesim.topology.model import ProcessMode
from filesim.waiting import WaitTimeout, poll_until

if TYPE_CHECKING:
    from filesim.nfsclient.client import NfsClient
    from filesim.runtime.runner import TopologyRunner

# The runtime (uvicorn, starlette, the NFS server) is imported when a topology starts, not when
# pytest loads this plugin: every test run of a project with filesim installed loads it.

T = TypeVar("T")
Side = Literal["nfs", "folder"]
START_TIMEOUT = 60.0
POLL_S = 0.02


class TopologyTimeout(FilesimError, AssertionError):
    """A wait on the test topology ran out of time (a failed expectation in a test)."""


class TopologyOptions(TypedDict, total=False):
    """The options of `NasTopology` (and of the fixture's marker)."""

    config: Path | str | Topology | None
    profile: str | None
    servers: Sequence[str] | None
    http: bool
    host: str
    processes: ProcessMode | str | None


class NasTopology:
    """A topology running in this process; see the module docstring."""

    def __init__(
        self,
        root: Path,
        *,
        config: Path | str | Topology | None = None,
        profile: str | None = None,
        servers: Sequence[str] | None = None,
        http: bool = True,
        host: str = "127.0.0.1",
        processes: ProcessMode | str | None = None,
    ) -> None:
        """`config`: a topology file, YAML text or a Topology (default: the built-in seven
        servers); `servers`: run only these; `http`: serve the HTTP API on a free port;
        `processes`: "per-server" serves each server from a worker process of its own,
        "per-core" spreads them over a worker process per core, "one" serves all of them from
        this one (default: what the topology says; its `auto` is "one"
        here, so a test runs the same on every machine and starts fast)."""
        self.root = Path(root)
        self.topology = _topology(config, profile)
        names = list(servers) if servers else None
        # Every server on a free port (base port 0: each binds port 0 and the runner reads the
        # port back); ports named in the topology would clash between tests.
        topology = self.topology.model_copy(
            update={"servers": [s.model_copy(update={"port": None}) for s in self.topology.servers]}
        )
        self.layout = Layout(self.root)
        self.layout.state_dir.mkdir(parents=True, exist_ok=True)
        self.events = EventBus(self.layout.events_file)
        from filesim.runtime.runner import TopologyRunner

        self.runner: TopologyRunner = TopologyRunner(
            topology, self.layout, host=host, base_port=0, only=names,
            events=self.events, http_host=host, http_port=0 if http else None,
            processes=_process_mode(processes) or _fixed(self.topology.processes),
        )  # fmt: skip
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.servers: dict[str, NasServer] = {}

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> NasTopology:
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self.runner.start())
            except BaseException as exc:
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.runner.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="filesim-topology", daemon=True)
        self._thread.start()
        if not started.wait(START_TIMEOUT):
            raise TopologyTimeout(f"the test topology did not start within {START_TIMEOUT:.0f} s")
        if failure:
            self.events.close()
            raise failure[0]
        for state in self.status().servers:
            self.servers[state.name] = NasServer.of(state)
        try:
            self._wait_initial_sync()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_initial_sync(self) -> None:
        """Return when every sync agent has finished its initial sync (what /readyz waits
        for), so a test starts from a settled topology; agents paused by a sync-pause fault
        from the start are not waited for (clearing the fault lets them finish)."""
        paused = {f.server for f in self._call(self.runner.faults.active)
                  if f.spec.kind is FaultKind.SYNC_PAUSE}  # fmt: skip
        agents = [r.agent for r in self.runner.servers
                  if r.agent is not None and r.server.name not in paused]  # fmt: skip

        async def all_ready() -> None:
            # An agent whose run ended early is not waited for: health reports it, and a
            # test may be about exactly that.
            results = await asyncio.gather(
                *(agent.wait_ready(START_TIMEOUT) for agent in agents), return_exceptions=True
            )
            for result in results:
                if isinstance(result, TimeoutError):
                    raise result

        try:
            self._run(all_ready(), START_TIMEOUT + 5)
        except TimeoutError:
            raise TopologyTimeout(
                f"the initial sync did not finish within {START_TIMEOUT:.0f} s"
            ) from None

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)
        self.events.close()

    def __enter__(self) -> NasTopology:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- where things are -----------------------------------------------------------------------

    def server(self, name: str) -> NasServer:
        try:
            return self.servers[name]
        except KeyError:
            known = ", ".join(self.servers)
            raise KeyError(f"no server {name!r} in the test topology (running: {known})") from None

    def folder(self, name: str) -> Path:
        return self.server(name).folder

    def url(self, name: str, path: str = "") -> str:
        return self.server(name).url(path)

    @property
    def http_url(self) -> str:
        if self.runner.http is None:
            raise FilesimError("this test topology runs without the HTTP API (http=False)")
        return self.runner.http.url

    def status(self) -> RuntimeDoc:
        """The runtime document (`filesim status --json`)."""
        return self._call(self.runner.describe)

    # -- sync barrier ---------------------------------------------------------------------------

    def wait_visible(
        self, server: str, path: str, side: Side = "nfs", timeout: float = 10.0,
        *, absent: bool = False,
    ) -> None:  # fmt: skip
        """Block until `path` (export-relative) exists on `side` of `server` — over NFS, or
        in the tester's folder — or, with `absent`, until it is gone; else TopologyTimeout."""
        nas = self.server(server)
        path = path.strip("/")
        if side not in ("nfs", "folder"):
            raise ValueError(f"side must be 'nfs' or 'folder', not {side!r}")
        from filesim.nfsclient.client import NfsClient

        client = NfsClient(nas.host, nas.port, timeout=max(1.0, timeout)) if side == "nfs" else None

        def probe() -> bool:
            if client is None:
                return (nas.folder / path).exists()
            return _nfs_exists(client, nas.export, path)

        try:
            poll_until(lambda: probe() != absent, timeout, interval=POLL_S)
        except WaitTimeout:
            state = "still there" if absent else "not visible"
            raise TopologyTimeout(
                f"{server}: {path} is {state} on the {side} side after {timeout:g} s"
            ) from None
        finally:
            if client is not None:
                client.close()

    def flush(self, timeout: float = 30.0, *, rescan: bool = True) -> None:
        """Block until every sync agent has nothing left to do.

        With `rescan` (the default) each agent first rescans its folder, so a change made just
        before the call is seen even if the file watcher has not reported it yet.
        """

        async def flush_all() -> None:
            agents = [r.agent for r in self.runner.servers if r.agent is not None]
            if rescan:
                for agent in agents:
                    agent.notify_folder_change(None)
            await asyncio.gather(*(agent.flush(timeout) for agent in agents))

        try:
            self._run(flush_all(), timeout + 5)
        except TimeoutError:
            paused = [f.server for f in self._call(self.runner.faults.active)
                      if f.spec.kind is FaultKind.SYNC_PAUSE]  # fmt: skip
            why = f" (sync is paused on {', '.join(paused)})" if paused else ""
            raise TopologyTimeout(f"sync work still pending after {timeout:g} s{why}") from None

    # -- events ---------------------------------------------------------------------------------

    def recent_events(self, kind: str | None = None, server: str | None = None) -> list[Event]:
        return [e for e in self.events.recent(server) if kind is None or e.kind == kind]

    def wait_event(
        self, kind: str, *, server: str | None = None, path: str | None = None,
        timeout: float = 10.0, since: float = 0.0,
    ) -> Event:  # fmt: skip
        """The first event of `kind` (and server/path) at or after `since` (a time.time())."""

        def found() -> Event | None:
            for event in self.events.recent(server):
                if event.kind == kind and event.time >= since and path in (None, event.path):
                    return event
            return None

        try:
            return poll_until(found, timeout, interval=POLL_S)
        except WaitTimeout:
            raise TopologyTimeout(f"no {kind} event{f' for {path}' if path else ''} "
                                  f"within {timeout:g} s") from None  # fmt: skip

    # -- faults ---------------------------------------------------------------------------------

    def add_fault(self, server: str, kind: str, **spec: object) -> FaultDoc:
        """Add a fault (fields as in the topology file's `faults:`); returns its description."""
        data = {"kind": kind, **spec}
        return self._run(self.runner.faults.add(server, data), 15.0).to_doc()

    def clear_faults(self, server: str | None = None, fault_id: str | None = None) -> int:
        return len(self._run(self.runner.faults.clear(server, fault_id), 15.0))

    @contextmanager
    def fault(self, server: str, kind: str, **spec: object) -> Iterator[FaultDoc]:
        """A fault in force for the `with` block."""
        added = self.add_fault(server, kind, **spec)
        try:
            yield added
        finally:
            if any(f.id == added.id for f in self._call(self.runner.faults.active)):
                self.clear_faults(fault_id=added.id)

    def latency(
        self, server: str, ms: float, procedures: Sequence[str] = (), **spec: object
    ) -> AbstractContextManager[FaultDoc]:
        return self.fault(server, "latency", delay_ms=ms, procedures=list(procedures), **spec)

    def error(
        self, server: str, error: str, procedures: Sequence[str] = (), paths: Sequence[str] = (),
        probability: float = 1.0,
    ) -> AbstractContextManager[FaultDoc]:  # fmt: skip
        return self.fault(server, "error", error=error, procedures=list(procedures),
                          paths=list(paths), probability=probability)  # fmt: skip

    def readonly(self, server: str) -> AbstractContextManager[FaultDoc]:
        return self.fault(server, "readonly")

    def outage(self, server: str, mode: str = "blackhole") -> AbstractContextManager[FaultDoc]:
        return self.fault(server, "outage", mode=mode)

    def sync_paused(self, server: str) -> AbstractContextManager[FaultDoc]:
        return self.fault(server, "sync-pause")

    def sync_slow(self, server: str, ms: float) -> AbstractContextManager[FaultDoc]:
        return self.fault(server, "sync-slow", delay_ms=ms)

    # -- the loop -------------------------------------------------------------------------------

    def _run(self, coro: Awaitable[T], timeout: float) -> T:
        if self._loop is None:
            raise FilesimError("the test topology is not running")
        future = asyncio.run_coroutine_threadsafe(_awaited(coro), self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def _call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        async def call() -> T:
            return fn()

        return self._run(call(), timeout)


async def _awaited(coro: Awaitable[T]) -> T:
    return await coro


def _nfs_exists(client: NfsClient, export: str, path: str) -> bool:
    from filesim.nfsclient.client import NfsClientError

    try:
        root = client.mnt(export)
        client.walk(root, path)
    except NfsClientError:
        return False
    return True


def _fixed(mode: ProcessMode) -> ProcessMode:
    return ProcessMode.ONE if mode is ProcessMode.AUTO else mode


def _process_mode(processes: ProcessMode | str | None) -> ProcessMode | None:
    if processes is None or isinstance(processes, ProcessMode):
        return processes
    try:
        return ProcessMode(processes)
    except ValueError:
        known = ", ".join(repr(m.value) for m in ProcessMode)
        raise ValueError(f"processes must be one of {known}, not {processes!r}") from None


def _topology(config: Path | str | Topology | None, profile: str | None) -> Topology:
    if isinstance(config, Topology):
        if profile is not None:
            raise ValueError("give the profile inside the Topology, not as profile=")
        return config
    if isinstance(config, str) and "\n" in config:  # YAML text rather than a file name
        return parse_topology(config, profile=profile)
    return load_topology(Path(config) if config is not None else None, profile)


@contextmanager
def start_topology(root: Path, **options: Unpack[TopologyOptions]) -> Iterator[NasTopology]:
    """A NasTopology under `root` for the `with` block (options as for NasTopology)."""
    with NasTopology(root, **options) as topology:
        yield topology
