"""Readiness of a running topology: every server answers RPC NULL and its sync agent, if it has
one, is doing its job — its initial sync is over, and it is not failing, halted or stopped.

`/readyz` answers with `readiness(...)`; the probe is `filesim.nfsclient.ping.ping`, the same
one `filesim ping` (the chart's readiness probe) runs. A server whose agent is not healthy is
named with the agent's state, why, and since when.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from filesim.nfsclient.ping import PingError, ping
from filesim.runtime.model import reachable_host

PING_TIMEOUT = 1.0

SyncReadiness = Literal["none", "ok", "initial sync running", "failing", "halted", "stopped"]
AgentCondition = Literal["none", "ready", "starting", "failing", "halted", "stopped"]


@dataclass(frozen=True)
class Probe:
    """What readiness needs to know of one server."""

    name: str
    host: str
    port: int
    sync: AgentCondition
    """No sync agent, an agent doing its job (initial sync over), one still at its initial
    sync, or one that keeps failing, is halted by the mass-deletion guard, or has stopped."""
    reason: str | None = None
    """Why the agent is in that condition (from its status)."""
    since: float | None = None
    """Unix time it entered it."""
    nfs_down: str | None = None
    """Why NFS cannot answer, known without asking (its worker process has exited)."""


class ServerReadiness(BaseModel):
    nfs: str = Field(description="'ok', or why NFS/MOUNT did not answer.")
    sync: SyncReadiness
    sync_reason: str | None = Field(None, description="Why the sync agent is not 'ok'.")
    sync_since: float | None = Field(None, description="Unix time it has been so.")

    @model_serializer(mode="wrap")
    def _only_what_is_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """`{"nfs": "ok", "sync": "ok"}` as before: the reason and time only when there are."""
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None}


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
    nfs = probe.nfs_down or await _ping(probe, timeout)
    if nfs != "ok":
        reasons.append(f"{probe.name}: NFS does not answer ({nfs})")
    sync: SyncReadiness = "none"
    if probe.sync == "ready":
        sync = "ok"
    elif probe.sync == "starting":
        sync = "initial sync running"
        reasons.append(f"{probe.name}: initial sync not finished")
    elif probe.sync != "none":
        sync = probe.sync
        when = "" if probe.since is None else f" since {_clock(probe.since)}"
        why = f": {probe.reason}" if probe.reason else ""
        reasons.append(f"{probe.name}: the sync agent is {probe.sync}{when}{why}")
    state = ServerReadiness(nfs=nfs, sync=sync)
    if sync not in ("none", "ok"):
        state.sync_reason, state.sync_since = probe.reason, probe.since
    return probe.name, state, reasons


async def _ping(probe: Probe, timeout: float) -> str:
    """'ok', or why NFS and MOUNT did not answer an RPC NULL."""
    try:
        await asyncio.to_thread(ping, reachable_host(probe.host), probe.port, timeout)
    except PingError as exc:
        return str(exc)
    return "ok"


def _clock(when: float) -> str:
    """A moment as local time, with the date when it is not today."""
    stamp = time.localtime(when)
    if time.strftime("%Y-%m-%d", stamp) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M:%S", stamp)
    return time.strftime("%Y-%m-%d %H:%M:%S", stamp)
