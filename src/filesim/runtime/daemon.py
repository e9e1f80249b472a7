"""`filesim up --detach` and `filesim down`: a topology in a background process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from typing import Any

from filesim.logs import LOG_FILE_ENV
from filesim.runtime.model import RuntimeDoc
from filesim.runtime.state import StartupError, ensure_not_running, read_runtime, running
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
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, **_detached(),
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


def _detached() -> dict[str, Any]:
    """Popen options that let the process outlive its console: a new session on POSIX; on
    Windows (where start_new_session is ignored) no console and a new process group."""
    flags = getattr(subprocess, "DETACHED_PROCESS", 0) | getattr(
        subprocess, "CREATE_NEW_PROCESS_GROUP", 0
    )
    if flags:
        return {"creationflags": flags}
    return {"start_new_session": True}


def _failure(layout: Layout, code: int) -> str:
    try:
        lines = layout.log_file.read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    errors = [line for line in lines if line.startswith("error:")]
    last = (errors or lines or ["(no output)"])[-1].removeprefix("error: ")
    return f"the topology failed to start (exit {code}): {last}"


def stop(layout: Layout, runtime: RuntimeDoc, timeout: float) -> str:
    """Stop the topology of `runtime` under `layout`; how it went: "api" (it stopped when
    asked through its HTTP API, the clean way on every platform), "signal" (the API did not
    answer: SIGTERM, which on Windows is already TerminateProcess) or "killed" (it had not
    ended `timeout` seconds after either). It has ended when it no longer holds the runtime
    lock."""
    from filesim.runtime.control import API_TIMEOUT, stop_via_api  # the server's side, too

    pid = runtime.pid
    if stop_via_api(layout, runtime, min(API_TIMEOUT, timeout)):
        how = "api"
    else:
        how = "signal"
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return how
    try:
        poll_until(lambda: not running(layout), timeout, what=f"pid {pid} to end")
    except WaitTimeout:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        poll_until(lambda: not running(layout), timeout, what=f"pid {pid} to be killed")
        return "killed"
    return how
