"""What the runtime needs of a server's NFS side, whether it runs in the topology's process
(`filesim.nfs.server.NfsServer`) or in a worker process (`runtime.worker.ServerProcess`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from filesim.topology.faults import FaultSpec


class ServedNfs(Protocol):
    host: str
    port: int
    rpcbind_port: int | None

    @property
    def connections(self) -> int: ...

    async def start(self) -> None:
        """Listen (OSError when a port cannot be bound)."""
        ...

    async def stop(self) -> None: ...

    def close(self) -> None:
        """Release the storage, after `stop`."""
        ...

    async def apply_faults(self, specs: Sequence[FaultSpec]) -> None:
        """Make `specs` the server's NFS faults, in force when this returns (FilesimError
        when they cannot be; an outage drops the open connections)."""
        ...
