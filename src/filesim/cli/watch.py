"""`filesim status --watch`: a live table of a running topology, from its HTTP API.

Rates come from two scrapes of /metrics; servers, sync state and faults from /api/servers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from filesim.cli.app import console
from filesim.topology.kinds import StorageMode

if TYPE_CHECKING:
    from filesim.runtime.model import RuntimeDoc, ServerState
    from filesim.topology.layout import Layout


@dataclass
class _Totals:
    """Counter sums per server, from one scrape of /metrics."""

    at: float
    requests: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    latency_sum: dict[str, float] = field(default_factory=dict)
    latency_count: dict[str, float] = field(default_factory=dict)


def totals_of(metrics_text: str, at: float) -> _Totals:
    from prometheus_client.parser import text_string_to_metric_families

    totals = _Totals(at)
    wanted = {
        "filesim_nfs_requests_total": totals.requests,
        "filesim_nfs_errors_total": totals.errors,
        "filesim_nfs_request_duration_seconds_sum": totals.latency_sum,
        "filesim_nfs_request_duration_seconds_count": totals.latency_count,
    }
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            target = wanted.get(sample.name)
            if target is not None:
                server = sample.labels.get("server", "")
                target[server] = target.get(server, 0.0) + sample.value
    return totals


def watch_table(doc: RuntimeDoc, now: _Totals, before: _Totals | None) -> Table:
    """The live status table: one row per server."""
    table = Table(title=f"filesim (pid {doc.pid})", title_justify="left")
    for column in ("server", "address", "req/s", "err/s", "NFS ms", "sync", "pending",
                   "sync p50/p99 ms", "conflicts", "faults"):  # fmt: skip
        table.add_column(column, overflow="fold")
    span = (now.at - before.at) if before is not None else 0.0
    for s in doc.servers:
        name = s.name

        def rate(values: str, name: str = name) -> float | None:
            if before is None or span <= 0:
                return None
            new: dict[str, float] = getattr(now, values)
            old: dict[str, float] = getattr(before, values)
            return max(0.0, new.get(name, 0.0) - old.get(name, 0.0)) / span

        req, err = rate("requests"), rate("errors")
        calls = rate("latency_count")
        mean = None
        if calls and before is not None:
            spent = now.latency_sum.get(name, 0.0) - before.latency_sum.get(name, 0.0)
            mean = spent / (calls * span) * 1000
        st = s.sync_status
        if st is None:
            sync, pending, lat, conflicts = sync_mode(s), "", "", ""
        else:
            trouble = "halted" if st.halted else st.state
            sync = trouble.upper() if trouble in ("failing", "halted", "stopped") else st.direction
            pending, conflicts = str(st.pending), str(st.conflicts)
            lat = f"{_num(st.p50_ms)}/{_num(st.p99_ms)}"
        faults = ", ".join(f.summary for f in s.faults)
        table.add_row(
            name, s.address, _num(req, 1), _num(err, 1), _num(mean, 2),
            sync, pending, lat, conflicts, Text(faults, style="bold red") if faults else "",
        )  # fmt: skip
    return table


def sync_mode(server: ServerState) -> str:
    """What a server without a sync agent does: serve its folder directly, or not sync."""
    return "direct" if server.storage is StorageMode.DIRECT else "off"


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def watch_status(
    layout: Layout, interval: float = 1.0, rounds: int | None = None, out: Console = console
) -> None:
    """A live table of the topology under `layout` until Ctrl-C (or `rounds` refreshes), on
    `out` (the terminal)."""
    from filesim.runtime.api_client import ApiClient, ApiError

    api = ApiClient.of(layout)
    before: _Totals | None = None
    done = 0
    try:
        with Live(console=out, auto_refresh=False, transient=False) as live:
            while rounds is None or done < rounds:
                try:
                    doc = api.servers()
                    now = totals_of(api.metrics(), time.monotonic())
                except ApiError:
                    live.update(Text(f"the topology under {layout.root} has stopped"))
                    live.refresh()
                    return
                footer = Text(f"HTTP API {api.base} · Ctrl-C to quit", style="dim")
                live.update(Group(watch_table(doc, now, before), footer))
                live.refresh()
                before = now
                done += 1
                if rounds is None or done < rounds:
                    time.sleep(interval)
    except KeyboardInterrupt:
        pass
