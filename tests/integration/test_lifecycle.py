"""Starting and stopping: signals, `serve`, and state left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from filesim.nfsclient.client import NfsClient
from tests.support.topology import FILESIM, free_base_port


def _wait_runtime(root: Path, proc: subprocess.Popen[str], timeout: float = 30) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    runtime = root / ".filesim" / "runtime.json"
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if runtime.exists():
            return json.loads(runtime.read_text())  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError("filesim up did not start")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_up_stops_cleanly_on_signals(tmp_path: Path, sig: signal.Signals) -> None:
    base = free_base_port()
    proc = subprocess.Popen(
        [*FILESIM, "up", "--root", str(tmp_path), "--base-port", str(base)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    runtime = _wait_runtime(tmp_path, proc)
    assert runtime["pid"] == proc.pid
    with NfsClient("127.0.0.1", base) as client:
        client.null()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert not (tmp_path / ".filesim" / "runtime.json").exists()
    assert "nas-input-1" in out and f"port={base},mountport={base}" in out


def test_serve_runs_one_server_without_sync(tmp_path: Path) -> None:
    port = free_base_port(1)
    proc = subprocess.Popen(
        [*FILESIM, "serve", "nas-output-2", "--root", str(tmp_path), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with NfsClient("127.0.0.1", port, timeout=1) as client:
                    root = client.mnt("/data")
                    client.write_file(root, "served.txt", b"one server")
                break
            except Exception:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        store = tmp_path / ".filesim" / "exports" / "nas-output-2"
        assert (store / "served.txt").read_bytes() == b"one server"
        time.sleep(0.5)
        assert not (tmp_path / "nas-output-2" / "served.txt").exists()  # no sync agent here
        assert [p.name for p in (tmp_path).iterdir() if not p.name.startswith(".")] == [
            "nas-output-2"
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_serve_unknown_server_is_a_one_line_error(tmp_path: Path) -> None:
    proc = subprocess.run([*FILESIM, "serve", "nas-nope", "--root", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "nas-nope" in proc.stderr and "nas-input-1" in proc.stderr


def test_killed_topology_is_not_reported_as_running(tmp_path: Path) -> None:
    base = free_base_port()
    proc = subprocess.Popen([*FILESIM, "up", "--root", str(tmp_path), "--base-port", str(base)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    _wait_runtime(tmp_path, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    status = subprocess.run(
        [*FILESIM, "status", "--root", str(tmp_path)], capture_output=True, text=True
    )
    assert status.returncode == 1 and "no topology is running" in status.stderr
    # and a new `up` on the same root starts despite the stale runtime file
    again = subprocess.Popen([*FILESIM, "up", "--root", str(tmp_path), "--base-port", str(base)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        _wait_runtime(tmp_path, again)
        deadline = time.monotonic() + 30
        while json.loads((tmp_path / ".filesim/runtime.json").read_text())["pid"] != again.pid:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=30)
