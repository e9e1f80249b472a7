"""Where each server listens in standard-port mode, like a real NAS: its own address, NFS (with
MOUNT, NLM and NSM) on 2049 and rpcbind on 111.

The addresses come from the loopback range, which Linux and Windows route to the local machine
without any setup: 127.0.0.1 when the topology has one enabled server, else 127.0.0.11,
127.0.0.12, ... by the server's position in the topology (so disabling one does not move the
others); a server's own `host` overrides both. macOS routes only 127.0.0.1 on `lo0`: every
other address needs an alias (`macos_alias_commands`). Binding ports below 1024 needs
privileges (`PRIVILEGED_PORTS_HINT`); custom-port mode, the default, needs none.
"""

from __future__ import annotations

import ipaddress

from filesim.topology.model import Server, Topology

NFS_PORT = 2049
RPCBIND_PORT = 111
LOOPBACK_ALONE = "127.0.0.1"
LOOPBACK_FIRST = 11
"""Server i of a topology gets 127.0.0.(11 + i)."""

PRIVILEGED_PORTS_HINT = (
    "ports below 1024 need root, the CAP_NET_BIND_SERVICE capability "
    "(sudo setcap cap_net_bind_service=+ep $(readlink -f $(which python3))) or "
    "sysctl net.ipv4.ip_unprivileged_port_start=111"
)
"""The three ways to let filesim bind 111, said when binding it is refused."""


def standard_address(topology: Topology, server: Server) -> str:
    """The address `server` listens on in standard-port mode."""
    if server.host is not None:
        return server.host
    if len(topology.enabled) == 1:
        return LOOPBACK_ALONE
    index = next(i for i, s in enumerate(topology.servers) if s.name == server.name)
    if LOOPBACK_FIRST + index > 254:
        raise ValueError(
            f"{server.name}: no loopback address left for server {index + 1}; give it a host"
        )
    return f"127.0.0.{LOOPBACK_FIRST + index}"


def macos_alias_commands(addresses: list[str]) -> list[str]:
    """The `ifconfig lo0 alias` lines macOS needs before filesim can listen on `addresses`
    (127.0.0.1 is always there; addresses outside 127/8 are not filesim's to add)."""
    lines = []
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        if ip.version == 4 and ip.is_loopback and address != LOOPBACK_ALONE:
            lines.append(f"sudo ifconfig lo0 alias {address} up")
    return lines
