"""One server of a test topology, as a test reaches it: address, export, folder, mount."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from filesim.runtime.model import ServerState
from filesim.topology.mount import mount_command, mount_option_string


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

    @classmethod
    def of(cls, state: ServerState) -> NasServer:
        return cls(
            state.name, state.role.value, state.connect_host, state.port, state.export,
            state.folder, state.store, state.readonly,
        )  # fmt: skip

    def url(self, path: str = "") -> str:
        """A libnfs URL, e.g. nfs://127.0.0.1/data/a.txt?version=3&nfsport=P&mountport=P."""
        path = "/" + path.lstrip("/") if path else ""
        query = f"version=3&nfsport={self.port}&mountport={self.port}"
        return f"nfs://{self.host}{self.export}{path}?{query}"

    @property
    def mount_options(self) -> str:
        """Linux mount options (`mount -t nfs -o OPTIONS HOST:EXPORT DIR`)."""
        return mount_option_string(self.port)

    @property
    def mount_source(self) -> str:
        return f"{self.host}:{self.export}"

    def mount_command(self, mountpoint: str | Path) -> str:
        return mount_command(self.host, self.port, self.export, str(mountpoint))
