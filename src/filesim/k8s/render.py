"""`filesim k8s render`: every object a system under test needs to use a topology on Kubernetes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from filesim.k8s.discovery import endpoints_config_map
from filesim.k8s.errors import K8sError
from filesim.k8s.example import example_deployment
from filesim.k8s.servers import NODE_PORT_BASE, placements
from filesim.k8s.volumes import (
    Endpoint,
    endpoints,
    persistent_volume,
    persistent_volume_claim,
)
from filesim.topology.mount import NFS_VERSIONS

if TYPE_CHECKING:
    from filesim.topology import Topology

QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?([KMGTPE]i?)?$")
"""A Kubernetes storage quantity like 10Gi."""
MOUNT_OPTION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/=+-]*$")
"""One NFS mount option, like nfsvers=3, hard or timeo=600."""


def parse_mount_options(text: str) -> list[str]:
    """`nfsvers=3,tcp,hard,intr` as a list, in order; each item checked."""
    options = [o.strip() for o in text.split(",")]
    if not text.strip() or any(not o for o in options):
        raise K8sError(f"--mount-options {text!r}: expected a comma-separated list like "
                       "nfsvers=3,tcp,hard,intr")  # fmt: skip
    for option in options:
        if not MOUNT_OPTION.match(option):
            raise K8sError(f"--mount-options: {option!r} is not a mount option like nfsvers=3")
    return options


def render(
    topology: Topology,
    *,
    namespace: str = "default",
    release: str = "filesim",
    node_ip: str | None = None,
    service_ips: Mapping[str, str] | None = None,
    capacity: str = "10Gi",
    node_port_base: int = NODE_PORT_BASE,
    example: bool = True,
    nfs_version: str = "3",
    mount_options: list[str] | None = None,
) -> list[dict[str, Any]]:
    """PV + PVC per enabled server, the endpoints ConfigMap and (optionally) the example.

    `mount_options`: the PVs' mountOptions exactly, e.g. production's [nfsvers=3, tcp, hard,
    intr]; such PVs mount the server where production mounts its NAS (the Service's ClusterIP,
    NFS on 2049 and rpcbind on 111), so each server needs its `service_ips` entry unless the
    options name a port themselves."""
    from filesim.topology.model import DNS_LABEL  # pydantic: not for the command line's start

    for what, value in (("namespace", namespace), ("release", release)):
        if not DNS_LABEL.match(value):
            raise K8sError(f"--{what} {value!r} is not a DNS label (lower-case, digits, '-')")
    if nfs_version not in NFS_VERSIONS:
        raise K8sError(f"--nfs-version {nfs_version!r}: use one of {', '.join(NFS_VERSIONS)}")
    if not QUANTITY.match(capacity):
        raise K8sError(f"--capacity {capacity!r} is not a storage quantity like 10Gi")
    found = endpoints(placements(topology, node_port_base), node_ip, service_ips)
    if not found:
        raise K8sError("no enabled server in the topology: nothing to render")
    if mount_options is not None:
        _standard_ports_reachable(found, mount_options)
    objects: list[dict[str, Any]] = []
    for endpoint in found:
        objects.append(
            persistent_volume(endpoint, namespace, release, capacity, nfs_version, mount_options)
        )
        objects.append(persistent_volume_claim(endpoint, namespace, release, capacity))
    objects.append(endpoints_config_map(found, namespace, release, mount_options))
    if example:
        objects.append(example_deployment(found, namespace, release))
    return objects


def _standard_ports_reachable(found: list[Endpoint], options: list[str]) -> None:
    """Options without a port reach 2049 and 111: only a Service's ClusterIP serves both."""
    if any(o.startswith("port=") for o in options):
        return
    by_node = [e.name for e in found if e.style == "node"]
    if by_node:
        raise K8sError(
            f"--mount-options without port= mount NFS on 2049 and rpcbind on 111, which only "
            f"the Service's ClusterIP serves: give --service-ip NAME=CLUSTER_IP for "
            f"{', '.join(by_node)} (kubectl get svc -l simulator.protocol=nfs; fix it with the "
            "chart value servers[].service.clusterIP)"
        )


def to_yaml(objects: list[dict[str, Any]]) -> str:
    """Multi-document YAML, one object per document."""
    return "".join("---\n" + yaml.safe_dump(obj, sort_keys=False) for obj in objects)


def file_name(obj: dict[str, Any]) -> str:
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def write_dir(objects: list[dict[str, Any]], directory: Path) -> list[Path]:
    """One file per object, named kind-name.yaml; returns the paths written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise K8sError(f"cannot create output directory {directory}: {exc.strerror}") from None
    written = []
    for obj in objects:
        path = directory / file_name(obj)
        path.write_text(yaml.safe_dump(obj, sort_keys=False), encoding="utf-8")
        written.append(path)
    return written
