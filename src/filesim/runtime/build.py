"""Building the NFS side of one server from the topology: export options, storage, handles."""

from __future__ import annotations

import asyncio
import threading

from filesim.nfs.export import Export, ExportConfig
from filesim.nfs.faults import FaultyVfs, ServerFaults
from filesim.nfs.handles import load_secret
from filesim.nfs.limits import ServerLimits
from filesim.nfs.localfs import LocalVfs
from filesim.nfs.notify import ChangeListener, NotifyingVfs
from filesim.nfs.ownership import MetaStore, OwnershipVfs, emulating
from filesim.nfs.server import NfsServer
from filesim.nfs.storage import open_store
from filesim.nfs.v4.service import V4Options
from filesim.nfs.vfs import Vfs
from filesim.topology import Layout, Server
from filesim.topology.faults import nfs_faults
from filesim.topology.layout import is_temp_name


def export_config(server: Server, layout: Layout | None = None) -> ExportConfig:
    opts = server.export
    return ExportConfig(
        name=server.name,
        path=opts.path,
        fsid=server.fsid,
        readonly=opts.readonly,
        sync=opts.sync,
        root_squash=opts.root_squash,
        anon_uid=opts.anon_uid,
        anon_gid=opts.anon_gid,
        networks=opts.networks(),
        generations_file=None if layout is None else layout.generations_file(server),
    )


def build_nfs_server(
    server: Server, layout: Layout, host: str, port: int, listener: ChangeListener | None = None,
    rpcbind_port: int | None = None,
) -> NfsServer:  # fmt: skip
    """The NFS server of `server`, its storage composed once: notification around fault
    injection around the store, `NotifyingVfs(FaultyVfs(LocalVfs))`, and without root
    `NotifyingVfs(FaultyVfs(OwnershipVfs(LocalVfs)))`. `rpcbind_port`: rpcbind there too (111
    in standard-port mode); the lock manager's hosts are kept in the state dir.

    `listener` hears of each change a client makes, on the thread of the event loop running
    now (the one that will serve: call this from it), whichever thread made the change."""
    secret = load_secret(layout.secret_file)
    storage = FaultyVfs(_store_vfs(server, layout))
    loop = asyncio.get_running_loop()
    vfs = NotifyingVfs(storage, _on_loop(listener or _ignore, loop))
    export = Export(export_config(server, layout), vfs, secret)
    limits = ServerLimits(
        max_connections=server.export.max_connections,
        idle_timeout_s=server.export.idle_timeout_s,
    )
    faults = ServerFaults(storage)
    # The topology's own faults hold from the first connection on. The runtime's fault
    # controller records them (ids, events, expiry) once the server runs, with the same effect.
    faults.apply(nfs_faults(server.faults or []))
    return NfsServer(
        export, server.host or host, port, faults=faults,
        v4=v4_options(server, layout), rpcbind_port=rpcbind_port, limits=limits,
        nlm_state=layout.state_dir / f"nlm-{server.name}.json",
    )  # fmt: skip


def _store_vfs(server: Server, layout: Layout) -> Vfs:
    """The export's storage (LocalVfs or PathVfs); without root, wrapped to keep owners, modes
    and devices itself (`OwnershipVfs`: extended attributes, or a file in the state dir)."""
    store = open_store(
        layout.store(server), server.export.backend, hidden=is_temp_name,
        fileids=server.export.fileids, table_file=layout.state_dir / f"fileids-{server.name}.log",
    )  # fmt: skip
    if not emulating():
        return store
    side = layout.state_dir / f"owners-{server.name}.json"
    xattrs = store if isinstance(store, LocalVfs) else None
    return OwnershipVfs(store, MetaStore(xattrs, side))


def _on_loop(listener: ChangeListener, loop: asyncio.AbstractEventLoop) -> ChangeListener:
    """`listener`, called on `loop`'s thread (this one) whichever thread a change happened on:
    COMMIT and sync WRITE calls run in executor threads."""
    loop_thread = threading.get_ident()

    def call(kind: str, path: str, dest: str | None) -> None:
        if threading.get_ident() == loop_thread:
            listener(kind, path, dest)
        else:
            loop.call_soon_threadsafe(listener, kind, path, dest)

    return call


def _ignore(kind: str, path: str, dest: str | None) -> None:
    return None


def v4_options(server: Server, layout: Layout) -> V4Options:
    """NFSv4 lease and grace from the topology; client records kept in the state directory."""
    opts = server.export
    return V4Options(
        lease_s=opts.nfs4_lease_s,
        grace_s=opts.nfs4_grace_s,
        state_file=layout.state_dir / f"nfs4-{server.name}.json",
    )


def port_for(index: int, server: Server, base_port: int) -> int:
    """Server `index` (in topology order) listens on base + index unless it names a port;
    base port 0 gives every such server port 0 (any free port, read back once bound)."""
    if server.port is not None:
        return server.port
    return 0 if base_port == 0 else base_port + index
