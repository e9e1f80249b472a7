"""How a client mounts a running server: the mount commands of the three platforms (from the
one option set in `filesim.topology.mount`) and, when the process can render it, a ready
PersistentVolume + claim (`PvRenderer`: the CLI passes `filesim k8s`'s renderer; the runtime
layer cannot import it)."""

from __future__ import annotations

from collections.abc import Callable

from filesim.runtime.dashboard.model import ConnectDoc
from filesim.runtime.model import ServerState
from filesim.topology.mount import (
    WINDOWS_PORT,
    macos_mount_command,
    mount_command,
    windows_mount_command,
)

PvRenderer = Callable[[str, str, int], str]
"""(server name, address, port) -> YAML of its PersistentVolume and PersistentVolumeClaim."""


def connect_doc(server: ServerState, pv_renderer: PvRenderer | None = None) -> ConnectDoc:
    host, port, export = server.connect_host, server.port, server.export
    note = None
    if port != WINDOWS_PORT:
        note = (
            f"Windows' NFS client cannot be told a port: it needs the server on the standard "
            f"ports (NFS {WINDOWS_PORT}, portmapper 111); this one listens on {port}."
        )
    return ConnectDoc(
        server=server.name,
        linux=mount_command(host, port, export, f"/mnt/{server.name}"),
        linux_v4=mount_command(host, port, export, f"/mnt/{server.name}", version="4.1"),
        macos=macos_mount_command(host, port, export, f"/Volumes/{server.name}"),
        windows=windows_mount_command(host, export),
        windows_note=note,
        pv_pvc=None if pv_renderer is None else pv_renderer(server.name, host, port),
    )
