"""Helm values for the chart, generated from a topology, so chart and CLI read the same data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from filesim.topology import Topology


def helm_values(topology: Topology) -> tuple[dict[str, Any], list[str]]:
    """The chart's `profile` and `servers` for `topology`, and notes on what was left out.

    Every server is written fully resolved (its sync policy included), so the chart's profile
    defaults never change what the topology file says. Fields that only make sense on the
    tester's machine are dropped: `host` (pods listen on 0.0.0.0) and an absolute `folder`
    (in the cluster a folder lives under hostPath.root).
    """
    notes = []
    servers = []
    for server in topology.servers:
        entry = server.model_dump(mode="json", exclude_none=True)
        if entry.pop("host", None) is not None:
            notes.append(f"{server.name}: host dropped (pods listen on 0.0.0.0)")
        if server.folder is not None and server.folder.is_absolute():
            del entry["folder"]
            notes.append(
                f"{server.name}: absolute folder {server.folder} dropped; "
                f"in the cluster it is hostPath.root/{server.name}"
            )
        servers.append(entry)
    return {"profile": topology.profile, "servers": servers}, notes
