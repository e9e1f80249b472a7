"""`filesim logs`, `filesim fault add|list|clear`, `status --watch` and `up --http-port`."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from filesim.cli.ops_cmds import format_event, totals_of, watch_status, watch_table
from filesim.testing import NasTopology
from tests.runtime.conftest import http, nfs_put
from tests.support.topology import FILESIM, detached, filesim

INPUT = "nas-input-1"


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


def test_fault_commands(topo: NasTopology) -> None:
    root = ["--root", str(topo.root)]
    out = filesim("fault", "add", INPUT, "error", "-e", "DQUOT", "-p", "WRITE,CREATE",
                  "--path", "out/*", "--probability", "0.5", *root).stdout  # fmt: skip
    assert out.startswith("added f") and "error EDQUOT on WRITE,CREATE for out/* (p=0.5)" in out
    filesim("fault", "add", "nas-backup", "outage", "--mode", "refuse", "--duration", "60", *root)
    listing = json.loads(filesim("fault", "list", "--json", *root).stdout)
    assert [(f["server"], f["kind"]) for f in listing] == [
        (INPUT, "error"),
        ("nas-backup", "outage"),
    ]
    assert http(topo.http_url + "/readyz")[0] == 503
    table = filesim("fault", "list", *root).stdout
    assert "outage refuse for 60 s" in table
    assert re.search(r"in (59|60) s", table)
    assert "cleared 1 fault" in filesim("fault", "clear", "nas-backup", *root).stdout
    assert http(topo.http_url + "/readyz")[0] == 200
    assert "cleared 1 fault" in filesim("fault", "clear", *root).stdout
    assert filesim("fault", "list", *root).stdout.strip() == "no faults"
    bad = filesim("fault", "add", "nope", "readonly", *root, check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("error: no running server named 'nope'")
    bad = filesim("fault", "add", INPUT, "latency", *root, check=False)
    assert bad.returncode == 1 and "needs delay_ms" in bad.stderr


def test_fault_commands_need_a_running_topology(tmp_path: Path) -> None:
    proc = filesim("fault", "list", "--root", str(tmp_path), check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("error: no topology is running under")


def test_status_watch_shows_rates_sync_and_faults(
    topo: NasTopology, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    with topo.latency(INPUT, 1, procedures=["FSINFO"]):
        watch_status(topo.layout, interval=0.5, rounds=2)
    out = capsys.readouterr().out
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
    doc = {"pid": 1, "servers": [{"name": "a", "host": "h", "port": 1, "faults": [],
                                  "sync_status": {"direction": "both", "pending": 3,
                                                  "p50_ms": 12.0, "p99_ms": 80.0,
                                                  "conflicts": 2, "halted": None}}]}  # fmt: skip
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(watch_table(doc, now, before))
    row = next(line for line in console.export_text().splitlines() if "│ a " in line)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    # 200 calls in 2 s; 0.4 s spent over 200 calls = 2 ms each
    assert cells == ["a", "h:1", "100.0", "0.0", "2.00", "both", "3", "12/80", "2", ""]


def test_format_event_is_one_readable_line() -> None:
    line = format_event({"time": 0, "server": "a", "kind": "sync.copy", "side": "folder",
                         "path": "x.txt", "size": 5, "detail": {"source": "export"}})  # fmt: skip
    assert line.endswith("a sync.copy [folder] x.txt (5 B) source=export")


def test_up_detach_serves_the_api_on_the_chosen_port(tmp_path: Path) -> None:
    config = tmp_path / "topo.yaml"
    config.write_text("servers:\n  - {name: one, role: input, fsid: 1}\n")
    root = tmp_path / "root"
    with detached(root, "--config", str(config), "--http-port", "0") as doc:
        runtime = json.loads((root / ".filesim" / "runtime.json").read_text())
        url = runtime["http"]["url"]
        assert runtime["http"]["port"] != 0
        assert http(url + "/healthz") == (200, {"status": "ok"})
        deadline = time.monotonic() + 30
        while http(url + "/readyz")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert http(url + "/readyz")[0] == 200
        assert [s["name"] for s in doc["servers"]] == ["one"]
        out = filesim("fault", "add", "one", "readonly", "--root", str(root)).stdout
        assert "readonly" in out
        status = json.loads(filesim("status", "--json", "--root", str(root)).stdout)
        assert status["servers"][0]["name"] == "one"


def test_up_falls_back_to_a_free_port_when_the_default_is_taken(tmp_path: Path) -> None:
    import socket

    from filesim.runtime.http import DEFAULT_HTTP_PORT

    config = tmp_path / "topo.yaml"
    config.write_text("servers:\n  - {name: one, role: input, fsid: 1}\n")
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", DEFAULT_HTTP_PORT))
        holder.listen()
    except OSError:
        pass  # taken already (another topology runs here): the same situation
    try:
        with detached(tmp_path / "root", "--config", str(config)):
            runtime = json.loads((tmp_path / "root/.filesim/runtime.json").read_text())
            assert runtime["http"]["port"] != DEFAULT_HTTP_PORT
            assert http(runtime["http"]["url"] + "/healthz")[0] == 200
    finally:
        holder.close()


@pytest.mark.timeout(60)
def test_follow_events_survives_rotation(tmp_path: Path) -> None:
    import os

    from filesim.cli.ops_cmds import follow_events

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


def test_status_shows_faults_and_the_api(topo: NasTopology) -> None:
    root = ["--root", str(topo.root)]
    with topo.readonly("nas-backup") as fault:
        deadline = time.monotonic() + 10  # runtime.json is refreshed each second
        while f"fault {fault['id']}" not in (out := filesim("status", *root).stdout):
            assert time.monotonic() < deadline, out
            time.sleep(0.2)
        assert f"fault {fault['id']} on nas-backup: readonly" in out
        assert f"HTTP API: {topo.http_url}" in out
        doc = json.loads(filesim("status", "--json", *root).stdout)
        api = http(topo.http_url + "/api/servers")[1]
        assert doc["http"] == api["http"] and doc["pid"] == api["pid"]
        assert [s["faults"] for s in doc["servers"]] == [s["faults"] for s in api["servers"]]
