"""`filesim up` with the seven production servers, driven by libnfs's own tools."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from filesim.runtime.build import port_for
from filesim.runtime.cores import usable_cores
from filesim.topology import default_topology
from tests.support.api import run
from tests.support.fixtures import MODES
from tests.support.topology import by_name, detached, filesim, nfs_url

pytestmark = pytest.mark.integration

EXPECTED = {
    "nas-input-1": ("input", 1), "nas-input-2": ("input", 2), "nas-input-3": ("input", 3),
    "nas-backup": ("backup", 4), "nas-output-1": ("output", 5), "nas-output-2": ("output", 6),
    "nas-output-3": ("output", 7),
}  # fmt: skip


@pytest.fixture(scope="module", params=[*MODES, "per-core"])
def topology(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The seven servers under `filesim up --detach`: in one process, with each server in a
    worker process of its own (`--processes per-server`), and spread over a worker per core
    (`per-core`: several servers in each worker)."""
    root = tmp_path_factory.mktemp("up")
    with detached(root, "--processes", request.param) as doc:
        doc["root"] = root
        doc["mode"] = request.param
        yield doc


def test_seven_servers_with_their_roles_and_ports(topology: dict[str, Any]) -> None:
    servers = by_name(topology)
    assert {n: (s["role"], s["fsid"]) for n, s in servers.items()} == EXPECTED
    ports = [s["port"] for s in topology["servers"]]
    assert len(set(ports)) == 7 and 0 not in ports  # --base-port 0: each on a port of its own
    assert [n for n, s in servers.items() if s["readonly"]] == ["nas-backup"]
    for name, s in servers.items():
        assert Path(s["folder"]) == topology["root"] / name and Path(s["folder"]).is_dir()
        assert s["export"] == "/data" and s["host"] == "127.0.0.1"


@pytest.mark.parametrize("name", [n for n in EXPECTED if n != "nas-backup"])
def test_write_read_back_and_list(topology: dict[str, Any], name: str, tmp_path: Path) -> None:
    server = by_name(topology)[name]
    payload = os.urandom(3 << 20) + name.encode()
    src = tmp_path / "src.bin"
    src.write_bytes(payload)
    run("nfs-cp", str(src), nfs_url(server, "/written.bin"))
    got = run("nfs-cat", nfs_url(server, "/written.bin")).stdout
    assert got == payload
    listing = run("nfs-ls", nfs_url(server)).stdout.decode()
    assert "written.bin" in listing and str(len(payload)) in listing
    dst = tmp_path / "copy.bin"
    run("nfs-cp", nfs_url(server, "/written.bin"), str(dst))
    assert dst.read_bytes() == payload


def test_servers_are_isolated(topology: dict[str, Any], tmp_path: Path) -> None:
    servers = by_name(topology)
    src = tmp_path / "only-here.txt"
    src.write_text("input-2 only")
    run("nfs-cp", str(src), nfs_url(servers["nas-input-2"], "/only-here.txt"))
    for name, server in servers.items():
        listing = run("nfs-ls", nfs_url(server)).stdout.decode()
        assert ("only-here.txt" in listing) == (name == "nas-input-2"), name


def test_backup_refuses_writes(topology: dict[str, Any], tmp_path: Path) -> None:
    server = by_name(topology)["nas-backup"]
    src = tmp_path / "nope.txt"
    src.write_text("nope")
    proc = run("nfs-cp", str(src), nfs_url(server, "/nope.txt"), check=False)
    assert proc.returncode != 0
    assert b"ROFS" in proc.stderr or b"Read-only" in proc.stderr or b"read-only" in proc.stderr
    assert "nope.txt" not in run("nfs-ls", nfs_url(server)).stdout.decode()


def test_status_json_document(topology: dict[str, Any]) -> None:
    for server in topology["servers"]:
        assert {"name", "role", "host", "port", "export", "folder", "readonly", "pid"} <= set(
            server
        )
    pids = [s["pid"] for s in topology["servers"]]
    if topology["mode"] == "one":
        assert pids == [None] * 7
    elif topology["mode"] == "per-server":  # a worker each, none of them the topology's own
        assert None not in pids and len(set(pids) | {topology["pid"]}) == 8, pids
    else:  # a worker per core, each serving several servers, in turn
        workers = min(7, usable_cores())
        assert None not in pids and topology["pid"] not in pids, pids
        assert pids == [pids[i % workers] for i in range(7)] and len(set(pids)) == workers


def test_second_up_on_the_same_root_is_refused(topology: dict[str, Any]) -> None:
    proc = filesim("up", "--root", str(topology["root"]), "--base-port", "1", check=False)
    assert proc.returncode == 1
    assert "already running" in proc.stderr and "Traceback" not in proc.stderr


def test_server_i_listens_on_base_port_plus_i_unless_it_names_a_port() -> None:
    servers = default_topology().servers
    assert [port_for(i, s, 20490) for i, s in enumerate(servers)] == list(range(20490, 20497))
    named = servers[3].model_copy(update={"port": 3049})
    assert port_for(3, named, 20490) == 3049
    assert port_for(3, servers[3], 0) == 0  # base port 0: any free port


def test_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "topo.yaml"
        config.write_text(
            "servers:\n  - {name: nas-input-1, role: input, fsid: 1}\n"
            f"  - {{name: nas-backup, role: backup, fsid: 4, port: {port}}}\n"
        )
        proc = filesim("up", "--root", str(tmp_path), "--config", str(config), "--base-port", "0",
                       check=False)  # fmt: skip
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"port {port}" in lines[0] and "nas-backup" in lines[0]
    # nas-input-1 listened before nas-backup failed, but no server was announced: the event
    # log must not say a server stopped that it never said started
    events = [json.loads(line) for line in (tmp_path / ".filesim/events.jsonl").open()]
    kinds = [(e["kind"], e["server"]) for e in events if e["kind"].startswith("server.")]
    assert ("server.stop", "nas-input-1") not in kinds, kinds


def test_bad_config_is_a_one_line_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "servers:\n  - {name: A_B, role: input, fsid: 1}\n  - {name: b, role: nope, fsid: 1}\n"
    )
    proc = filesim("up", "--config", str(config), "--root", str(tmp_path), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "servers[0].name" in proc.stderr and "servers[1].role" in proc.stderr


def test_folder_that_is_not_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "nas-input-1").write_text("a file where a folder should be")
    proc = filesim("up", "--root", str(tmp_path), "--base-port", "0", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "nas-input-1" in proc.stderr and "not a directory" in proc.stderr


def test_down_when_nothing_runs(tmp_path: Path) -> None:
    proc = filesim("down", "--root", str(tmp_path))
    assert "no topology is running" in proc.stdout
    proc = filesim("status", "--root", str(tmp_path), check=False)
    assert proc.returncode == 1 and "no topology is running" in proc.stderr
