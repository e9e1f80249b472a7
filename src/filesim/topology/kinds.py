"""The topology's kinds of things (plain enums, no pydantic): what the command line needs to
declare its options without building the topology's models, which costs a fifth of its start.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    INPUT = "input"
    OUTPUT = "output"
    BACKUP = "backup"


class StorageMode(StrEnum):
    MIRROR = "mirror"
    """The export has its own store, kept in step with the folder by the synchroniser."""
    DIRECT = "direct"
    """The export serves the folder itself; no synchroniser."""


class Direction(StrEnum):
    BOTH = "both"
    FOLDER_TO_EXPORT = "folder-to-export"
    EXPORT_TO_FOLDER = "export-to-folder"
    NONE = "none"

    @property
    def folder_to_export(self) -> bool:
        return self in (Direction.BOTH, Direction.FOLDER_TO_EXPORT)

    @property
    def export_to_folder(self) -> bool:
        return self in (Direction.BOTH, Direction.EXPORT_TO_FOLDER)


class PortMode(StrEnum):
    CUSTOM = "custom"
    """One port per server (base port + index) for NFS, MOUNT and rpcbind alike: no root
    needed, but clients must be told the port (port=P,mountport=P)."""
    STANDARD = "standard"
    """Each server on its own address with NFS on 2049 and rpcbind on 111, like a real NAS:
    production mount options and Windows' mount.exe work unchanged (binding 111 needs root,
    CAP_NET_BIND_SERVICE or net.ipv4.ip_unprivileged_port_start)."""


class ProcessMode(StrEnum):
    AUTO = "auto"
    """per-core on a machine with 2 or more CPU cores when more than one server runs, else
    one (`runtime.worker.WORKER_CORES`)."""
    ONE = "one"
    """Every server in the one `filesim up` process: the least memory, one CPU core."""
    PER_SERVER = "per-server"
    """Each server's NFS side in a worker process of its own, the sync agents, HTTP API,
    events, metrics and faults in the topology's process: servers busy at once use every
    core (about 40 MB more memory per server)."""
    PER_CORE = "per-core"
    """The servers' NFS sides spread over as many worker processes as there are CPU cores (at
    most one per server), the rest as in per-server: every core used, with fewer processes
    to wake and switch between than one per server."""


class FaultKind(StrEnum):
    LATENCY = "latency"
    """Delay the replies of chosen procedures."""
    ERROR = "error"
    """Answer chosen procedures (and paths) with an NFS error status."""
    READONLY = "readonly"
    """Flip the export to read-only: every mutating call gets NFS3ERR_ROFS."""
    OUTAGE = "outage"
    """The server is gone: connections refused, or calls never answered."""
    SYNC_PAUSE = "sync-pause"
    """The sync agent does nothing until the fault is cleared."""
    SYNC_SLOW = "sync-slow"
    """The sync agent waits `delay_ms` before each cycle."""
