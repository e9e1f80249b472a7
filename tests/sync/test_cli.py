"""`filesim sync NAME [--once]` and `filesim sync resume NAME` as a user runs them."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from filesim.waiting import poll_until
from tests.support.sync import ready_count

from .conftest import files, write

pytestmark = pytest.mark.integration

TOPOLOGY = """
servers:
  - {name: nas-a, role: input, fsid: 1, sync: {settle_ms: 0}}
  - {name: nas-direct, role: output, fsid: 2, storage: direct}
"""


@pytest.fixture
def env(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "t.yaml"
    config.write_text(TOPOLOGY)
    return tmp_path / "root", config


def filesim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "filesim", *args], capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_once_syncs_and_exits(env: tuple[Path, Path]) -> None:
    root, config = env
    write(root / "nas-a", "hello.txt", "hi")
    write(root / "nas-a", "more.txt", "more")
    done = filesim("sync", "nas-a", "--once", "--root", str(root), "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert files(root / ".filesim/exports/nas-a") == {"hello.txt": b"hi", "more.txt": b"more"}
    # stdout says what happened, one line each (what `kubectl logs -c ...` shows).
    lines = done.stdout.splitlines()
    assert lines[0] == "filesim sync nas-a (input), direction both, one pass, then exit"
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] nas-a: rescan in \d+ ms: 2 files to export", lines[1])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sync", "nope"], "no server named 'nope'"),
        (["sync", "nas-direct"], "nothing to sync"),
        (["sync", "resume"], "filesim sync resume NAME"),
        (["sync", "resume", "nas-a"], "never synced here"),
        (["sync", "nas-a", "extra"], "unexpected argument"),
    ],
)
def test_errors_are_one_actionable_line(
    env: tuple[Path, Path], args: list[str], message: str
) -> None:
    root, config = env
    done = filesim(*args, "--root", str(root), "--config", str(config))
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr


def test_once_exits_3_when_halted(env: tuple[Path, Path]) -> None:
    root, config = env
    args = ("sync", "nas-a", "--once", "--root", str(root), "--config", str(config))
    for i in range(3):
        write(root / "nas-a", f"f{i}", "x")
    assert filesim(*args).returncode == 0
    for i in range(3):
        (root / "nas-a" / f"f{i}").unlink()
    halted = filesim(*args)
    assert halted.returncode == 3 and "filesim sync resume nas-a" in halted.stderr
    assert len(files(root / ".filesim/exports/nas-a")) == 3
    resumed = filesim("sync", "resume", "nas-a", "--root", str(root), "--config", str(config))
    assert resumed.returncode == 0 and "resume requested" in resumed.stdout
    assert filesim(*args).returncode == 0
    assert files(root / ".filesim/exports/nas-a") == {}


def test_sidecar_watches_the_store_and_stops_on_sigterm(env: tuple[Path, Path]) -> None:
    root, config = env
    store = root / ".filesim/exports/nas-a"
    proc = subprocess.Popen(
        [sys.executable, "-m", "filesim", "sync", "nas-a", "--root", str(root), "--config",
         str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # Once ready, the initial sync is over: only the store watcher can bring what follows.
        poll_until(lambda: ready_count(root, "nas-a") or proc.poll() is not None, 30,
                   what="the sidecar to be ready")  # fmt: skip
        assert proc.poll() is None, proc.communicate()[1]
        write(store, "written-by-the-nfs-container.txt", "no notification here")
        target = root / "nas-a/written-by-the-nfs-container.txt"
        poll_until(target.exists, 20, what="the store watcher to pick the file up")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "actions" in out
    assert ready_count(root, "nas-a") == 1


def test_log_lines_of_batches_errors_and_halts() -> None:
    from filesim.cli.sync_cmds import log_line
    from filesim.events import Event

    at = time.mktime((2026, 1, 2, 3, 4, 5, 0, 0, -1))
    batch = {"full": False, "ms": 41, "actions": {"sync.copy:folder": 3, "sync.delete:folder": 1}}
    lines = [
        log_line(Event("sync.batch", "nas-output-1", detail=batch, time=at)),
        log_line(Event("sync.batch", "nas-output-1", detail={"full": True, "ms": 230}, time=at)),
        log_line(Event("sync.error", "nas-output-1", detail={"error": "disk full"}, time=at)),
        log_line(Event("sync.halt", "nas-output-1", detail={"reason": "too many"}, time=at)),
        log_line(Event("sync.copy", "nas-output-1", "folder", "a.txt", time=at)),
    ]
    assert lines == [
        "[03:04:05] nas-output-1: 3 files to folder, 1 deletion in folder in 41 ms",
        "[03:04:05] nas-output-1: rescan in 230 ms: no changes",
        "[03:04:05] nas-output-1: error: disk full",
        "[03:04:05] nas-output-1: HALTED: too many",
        None,
    ]
