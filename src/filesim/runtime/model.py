"""The runtime document: what a running topology says about itself, as one typed value.

`TopologyRunner.describe()` builds it; it is written to ROOT/.filesim/runtime.json and served
as `GET /api/servers`; `filesim status`, `filesim down`, `filesim verify`, the fault commands
and the pytest fixture read it back through these models, never as loose dicts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from filesim.sync.status import SyncStatus
from filesim.topology.faults import FaultKind, FaultSpec
from filesim.topology.model import Role, StorageMode, SyncPolicy

WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def reachable_host(host: str) -> str:
    """Where a client on this machine reaches a server listening on `host` (a wildcard
    address, which listens everywhere, is reached over loopback)."""
    return WILDCARDS.get(host, host)


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FaultDoc(_Doc):
    """One active fault, as the API, the runtime file and `filesim fault list` show it."""

    id: str
    server: str
    kind: FaultKind
    summary: str = Field(description="A short description, e.g. 'error EIO on READ'.")
    origin: Literal["topology", "api"] = Field(
        description="'topology' (from the topology file) or 'api' (added at run time)."
    )
    added: float = Field(description="Unix time it was added.")
    expires: float | None = Field(None, description="Unix time it clears by itself.")
    spec: FaultSpec

    @field_serializer("spec")
    def _spec_as_given(self, spec: FaultSpec) -> dict[str, object]:
        # Only what was set: `{"kind": "readonly"}`, not every default of every kind.
        return spec.model_dump(mode="json", exclude_defaults=True)


class FaultList(_Doc):
    """`GET /api/faults`."""

    faults: list[FaultDoc]


class ClearedFaults(_Doc):
    """`DELETE /api/faults`: the faults cleared."""

    cleared: list[FaultDoc]


class SyncState(SyncPolicy):
    """A server's sync policy, and whether a sync agent runs for it in this process."""

    agent: bool = Field(description="A sync agent runs for this server here.")


class ServerState(_Doc):
    """One running server."""

    name: str
    role: Role
    host: str = Field(description="The address it listens on (0.0.0.0: all of them).")
    port: int
    standard_ports: bool = Field(
        False,
        description="Standard-port mode: NFS on 2049 and rpcbind on 111 of `host`, so clients "
        "mount with production options; else rpcbind answers on `port` only.",
    )
    export: str = Field(description="The export path clients mount.")
    folder: Path = Field(description="The tester's folder.")
    readonly: bool
    fsid: int
    storage: StorageMode
    store: Path = Field(description="The directory the NFS server exports.")
    sync: SyncState
    sync_status: SyncStatus | None = Field(None, description="The agent's state, if one runs.")
    faults: list[FaultDoc] = Field(default_factory=list)
    pid: int | None = Field(
        None, description="Its worker process (`processes: per-core` or `per-server`; several "
        "servers may share one); null when it runs in the topology's process.",
    )  # fmt: skip

    @property
    def connect_host(self) -> str:
        """Where a client on this machine reaches the server."""
        return reachable_host(self.host)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class HttpInfo(_Doc):
    """Where the topology's HTTP API listens."""

    host: str
    port: int
    url: str

    @classmethod
    def of(cls, host: str, port: int) -> HttpInfo:
        shown = reachable_host(host)
        shown = f"[{shown}]" if ":" in shown else shown
        return cls(host=host, port=port, url=f"http://{shown}:{port}")


class RuntimeDoc(_Doc):
    """A running topology: its process, where it keeps state, its API and its servers."""

    pid: int
    profile: str
    root: Path
    state_dir: Path
    started: float = Field(description="Unix time the servers started.")
    argv: list[str] | None = Field(
        None, description="The `filesim up` arguments that start this topology again."
    )
    http: HttpInfo | None = None
    servers: list[ServerState] = Field(default_factory=list)

    def server(self, name: str) -> ServerState:
        for server in self.servers:
            if server.name == name:
                return server
        known = ", ".join(s.name for s in self.servers) or "none"
        raise KeyError(f"no server named {name!r} in the running topology (running: {known})")

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"
