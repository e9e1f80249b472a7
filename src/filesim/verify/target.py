"""What `filesim verify` runs against: the servers of a topology, reached from this machine."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from filesim.errors import FilesimError
from filesim.sync.status import SyncStatus
from filesim.topology.model import Direction, Role, StorageMode


class VerifyError(FilesimError):
    """The checks cannot run at all: no topology running, bad options, unknown server."""


@dataclass(frozen=True)
class ServerTarget:
    """One server as the checks see it: where to reach it and how it is meant to sync."""

    name: str
    role: Role
    host: str
    port: int
    export: str
    folder: Path | None
    """The tester's folder, when this machine can reach it."""
    readonly: bool
    storage: StorageMode = StorageMode.MIRROR
    direction: Direction = Direction.BOTH
    continuous: bool = True
    initial: bool = True
    mirror_deletes: bool = True

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def direct(self) -> bool:
        return self.storage is StorageMode.DIRECT

    @property
    def has_agent(self) -> bool:
        """A sync agent exists at all (mirror storage, some direction, at start or continuous)."""
        active = self.direction is not Direction.NONE and (self.continuous or self.initial)
        return not self.direct and active

    @property
    def live_folder_to_export(self) -> bool:
        """A file dropped in the folder reaches the export while the server runs."""
        return self.direct or (self.continuous and self.direction.folder_to_export)

    @property
    def live_export_to_folder(self) -> bool:
        """A file written over NFS reaches the folder while the server runs."""
        return self.direct or (self.continuous and self.direction.export_to_folder)

    @property
    def live_deletes_to_folder(self) -> bool:
        return self.direct or (self.live_export_to_folder and self.mirror_deletes)

    @property
    def expects_readonly(self) -> bool:
        """Backups are read-only over NFS by role, whatever their export options say."""
        return self.readonly or self.role is Role.BACKUP


@dataclass
class Target:
    """A running topology: its servers plus the few operations the checks need beyond NFS."""

    kind: str
    """'local' or 'kubernetes'."""
    profile: str
    servers: list[ServerTarget]
    sync_status: Callable[[], Mapping[str, SyncStatus | None]] | None
    """Per server, the sync agent's status (None: no agent), read fresh on each call;
    None where the target cannot tell (Kubernetes exposes no sync counters)."""
    agent_problems: Callable[[ServerTarget], list[str]]
    """What is wrong with a server's sync agents compared with its policy ([]: all as expected)."""
    restart: Callable[[], None]
    """Restart the whole topology (local) or every server's pod (Kubernetes) and wait for it."""
    description: str = ""
    unreachable: dict[str, str] = field(default_factory=dict)
    """Servers known to be unreachable before any check runs (no Service, no NodePort)."""

    def select(self, names: list[str] | None) -> list[ServerTarget]:
        if not names:
            return list(self.servers)
        known = {s.name: s for s in self.servers}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise VerifyError(
                f"no server named {', '.join(unknown)} in the running topology "
                f"(servers: {', '.join(known)})"
            )
        return [known[n] for n in names]
