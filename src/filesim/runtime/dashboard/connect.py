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
    standard = server.standard_ports
    note = None
    if not standard:
        note = (
            f"Windows' NFS client cannot be told a port: it needs the server on the standard "
            f"ports (NFS {WINDOWS_PORT}, portmapper 111; `filesim up --standard-ports`); this "
            f"one listens on {port}."
        )
    mountpoint = f"/mnt/{server.name}"
    return ConnectDoc(
        server=server.name,
        linux=mount_command(host, port, export, mountpoint, standard=standard),
        linux_v4=mount_command(host, port, export, mountpoint, version="4.1", standard=standard),
        macos=macos_mount_command(host, port, export, f"/Volumes/{server.name}", standard=standard),
        windows=windows_mount_command(host, export),
        windows_note=note,
        pv_pvc=None if pv_renderer is None else pv_renderer(server.name, host, port),
    )
