"""`filesim logs`: the event log, recent and followed, across rotations."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from filesim.cli.logs_cmds import follow_events, format_event
from filesim.testing import NasTopology
from tests.support.api import nfs_put
from tests.support.topology import FILESIM, filesim

INPUT = "nas-input-1"


@pytest.mark.integration
def test_logs_show_nfs_and_sync_events_in_order(topo: NasTopology, tmp_path: Path) -> None:
    nfs_put(topo.server(INPUT).url("/logged.txt"), b"hello", tmp_path)
    topo.wait_visible(INPUT, "logged.txt", side="folder")
    topo.flush()
    root = str(topo.root)
    events = [json.loads(line) for line in filesim("logs", "--root", root, "--json", "-n", "100000",
                                                    "--server", INPUT).stdout.splitlines()]  # fmt: skip
    mine = [e["kind"] for e in events if e.get("path") == "logged.txt"]
    # The NFS mutation comes first, then its completion, then the copy to the folder.
    order = [k for k in mine if k in ("nfs.create", "nfs.write", "nfs.write-complete", "sync.copy")]
    assert order[0] == "nfs.create"
    assert order.index("nfs.write") < order.index("sync.copy")
    assert order[-1] == "sync.copy"
    copy = next(e for e in events if e["kind"] == "sync.copy" and e.get("path") == "logged.txt")
    assert copy["side"] == "folder" and copy["size"] == 5 and copy["server"] == INPUT
    done = next(
        e for e in events if e["kind"] == "nfs.write-complete" and e["path"] == "logged.txt"
    )
    assert done["side"] == "nfs" and done["size"] == 5
    assert all(e["server"] == INPUT for e in events)
    text = filesim("logs", "--root", root, "-n", "3").stdout
    assert len(text.splitlines()) == 3


@pytest.mark.integration
def test_logs_follow_prints_the_backlog_then_new_events(topo: NasTopology) -> None:
    import queue
    import threading

    proc = subprocess.Popen([*FILESIM, "logs", "--root", str(topo.root), "--follow", "-n", "1",
                             "--server", "nas-backup"], stdout=subprocess.PIPE, text=True)  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: [lines.put(ln) for ln in stdout], daemon=True).start()
    try:
        backlog = lines.get(timeout=60)  # printed once the log is open: nothing is missed now
        with topo.readonly("nas-backup"):
            pass
        first, second = lines.get(timeout=30), lines.get(timeout=30)
    finally:
        proc.terminate()
        proc.wait(10)
    assert " nas-backup " in backlog
    assert "nas-backup fault.add" in first and "readonly" in first
    assert "nas-backup fault.clear" in second and "(cleared)" in second


def test_logs_without_a_log_is_a_one_line_error(tmp_path: Path) -> None:
    proc = filesim("logs", "--root", str(tmp_path), check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: no event log at ")
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(60)
def test_follow_events_survives_rotation(tmp_path: Path) -> None:
    import os

    log = tmp_path / "events.jsonl"

    def line(n: int, server: str = "a") -> str:
        return json.dumps({"kind": f"k{n}", "server": server, "time": n}) + "\n"

    log.write_text(line(1) + line(2) + line(3, "other"))
    events = follow_events(log, "a", backlog=1, poll=0.01)
    assert next(events)["kind"] == "k2"
    with log.open("a") as f:
        f.write(line(4)[:10])  # a line still being written is not an event yet
        f.flush()
        f.write(line(4)[10:])
    assert next(events)["kind"] == "k4"
    os.replace(log, log.with_suffix(".jsonl.1"))
    log.write_text(line(5))
    assert next(events)["kind"] == "k5"


def test_format_event_is_one_readable_line() -> None:
    line = format_event({"time": 0, "server": "a", "kind": "sync.copy", "side": "folder",
                         "path": "x.txt", "size": 5, "detail": {"source": "export"}})  # fmt: skip
    assert line.endswith("a sync.copy [folder] x.txt (5 B) source=export")
