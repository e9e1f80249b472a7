"""The RPC programs a server answers beside NFS, on the same port(s): rpcbind (PORTMAP), MOUNT,
NLM and NSM.

Each is a `Program` whose procedures register once, for the versions they serve:

    @RPCBIND.procedure(RpcbProc.GETADDR, versions=(3, 4))
    def getaddr(s: Services, o: Origin, u: Unpacker) -> bytes: ...

A handler gets the server's `Services` (the export, its rpcbind registrations, the lock
manager, the host record), where the call came from (`Origin`) and an Unpacker positioned at
its arguments. It returns the encoded result, or None for no reply at all (an NLM _MSG call
answers with a call of its own, through `Services.send`). The dispatcher does the routing and
the RPC-level errors (PROG_MISMATCH, PROC_UNAVAIL, GARBAGE_ARGS).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, TypeVar

from filesim.oncrpc.xdr import Unpacker

if TYPE_CHECKING:  # the programs import this module to register their procedures
    from filesim.nfs.export import Export
    from filesim.nfs.nlm.manager import LockManager
    from filesim.nfs.nlm.monitor import HostRecord
    from filesim.nfs.rpcbind import Registrations


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a call came from: the client's address, ours that it called, and the transport."""

    client: str
    local: str = ""
    udp: bool = False


OneWay = Callable[[Origin, int, int, int, bytes], None]
"""send(to, program, version, procedure, arguments): a call to the client, reply not awaited."""


@dataclass
class Services:
    """What the programs beside NFS work on, for one served export."""

    export: Export
    rpcbind: Registrations
    nlm: LockManager
    monitor: HostRecord
    send: OneWay | None = field(default=None)
    """How NLM's _MSG procedures answer (None: they are answered by nothing)."""


Handler = Callable[[Services, Origin, Unpacker], bytes | None]
H = TypeVar("H", bound=Handler)


class Program:
    """One RPC program: its number, versions and procedure handlers by (version, procedure)."""

    def __init__(
        self, number: int, name: str, versions: tuple[int, ...], procs: type[IntEnum]
    ) -> None:
        self.number = number
        self.name = name
        self.versions = versions
        self.procs = procs
        self._handlers: dict[tuple[int, int], Handler] = {}

    @property
    def low(self) -> int:
        return min(self.versions)

    @property
    def high(self) -> int:
        return max(self.versions)

    def procedure(self, proc: IntEnum, versions: tuple[int, ...] | None = None) -> Callable[[H], H]:
        """Register the decorated handler as `proc` of `versions` (default: every version)."""
        served = self.versions if versions is None else versions

        def register(handler: H) -> H:
            for vers in served:
                if vers not in self.versions:
                    raise ValueError(f"{self.name} has no version {vers}")
                if (vers, proc) in self._handlers:
                    raise ValueError(f"{self.name} v{vers} {proc.name} is registered twice")
                self._handlers[vers, proc] = handler
            return handler

        return register

    def handler(self, vers: int, proc: int) -> Handler | None:
        return self._handlers.get((vers, proc))

    def proc_name(self, proc: int) -> str:
        try:
            return self.procs(proc).name
        except ValueError:
            return str(proc)
