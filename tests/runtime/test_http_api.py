"""The HTTP API of a running topology: every endpoint, on real NFS traffic from libnfs."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from filesim.runtime.model import RuntimeDoc
from filesim.testing import NasTopology
from filesim.waiting import poll_until
from tests.support.api import http, nfs_put, run
from tests.support.fixtures import SERVERS, both_modes

pytestmark = pytest.mark.integration


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                found[tuple(sorted(s.labels.items()))] = s.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return sum(v for k, v in samples(text, name).items() if labels.items() <= dict(k).items())


@both_modes
def test_healthz_and_readyz(topo: NasTopology) -> None:
    assert http(topo.http_url + "/healthz") == (200, {"status": "ok"})
    status, body = http(topo.http_url + "/readyz")
    assert status == 200 and body["ready"] is True and body["reasons"] == [], body
    assert body["servers"] == {
        "nas-input-1": {"nfs": "ok", "sync": "ok"},
        "nas-backup": {"nfs": "ok", "sync": "ok"},
    }


@both_modes
def test_readyz_is_503_during_an_outage_and_200_after_clear(topo: NasTopology) -> None:
    for mode in ("blackhole", "refuse"):
        with topo.outage("nas-backup", mode=mode):
            status, body = http(topo.http_url + "/readyz")
            assert status == 503, mode
            assert body["ready"] is False
            assert [r.split(":")[0] for r in body["reasons"]] == ["nas-backup"]
            assert body["servers"]["nas-input-1"]["nfs"] == "ok"
        status, body = http(topo.http_url + "/readyz")
        assert status == 200 and body["ready"], mode


@both_modes
def test_metrics_parse_and_count_libnfs_reads_and_writes(topo: NasTopology, tmp_path: Path) -> None:
    server = topo.server("nas-input-1")
    before = http(topo.http_url + "/metrics")[1]
    payload = os.urandom(200_000)
    nfs_put(server.url("/metrics.bin"), payload, tmp_path)
    assert run("nfs-cat", server.url("/metrics.bin")).stdout == payload
    run("nfs-cat", server.url("/no-such-file"), check=False)
    status, after = http(topo.http_url + "/metrics")
    assert status == 200
    families = {f.name for f in text_string_to_metric_families(after)}
    assert {"filesim_nfs_requests", "filesim_nfs_request_duration_seconds",
            "filesim_nfs_reply_bytes", "filesim_nfs_errors", "filesim_sync_pending",
            "filesim_sync_latency_seconds", "filesim_faults_active"} <= families  # fmt: skip

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    mine = {"server": "nas-input-1", "program": "nfs"}
    assert moved("filesim_nfs_requests_total", **mine, procedure="WRITE") >= 1
    assert moved("filesim_nfs_requests_total", **mine, procedure="READ") >= 1
    assert moved("filesim_nfs_request_duration_seconds_count", **mine, procedure="READ") >= 1
    assert moved("filesim_nfs_reply_bytes_total", **mine, procedure="READ") >= len(payload)
    assert moved("filesim_nfs_errors_total", **mine, procedure="LOOKUP", status="NOENT") >= 1
    assert moved("filesim_nfs_requests_total", server="nas-backup") == 0
    topo.flush()
    final = http(topo.http_url + "/metrics")[1]
    assert value(final, "filesim_sync_actions_total", server="nas-input-1", kind="copy") >= 1
    assert value(final, "filesim_sync_latency_seconds_count", server="nas-input-1") >= 1

    # The agent's own copy reaches its watcher after flush() returned (inotify is read on
    # another thread), so the gauge may show that echo for a moment: it must drain to 0.
    def drained() -> bool:
        now = http(topo.http_url + "/metrics")[1]
        return value(now, "filesim_sync_pending", server="nas-input-1") == 0

    poll_until(drained, 10, what="filesim_sync_pending of nas-input-1 to drain to 0")
    assert value(final, "filesim_sync_halted", server="nas-input-1") == 0


def test_servers_document_is_status_json(topo: NasTopology) -> None:
    status, doc = http(topo.http_url + "/api/servers")
    assert status == 200
    assert [s["name"] for s in doc["servers"]] == SERVERS
    assert doc["http"]["url"] == topo.http_url
    for s in doc["servers"]:
        assert s["port"] == topo.server(s["name"]).port
        assert s["faults"] == []
        assert "sync_status" in s
        assert s["pid"] is None  # one process: no worker (tests/runtime/test_server_processes)
    # The same document lands in runtime.json, which `filesim status` reads; both are a
    # RuntimeDoc.
    on_disk = json.loads(topo.layout.runtime_file.read_text())
    assert on_disk["http"] == doc["http"]
    assert RuntimeDoc.model_validate(doc).servers[0].name == SERVERS[0]
    assert RuntimeDoc.model_validate(on_disk).pid == doc["pid"]


@both_modes
def test_events_recent_filtered_by_server(topo: NasTopology, tmp_path: Path) -> None:
    nfs_put(topo.server("nas-input-1").url("/events.txt"), b"x", tmp_path)
    url = topo.http_url + "/api/events?server=nas-input-1&limit=1000"

    def logged() -> list[dict[str, Any]]:
        status, body = http(url)
        assert status == 200
        return [e for e in body["events"] if e.get("path") == "events.txt"]

    # A worker process sends its changes in batches (every 10 ms at most): the event may come
    # a moment after the client's reply.
    mine = poll_until(logged, 10, what="the events of events.txt")
    assert [e["kind"] for e in mine][:1] == ["nfs.create"]
    body = http(url)[1]
    assert all(e["server"] == "nas-input-1" for e in body["events"])
    assert http(topo.http_url + "/api/events?limit=x")[0] == 400


def _events(lines: list[str]) -> list[dict[str, Any]]:
    """The events in JSON lines or in SSE `data:` lines."""
    datas = [ln.removeprefix("data: ") for ln in lines if ln.startswith(("data: ", "{"))]
    return [json.loads(d) for d in datas]


def _fault_kinds(lines: list[str], since: float) -> list[str]:
    return [
        e["kind"] for e in _events(lines) if e["kind"].startswith("fault.") and e["time"] >= since
    ]


def _stream(url: str, lines: list[str], since: list[float], done: threading.Event) -> None:
    with urllib.request.urlopen(url, timeout=30) as response:
        for raw in response:
            lines.append(raw.decode())
            if since and len(_fault_kinds(lines, since[0])) >= 2:
                break
    done.set()


def test_events_follow_streams_json_lines_and_sse(topo: NasTopology) -> None:
    for fmt in ("jsonl", "sse"):
        lines: list[str] = []
        since: list[float] = []
        done = threading.Event()
        url = f"{topo.http_url}/api/events?follow=1&limit=1&server=nas-backup&format={fmt}"
        reader = threading.Thread(target=_stream, args=(url, lines, since, done), daemon=True)
        reader.start()
        # The stream subscribes before it sends the backlog: one event back means subscribed.
        poll_until(lambda got=lines: _events(got), 20, interval=0.01, what=f"{fmt}: a backlog")
        since.append(time.time())
        with topo.readonly("nas-backup"):
            pass
        assert done.wait(20), f"{fmt}: stream gave {lines}"
        assert _fault_kinds(lines, since[0]) == ["fault.add", "fault.clear"], fmt
        assert all(e["server"] == "nas-backup" for e in _events(lines))
        if fmt == "sse":
            assert "event: fault.add\n" in lines


@both_modes
def test_faults_api_add_list_clear_and_errors(topo: NasTopology) -> None:
    url = topo.http_url + "/api/faults"
    status, added = http(url, "POST", {"server": "nas-input-1", "kind": "latency",
                                       "delay_ms": 5, "procedures": ["read"]})  # fmt: skip
    assert status == 201 and added["summary"] == "latency 5 ms on READ"
    assert http(url)[1]["faults"] == [added]
    assert http(url + "?server=nas-backup")[1]["faults"] == []
    assert http(topo.http_url + "/api/servers")[1]["servers"][0]["faults"] == [added]
    assert http(url, "POST", {"server": "nope", "kind": "readonly"})[0] == 404
    status, body = http(url, "POST", {"server": "nas-input-1", "kind": "error", "error": "EWHAT"})
    assert status == 422 and "unknown NFS error 'EWHAT'" in body["error"]
    assert http(url, "POST", {"kind": "readonly"})[0] == 400
    status, body = http(f"{url}/{added['id']}", "DELETE")
    assert status == 200 and [f["id"] for f in body["cleared"]] == [added["id"]]
    assert http(f"{url}/{added['id']}", "DELETE")[0] == 404
    assert http(url)[1]["faults"] == []
    kinds = [
        e.kind for e in topo.recent_events(server="nas-input-1") if e.kind.startswith("fault.")
    ]
    assert kinds[-2:] == ["fault.add", "fault.clear"]


def test_openapi_describes_every_endpoint(topo: NasTopology) -> None:
    status, doc = http(topo.http_url + "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert {"/healthz", "/readyz", "/metrics", "/api/servers", "/api/events", "/api/faults",
            "/api/faults/{fault_id}", "/api/stop"} <= set(doc["paths"])  # fmt: skip
    assert set(doc["paths"]["/api/faults"]) == {"get", "post", "delete"}
    fault = doc["components"]["schemas"]["FaultSpec"]
    assert fault["required"] == ["kind"] and "delay_ms" in fault["properties"]
    body = doc["paths"]["/api/faults"]["post"]["requestBody"]["content"]["application/json"]
    assert {"$ref": "#/components/schemas/FaultSpec"} in body["schema"]["allOf"]
    assert "FaultKind" in doc["components"]["schemas"]


def test_an_explicit_http_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    from filesim.runtime.http import HttpStartError
    from filesim.testing import NasTopology as Topology

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        topology = Topology(tmp_path, servers=["nas-input-1"])
        topology.runner.http.port = port  # type: ignore[union-attr]
        try:
            topology.start()
        except HttpStartError as exc:
            assert f"HTTP port {port} on 127.0.0.1 is already in use" in str(exc)
        else:
            topology.stop()
            raise AssertionError("started on a busy port")
    assert not topology.layout.runtime_file.exists()


def test_readyz_waits_for_the_initial_sync(tmp_path: Path) -> None:
    from filesim.testing import start_topology

    # A sync paused from the start holds the initial sync: not ready until it is cleared.
    config = "servers:\n  - {name: held, role: input, fsid: 1, faults: [{kind: sync-pause}]}\n"
    (tmp_path / "held").mkdir()
    (tmp_path / "held" / "seed.txt").write_text("seed")
    with start_topology(tmp_path, config=config) as topo:
        status, body = http(topo.http_url + "/readyz")
        assert status == 503
        assert body["reasons"] == ["held: initial sync not finished"]
        assert body["servers"]["held"] == {"nfs": "ok", "sync": "initial sync running"}
        topo.clear_faults()
        poll_until(lambda: http(topo.http_url + "/readyz")[0] == 200, 30, what="ready")
        assert (topo.server("held").store / "seed.txt").read_text() == "seed"
