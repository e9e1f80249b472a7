"""`filesim sync NAME [--once]` and `filesim sync resume NAME` as a user runs them."""

from __future__ import annotations

import signal
import subprocess
import sys
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
    done = filesim("sync", "nas-a", "--once", "--root", str(root), "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert files(root / ".filesim/exports/nas-a") == {"hello.txt": b"hi"}


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
