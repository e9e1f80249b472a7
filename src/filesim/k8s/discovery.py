"""A ConfigMap of endpoints, for services that find the simulated NAS by reading it."""

from __future__ import annotations

from typing import Any

import yaml

from filesim.k8s.servers import resource_name
from filesim.k8s.volumes import Endpoint
from filesim.topology.mount import mount_options


def env_prefix(server: str) -> str:
    """nas-input-1 -> NAS_INPUT_1: keys usable with envFrom."""
    return server.upper().replace("-", "_")


def endpoint_record(
    endpoint: Endpoint, namespace: str, release: str, options: list[str] | None = None
) -> dict[str, Any]:
    placement = endpoint.placement
    service = resource_name(release, endpoint.name)
    return {
        "name": endpoint.name,
        "role": placement.server.role.value,
        "readonly": endpoint.readonly,
        "host": endpoint.host,
        "port": endpoint.port,
        "export": endpoint.export,
        "mountOptions": list(options) if options is not None else mount_options(endpoint.port),
        "service": f"{service}.{namespace}.svc.cluster.local",
        "servicePort": placement.service_port,
        "nodePort": placement.node_port,
    }


def endpoints_config_map(
    endpoints: list[Endpoint], namespace: str, release: str, options: list[str] | None = None
) -> dict[str, Any]:
    records = [endpoint_record(e, namespace, release, options) for e in endpoints]
    data: dict[str, str] = {
        "endpoints.yaml": yaml.safe_dump({"servers": records}, sort_keys=False),
    }
    for record in records:
        prefix = env_prefix(record["name"])
        data[f"{prefix}_HOST"] = record["host"]
        data[f"{prefix}_PORT"] = str(record["port"])
        data[f"{prefix}_EXPORT"] = record["export"]
        data[f"{prefix}_MOUNT_OPTIONS"] = ",".join(record["mountOptions"])
        data[f"{prefix}_SERVICE"] = f"{record['service']}:{record['servicePort']}"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": resource_name(release, "endpoints"),
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": "filesim",
                "app.kubernetes.io/instance": release,
                "app.kubernetes.io/part-of": "filesim",
                "simulator.protocol": "nfs",
            },
        },
        "data": data,
    }
