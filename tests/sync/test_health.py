"""Health that does not lie (issue 10 item 11): whenever an agent stops, halts or keeps failing,
/readyz and `filesim status` say which server, why and since when, and the event log records
it; once it recovers, they say that too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from filesim.nfsclient.client import NfsClient
from filesim.sync.archive import request_resume
from filesim.sync.lock import ArchiveLock
from filesim.testing import NasTopology, start_topology
from filesim.topology import Layout, parse_topology
from filesim.waiting import poll_until
from tests.support.api import http

ONE = """
servers:
  - {name: nas-h, role: input, fsid: 1}
"""


def readyz(topo: NasTopology) -> tuple[int, Any]:
    return http(topo.http_url + "/readyz")


def not_ready_because(topo: NasTopology, *words: str) -> bool:
    status, body = readyz(topo)
    reasons = " ".join(body["reasons"]) if isinstance(body, dict) else ""
    return status == 503 and all(word in reasons for word in words)


def filesim_status(root: Path) -> str:
    """What `filesim status` prints (from runtime.json, which the runner rewrites each second
    when something changed: poll it)."""
    proc = subprocess.run(
        [sys.executable, "-m", "filesim", "status", "--root", str(root)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "250"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.integration
def test_an_agent_that_cannot_start_is_stopped_and_says_why(tmp_path: Path) -> None:
    """Another agent holds the archive (a `filesim sync nas-h` started first): the topology's
    agent stops at once. /readyz used to say 'initial sync not finished' for ever."""
    root = tmp_path / "sim"
    lock = ArchiveLock(Layout(root).archive(parse_topology(ONE).servers[0]), "another agent")
    lock.acquire()
    try:
        with start_topology(root, config=ONE) as topo:
            poll_until(lambda: not_ready_because(topo, "nas-h", "stopped since", "locked"), 30,
                       what="/readyz naming the stopped agent")  # fmt: skip
            _, body = readyz(topo)
            assert body["servers"]["nas-h"]["sync"] == "stopped"
            assert "already running" in body["servers"]["nas-h"]["sync_reason"]
            assert topo.recent_events("sync.stopped", "nas-h")
            poll_until(lambda: "stopped since" in filesim_status(root), 30, what="status: stopped")
    finally:
        lock.release()


@pytest.mark.integration
def test_a_halted_agent_is_not_ready_until_resumed(tmp_path: Path) -> None:
    root = tmp_path / "sim"
    with start_topology(root, config=ONE) as topo:
        nas = topo.server("nas-h")
        for i in range(4):
            (nas.folder / f"f{i}.txt").write_text(f"file {i}")
        topo.flush()
        assert readyz(topo)[0] == 200
        for i in range(4):  # the folder "loses" everything: the guard halts the agent
            (nas.folder / f"f{i}.txt").unlink()
        poll_until(lambda: not_ready_because(topo, "nas-h", "halted since", "lost all 4 files"),
                   30, what="/readyz naming the halt")  # fmt: skip
        poll_until(lambda: "halted since" in filesim_status(root), 30, what="status: halted")
        request_resume(Layout(root).archive(topo.topology.servers[0]))
        poll_until(lambda: readyz(topo)[0] == 200, 30, what="ready after the resume")
        status = topo.status().server("nas-h").sync_status
        assert status is not None and status.state == "running" and status.halted is None


@pytest.mark.integration
def test_an_agent_that_keeps_failing_says_so_and_recovers(tmp_path: Path) -> None:
    """The folder is replaced by a regular file: every copy from the export fails. After a
    few retries the agent is failing (with the error), /readyz says so; once the folder is a
    directory again, the retries succeed and it recovers."""
    root = tmp_path / "sim"
    with start_topology(root, config=ONE) as topo:
        nas = topo.server("nas-h")
        shutil.rmtree(nas.folder)
        nas.folder.write_text("not a directory")
        with NfsClient(nas.host, nas.port) as client:
            export = client.mnt(nas.export)
            for name in ("a.txt", "b.txt"):
                client.write_file(export, name, name.encode())
        poll_until(lambda: not_ready_because(topo, "nas-h", "failing since", "2 paths keep "
                                             "failing", "File exists"), 60,
                   what="/readyz naming the failing agent")  # fmt: skip
        poll_until(lambda: "keep failing" in filesim_status(root), 30, what="status: failing")
        assert topo.recent_events("sync.failing", "nas-h")
        status = topo.status().server("nas-h").sync_status
        assert status is not None and status.failing_paths == 2 and status.last_error, status
        nas.folder.unlink()
        nas.folder.mkdir()
        poll_until(lambda: readyz(topo)[0] == 200, 90, what="ready again after the recovery")
        assert (nas.folder / "a.txt").read_bytes() == b"a.txt"
        assert topo.recent_events("sync.recovered", "nas-h")
