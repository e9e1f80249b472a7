"""`filesim up --detach` and `filesim down`: a topology in a background process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from filesim.logs import LOG_FILE_ENV
from filesim.runtime.model import RuntimeDoc
from filesim.runtime.runner import StartupError, ensure_not_running
from filesim.runtime.state import pid_alive, read_runtime
from filesim.topology import Layout
from filesim.waiting import WaitTimeout, poll_until

START_TIMEOUT = 30.0


def start_detached(layout: Layout, up_args: list[str]) -> RuntimeDoc:
    """Start `filesim up UP_ARGS` in a new session; return its runtime document once it serves.

    `up_args` must not hold relative paths: the background process may outlive the caller's
    working directory."""
    ensure_not_running(layout)
    args = [sys.executable, "-m", "filesim", *up_args]
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, LOG_FILE_ENV: str(layout.log_file)}  # rotated by the process itself
    with open(layout.log_file, "ab") as log:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            env=env,
        )  # fmt: skip

    def started() -> RuntimeDoc | None:
        runtime = read_runtime(layout)
        if runtime is not None and runtime.pid == proc.pid:
            return runtime
        if proc.poll() is not None:
            raise StartupError(_failure(layout, proc.returncode))
        return None

    try:
        return poll_until(started, START_TIMEOUT, what="the topology to start")
    except WaitTimeout:
        proc.terminate()
        raise StartupError(
            f"the topology did not start within {START_TIMEOUT:.0f} s; see {layout.log_file}"
        ) from None


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
    try:
        poll_until(lambda: not pid_alive(pid) or _zombie(pid), timeout, what=f"pid {pid} to end")
    except WaitTimeout:
        os.kill(pid, signal.SIGKILL)
        return True
    return False


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False
