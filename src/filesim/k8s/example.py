"""An example Deployment of a system under test that mounts the simulated NAS through the PVCs."""

from __future__ import annotations

from typing import Any

from filesim.k8s.servers import resource_name
from filesim.k8s.volumes import Endpoint, claim_name

EXAMPLE_IMAGE = "busybox:1.36"


def example_deployment(endpoints: list[Endpoint], namespace: str, release: str) -> dict[str, Any]:
    name = resource_name(release, "example-consumer")
    match = {"app.kubernetes.io/name": "filesim-example", "app.kubernetes.io/instance": release}
    volumes = []
    mounts = []
    for endpoint in endpoints:
        volume = f"nas-{endpoint.name}"[:63].rstrip("-")
        volumes.append(
            {
                "name": volume,
                "persistentVolumeClaim": {
                    "claimName": claim_name(release, endpoint.name),
                    "readOnly": endpoint.readonly,
                },
            }
        )
        mounts.append(
            {"name": volume, "mountPath": f"/mnt/{endpoint.name}", "readOnly": endpoint.readonly}
        )
    # Lists every mounted export once a minute: enough to see the mounts work.
    script = 'while true; do for d in /mnt/*; do echo "== $d"; ls -la "$d"; done; sleep 60; done'
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**match, "app.kubernetes.io/part-of": "filesim"},
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": match},
            "template": {
                "metadata": {"labels": match},
                "spec": {
                    "containers": [
                        {
                            "name": "consumer",
                            "image": EXAMPLE_IMAGE,
                            "command": ["sh", "-c", script],
                            "envFrom": [
                                {"configMapRef": {"name": resource_name(release, "endpoints")}}
                            ],
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }
