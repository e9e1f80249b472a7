"""The runtime document: what the writer writes, every reader reads back, unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from filesim.runtime.model import (
    FaultDoc,
    HttpInfo,
    RuntimeDoc,
    ServerState,
    SyncState,
    reachable_host,
)
from filesim.runtime.state import load_runtime, write_runtime
from filesim.sync.status import SyncStatus
from filesim.topology import Direction, Role, StorageMode
from filesim.topology.faults import FaultKind, FaultSpec


def a_document(root: Path) -> RuntimeDoc:
    """A document with every kind of field set."""
    spec = FaultSpec(kind=FaultKind.ERROR, error="EIO", procedures=["read"], probability=0.5)
    fault = FaultDoc(id="f1", server="nas-input-1", kind=spec.kind, summary=spec.summary(),
                     origin="api", added=1700000000.25, expires=1700000060.25, spec=spec)  # fmt: skip
    status = SyncStatus(
        server="nas-input-1", direction="both", continuous=True, running=True, ready=True,
        pending=2, last_sync=1700000001.5, p50_ms=3.0, p99_ms=40.0, conflicts=1, actions=7,
        by_kind={"sync.copy": 6, "sync.delete": 1}, echoes=0, errors=0,
    )  # fmt: skip
    servers = [
        ServerState(
            name="nas-input-1", role=Role.INPUT, host="0.0.0.0", port=20490, export="/data",
            folder=root / "nas-input-1", readonly=False, fsid=1, storage=StorageMode.MIRROR,
            store=root / ".filesim/exports/nas-input-1",
            sync=SyncState(direction=Direction.BOTH, agent=True), sync_status=status,
            faults=[fault],
        ),
        ServerState(
            name="nas-backup", role=Role.BACKUP, host="127.0.0.1", port=20493, export="/data",
            folder=root / "nas-backup", readonly=True, fsid=4, storage=StorageMode.DIRECT,
            store=root / "nas-backup", sync=SyncState(agent=False),
        ),
    ]  # fmt: skip
    return RuntimeDoc(
        pid=4242, profile="seed", root=root, state_dir=root / ".filesim", started=1700000000.0,
        argv=["up", "--root", str(root)], http=HttpInfo.of("0.0.0.0", 20480), servers=servers,
    )  # fmt: skip


def test_round_trip_through_json_and_the_runtime_file(tmp_path: Path) -> None:
    doc = a_document(tmp_path)
    assert RuntimeDoc.model_validate_json(doc.to_json()) == doc
    write_runtime(tmp_path / "runtime.json", doc)
    assert load_runtime(tmp_path / "runtime.json") == doc


def test_a_fault_shows_only_the_fields_it_sets() -> None:
    data = json.loads(a_document(Path("/r")).to_json())
    spec = data["servers"][0]["faults"][0]["spec"]
    assert spec == {"kind": "error", "procedures": ["READ"], "error": "IO", "probability": 0.5}


def test_the_document_is_strict_about_its_fields(tmp_path: Path) -> None:
    data = json.loads(a_document(tmp_path).to_json())
    data["servers"][0]["echoes"] = 3  # a field nobody defined is a writer/reader disagreement
    with pytest.raises(ValidationError, match="echoes"):
        RuntimeDoc.model_validate(data)


def test_a_cut_or_foreign_file_is_no_runtime(tmp_path: Path) -> None:
    path = tmp_path / "runtime.json"
    assert load_runtime(path) is None
    path.write_text('{"pid": 1, "servers": [')
    assert load_runtime(path) is None
    path.write_text('{"hello": "world"}')
    assert load_runtime(path) is None


def test_where_a_client_reaches_a_server() -> None:
    assert reachable_host("0.0.0.0") == "127.0.0.1" and reachable_host("::") == "::1"
    assert reachable_host("10.1.2.3") == "10.1.2.3"
    assert HttpInfo.of("::", 8080).url == "http://[::1]:8080"
    assert HttpInfo.of("127.0.0.1", 20480).url == "http://127.0.0.1:20480"
    doc = a_document(Path("/r"))
    assert doc.server("nas-input-1").connect_host == "127.0.0.1"
    with pytest.raises(KeyError, match="running: nas-input-1, nas-backup"):
        doc.server("nas-output-1")
