"""Running a topology: every enabled server and its sync agent in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from filesim.errors import FilesimError
from filesim.events import Event, EventBus
from filesim.runtime.build import build_nfs_server
from filesim.runtime.changes import ChangeRelay
from filesim.runtime.control import clear_token, write_token
from filesim.runtime.dashboard.connect import PvRenderer
from filesim.runtime.faults import FaultController
from filesim.runtime.health import AgentCondition, Probe, Readiness, readiness
from filesim.runtime.history import INTERVAL_S, MetricsHistory
from filesim.runtime.http import HttpApi
from filesim.runtime.listen import bind_error, listen_address
from filesim.runtime.metrics import TopologyMetrics
from filesim.runtime.model import HttpInfo, RuntimeDoc, ServerState, SyncState
from filesim.runtime.served import ServedNfs
from filesim.runtime.state import (
    StartupError,
    clear_runtime,
    ensure_not_running,
    hold_liveness,
    write_runtime,
)
from filesim.runtime.supervise import WorkerSupervisor
from filesim.runtime.worker import ServerProcess, process_mode, worker_groups
from filesim.runtime.workermain import Hosted, WorkerSpec
from filesim.sync.lock import unlock
from filesim.topology import Layout, Server, Topology
from filesim.topology.faults import SYNC_KINDS
from filesim.topology.model import PortMode, ProcessMode

if TYPE_CHECKING:
    from filesim.sync.agent import SyncAgent

log = logging.getLogger(__name__)

_UNHEALTHY: dict[str, AgentCondition] = {"failing": "failing", "halted": "halted",
                                         "stopped": "stopped"}  # fmt: skip
"""Agent states (SyncStatus.state) in which a server is not ready."""


class ResumeError(FilesimError):
    """A sync that cannot be resumed: no agent runs for the server, or it is not halted."""


@dataclass
class RunningServer:
    server: Server
    nfs: ServedNfs
    folder: Path
    store: Path
    relay: ChangeRelay
    """Where its clients' changes go (the agent, the event log)."""
    agent: SyncAgent | None = None
    standard_ports: bool = False
    process: ServerProcess | None = None
    """Its NFS side in a worker process (`processes: per-server` or `per-core`; then `nfs` is
    this too)."""

    @property
    def name(self) -> str:
        return self.server.name

    def describe(self) -> ServerState:
        """This server's entry of the runtime document (its faults are the runner's)."""
        s = self.server
        return ServerState(
            name=s.name, role=s.role, host=self.nfs.host, port=self.nfs.port,
            standard_ports=self.standard_ports, export=s.export.path, folder=self.folder,
            readonly=s.readonly, fsid=s.fsid,
            storage=s.storage, store=self.store,
            sync=SyncState(**s.sync.model_dump(), agent=self.agent is not None),
            sync_status=None if self.agent is None else self.agent.status(),
            pid=None if self.process is None else self.process.pid,
        )  # fmt: skip

    def probe(self) -> Probe:
        """What readiness checks of this server."""
        down = None if self.process is None else self.process.down
        if self.agent is None:
            return Probe(self.name, self.nfs.host, self.nfs.port, "none", nfs_down=down)
        # The agent's status carries its readiness (`ready`: the initial sync is over) and its
        # health (`state`: failing, halted, stopped — with why and since when).
        st = self.agent.status()
        host, port = self.nfs.host, self.nfs.port
        condition = _UNHEALTHY.get(st.state)
        if condition is not None:
            reason = st.halted if st.state == "halted" else st.reason
            return Probe(self.name, host, port, condition, reason, st.since, down)
        return Probe(self.name, host, port, "ready" if st.ready else "starting", nfs_down=down)


class TopologyRunner:
    """Starts, describes and stops the servers (and sync agents) of a topology."""

    def __init__(
        self,
        topology: Topology,
        layout: Layout,
        *,
        host: str = "127.0.0.1",
        base_port: int = 20490,
        only: list[str] | None = None,
        port: int | None = None,
        run_sync: bool = True,
        events: EventBus | None = None,
        write_runtime: bool = True,
        http_host: str = "127.0.0.1",
        http_port: int | None = None,
        http_strict: bool = True,
        argv: list[str] | None = None,
        history_interval_s: float = INTERVAL_S,
        pv_renderer: PvRenderer | None = None,
        standard_ports: bool = False,
        processes: ProcessMode | None = None,
    ) -> None:
        """`base_port`: server i listens on base_port + i unless the topology gives it a port
        (0: every server on a free port, as `port=0` does for one); `http_port`: serve the
        HTTP API there (0: a free port; None: no API); when it is taken, fail if
        `http_strict`, else fall back to a free port. `history_interval_s`: how often the
        charts' history is sampled; `pv_renderer`: PersistentVolume/claim YAML of a server for
        the dashboard (the CLI passes the k8s renderer, which this layer cannot import).
        `standard_ports` (or the topology's `ports: standard`): each server on its own
        address with NFS on 2049 and rpcbind on 111, like a real NAS. `processes` (default: the
        topology's `processes`): per-server runs each server's NFS side in a worker process,
        per-core spreads them over a worker process per core; auto decides by the machine's
        cores (`worker.process_mode`)."""
        self.topology = topology
        self.layout = layout
        self.argv = argv
        self.host = host
        self.base_port = base_port
        self.run_sync = run_sync
        self.events = events or EventBus()
        self.write_runtime = write_runtime
        self._liveness: int | None = None
        """The runtime lock's fd while this runner is the topology of its root."""
        self._port_override = port
        self.standard_ports = standard_ports or topology.ports is PortMode.STANDARD
        names = set(only) if only else None
        self.selected = [
            (i, s)
            for i, s in enumerate(topology.servers)
            if s.enabled and (names is None or s.name in names)
        ]
        self.processes = process_mode(processes or topology.processes, len(self.selected))
        self.servers: list[RunningServer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.started_at = 0.0
        self._announced = False
        """Whether `server.start` was written for the servers: `server.stop` only follows it."""
        self.metrics = TopologyMetrics()
        self.faults = FaultController(self.events)
        self.metrics.watch(lambda: self.servers, self.faults.count)
        self.history = MetricsHistory(history_interval_s)
        self.pv_renderer = pv_renderer
        self.http: HttpApi | None = None
        if http_port is not None:
            self.http = HttpApi(self, http_host, http_port, strict=http_strict)
        self.stop_requested = asyncio.Event()
        """Set to stop (signals, and `POST /api/stop` with `stop_token`: control.py)."""
        self.stop_token: str | None = None
        self.workers = WorkerSupervisor(self.events, self.faults, self.metrics)

    def request_stop(self) -> None:
        self.stop_requested.set()

    # -- start --------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create missing folders and stores; refuse ones that cannot be used."""
        if self.write_runtime:
            ensure_not_running(self.layout)
        self.layout.state_dir.mkdir(parents=True, exist_ok=True)
        if self.write_runtime and self._liveness is None:
            self._liveness = hold_liveness(self.layout)
        for _, server in self.selected:
            for what, path in (("folder", self.layout.folder(server)),
                               ("export store", self.layout.store(server))):  # fmt: skip
                _usable_dir(path, f"{what} of {server.name}")

    async def start(self) -> None:
        self.prepare()
        built = self._build()  # every server built first: worker processes start side by side
        for at, running in enumerate(built):
            try:
                await running.nfs.start()
            except (OSError, FilesimError) as exc:
                for unstarted in built[at:]:
                    await unstarted.nfs.stop()
                    unstarted.nfs.close()
                await self.stop()
                if isinstance(exc, OSError):
                    message = bind_error(
                        running.server, running.nfs, exc, port_flag=self._port_override is not None
                    )
                    raise StartupError(message) from None
                raise StartupError(str(exc)) from None
            self.servers.append(running)
        self.started_at = time.time()
        if self.run_sync:
            self._start_agents()
        await self._attach_faults()
        if self.http is not None:
            if self.write_runtime:
                self.stop_token = write_token(self.layout)
            try:
                await self.http.start()
            except FilesimError:
                await self.stop()
                raise
        self._tasks.append(asyncio.create_task(self._sample_history()))
        if self.write_runtime:
            write_runtime(self.layout.runtime_file, self.describe())
            self._tasks.append(asyncio.create_task(self._refresh_runtime()))
        for running in self.servers:
            self.events.emit(Event("server.start", running.name, detail={"port": running.nfs.port}))
        self._announced = True

    def _build(self) -> list[RunningServer]:
        """Every selected server, in order: here, or in the worker processes of its mode."""
        hosted = [
            Hosted(server, *listen_address(
                self.topology, index, server, standard=self.standard_ports, host=self.host,
                base_port=self.base_port, port=self._port_override,
            ))
            for index, server in self.selected
        ]  # fmt: skip
        relays = {h.server.name: ChangeRelay(h.server.name, self.layout.store(h.server),
                                             self.events.emit) for h in hosted}  # fmt: skip
        if self.processes is ProcessMode.ONE:
            return [self._running(h, self._serve_here(h, relays), relays) for h in hosted]
        built: dict[str, RunningServer] = {}
        for group in worker_groups(self.processes, len(hosted)):
            spec = WorkerSpec(self.layout, tuple(hosted[i] for i in group))
            worker = self.workers.spawn(relays, spec)
            for h in spec.servers:
                built[h.server.name] = self._running(h, worker.servers[h.server.name], relays)
            self.workers.watch([built[name] for name in spec.names])
        return [built[h.server.name] for h in hosted]

    def _serve_here(self, hosted: Hosted, relays: Mapping[str, ChangeRelay]) -> ServedNfs:
        server = hosted.server
        nfs = build_nfs_server(
            server, self.layout, hosted.host, hosted.port, relays[server.name], hosted.rpcbind_port
        )
        nfs.dispatcher.observer = self.metrics.nfs_observer(server.name)
        return nfs

    def _running(
        self, hosted: Hosted, nfs: ServedNfs, relays: Mapping[str, ChangeRelay]
    ) -> RunningServer:
        server = hosted.server
        return RunningServer(
            server, nfs, self.layout.folder(server), self.layout.store(server),
            relays[server.name], process=nfs if isinstance(nfs, ServerProcess) else None,
            standard_ports=hosted.rpcbind_port is not None,
        )  # fmt: skip

    def _start_agents(self) -> None:
        from filesim.sync.agent import agent_for  # late: `serve` runs no agent

        for running in self.servers:
            running.agent = running.relay.agent = agent_for(
                running.server, self.layout, self.events.emit
            )
            if running.agent is not None:
                running.agent.on_latency = self._latency_observer(running.name)
                self._tasks.append(asyncio.create_task(self._run_agent(running, running.agent)))

    def _latency_observer(self, name: str) -> Callable[[float], None]:
        metric, history = self.metrics.sync_observer(name), self.history

        def observe(seconds: float) -> None:
            metric(seconds)
            history.record_latency(name, seconds)

        return observe

    async def _attach_faults(self) -> None:
        """Fault injection on every server, with the faults its topology entry lists."""
        for running in self.servers:
            self.faults.attach(running)
            for spec in running.server.faults or []:
                if spec.kind in SYNC_KINDS and running.agent is None:
                    # `filesim serve` runs no agent: the sync faults are the sidecar's business.
                    log.info("%s: %s applies to its sync agent only", running.name, spec.summary())
                    continue
                await self.faults.add(running.name, spec, origin="topology")

    async def _run_agent(self, running: RunningServer, agent: SyncAgent) -> None:
        try:
            await agent.run()
        except asyncio.CancelledError:
            raise
        except Exception:  # the agent's status and its sync.stopped event say why
            log.exception("sync agent of %s stopped", running.name)

    # -- events ---------------------------------------------------------------------------------

    # -- describe / stop ------------------------------------------------------------------------

    def describe(self) -> RuntimeDoc:
        """The runtime document: runtime.json, `GET /api/servers`, `filesim status --json`."""
        servers = []
        for running in self.servers:
            state = running.describe()
            state.faults = [f.to_doc() for f in self.faults.active(running.name)]
            servers.append(state)
        http = None if self.http is None else HttpInfo.of(self.http.host, self.http.port)
        return RuntimeDoc(
            pid=os.getpid(), profile=self.topology.profile, root=self.layout.root,
            state_dir=self.layout.state_dir, started=self.started_at, argv=self.argv,
            http=http, servers=servers,
        )  # fmt: skip

    async def readiness(self) -> Readiness:
        """`/readyz`: every server answers RPC NULL and its initial sync is over."""
        return await readiness([running.probe() for running in self.servers])

    async def metrics_text(self) -> bytes:
        """`/metrics`: the Prometheus text exposition."""
        await self.workers.pull_metrics(self.servers)
        return self.metrics.render()

    def resume(self, name: str) -> None:
        """Lift the mass-deletion halt of `name`'s sync (the dashboard's Resume button)."""
        agent = self.server(name).agent
        if agent is None:
            raise ResumeError(f"{name} runs no sync agent here: there is nothing to resume")
        if agent.halted() is None:
            raise ResumeError(f"the sync of {name} is not halted")
        agent.resume()

    async def _sample_history(self) -> None:
        """One sample of every server's NFS rate and sync latency per history interval."""
        while True:
            await self.workers.pull_metrics(self.servers)
            calls = {running.name: 0 for running in self.servers} | self.metrics.nfs_calls()
            self.history.sample(time.time(), calls)
            await asyncio.sleep(self.history.interval_s)

    async def _refresh_runtime(self) -> None:
        """Rewrite the runtime file when sync status changes, so `filesim status` sees it."""
        last: RuntimeDoc | None = None
        while True:
            await asyncio.sleep(1.0)
            doc = self.describe()
            if doc != last:
                await asyncio.to_thread(write_runtime, self.layout.runtime_file, doc)
                last = doc

    def server(self, name: str) -> RunningServer:
        for running in self.servers:
            if running.name == name:
                return running
        known = ", ".join(r.name for r in self.servers) or "none"
        raise KeyError(f"no running server named {name!r} (running: {known})")

    async def stop(self) -> None:
        await self.workers.close()  # a worker that exits now is not started again
        if self.http is not None:
            await self.http.stop()
        self.faults.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for running in self.servers:
            await running.nfs.stop()
            running.nfs.close()
            if running.agent is not None:
                running.agent.close()
        if self.write_runtime:
            clear_runtime(self.layout, os.getpid())
        if self.stop_token is not None:
            clear_token(self.layout, self.stop_token)
        if self._liveness is not None:
            unlock(self._liveness)
            self._liveness = None
        if self._announced:  # a start that failed half-way announced no server
            for running in self.servers:
                self.events.emit(Event("server.stop", running.name))
        self._announced = False
        self.servers.clear()


def _usable_dir(path: Path, what: str) -> None:
    if path.exists() and not path.is_dir():
        raise StartupError(f"the {what} at {path} is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create the {what} at {path}: {exc.strerror}") from None
    if not path.is_dir():
        raise StartupError(f"the {what} at {path} is not a directory")
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise StartupError(f"the {what} at {path} is not readable and writable by this user")
