"""The typed model of a NAS topology.

A topology is pure data: the servers, what each exports and how its export is kept in step with
the tester's folder. The same model feeds `filesim up`, `filesim serve`/`sync`, the Helm values
and `filesim k8s render`, so they cannot disagree.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from filesim.topology.faults import FaultSpec
from filesim.topology.kinds import Direction as Direction
from filesim.topology.kinds import PortMode as PortMode
from filesim.topology.kinds import ProcessMode as ProcessMode
from filesim.topology.kinds import Role as Role
from filesim.topology.kinds import StorageMode as StorageMode
from filesim.topology.profiles import Profile, role_sync_defaults

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
"""A DNS label (RFC 1123): what server names are, and Kubernetes namespaces and releases."""

EXPORT_PATH = r"^(/[^/]+)+$|^/$"
"""An absolute, normalised path (for the schema; the validator below also refuses . and ..)."""

CIDR = r"^[0-9a-fA-F:.]+(/[0-9]{1,3})?$"
"""The shape of an address or network (for the schema; the validator parses it for real)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ExportOptions(_Strict):
    """How a server exports its store over NFS."""

    path: str = Field(
        "/data",
        description="The export path clients mount, e.g. /data.",
        json_schema_extra={"pattern": EXPORT_PATH},
    )
    readonly: bool = Field(False, description="ro export: every mutating call gets NFS3ERR_ROFS.")
    sync: bool = Field(False, description="sync export: WRITE replies are FILE_SYNC (fsync'd).")
    root_squash: bool = Field(
        False, description="Map uid 0 to the anonymous uid/gid (no_root_squash by default)."
    )
    anon_uid: int = Field(65534, ge=0, le=2**32 - 1)
    anon_gid: int = Field(65534, ge=0, le=2**32 - 1)
    allowed_clients: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0", "::/0"],
        description="Client networks (CIDR) allowed to mount and use the export.",
        json_schema_extra={"items": {"type": "string", "pattern": CIDR}},
    )
    nfs4_lease_s: int = Field(
        15, ge=5, le=3600, description="NFSv4 lease: a client silent this long loses its state."
    )
    nfs4_grace_s: int = Field(
        15,
        ge=0,
        le=3600,
        description="NFSv4 grace period after a restart, for clients to reclaim their state.",
    )
    max_connections: int = Field(
        1024, ge=1, le=65536,
        description="Client connections served at once; more are refused (and logged).",
    )  # fmt: skip
    idle_timeout_s: int = Field(
        300, ge=5, le=86400,
        description="A connection that sends nothing this long is closed (clients reconnect).",
    )  # fmt: skip
    backend: Literal["auto", "fd", "path"] = Field(
        "auto",
        description="File backend: fd (directory fds, Linux/macOS), path (plain paths, each "
        "component lstat-checked: Windows), auto (fd where the platform has it).",
    )
    fileids: Literal["auto", "native", "table"] = Field(
        "auto",
        description="NFS file ids and handles: native (the filesystem's file numbers), table "
        "(ids filesim allocates and keeps in the state dir, for roots whose numbers change: "
        "FAT, exFAT, FUSE, SMB), auto (table on those filesystems, native elsewhere).",
    )

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/") or value != "/" + "/".join(p for p in value.split("/") if p):
            raise ValueError(
                f"export path must be absolute and normalised, like /data (got {value!r})"
            )
        if any(p in (".", "..") for p in value.split("/")):
            raise ValueError(f"export path must not contain . or .. (got {value!r})")
        return value

    @field_validator("allowed_clients")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(
                    f"allowed_clients: {net!r} is not a network like 10.0.0.0/8"
                ) from exc
        return value

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(n, strict=False) for n in self.allowed_clients]


OS_CLUTTER = (".DS_Store", "._*", ".Spotlight-V100", ".Trashes", ".fseventsd", "Thumbs.db",
              "desktop.ini", "~$*", ".~lock.*#")  # fmt: skip
"""What Finder, Explorer and Office drop into folders: Finder's metadata and AppleDouble files,
Windows' thumbnail caches and folder settings, Office's and LibreOffice's lock files."""


class SyncPolicy(_Strict):
    """How the synchroniser keeps a mirror-mode export and its folder in step."""

    direction: Direction = Field(Direction.BOTH, description="Which way changes flow.")
    continuous: bool = Field(True, description="Keep syncing while running (else only at start).")
    initial: bool = Field(True, description="Sync once at start.")
    mirror_deletes: bool = Field(True, description="Propagate deletions.")
    settle_ms: int = Field(100, ge=0, description="A file moves after this long without writes.")
    stall_s: float = Field(
        5.0,
        gt=0,
        le=3600,
        description=(
            "A file written without a close (no NFS COMMIT or CLOSE, no close event in the "
            "folder) moves only after this long without writes: never while still written."
        ),
    )
    rescan_interval_s: float = Field(60.0, gt=0, description="Full rescan period (missed events).")
    conflict: Literal["newer-wins"] = "newer-wins"
    watcher: Literal["auto", "events", "polling"] = Field(
        "auto", description="Folder watcher: OS events, polling (network folders) or auto."
    )
    poll_interval_s: float = Field(1.0, gt=0, description="Polling watcher period.")
    backend: Literal["auto", "fd", "path"] = Field(
        "auto",
        description="How the synchroniser walks both trees: fd (directory fds, Linux/macOS), "
        "path (plain paths, each component lstat-checked: Windows), auto (fd where the "
        "platform has it).",
    )
    ignore: list[str] = Field(
        default_factory=lambda: list(OS_CLUTTER),
        description="Names never synced, either way (shell patterns, case ignored): by default "
        "the clutter macOS, Windows and Office leave in folders. [] syncs everything.",
    )

    @property
    def active(self) -> bool:
        return self.direction is not Direction.NONE and (self.continuous or self.initial)


class Server(_Strict):
    """One simulated NAS server."""

    name: str = Field(
        description="A DNS label: lower-case letters, digits and '-', at most 63 characters.",
        json_schema_extra={"pattern": DNS_LABEL.pattern},
    )
    role: Role
    enabled: bool = True
    fsid: int = Field(ge=1, le=2**32 - 1, description="Unique in the topology.")
    storage: StorageMode = StorageMode.MIRROR
    export: ExportOptions = Field(default_factory=ExportOptions)
    folder: Path | None = Field(None, description="The tester's folder (default ROOT/<name>).")
    host: str | None = Field(
        None,
        description="Listen address (default: `filesim up --host`; with standard ports "
        "127.0.0.1 alone, else 127.0.0.11 + the server's index).",
    )
    port: int | None = Field(None, ge=1, le=65535, description="Default: base port + index.")
    node_port: int | None = Field(None, ge=30000, le=32767, description="Kubernetes NodePort.")
    sync: SyncPolicy = Field(default_factory=SyncPolicy)
    faults: list[FaultSpec] | None = Field(
        None, description="Faults active from start (see docs/operating.md)."
    )

    @field_validator("name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not DNS_LABEL.match(value):
            raise ValueError(
                f"server name {value!r} is not a DNS label (lower-case letters, digits, '-', "
                "at most 63 characters, starting and ending with a letter or digit)"
            )
        return value

    @property
    def readonly(self) -> bool:
        return self.export.readonly

    @property
    def syncs(self) -> bool:
        """True when a sync agent runs for this server at all."""
        return self.storage is StorageMode.MIRROR and self.sync.active


class Topology(_Strict):
    """A set of NAS servers and the profile their sync defaults come from."""

    profile: Profile = "default"
    ports: PortMode = Field(
        PortMode.CUSTOM,
        description="custom: one port per server, no root needed; standard: each server on its "
        "own address (127.0.0.11, ...) with NFS on 2049 and rpcbind on 111.",
    )
    processes: ProcessMode = Field(
        ProcessMode.AUTO,
        description="one: every server in the topology's process; per-core: the servers' NFS "
        "sides spread over a worker process per CPU core, so servers busy at once use every "
        "core; per-server: a worker process for each server; auto: per-core on 2 or more CPU "
        "cores when more than one server runs, else one.",
    )
    servers: list[Server]

    @model_validator(mode="before")
    @classmethod
    def _apply_profile_defaults(cls, data: Any) -> Any:
        """Fill each server's unset sync fields from its role's defaults in the profile."""
        if not isinstance(data, dict):
            return data
        profile = data.get("profile", "default")
        servers = data.get("servers")
        if not isinstance(servers, list):
            return data
        filled = []
        for server in servers:
            if isinstance(server, dict) and isinstance(server.get("role"), str):
                defaults = role_sync_defaults(profile, server["role"])
                given = server.get("sync") or {}
                if isinstance(given, dict):
                    server = {**server, "sync": {**defaults, **given}}
            filled.append(server)
        return {**data, "servers": filled}

    @model_validator(mode="after")
    def _unique(self) -> Topology:
        for attr in ("name", "fsid", "port", "node_port"):
            seen: dict[object, str] = {}
            for server in self.servers:
                value = getattr(server, attr)
                if value is None:
                    continue
                if value in seen:
                    raise ValueError(
                        f"{attr} {value} is used by both {seen[value]!r} and {server.name!r}; "
                        f"each server needs its own {attr}"
                    )
                seen[value] = server.name
        if not self.servers:
            raise ValueError("a topology needs at least one server")
        return self

    @property
    def enabled(self) -> list[Server]:
        return [s for s in self.servers if s.enabled]

    def server(self, name: str) -> Server:
        for server in self.servers:
            if server.name == name:
                return server
        known = ", ".join(s.name for s in self.servers)
        raise KeyError(f"no server named {name!r} in the topology (known: {known})")
