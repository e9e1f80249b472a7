"""The dashboard's PV/PVC snippet: `filesim k8s render`'s own PersistentVolume and claim for
one server of a running topology (the runtime cannot import `filesim.k8s`; `filesim up` hands
it this renderer)."""

from __future__ import annotations

from filesim.k8s.render import to_yaml
from filesim.k8s.servers import placements
from filesim.k8s.volumes import Endpoint, persistent_volume, persistent_volume_claim
from filesim.runtime.dashboard.connect import PvRenderer
from filesim.topology import Topology

NAMESPACE = "default"
RELEASE = "filesim"
CAPACITY = "10Gi"


def pv_renderer(topology: Topology) -> PvRenderer:
    """Render the PV + PVC of a server reached at (address, port), as `k8s render` would."""
    placed = {p.server.name: p for p in placements(topology)}

    def render(name: str, host: str, port: int) -> str:
        endpoint = Endpoint(placed[name], host, port, "node")
        return to_yaml([
            persistent_volume(endpoint, NAMESPACE, RELEASE, CAPACITY),
            persistent_volume_claim(endpoint, NAMESPACE, RELEASE, CAPACITY),
        ])  # fmt: skip

    return render
