"""Starting and stopping: signals, `serve`, and state left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from pathlib import Path
from typing import IO, Any

import pytest

from filesim.nfsclient.client import NfsClient
from filesim.waiting import poll_until
from tests.support.topology import FILESIM

pytestmark = pytest.mark.integration


def _wait_runtime(root: Path, proc: subprocess.Popen[str], timeout: float = 30) -> Any:
    """The runtime document of `proc` (a `filesim up`) once it has written it."""
    runtime = root / ".filesim" / "runtime.json"

    def written() -> Any:
        assert proc.poll() is None, proc.communicate()
        if not runtime.exists():
            return None
        doc = json.loads(runtime.read_text())
        return doc if doc["pid"] == proc.pid else None

    return poll_until(written, timeout, what="filesim up to start")


def _up(root: Path, **streams: IO[str] | int) -> subprocess.Popen[str]:
    """`filesim up` under `root`, every server on a free port."""
    args = [*FILESIM, "up", "--root", str(root), "--base-port", "0", "--http-port", "0"]
    return subprocess.Popen(args, text=True, **streams)  # type: ignore[call-overload, no-any-return]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_up_stops_cleanly_on_signals(tmp_path: Path, sig: signal.Signals) -> None:
    proc = _up(tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    runtime = _wait_runtime(tmp_path, proc)
    port = runtime["servers"][0]["port"]
    with NfsClient("127.0.0.1", port) as client:
        client.null()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert not (tmp_path / ".filesim" / "runtime.json").exists()
    assert "nas-input-1" in out and f"port={port},mountport={port}" in out


def test_serve_runs_one_server_without_sync(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*FILESIM, "serve", "nas-output-2", "--root", str(tmp_path), "--port", "0"],
            stdout=out, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
    try:

        def port() -> int | None:  # printed in the mount command once it serves
            assert proc.poll() is None, log.read_text()
            found = re.search(r"mountport=(\d+)", log.read_text())
            return int(found[1]) if found else None

        served = poll_until(port, 30, what="filesim serve to print its port")
        with NfsClient("127.0.0.1", served, timeout=5) as client:
            root = client.mnt("/data")
            client.write_file(root, "served.txt", b"one server")
        store = tmp_path / ".filesim" / "exports" / "nas-output-2"
        assert (store / "served.txt").read_bytes() == b"one server"
        # No sync agent: none opened its archive (an agent does so while the topology starts,
        # before the ports are printed), and no folder but the server's own was made.
        assert not (tmp_path / ".filesim" / "sync").exists()
        assert not (tmp_path / "nas-output-2" / "served.txt").exists()
        assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
            "nas-output-2",
            "serve.log",
        ]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0, log.read_text()


def test_serve_unknown_server_is_a_one_line_error(tmp_path: Path) -> None:
    proc = subprocess.run([*FILESIM, "serve", "nas-nope", "--root", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "nas-nope" in proc.stderr and "nas-input-1" in proc.stderr


def test_serve_on_a_taken_port_names_the_flag_to_change(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        args = ["serve", "nas-output-2", "--root", str(tmp_path), "--port", str(port)]
        proc = subprocess.run([*FILESIM, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in proc.stderr
    assert proc.stderr.strip().endswith("choose another --port"), proc.stderr


def test_killed_topology_is_not_reported_as_running(tmp_path: Path) -> None:
    proc = _up(tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_runtime(tmp_path, proc)
    proc.kill()  # SIGKILL; TerminateProcess on Windows
    proc.wait(10)
    status = subprocess.run(
        [*FILESIM, "status", "--root", str(tmp_path)], capture_output=True, text=True
    )
    assert status.returncode == 1 and "no topology is running" in status.stderr
    # and a new `up` on the same root starts despite the stale runtime file
    again = _up(tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_runtime(tmp_path, again)
    finally:
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=30)
