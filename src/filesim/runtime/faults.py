"""Faults injected into a running topology: added, listed, expired and cleared per server.

The controller lives on the runner's event loop; every method must be called from it (the HTTP
API runs there; `filesim.testing` hops onto it). Each change is an event (`fault.add`,
`fault.clear`) and is in force when `add` or `clear` returns: the server's NFS faults are
recomputed from the faults still active (`filesim.nfs.faults.ServerFaults.apply`, in a worker
process too), the sync agent's gate is opened or closed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import ValidationError

from filesim.errors import FilesimError
from filesim.events import Event, EventBus
from filesim.runtime.model import FaultDoc
from filesim.runtime.served import ServedNfs
from filesim.topology.faults import SYNC_KINDS, FaultKind, FaultSpec, nfs_faults

if TYPE_CHECKING:
    from filesim.sync.agent import SyncAgent

log = logging.getLogger(__name__)


class FaultError(FilesimError):
    """A fault that cannot be added or cleared (unknown server, invalid spec, no sync agent)."""


class InvalidFault(FaultError):
    """A fault specification the model refuses (unknown kind or name, a number out of range)."""


class _Running(Protocol):
    @property
    def name(self) -> str: ...

    nfs: ServedNfs
    agent: SyncAgent | None


@dataclass
class ActiveFault:
    id: str
    server: str
    spec: FaultSpec
    origin: Literal["topology", "api"]
    """'topology' (static, from the topology file) or 'api' (added at run time)."""
    added: float = field(default_factory=time.time)
    expires: float | None = None

    def to_doc(self) -> FaultDoc:
        return FaultDoc(
            id=self.id, server=self.server, kind=self.spec.kind, summary=self.spec.summary(),
            origin=self.origin, added=self.added, expires=self.expires, spec=self.spec,
        )  # fmt: skip


class SyncGate:
    """The gate a sync agent awaits before each cycle: closed while paused, slow while slowed."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self.delay = 0.0

    def set(self, paused: bool, delay: float) -> None:
        self.delay = delay
        if paused:
            self._open.clear()
        else:
            self._open.set()

    @property
    def paused(self) -> bool:
        return not self._open.is_set()

    async def __call__(self) -> None:
        await self._open.wait()
        if self.delay > 0:
            await asyncio.sleep(self.delay)


class FaultController:
    """The active faults of every server of one running topology."""

    def __init__(self, events: EventBus) -> None:
        self._events = events
        self._servers: dict[str, _Running] = {}
        self._gates: dict[str, SyncGate] = {}
        self._active: dict[str, ActiveFault] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._background: set[asyncio.Future[None]] = set()
        """Fault changes nobody waits for, under way (kept until done)."""
        self._ids = itertools.count(1)

    def attach(self, running: _Running) -> None:
        """Take charge of `running`'s faults; call once its NFS server and agent exist."""
        self._servers[running.name] = running
        if running.agent is not None:
            gate = self._gates[running.name] = SyncGate()
            running.agent.gate = gate

    # -- add / clear ----------------------------------------------------------------------------

    async def add(
        self,
        server: str,
        spec: FaultSpec | Mapping[str, object],
        origin: Literal["topology", "api"] = "api",
    ) -> ActiveFault:
        running = self.require(server)
        if not isinstance(spec, FaultSpec):
            spec = parse_spec(spec)
        if spec.kind in SYNC_KINDS and running.agent is None:
            raise FaultError(
                f"{server} runs no sync agent: a {spec.kind.value} fault would have no effect"
            )
        fault = ActiveFault(f"f{next(self._ids)}", server, spec, origin)
        # Everything that can fail happens before the fault is stored: a fault that failed to
        # be added must not linger (and break every later listing).
        detail = fault.to_doc().model_dump(mode="json")
        if spec.duration_s:
            fault.expires = fault.added + spec.duration_s
            detail["expires"] = fault.expires
        self._active[fault.id] = fault
        try:
            await self._apply(server)
        except BaseException:
            del self._active[fault.id]
            # The others back in force, not waited for: a stuck worker must not double the wait
            # for the error (the first one says what went wrong).
            self._in_background(server, self._apply(server))
            raise
        if spec.duration_s:
            loop = asyncio.get_running_loop()
            self._timers[fault.id] = loop.call_later(spec.duration_s, self._expire, fault.id)
        self._events.emit(Event("fault.add", server, detail=detail))
        return fault

    async def clear(
        self, server: str | None = None, fault_id: str | None = None
    ) -> list[ActiveFault]:
        """Clear one fault (`fault_id`), a server's faults, or every fault; returns them."""
        if server is not None:
            self.require(server)
        if fault_id is not None and fault_id not in self._active:
            raise FaultError(f"no active fault {fault_id!r} (see `filesim fault list`)")
        gone = [
            f
            for f in self._active.values()
            if (fault_id is None or f.id == fault_id) and (server is None or f.server == server)
        ]
        await self._remove(gone, "cleared")
        return gone

    def _expire(self, fault_id: str) -> None:
        fault = self._active.get(fault_id)
        if fault is not None:
            self._in_background(fault.server, self._remove([fault], "expired"))

    def _in_background(self, server: str, change: Coroutine[Any, Any, None]) -> None:
        """A change of `server`'s faults nobody waits for (an expiry, a rollback)."""
        task = asyncio.ensure_future(self._logged(server, change))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @staticmethod
    async def _logged(server: str, change: Coroutine[Any, Any, None]) -> None:
        try:
            await change
        except FilesimError as exc:  # the worker is stuck or gone: health says so
            log.error("%s: its faults could not be changed: %s", server, exc)

    async def _remove(self, faults: Iterable[ActiveFault], reason: str) -> None:
        touched = set()
        for fault in list(faults):
            self._active.pop(fault.id, None)
            timer = self._timers.pop(fault.id, None)
            if timer is not None:
                timer.cancel()
            touched.add(fault.server)
            detail = {"id": fault.id, "kind": fault.spec.kind.value, "reason": reason,
                      "summary": fault.spec.summary()}  # fmt: skip
            self._events.emit(Event("fault.clear", fault.server, detail=detail))
        for server in touched:
            await self._apply(server)

    async def reapply(self, server: str) -> None:
        """Put `server`'s faults in force again (its NFS server was started anew)."""
        await self._apply(server)

    async def _apply(self, server: str) -> None:
        specs = [f.spec for f in self._active.values() if f.server == server]
        gate = self._gates.get(server)
        if gate is not None:  # first: the agent's gate never waits on the NFS side
            paused = any(s.kind is FaultKind.SYNC_PAUSE for s in specs)
            delay = sum(s.delay_ms for s in specs if s.kind is FaultKind.SYNC_SLOW) / 1000
            gate.set(paused, delay)
        nfs = self._servers[server].nfs  # read each time: a worker process may be a new one
        await nfs.apply_faults(nfs_faults(specs))

    # -- queries --------------------------------------------------------------------------------

    def active(self, server: str | None = None) -> list[ActiveFault]:
        return [f for f in self._active.values() if server is None or f.server == server]

    def count(self, server: str) -> int:
        return sum(1 for f in self._active.values() if f.server == server)

    def close(self) -> None:
        """Cancel the expiry timers (the topology is stopping)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._background:
            task.cancel()

    def require(self, name: str) -> _Running:
        """The running server `name`, or FaultError."""
        running = self._servers.get(name)
        if running is None:
            known = ", ".join(self._servers) or "none"
            raise FaultError(f"no running server named {name!r} (running: {known})")
        return running


def parse_spec(data: Mapping[str, object]) -> FaultSpec:
    """A FaultSpec from JSON-like data, with a one-line error for the first problem."""
    try:
        return FaultSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidFault(f"invalid fault: {where + ': ' if where else ''}{message}") from None
