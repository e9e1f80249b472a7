"""filesim in your own tests: a NAS topology started in-process, with a sync barrier and faults.

A pytest plugin (registered through the `pytest11` entry point, so installing filesim is
enough) provides the `nas_topology` fixture:

    import subprocess
    import pytest

    @pytest.mark.nas_topology(servers=["nas-input-1", "nas-output-1"])
    def test_consumes_input(nas_topology):
        nas = nas_topology.server("nas-input-1")
        (nas.folder / "order.csv").write_text("id,qty\\n1,2\\n")   # the tester drops a file
        nas_topology.wait_visible("nas-input-1", "order.csv", side="nfs")
        subprocess.run(["nfs-cat", nas.url("/order.csv")], check=True)
        with nas_topology.error("nas-output-1", "NOSPC", procedures=["WRITE"]):
            ...  # the service under test must cope with a full disk

The topology runs on its own event loop in a background thread, on free ports, under a
temporary root; `start_topology` gives the same object outside pytest.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pytest

from filesim.errors import FilesimError
from filesim.events import Event, EventBus
from filesim.topology import Layout, Topology, load_topology, parse_topology

if TYPE_CHECKING:
    from filesim.nfsclient.client import NfsClient

# The runtime (uvicorn, starlette, the NFS server) is imported when a topology starts, not when
# pytest loads this plugin: every test run of a project with filesim installed loads it.

T = TypeVar("T")
Side = Literal["nfs", "folder"]
START_TIMEOUT = 60.0
POLL_S = 0.02


class TopologyTimeout(FilesimError, AssertionError):
    """A wait on the test topology ran out of time (a failed expectation in a test)."""


@dataclass(frozen=True)
class NasServer:
    """One running server of a test topology: where to reach it and where its folder is."""

    name: str
    role: str
    host: str
    port: int
    export: str
    folder: Path
    store: Path
    readonly: bool

    def url(self, path: str = "") -> str:
        """A libnfs URL, e.g. nfs://127.0.0.1/data/a.txt?version=3&nfsport=P&mountport=P."""
        path = "/" + path.lstrip("/") if path else ""
        query = f"version=3&nfsport={self.port}&mountport={self.port}"
        return f"nfs://{self.host}{self.export}{path}?{query}"

    @property
    def mount_options(self) -> str:
        """Linux mount options (`mount -t nfs -o OPTIONS HOST:EXPORT DIR`)."""
        return f"vers=3,proto=tcp,port={self.port},mountport={self.port},mountproto=tcp,nolock"

    @property
    def mount_source(self) -> str:
        return f"{self.host}:{self.export}"

    def mount_command(self, mountpoint: str | Path) -> str:
        return f"mount -t nfs -o {self.mount_options} {self.mount_source} {mountpoint}"


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
    ) -> None:
        """`config`: a topology file, YAML text or a Topology (default: the built-in seven
        servers); `servers`: run only these; `http`: serve the HTTP API on a free port."""
        self.root = Path(root)
        self.topology = _topology(config, profile)
        names = list(servers) if servers else None
        count = len(self.topology.servers)
        # Free ports for every server; ports named in the topology would clash between tests.
        topology = self.topology.model_copy(
            update={"servers": [s.model_copy(update={"port": None}) for s in self.topology.servers]}
        )
        self.layout = Layout(self.root)
        self.layout.state_dir.mkdir(parents=True, exist_ok=True)
        self.events = EventBus(self.layout.events_file)
        from filesim.runtime.runner import TopologyRunner

        self.runner = TopologyRunner(
            topology, self.layout, host=host, base_port=_free_ports(host, count), only=names,
            events=self.events, http_host=host, http_port=0 if http else None,
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
        for running in self.runner.servers:
            d = running.describe()
            self.servers[running.name] = NasServer(
                d["name"], d["role"], _reachable(d["host"]), d["port"], d["export"],
                Path(d["folder"]), Path(d["store"]), d["readonly"],
            )  # fmt: skip
        return self

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

    def status(self) -> dict[str, Any]:
        """The `filesim status --json` document."""
        return self._call(lambda: self.runner.describe())

    # -- sync barrier ---------------------------------------------------------------------------

    def wait_visible(
        self, server: str, path: str, side: Side = "nfs", timeout: float = 10.0,
        *, absent: bool = False,
    ) -> None:  # fmt: skip
        """Block until `path` (export-relative) exists on `side` of `server` — over NFS, or
        in the tester's folder — or, with `absent`, until it is gone; else TopologyTimeout."""
        nas = self.server(server)
        path = path.strip("/")
        deadline = time.monotonic() + timeout
        if side not in ("nfs", "folder"):
            raise ValueError(f"side must be 'nfs' or 'folder', not {side!r}")
        from filesim.nfsclient.client import NfsClient

        client = NfsClient(nas.host, nas.port, timeout=max(1.0, timeout)) if side == "nfs" else None

        def probe() -> bool:
            if client is None:
                return (nas.folder / path).exists()
            return _nfs_exists(client, nas.export, path)

        try:
            while True:
                if probe() != absent:
                    return
                if time.monotonic() >= deadline:
                    state = "still there" if absent else "not visible"
                    raise TopologyTimeout(
                        f"{server}: {path} is {state} on the {side} side after {timeout:g} s"
                    )
                time.sleep(POLL_S)
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
            paused = [f.server for f in self._call(lambda: self.runner.faults.active())
                      if f.spec.kind.value == "sync-pause"]  # fmt: skip
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
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events.recent(server):
                if event.kind == kind and event.time >= since and path in (None, event.path):
                    return event
            if time.monotonic() >= deadline:
                raise TopologyTimeout(f"no {kind} event{f' for {path}' if path else ''} "
                                      f"within {timeout:g} s")  # fmt: skip
            time.sleep(POLL_S)

    # -- faults ---------------------------------------------------------------------------------

    def add_fault(self, server: str, kind: str, **spec: Any) -> dict[str, Any]:
        """Add a fault (fields as in the topology file's `faults:`); returns its description."""
        data = {"kind": kind, **spec}
        return self._call(lambda: self.runner.faults.add(server, data).to_json())

    def clear_faults(self, server: str | None = None, fault_id: str | None = None) -> int:
        return len(self._call(lambda: self.runner.faults.clear(server, fault_id)))

    @contextmanager
    def fault(self, server: str, kind: str, **spec: Any) -> Iterator[dict[str, Any]]:
        """A fault in force for the `with` block."""
        added = self.add_fault(server, kind, **spec)
        try:
            yield added
        finally:
            if any(f.id == added["id"] for f in self._call(lambda: self.runner.faults.active())):
                self.clear_faults(fault_id=added["id"])

    def latency(self, server: str, ms: float, procedures: Sequence[str] = (), **spec: Any) -> Any:
        return self.fault(server, "latency", delay_ms=ms, procedures=list(procedures), **spec)

    def error(
        self, server: str, error: str, procedures: Sequence[str] = (), paths: Sequence[str] = (),
        probability: float = 1.0,
    ) -> Any:  # fmt: skip
        return self.fault(server, "error", error=error, procedures=list(procedures),
                          paths=list(paths), probability=probability)  # fmt: skip

    def readonly(self, server: str) -> Any:
        return self.fault(server, "readonly")

    def outage(self, server: str, mode: str = "blackhole") -> Any:
        return self.fault(server, "outage", mode=mode)

    def sync_paused(self, server: str) -> Any:
        return self.fault(server, "sync-pause")

    def sync_slow(self, server: str, ms: float) -> Any:
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


def _topology(config: Path | str | Topology | None, profile: str | None) -> Topology:
    if isinstance(config, Topology):
        if profile is not None:
            raise ValueError("give the profile inside the Topology, not as profile=")
        return config
    if isinstance(config, str) and "\n" in config:  # YAML text rather than a file name
        return parse_topology(config, profile=profile)
    return load_topology(Path(config) if config is not None else None, profile)


def _free_ports(host: str, count: int, start: int = 30000, stop: int = 60000) -> int:
    """A base port with `count` consecutive free TCP ports on `host`."""
    import os
    import random

    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200):
        base = rng.randrange(start, stop - count)
        sockets: list[socket.socket] = []
        try:
            for i in range(count):
                s = socket.socket()
                s.bind((host, base + i))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise FilesimError(f"no {count} consecutive free ports on {host}")


def _reachable(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


@contextmanager
def start_topology(root: Path, **options: Any) -> Iterator[NasTopology]:
    """A NasTopology under `root` for the `with` block (options as for NasTopology)."""
    with NasTopology(root, **options) as topology:
        yield topology


# -- the pytest plugin ---------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "nas_topology(config=None, profile=None, servers=None, http=True): options of the "
        "`nas_topology` fixture (filesim.testing)",
    )


@pytest.fixture
def nas_topology(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NasTopology]:
    """A filesim topology running for this test (options: @pytest.mark.nas_topology(...) or
    indirect parametrisation with a dict)."""
    options: dict[str, Any] = {}
    marker = request.node.get_closest_marker("nas_topology")
    if marker is not None:
        options.update(marker.kwargs)
    options.update(getattr(request, "param", None) or {})
    with start_topology(tmp_path_factory.mktemp("nas"), **options) as topology:
        yield topology


__all__ = [
    "NasServer",
    "NasTopology",
    "TopologyTimeout",
    "nas_topology",
    "start_topology",
]
