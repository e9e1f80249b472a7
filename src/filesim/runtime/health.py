"""Readiness of a running topology: every server answers RPC NULL and its initial sync is over.

`/readyz` answers with `readiness(...)`; the probe is `filesim.nfsclient.ping.ping`, the same
one `filesim ping` (the chart's readiness probe) runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from filesim.nfsclient.ping import PingError, ping
from filesim.runtime.model import reachable_host

PING_TIMEOUT = 1.0

SyncReadiness = Literal["none", "ok", "initial sync running"]


@dataclass(frozen=True)
class Probe:
    """What readiness needs to know of one server."""

    name: str
    host: str
    port: int
    sync: Literal["none", "ready", "starting"]
    """No sync agent, an agent whose initial sync is over, or one still at it."""


class ServerReadiness(BaseModel):
    nfs: str = Field(description="'ok', or why NFS/MOUNT did not answer.")
    sync: SyncReadiness


class Readiness(BaseModel):
    """The `/readyz` document."""

    ready: bool
    reasons: list[str] = Field(description="Why not ready, one line per server and cause.")
    servers: dict[str, ServerReadiness]


async def readiness(probes: Iterable[Probe], timeout: float = PING_TIMEOUT) -> Readiness:
    """Ping every server at once and report; ready only with at least one server."""
    found = await asyncio.gather(*(_check(p, timeout) for p in probes))
    reasons = [reason for _, _, why in found for reason in why]
    return Readiness(
        ready=not reasons and bool(found),
        reasons=reasons,
        servers={name: state for name, state, _ in found},
    )


async def _check(probe: Probe, timeout: float) -> tuple[str, ServerReadiness, list[str]]:
    reasons = []
    try:
        await asyncio.to_thread(ping, reachable_host(probe.host), probe.port, timeout)
        nfs = "ok"
    except PingError as exc:
        nfs = str(exc)
        reasons.append(f"{probe.name}: NFS does not answer ({exc})")
    sync: SyncReadiness = "none"
    if probe.sync == "ready":
        sync = "ok"
    elif probe.sync == "starting":
        sync = "initial sync running"
        reasons.append(f"{probe.name}: initial sync not finished")
    return probe.name, ServerReadiness(nfs=nfs, sync=sync), reasons
