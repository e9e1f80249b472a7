"""`filesim up --detach` and `filesim down`: a topology in a background process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from filesim.runtime.runner import StartupError, ensure_not_running
from filesim.runtime.state import pid_alive, read_runtime
from filesim.topology import Layout

START_TIMEOUT = 30.0


def start_detached(layout: Layout, up_args: list[str]) -> dict[str, Any]:
    """Start `filesim up UP_ARGS` in a new session; return its runtime document once it serves.

    `up_args` must not hold relative paths: the background process may outlive the caller's
    working directory."""
    ensure_not_running(layout)
    args = [sys.executable, "-m", "filesim", *up_args]
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    with open(layout.log_file, "ab") as log:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        runtime = read_runtime(layout)
        if runtime is not None and runtime.get("pid") == proc.pid:
            return runtime
        if proc.poll() is not None:
            raise StartupError(_failure(layout, proc.returncode))
        time.sleep(0.05)
    proc.terminate()
    raise StartupError(
        f"the topology did not start within {START_TIMEOUT:.0f} s; see {layout.log_file}"
    )


def _failure(layout: Layout, code: int) -> str:
    try:
        lines = layout.log_file.read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    errors = [line for line in lines if line.startswith("error:")]
    last = (errors or lines or ["(no output)"])[-1].removeprefix("error: ")
    return f"the topology failed to start (exit {code}): {last}"


def stop(pid: int, timeout: float) -> bool:
    """SIGTERM `pid`, then SIGKILL after `timeout`; True when it had to be killed."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid) or _zombie(pid):
            return False
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return True


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False
