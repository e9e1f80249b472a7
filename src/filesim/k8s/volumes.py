"""PersistentVolumes and claims through which a system under test mounts the simulated NAS.

Static provisioning: each PV names the server's address and port in its NFS source and mount
options, and is pre-bound to one claim. The address must be one the *kubelet* can reach from
the node's own network namespace: the kubelet resolves names with the node's resolver, which
usually does not know cluster DNS (`*.svc.cluster.local`), so names like that make the mount
hang. Hence an IP: the node's IP with the Service's NodePort (works on every cluster with
NodePort services, and stays the same when the Service is recreated), or a Service's ClusterIP
with the Service port (kube-proxy routes it on the node; it changes when the Service does).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from filesim.k8s.errors import K8sError
from filesim.k8s.servers import Placement, labels, resource_name
from filesim.topology.mount import mount_options

CLUSTER_DNS_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local")


@dataclass(frozen=True)
class Endpoint:
    """Where the kubelet (and any node-level client) reaches one server."""

    placement: Placement
    host: str
    port: int
    style: str
    """"node" (node IP + NodePort) or "service" (ClusterIP + Service port)."""

    @property
    def name(self) -> str:
        return self.placement.server.name

    @property
    def export(self) -> str:
        return self.placement.server.export.path

    @property
    def readonly(self) -> bool:
        return self.placement.server.readonly


def check_address(address: str, what: str) -> str:
    """`address` if the kubelet can use it: an IP, or a host name that is not cluster DNS."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        pass
    name = address.rstrip(".").lower()
    if name.endswith(CLUSTER_DNS_SUFFIXES):
        raise K8sError(
            f"{what} {address!r} is a cluster DNS name, which the kubelet usually cannot resolve "
            "when it mounts a volume; give the node IP (kubectl get nodes -o wide) or the "
            "Service's ClusterIP (kubectl get svc -l simulator.protocol=nfs)"
        )
    if not name or any(not part for part in name.split(".")):
        raise K8sError(f"{what} {address!r} is neither an IP address nor a host name")
    return name


def endpoints(
    placements: list[Placement],
    node_ip: str | None = None,
    service_ips: Mapping[str, str] | None = None,
) -> list[Endpoint]:
    """The endpoint of each enabled server: its Service's ClusterIP when given, else the node IP."""
    service_ips = dict(service_ips or {})
    known = {p.server.name for p in placements}
    unknown = sorted(set(service_ips) - known)
    if unknown:
        raise K8sError(
            f"--service-ip names {', '.join(unknown)}, not in the topology "
            f"(servers: {', '.join(sorted(known))})"
        )
    if node_ip is not None:
        node_ip = check_address(node_ip, "--node-ip")
    result = []
    missing = []
    for placement in placements:
        name = placement.server.name
        if not placement.server.enabled:
            continue
        if name in service_ips:
            host = check_address(service_ips[name], f"--service-ip {name}")
            result.append(Endpoint(placement, host, placement.service_port, "service"))
        elif node_ip is not None:
            result.append(Endpoint(placement, node_ip, placement.node_port, "node"))
        else:
            missing.append(name)
    if missing:
        raise K8sError(
            f"no address for {', '.join(missing)}: give --node-ip NODE_IP (kubectl get nodes "
            "-o wide, INTERNAL-IP) to mount through the NodePorts, or --service-ip NAME=IP for "
            "each server (kubectl get svc -l simulator.protocol=nfs)"
        )
    return result


def pv_name(namespace: str, release: str, server: str) -> str:
    # PVs are cluster-wide: the namespace keeps two installs of the same release apart.
    return f"{namespace}-{release}-{server}"[:253].rstrip("-")


def claim_name(release: str, server: str) -> str:
    return resource_name(release, f"{server}-nfs")


def persistent_volume(
    endpoint: Endpoint, namespace: str, release: str, capacity: str, nfs_version: str = "3",
    options: list[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The PV of one server; `options`: its mountOptions exactly (default: filesim's own for
    the endpoint's port and `nfs_version`)."""
    server = endpoint.placement.server
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": pv_name(namespace, release, server.name),
            "labels": labels(release, server),
        },
        "spec": {
            "capacity": {"storage": capacity},
            "accessModes": ["ReadOnlyMany" if endpoint.readonly else "ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain",
            # "": never dynamically provisioned, binds only to the claim below.
            "storageClassName": "",
            "mountOptions": (
                list(options) if options is not None else mount_options(endpoint.port, nfs_version)
            ),
            "nfs": {
                "server": endpoint.host,
                "path": endpoint.export,
                "readOnly": endpoint.readonly,
            },
            "claimRef": {"namespace": namespace, "name": claim_name(release, server.name)},
        },
    }


def persistent_volume_claim(
    endpoint: Endpoint, namespace: str, release: str, capacity: str
) -> dict[str, Any]:
    server = endpoint.placement.server
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": claim_name(release, server.name),
            "namespace": namespace,
            "labels": labels(release, server),
        },
        "spec": {
            "accessModes": ["ReadOnlyMany" if endpoint.readonly else "ReadWriteMany"],
            "storageClassName": "",
            "volumeName": pv_name(namespace, release, server.name),
            "resources": {"requests": {"storage": capacity}},
        },
    }
