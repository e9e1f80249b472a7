"""`filesim up --http-port`, `up --detach` and `status` of a running topology."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from filesim.testing import NasTopology
from filesim.waiting import poll_until
from tests.support.api import http
from tests.support.topology import detached, filesim

pytestmark = pytest.mark.integration


def test_up_detach_serves_the_api_on_the_chosen_port(tmp_path: Path) -> None:
    config = tmp_path / "topo.yaml"
    config.write_text("servers:\n  - {name: one, role: input, fsid: 1}\n")
    root = tmp_path / "root"
    with detached(root, "--config", str(config), "--http-port", "0") as doc:
        runtime = json.loads((root / ".filesim" / "runtime.json").read_text())
        url = runtime["http"]["url"]
        assert runtime["http"]["port"] != 0
        assert http(url + "/healthz") == (200, {"status": "ok"})
        poll_until(lambda: http(url + "/readyz")[0] == 200, 30, what="/readyz to answer 200")
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
    # SO_REUSEADDR: connections of an earlier run left in TIME_WAIT must not make this bind
    # fail (the topology's own bind sets it, and would then get the port).
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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


def test_status_shows_faults_and_the_api(topo: NasTopology) -> None:
    root = ["--root", str(topo.root)]
    with topo.readonly("nas-backup") as fault:

        def shown() -> str | None:
            text = filesim("status", *root).stdout
            return text if f"fault {fault.id}" in text else None

        # runtime.json is refreshed each second
        out = poll_until(shown, 10, interval=0.2, what="the fault in `filesim status`")
        assert f"fault {fault.id} on nas-backup: readonly" in out
        assert f"HTTP API: {topo.http_url}" in out
        doc = json.loads(filesim("status", "--json", *root).stdout)
        api = http(topo.http_url + "/api/servers")[1]
        assert doc["http"] == api["http"] and doc["pid"] == api["pid"]
        assert [s["faults"] for s in doc["servers"]] == [s["faults"] for s in api["servers"]]
