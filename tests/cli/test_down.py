"""`filesim down` of a real detached `filesim up`: through the HTTP API with the control token
(the clean stop on every platform), by a signal when the API cannot be used, killed when the
process does not end."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
from pathlib import Path

import pytest

from filesim.runtime.state import running
from filesim.topology import Layout
from tests.support.api import http
from tests.support.topology import filesim

pytestmark = pytest.mark.integration

CONFIG = "servers:\n  - {name: one, role: input, fsid: 1}\n"


def _up(tmp_path: Path) -> tuple[Path, dict[str, object]]:
    """A detached topology of one server under tmp_path/root; its runtime document."""
    config = tmp_path / "topo.yaml"
    config.write_text(CONFIG)
    root = tmp_path / "root"
    filesim("up", "--detach", "--root", str(root), "--config", str(config),
            "--base-port", "0", "--http-port", "0")  # fmt: skip
    return root, json.loads((root / ".filesim" / "runtime.json").read_text())


def _url(runtime: dict[str, object]) -> str:
    info = runtime["http"]
    assert isinstance(info, dict)
    return str(info["url"])


def test_down_stops_through_the_api_with_the_owner_only_token(tmp_path: Path) -> None:
    root, runtime = _up(tmp_path)
    layout = Layout(root)
    try:
        token = layout.control_token
        assert stat.S_IMODE(token.stat().st_mode) == 0o600, "readable by its owner only"
        down = filesim("down", "--root", str(root))
        assert f"stopped the topology under {root} (pid {runtime['pid']})" in down.stdout
        assert not running(layout) and not token.exists()
        log = (root / ".filesim" / "filesim.log").read_text()
        assert "stop requested through the HTTP API" in log, log[-2000:]
    finally:
        filesim("down", "--root", str(root), check=False)


def test_a_stop_without_the_token_is_refused(tmp_path: Path) -> None:
    root, runtime = _up(tmp_path)
    try:
        url = _url(runtime)
        assert http(url + "/api/stop", "POST")[0] == 401
        status, body = http(url + "/api/stop", "POST", body={"token": "guess"})
        assert status == 401 and "token" in body["error"]
        # The refusals were answered; a later request is served by the same process.
        assert http(url + "/api/servers")[1]["pid"] == runtime["pid"]
        assert running(Layout(root))
    finally:
        filesim("down", "--root", str(root), check=False)


def test_without_the_token_down_falls_back_to_a_signal(tmp_path: Path) -> None:
    root, _ = _up(tmp_path)
    try:
        Layout(root).control_token.unlink()  # the API cannot be used
        down = filesim("down", "--root", str(root))
        assert f"stopped by a signal the topology under {root}" in down.stdout
        assert not running(Layout(root))
    finally:
        filesim("down", "--root", str(root), check=False)


@pytest.mark.slow
def test_a_hung_topology_is_killed_after_the_timeout(tmp_path: Path) -> None:
    """The process is stopped (SIGSTOP): its API does not answer, nor does it end on SIGTERM;
    `down` gives up on the API, signals, and kills it after --timeout."""
    root, runtime = _up(tmp_path)
    pid = runtime["pid"]
    assert isinstance(pid, int)
    os.kill(pid, signal.SIGSTOP)
    try:
        down = filesim("down", "--root", str(root), "--timeout", "2")
        assert f"killed the topology under {root} (pid {pid})" in down.stdout
        assert not running(Layout(root))
    finally:
        with contextlib.suppress(ProcessLookupError):  # killed by now, unless the test failed
            os.kill(pid, signal.SIGCONT)
        filesim("down", "--root", str(root), check=False)
