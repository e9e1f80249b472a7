"""`filesim verify` end to end against real local topologies (`filesim up`), in both profiles,
and against topologies broken on purpose: each break fails the right check, with a message
that names the server and the cause."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from filesim.runtime.state import load_runtime
from filesim.waiting import poll_until
from tests.support.topology import detached, filesim
from tests.verify.harness import (
    in_process,
    probes_left,
    results,
    three_servers,
    verify,
    verify_json,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

TIMED = ("folder-to-nfs", "nfs-to-folder", "consumed-input", "reachable")


def test_default_profile_all_pass_with_latencies(tmp_path: Path) -> None:
    root = tmp_path / "sim"
    junit = tmp_path / "verify.xml"
    with detached(root):
        done = verify(root, "--junit", str(junit))
        assert done.returncode == 0, done.stdout + done.stderr
        assert not probes_left(root)
    out = done.stdout
    assert "nas-output-3" in out and "folder-to-nfs" in out and "FAIL" not in out
    assert " ms" in out
    passed = int(out.strip().splitlines()[-1].split()[0])
    assert out.strip().splitlines()[-1] == f"{passed} passed, 0 failed, 15 not applicable"
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "0" and int(suite.get("tests", 0)) == passed + 15
    timed = [c for c in suite if c.get("classname", "").rsplit(".", 1)[-1] in TIMED]
    ran = [c for c in timed if c.find("skipped") is None]
    assert len(timed) == 4 * 7 and len(ran) == 7 + 7 + 6 + 6  # the backup is read-only
    assert all(float(c.get("time", "x")) >= 0 for c in ran)
    # Every timed check prints its measured latency in its cell.
    assert len(re.findall(r"PASS \d+(?: ms|\.\d s)", out)) >= len(ran)


def test_seed_profile_all_pass_including_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "sim"
    with detached(root, "--profile", "seed"):
        code, doc = verify_json(root, "--restart")
        assert not probes_left(root)
        assert filesim("status", "--root", str(root)).returncode == 0  # running again
    assert code == 0, doc
    by = results(doc)
    outputs = [f"nas-output-{i}" for i in (1, 2, 3)]
    assert all(by["nfs-to-folder", s]["status"] == "pass" for s in outputs)
    assert all(by["nfs-to-folder", s]["latency_ms"] is not None for s in outputs)
    # The original's shape: inputs and backup reach NFS at start only, outputs loop-free.
    assert by["folder-to-nfs", "nas-input-1"]["status"] == "skip"
    assert by["persistence", "nas-input-1"]["status"] == "pass"
    assert by["no-loops", "nas-output-2"]["status"] == "pass"
    assert by["readonly-backup", "nas-backup"]["status"] == "pass"


def test_json_only_and_servers_select_what_runs(tmp_path: Path) -> None:
    root = tmp_path / "sim"
    with detached(root, "--config", str(three_servers(tmp_path))):
        code, doc = verify_json(root, "--only", "reachable,readonly-backup",
                                "--servers", "nas-backup")  # fmt: skip
    assert code == 0
    assert sorted(results(doc)) == [("reachable", "nas-backup"), ("readonly-backup", "nas-backup")]
    assert doc["passed"] == 2 and doc["failed"] == 0


def test_a_stopped_server_fails_reachable_and_is_named(tmp_path: Path) -> None:
    root = tmp_path / "sim"
    with in_process(three_servers(tmp_path), root) as topology:
        topology.stop_server("nas-output-1")
        port = topology.runner.server("nas-output-1").nfs.port
        code, doc = verify_json(root, "--only", "reachable,nfs-to-folder,isolation")
    assert code == 1
    by = results(doc)
    assert by["reachable", "nas-input-1"]["status"] == "pass"
    assert by["reachable", "nas-output-1"]["status"] == "fail"
    message = by["reachable", "nas-output-1"]["message"]
    assert f"nas-output-1 at 127.0.0.1:{port} is unreachable" in message
    assert "refused" in message.lower()
    assert (
        by["nfs-to-folder", "nas-output-1"]["message"] == "not checked: nas-output-1 is unreachable"
    )
    assert by["isolation", "nas-input-1"]["status"] == "pass"


def test_a_writable_backup_fails_readonly_backup(tmp_path: Path) -> None:
    root = tmp_path / "sim"
    with detached(root, "--config", str(three_servers(tmp_path, backup_readonly=False))):
        done = verify(root, "--only", "readonly-backup")
        assert not probes_left(root), "the accepted probe is removed again"
    assert done.returncode == 1
    assert "FAIL readonly-backup nas-backup: nas-backup accepted an NFS CREATE" in done.stdout
    assert "NFS3ERR_ROFS" in done.stdout
    assert done.stdout.strip().endswith("0 passed, 1 failed, 2 not applicable")


def test_a_halted_sync_agent_fails_sync_agents(tmp_path: Path) -> None:
    root = tmp_path / "sim"
    with in_process(three_servers(tmp_path), root) as topology:
        folder = topology.layout.root / "nas-input-1"
        agent = topology.runner.server("nas-input-1").agent
        assert agent is not None
        # Files dropped before the watcher runs wait for the next full rescan (60 s).
        poll_until(lambda: agent.status().running, 30, what="the agent to watch the folder")
        for i in range(3):
            (folder / f"tester-{i}.txt").write_text("x")
        store = topology.runner.server("nas-input-1").store
        poll_until(lambda: len(list(store.glob("tester-*"))) == 3, 30, what="the export copies")
        for i in range(3):  # the folder "loses" everything: the agent halts instead of mirroring
            (folder / f"tester-{i}.txt").unlink()
        poll_until(
            lambda: _halted_in_runtime(root, "nas-input-1"), 30, what="the halt in runtime.json"
        )
        code, doc = verify_json(root, "--only", "sync-agents,no-loops")
    assert code == 1
    by = results(doc)
    assert by["sync-agents", "nas-input-1"]["status"] == "fail"
    assert "the sync agent of nas-input-1 is halted" in by["sync-agents", "nas-input-1"]["message"]
    assert by["no-loops", "nas-input-1"]["status"] == "fail"
    assert by["sync-agents", "nas-output-1"]["status"] == "pass"


SHARED_FOLDER = """\
servers:
  - {name: nas-input-1, role: input, fsid: 1, storage: direct, folder: shared}
  - {name: nas-input-2, role: input, fsid: 2, storage: direct, folder: shared}
  - {name: nas-output-1, role: output, fsid: 5}
"""


def test_a_file_on_two_servers_fails_isolation(tmp_path: Path) -> None:
    config = tmp_path / "shared.yaml"
    config.write_text(SHARED_FOLDER)
    root = tmp_path / "sim"
    with detached(root, "--config", str(config)):
        code, doc = verify_json(root, "--only", "isolation")
        assert not probes_left(root)
    assert code == 1
    by = results(doc)
    assert by["isolation", "nas-output-1"]["status"] == "pass"
    message = by["isolation", "nas-input-1"]["message"]
    assert message.startswith("a file written to nas-input-1 is visible on nas-input-2")
    assert "NFS /data" in message


def test_no_running_topology_is_one_clear_line(tmp_path: Path) -> None:
    done = verify(tmp_path / "nothing-here")
    assert done.returncode == 1
    assert "no topology is running under" in done.stderr and "filesim up --root" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 2


def test_unknown_check_and_server_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "sim"
    with detached(root, "--config", str(three_servers(tmp_path))):
        bad_check = verify(root, "--only", "reachble")
        bad_server = verify(root, "--servers", "nas-input-9")
    assert bad_check.returncode == 1 and "unknown check 'reachble'" in bad_check.stderr
    assert bad_server.returncode == 1 and "no server named nas-input-9" in bad_server.stderr


def _halted_in_runtime(root: Path, name: str) -> bool:
    doc = load_runtime(root / ".filesim" / "runtime.json")
    status = None if doc is None else doc.server(name).sync_status
    return status is not None and status.halted is not None
