"""Kubernetes: the objects a topology needs on a cluster, rendered as plain dicts.

`servers` holds the layout rules the Helm chart shares; `volumes`, `discovery` and `example`
build the PV/PVC, endpoints ConfigMap and example Deployment of `filesim k8s render`; `values`
turns a topology into chart values; `probe` is the readiness check behind `filesim ping`.
"""

from filesim.k8s.errors import K8sError
from filesim.k8s.render import render, to_yaml, write_dir
from filesim.k8s.servers import NFS_PORT, NODE_PORT_BASE, Placement, placements
from filesim.k8s.values import helm_values

__all__ = [
    "NFS_PORT",
    "NODE_PORT_BASE",
    "K8sError",
    "Placement",
    "helm_values",
    "placements",
    "render",
    "to_yaml",
    "write_dir",
]
