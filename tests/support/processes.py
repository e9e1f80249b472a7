"""Processes a test started, seen from /proc: whether one still runs, and which ones carry a
marker in their environment (every descendant inherits it, whoever its parent is by then)."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

MARKER = "FILESIM_TEST_MARKER"


@dataclass(frozen=True)
class Proc:
    """One process, by pid and start time (a pid alone may be reused by another process)."""

    pid: int
    started: int

    @classmethod
    def of(cls, pid: int) -> Proc:
        state = _stat(pid)
        if state is None:
            raise AssertionError(f"process {pid} does not exist")
        return cls(pid, state[1])

    def running(self) -> bool:
        """It exists and has not ended: a zombie (ended, not yet reaped) does not run."""
        state = _stat(self.pid)
        return state is not None and state[1] == self.started and state[0] != "Z"

    def parent(self) -> int | None:
        state = _stat(self.pid)
        return None if state is None or state[1] != self.started else state[2]

    def reaped(self) -> bool:
        """Gone from the process table (its parent waited for it, or the parent is gone)."""
        state = _stat(self.pid)
        return state is None or state[1] != self.started


def pid_running(pid: int) -> bool:
    """Some process runs as `pid` (not a zombie); for a pid never captured with `Proc.of`."""
    state = _stat(pid)
    return state is not None and state[0] != "Z"


def new_marker() -> str:
    return uuid.uuid4().hex


def marked(marker: str) -> list[int]:
    """The running processes (zombies aside) whose environment holds MARKER=marker."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or another user's
            continue
        state = _stat(int(entry.name))
        if needle in environ.split(b"\0") and state is not None and state[0] != "Z":
            found.append(int(entry.name))
    return found


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state letter, start time in clock ticks, parent pid) of `pid`, or None when there is
    none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[19]), int(fields[1])
