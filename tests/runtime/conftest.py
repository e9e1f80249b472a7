"""A two-server topology (one input, the read-only backup) shared by a test module."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from filesim.testing import NasTopology, start_topology

SERVERS = ["nas-input-1", "nas-backup"]


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NasTopology]:
    with start_topology(tmp_path_factory.mktemp("rt"), servers=SERVERS) as topology:
        yield topology
        topology.clear_faults()


@pytest.fixture(autouse=True)
def no_faults_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failing test must not leave a fault behind for the next one."""
    yield
    if "topo" in request.fixturenames:
        request.getfixturevalue("topo").clear_faults()


def http(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    """(status, decoded JSON or text) of one request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, kind = response.status, response.read(), response.headers["content-type"]
    except urllib.error.HTTPError as exc:
        status, raw, kind = exc.code, exc.read(), exc.headers["content-type"]
    text = raw.decode()
    return status, json.loads(text) if "json" in (kind or "") else text


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(cmd, capture_output=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed: {proc.stderr.decode(errors='replace')}")
    return proc


def nfs_put(url: str, data: bytes, tmp: Path) -> None:
    src = tmp / "upload.bin"
    src.write_bytes(data)
    run("nfs-cp", str(src), url)
