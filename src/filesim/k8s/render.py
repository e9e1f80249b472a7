"""`filesim k8s render`: every object a system under test needs to use a topology on Kubernetes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from filesim.k8s.discovery import endpoints_config_map
from filesim.k8s.errors import K8sError
from filesim.k8s.example import example_deployment
from filesim.k8s.servers import NODE_PORT_BASE, placements
from filesim.k8s.volumes import endpoints, persistent_volume, persistent_volume_claim
from filesim.topology import Topology
from filesim.topology.model import DNS_LABEL
from filesim.topology.mount import NFS_VERSIONS

QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?([KMGTPE]i?)?$")
"""A Kubernetes storage quantity like 10Gi."""


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
) -> list[dict[str, Any]]:
    """PV + PVC per enabled server, the endpoints ConfigMap and (optionally) the example."""
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
    objects: list[dict[str, Any]] = []
    for endpoint in found:
        objects.append(persistent_volume(endpoint, namespace, release, capacity, nfs_version))
        objects.append(persistent_volume_claim(endpoint, namespace, release, capacity))
    objects.append(endpoints_config_map(found, namespace, release))
    if example:
        objects.append(example_deployment(found, namespace, release))
    return objects


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
