"""Every failure of the `filesim` command is one line on stderr, never a traceback (unless
FILESIM_DEBUG=1 asks for one)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from filesim.cli import describe_error
from filesim.errors import FilesimError
from tests.support.topology import FILESIM


def run(*args: str, debug: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FILESIM_DEBUG"}
    if debug:
        env["FILESIM_DEBUG"] = "1"
    return subprocess.run([*FILESIM, *args], capture_output=True, text=True, timeout=60, env=env)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_sync_in_an_unusable_root_names_the_path() -> None:
    line = one_error_line(run("sync", "nas-input-1", "--once", "--root", "/proc"))
    assert line.startswith("error: /proc/") and line.endswith(": No such file or directory")


def test_serve_with_an_unusable_state_dir_names_the_path(tmp_path: Path) -> None:
    line = one_error_line(
        run(
            "serve",
            "nas-input-1",
            "--root",
            str(tmp_path),
            "--state-dir",
            "/proc/self/nope",
            "--port",
            "0",
        )
    )
    assert line == "error: /proc/self/nope: No such file or directory"


def test_filesim_debug_shows_the_traceback() -> None:
    proc = run("sync", "nas-input-1", "--once", "--root", "/proc", debug=True)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "FileNotFoundError" in proc.stderr


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (FilesimError("no topology is running"), "no topology is running"),
        (PermissionError(13, "Permission denied", "/srv/x"), "/srv/x: Permission denied"),
        (
            OSError(18, "Invalid cross-device link", "/a", None, "/b"),
            "/a -> /b: Invalid cross-device link",
        ),
        (ConnectionResetError(104, "Connection reset by peer"), "Connection reset by peer"),
        (
            KeyError("servers"),
            "unexpected error: KeyError: 'servers' (run with FILESIM_DEBUG=1 for the traceback)",
        ),
        (
            RuntimeError(),
            "unexpected error: RuntimeError (run with FILESIM_DEBUG=1 for the traceback)",
        ),
    ],
)
def test_each_kind_of_error_is_described_in_one_line(error: Exception, line: str) -> None:
    assert describe_error(error) == line
