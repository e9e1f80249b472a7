"""Check logic without servers: which checks apply to which policy, how a local agent's status
is judged, check selection, and the reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from filesim.runtime.model import RuntimeDoc, ServerState, SyncState
from filesim.sync.status import SyncStatus
from filesim.topology import Direction, Role, StorageMode
from filesim.verify import report as reports
from filesim.verify.checks_sync import status_problems
from filesim.verify.names import PERSISTENCE
from filesim.verify.results import CheckResult, Report, Status
from filesim.verify.runner import _FUNCTIONS, CHECK_NAMES, select_checks
from filesim.verify.session import PROBE_PREFIX, Session
from filesim.verify.target import ServerTarget, Target, VerifyError


def server(**kw: object) -> ServerTarget:
    base: dict[str, object] = dict(
        name="nas-output-1", role=Role.OUTPUT, host="127.0.0.1", port=1, export="/data",
        folder=None, readonly=False,
    )  # fmt: skip
    return ServerTarget(**{**base, **kw})  # type: ignore[arg-type]


def test_seed_output_policy_is_export_to_folder_only() -> None:
    s = server(direction=Direction.EXPORT_TO_FOLDER, mirror_deletes=False)
    assert s.live_export_to_folder and not s.live_folder_to_export
    assert not s.live_deletes_to_folder and s.has_agent


def test_seed_input_syncs_at_start_only() -> None:
    s = server(role=Role.INPUT, direction=Direction.FOLDER_TO_EXPORT, continuous=False)
    assert s.has_agent and not s.live_folder_to_export and not s.live_export_to_folder


def test_direct_storage_is_live_both_ways_without_an_agent() -> None:
    s = server(storage=StorageMode.DIRECT, continuous=False)
    assert s.live_folder_to_export and s.live_export_to_folder and not s.has_agent


def test_a_backup_is_expected_read_only_even_when_exported_rw() -> None:
    assert server(role=Role.BACKUP).expects_readonly
    assert not server(role=Role.INPUT).expects_readonly


def test_status_problems_name_halt_direction_and_missing_agent() -> None:
    s = server()

    def status(**fields: object) -> SyncStatus:
        given = {"direction": "both", "continuous": True, "running": True, "ready": True}
        return SyncStatus.model_validate({"server": s.name, **given, **fields})

    assert status_problems(s, status()) == []
    assert status_problems(s, None) == [
        "nas-output-1 has no sync agent but its policy is both, continuous"
    ]
    halted = status_problems(s, status(halted="disk gone"))
    assert halted == ["the sync agent of nas-output-1 is halted: disk gone"]
    wrong = status_problems(s, status(direction="export-to-folder"))
    assert wrong == ["nas-output-1 syncs export-to-folder, its policy says both"]
    direct = server(storage=StorageMode.DIRECT)
    assert status_problems(direct, status()) == [
        "nas-output-1 runs a sync agent but its policy has none"
    ]


def test_status_problems_name_an_agent_that_stopped_or_runs_otherwise() -> None:
    s = server()

    def status(**fields: object) -> SyncStatus:
        given = {"direction": "both", "continuous": True, "running": True, "ready": True}
        return SyncStatus.model_validate({"server": s.name, **given, **fields})

    assert status_problems(s, status(running=False)) == [
        "the sync agent of nas-output-1 has stopped: its policy is both, continuous"
    ]
    # Still in its initial sync: not running its loop yet, and not a problem.
    assert status_problems(s, status(running=False, ready=False)) == []
    assert status_problems(s, status(continuous=False, running=False)) == [
        "the sync agent of nas-output-1 should run continuously"
    ]
    once = server(continuous=False)
    assert status_problems(once, status(continuous=False, running=False)) == []


def test_select_checks_keeps_order_and_refuses_unknown_names() -> None:
    assert select_checks(None, None) == CHECK_NAMES
    assert select_checks(["isolation", "reachable"], None) == ["reachable", "isolation"]
    assert "no-loops" not in select_checks(None, ["no-loops"])
    with pytest.raises(VerifyError, match="unknown check 'loops'"):
        select_checks(["loops"], None)


def _target(*names: str) -> Target:
    servers = [server(name=n) for n in names]
    return Target("local", "default", servers, None, lambda s: [], lambda: None)


def test_select_servers_names_the_unknown_ones() -> None:
    target = _target("nas-input-1", "nas-output-1")
    assert [s.name for s in target.select(["nas-output-1"])] == ["nas-output-1"]
    with pytest.raises(VerifyError, match=r"no server named nas-x .*nas-input-1, nas-output-1"):
        target.select(["nas-x"])


def test_probe_names_are_recognisable_and_unique_per_run() -> None:
    a, b = Session(_target("s")), Session(_target("s"))
    assert a.probe_name("x").startswith(PROBE_PREFIX) and a.probe_name("x") != b.probe_name("x")
    assert not PROBE_PREFIX.startswith(".filesim-tmp-")  # the server hides those


def _report() -> Report:
    return Report("t", [
        CheckResult("reachable", "a", Status.PASS, "ok", 0.004),
        CheckResult("reachable", "b", Status.FAIL, "b at 1.2.3.4:5 is unreachable"),
        CheckResult("persistence", "a", Status.SKIP, "needs --restart"),
    ])  # fmt: skip


def test_summary_and_exit_rule() -> None:
    report = _report()
    assert report.summary() == "1 passed, 1 failed, 1 not applicable"
    assert not report.ok
    assert Report("t", [CheckResult("x", "a", Status.PASS)]).ok
    assert not Report("t", []).ok  # nothing checked is not a pass


def test_table_prints_latency_failure_and_summary() -> None:
    console = Console(width=120, record=True)
    reports.print_report(_report(), console)
    text = console.export_text()
    assert "PASS 4 ms" in text and "FAIL b reachable" not in text
    assert "FAIL reachable b: b at 1.2.3.4:5 is unreachable" in text
    assert text.strip().endswith("1 passed, 1 failed, 1 not applicable")


def test_json_and_junit(tmp_path: Path) -> None:
    doc = json.loads(reports.to_json(_report()))
    assert doc["failed"] == 1 and doc["results"][0]["latency_ms"] == 4.0
    path = tmp_path / "junit.xml"
    reports.write_junit(_report(), path)
    suite = ET.parse(path).getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    failure = suite.find("testcase[@name='b']/failure")
    assert failure is not None and "unreachable" in (failure.get("message") or "")


def runtime_doc(
    root: Path,
    argv: list[str] | None,
    servers: list[tuple[str, str, int]],
    profile: str = "default",
) -> RuntimeDoc:
    return RuntimeDoc(
        pid=1, profile=profile, root=root, state_dir=root / ".filesim", started=0, argv=argv,
        servers=[ServerState(
            name=name, role=Role.INPUT, host=host, port=port, export="/data",
            folder=root / name, readonly=False, fsid=i + 1, storage=StorageMode.MIRROR,
            store=root / ".filesim" / "exports" / name, sync=SyncState(agent=True),
        ) for i, (name, host, port) in enumerate(servers)],
    )  # fmt: skip


def test_restart_of_a_topology_on_free_ports_pins_the_ports_it_had(tmp_path: Path) -> None:
    from filesim.topology import Layout, load_topology
    from filesim.verify.local import _up_args

    layout = Layout(tmp_path)
    ports = [("nas-input-1", "127.0.0.1", 40001), ("nas-backup", "127.0.0.1", 40002)]
    argv = ["up", "--root", str(tmp_path), "--base-port", "0", "--profile", "seed"]
    args = _up_args(layout, runtime_doc(tmp_path, argv, ports, profile="seed"), None)
    assert args[:4] == ["up", "--detach", "--root", str(tmp_path)]
    assert "--profile" not in args and args[-2] == "--config"
    pinned = load_topology(Path(args[-1]))
    assert pinned.profile == "seed"
    assert {s.name: s.port for s in pinned.servers if s.name in ("nas-input-1", "nas-backup")} == {
        "nas-input-1": 40001, "nas-backup": 40002,
    }  # fmt: skip
    assert len(pinned.servers) == 7  # the others keep what the topology gives them


def test_restart_reuses_the_recorded_command_line(tmp_path: Path) -> None:
    from filesim.topology import Layout
    from filesim.verify.local import _up_args

    layout = Layout(tmp_path)
    recorded = runtime_doc(
        tmp_path, ["up", "--root", str(tmp_path), "--http-port", "0", "--detach"],
        [("x", "127.0.0.1", 21000)],
    )  # fmt: skip
    assert _up_args(layout, recorded, None) == [
        "up", "--detach", "--root", str(tmp_path), "--http-port", "0",
    ]  # fmt: skip
    custom = runtime_doc(tmp_path, None, [("nas-a", "0.0.0.0", 21005)], profile="seed")
    with pytest.raises(VerifyError, match="pass the file it was started with as --config"):
        _up_args(layout, custom, None)
    rebuilt = _up_args(layout, custom, tmp_path / "t.yaml")
    assert rebuilt[-2:] == ["--config", str(tmp_path / "t.yaml")]
    assert "--base-port" in rebuilt and rebuilt[rebuilt.index("--base-port") + 1] == "21005"
    assert rebuilt[rebuilt.index("--profile") + 1] == "seed"


def test_every_check_function_is_listed_by_name() -> None:
    # a function missing from verify/names.py would never run, and nothing else would say so
    assert set(_FUNCTIONS) == set(CHECK_NAMES) - {PERSISTENCE}
