"""`pip install filesim[fast]`: `filesim up` and its worker processes serve on uvloop, and NFS
clients see the same server. The rest of the suite runs on asyncio's own loop, as the plain
install does (FILESIM_NO_UVLOOP, tests/conftest.py); here the variable is taken away."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import run
from tests.support.topology import by_name, detached, nfs_url

pytestmark = pytest.mark.integration


def serving_pids(doc: dict[str, Any]) -> list[int]:
    """The topology's process and its worker processes, from `filesim status --json`."""
    workers = {s["pid"] for s in doc["servers"] if s["pid"] is not None}
    return sorted({doc["pid"], *workers})


def on_uvloop(pid: int) -> bool:
    """Whether process `pid` has uvloop's compiled loop mapped (it is imported only to run)."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return any("uvloop" in line and line.rstrip().endswith(".so") for line in maps.splitlines())


@pytest.fixture(scope="module", params=["one", "per-core"])
def fast(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The default topology with uvloop installed and not refused, in one process and spread
    over a worker process per core."""
    if importlib.util.find_spec("uvloop") is None:
        pytest.skip("uvloop is not installed: pip install -e '.[test,fast]'")
    root = tmp_path_factory.mktemp("fast")
    env = {k: v for k, v in os.environ.items() if k != "FILESIM_NO_UVLOOP"}
    with detached(root, "--processes", request.param, env=env) as doc:
        yield doc | {"mode": request.param}


def test_every_serving_process_runs_uvloop(fast: dict[str, Any]) -> None:
    pids = serving_pids(fast)
    if fast["mode"] == "per-core":
        assert len(pids) >= 2  # the topology's process and at least one worker
    assert {pid: on_uvloop(pid) for pid in pids} == dict.fromkeys(pids, True)


@pytest.mark.parametrize("name", ["nas-input-1", "nas-output-3"])
def test_clients_write_read_and_list_on_uvloop(
    fast: dict[str, Any], name: str, tmp_path: Path
) -> None:
    """A file of a few MiB: WRITEs, and READs large enough to be sent from the file on
    asyncio's loop (on uvloop they are read into memory)."""
    server = by_name(fast)[name]
    payload = os.urandom(3 << 20) + name.encode()
    src = tmp_path / "src.bin"
    src.write_bytes(payload)
    run("nfs-cp", str(src), nfs_url(server, "/fast.bin"))
    assert run("nfs-cat", nfs_url(server, "/fast.bin")).stdout == payload
    listing = run("nfs-ls", nfs_url(server)).stdout.decode()
    assert "fast.bin" in listing and str(len(payload)) in listing


def test_the_suite_serves_on_asyncio_loop(tmp_path: Path) -> None:
    """The check above can fail: without uvloop allowed, no serving process maps it."""
    assert os.environ.get("FILESIM_NO_UVLOOP")  # set for the whole suite by tests/conftest.py
    with detached(tmp_path, "--processes", "per-core") as doc:
        pids = serving_pids(doc)
        assert pids and not any(on_uvloop(pid) for pid in pids)
