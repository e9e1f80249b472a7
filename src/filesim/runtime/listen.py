"""Where each server of a topology listens, and why it could not: the one-line startup errors."""

from __future__ import annotations

import errno

from filesim.runtime.build import port_for
from filesim.runtime.served import ServedNfs
from filesim.topology import Server, Topology
from filesim.topology.addresses import (
    NFS_PORT,
    PRIVILEGED_PORTS_HINT,
    RPCBIND_PORT,
    standard_address,
)


def listen_address(
    topology: Topology, index: int, server: Server, *, standard: bool, host: str,
    base_port: int, port: int | None,
) -> tuple[str, int, int | None]:  # fmt: skip
    """(address, NFS port, rpcbind's own port or None) of server `index` of `topology`.

    Standard ports: its own address, 2049 and 111. Custom ports: `port` when given (one
    server alone), else base_port + index; the server's `host`, else `host`."""
    if standard:
        return standard_address(topology, server), NFS_PORT, RPCBIND_PORT
    if port is None:
        port = port_for(index, server, base_port)
    return server.host or host, port, None


def bind_error(server: Server, nfs: ServedNfs, exc: OSError, *, port_flag: bool = False) -> str:
    """The one-line error for a port `server` could not listen on. `port_flag`: the port came
    from `filesim serve --port`, so that is where to change it."""
    host, port = nfs.host, nfs.port
    ports = f"{port} and {nfs.rpcbind_port}" if nfs.rpcbind_port is not None else str(port)
    if exc.errno == errno.EACCES and (port < 1024 or nfs.rpcbind_port is not None):
        return f"cannot listen on {host} ports {ports} for {server.name}: {PRIVILEGED_PORTS_HINT}"
    if exc.errno == errno.EADDRINUSE:
        hint = (
            "stop what uses it (a system rpcbind or NFS server?) or use custom ports"
            if nfs.rpcbind_port is not None
            else "stop what uses it or choose another --port"
            if port_flag
            else f"stop what uses it or give {server.name} another port in the topology"
            if server.port is not None
            else "stop what uses it or choose another --base-port"
        )
        return f"port {ports} on {host} is already in use (wanted by {server.name}); {hint}"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host} port {ports} for {server.name}: no such local address"
    return f"cannot listen on {host} port {ports} for {server.name}: {exc.strerror or exc}"
