"""How each server of a topology is laid out on Kubernetes: names, labels, ports, containers.

These are the rules the Helm chart follows too (deploy/helm/filesim/templates/_helpers.tpl);
tests/k8s renders the chart and checks it against these functions, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from filesim.k8s.errors import K8sError
from filesim.topology.kinds import Direction, StorageMode

if TYPE_CHECKING:
    from filesim.topology import Server, Topology

NFS_PORT = 2049
"""The port a server listens on in its pod and the port of its Service (chart value nfsPort)."""

NODE_PORT_BASE = 32150
"""A server without `node_port` gets NODE_PORT_BASE + its index (chart service.nodePortBase)."""

CHART_NAME = "filesim"

CONFIG_PATH = "/etc/filesim/topology.yaml"
DATA_ROOT = "/simulator-data"
STATE_DIR = "/var/lib/filesim"


def resource_name(release: str, suffix: str) -> str:
    """<release>-<suffix>, cut to a DNS label: the name of a server's Deployment and Service."""
    return f"{release}-{suffix}"[:63].rstrip("-")


def selector_labels(release: str, server: Server) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": CHART_NAME,
        "app.kubernetes.io/instance": release,
        "app.kubernetes.io/component": server.name,
    }


def labels(release: str, server: Server) -> dict[str, str]:
    """The labels of every object of `server`, as the chart sets them (less Helm's own)."""
    return {
        **selector_labels(release, server),
        "app.kubernetes.io/part-of": "filesim",
        "simulator.protocol": "nfs",
        "simulator.nas-role": server.role.value,
    }


@dataclass(frozen=True)
class Placement:
    """One server as it runs on Kubernetes."""

    server: Server
    service_port: int
    node_port: int

    @property
    def init_sync(self) -> bool:
        """An init container `sync-windows-data` runs one sync pass before the server starts."""
        return _syncs(self.server) and self.server.sync.initial

    @property
    def sidecar(self) -> bool:
        """A native sidecar `sync-to-windows` keeps syncing while the server runs."""
        return _syncs(self.server) and self.server.sync.continuous


def _syncs(server: Server) -> bool:
    return server.storage is StorageMode.MIRROR and server.sync.direction is not Direction.NONE


def placements(topology: Topology, node_port_base: int = NODE_PORT_BASE) -> list[Placement]:
    """Every server of `topology` (enabled or not), with its ports resolved as the chart does.

    NodePorts are assigned by index in the full server list, so disabling a server does not
    move the others.
    """
    result = []
    seen: dict[int, str] = {}
    for index, server in enumerate(topology.servers):
        node_port = server.node_port if server.node_port is not None else node_port_base + index
        if not 30000 <= node_port <= 32767:
            raise K8sError(
                f"{server.name}: NodePort {node_port} is outside 30000-32767; "
                "set its node_port or a lower node port base"
            )
        if node_port in seen:
            raise K8sError(
                f"node_port {node_port} is used by both {seen[node_port]!r} and {server.name!r}; "
                "each server needs its own node_port"
            )
        seen[node_port] = server.name
        service_port = server.port if server.port is not None else NFS_PORT
        result.append(Placement(server, service_port, node_port))
    return result
