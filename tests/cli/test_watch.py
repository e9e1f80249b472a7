"""`filesim status --watch`: the live table, its rates and its content."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from filesim.cli.watch import totals_of, watch_status, watch_table
from filesim.runtime.model import RuntimeDoc, ServerState, SyncState
from filesim.sync.status import SyncStatus
from filesim.testing import NasTopology
from filesim.topology import Role, StorageMode

INPUT = "nas-input-1"


@pytest.mark.integration
def test_status_watch_shows_rates_sync_and_faults(topo: NasTopology) -> None:
    terminal = Console(file=io.StringIO(), width=250)  # wide enough for every column
    with topo.latency(INPUT, 1, procedures=["FSINFO"]):
        watch_status(topo.layout, interval=0.5, rounds=2, out=terminal)
    out = terminal.file.getvalue()  # type: ignore[attr-defined]
    for text in ("req/s", "sync p50/p99 ms", INPUT, "nas-backup", "latency 1 ms on FSINFO",
                 "folder-to-export"):  # fmt: skip
        assert text in out, text


def test_watch_table_computes_rates_from_two_scrapes() -> None:
    metrics = (
        "# TYPE filesim_nfs_requests_total counter\n"
        'filesim_nfs_requests_total{{server="a",program="nfs",procedure="READ"}} {n}\n'
        "# TYPE filesim_nfs_request_duration_seconds histogram\n"
        'filesim_nfs_request_duration_seconds_sum{{server="a",program="nfs",procedure="READ"}} {s}\n'
        'filesim_nfs_request_duration_seconds_count{{server="a",program="nfs",procedure="READ"}} {n}\n'
    )
    before = totals_of(metrics.format(n=100, s=1.0), at=10.0)
    now = totals_of(metrics.format(n=300, s=1.4), at=12.0)
    status = SyncStatus(server="a", direction="both", continuous=True, pending=3, p50_ms=12.0,
                        p99_ms=80.0, conflicts=2)  # fmt: skip
    doc = RuntimeDoc(
        pid=1, profile="default", root=Path("/r"), state_dir=Path("/r/.filesim"), started=0,
        servers=[ServerState(
            name="a", role=Role.INPUT, host="h", port=1, export="/data", folder=Path("/r/a"),
            readonly=False, fsid=1, storage=StorageMode.MIRROR, store=Path("/s"),
            sync=SyncState(agent=True), sync_status=status,
        )],
    )  # fmt: skip
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(watch_table(doc, now, before))
    row = next(line for line in console.export_text().splitlines() if "│ a " in line)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    # 200 calls in 2 s; 0.4 s spent over 200 calls = 2 ms each
    assert cells == ["a", "h:1", "100.0", "0.0", "2.00", "both", "3", "12/80", "2", ""]
