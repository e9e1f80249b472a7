"""Building the NFS side of one server from the topology: export options, storage, handles."""

from __future__ import annotations

from pathlib import Path

from filesim.nfs.export import Export, ExportConfig
from filesim.nfs.handles import load_secret
from filesim.nfs.localfs import LocalVfs
from filesim.nfs.server import NfsServer
from filesim.nfs.v4.service import V4Options
from filesim.nfs.vfs import ChangeListener
from filesim.topology import Layout, Server
from filesim.topology.layout import is_temp_name


def export_config(server: Server) -> ExportConfig:
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
    )


def build_export(
    server: Server, store: Path, secret: bytes, listener: ChangeListener | None = None
) -> Export:
    vfs = LocalVfs(store, hidden=is_temp_name)
    return Export(export_config(server), vfs, secret, listener)


def build_nfs_server(
    server: Server, layout: Layout, host: str, port: int, listener: ChangeListener | None = None
) -> NfsServer:
    secret = load_secret(layout.secret_file)
    export = build_export(server, layout.store(server), secret, listener)
    return NfsServer(export, server.host or host, port, v4=v4_options(server, layout))


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
