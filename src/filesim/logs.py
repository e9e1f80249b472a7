"""Logging that cannot fill a disk: rate-limited warnings and a size-rotated log file.

A warning a client can trigger once per call (a malformed record, a refused connection, an
unexpected failure) goes through `RateLimited`, so a client repeating it costs a few lines a
minute, not a line per call. `rotate_file` is the one rotation rule, shared by the event log
(`events.jsonl`) and the process log (`filesim.log`): past its size limit a file becomes
`<name>.1` (replacing the previous one) and a new one is started.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

LOG_MAX_BYTES = 16 << 20
LOG_FILE_ENV = "FILESIM_LOG_FILE"
"""Set by `filesim up --detach` for its background process: the file its stdout and stderr
are, which that process rotates (`log_handler`)."""


def rotated_name(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".1")


def rotate_file(path: Path) -> None:
    """Move `path` to `<path>.1`, replacing an older one; the caller opens a new `path`."""
    os.replace(path, rotated_name(path))


class RateLimited:
    """At most `burst` messages per `period` seconds for each key; the count of the ones left
    out is told with the next message that gets through."""

    def __init__(self, logger: logging.Logger, period: float = 60.0, burst: int = 5) -> None:
        self._logger = logger
        self._period = period
        self._burst = burst
        self._lock = threading.Lock()
        self._windows: dict[str, list[float]] = {}  # key: [window start, logged, suppressed]

    def warning(self, key: str, msg: str, *args: Any, exc_info: bool = False) -> bool:
        return self.log(logging.WARNING, key, msg, *args, exc_info=exc_info)

    def error(self, key: str, msg: str, *args: Any, exc_info: bool = False) -> bool:
        return self.log(logging.ERROR, key, msg, *args, exc_info=exc_info)

    def log(self, level: int, key: str, msg: str, *args: Any, exc_info: bool = False) -> bool:
        """Log unless `key` used up its burst in this period; True when logged."""
        now = time.monotonic()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window[0] >= self._period:
                if len(self._windows) >= 1024:  # keys come from clients: keep them bounded
                    self._windows.clear()
                suppressed = int(window[2]) if window is not None else 0
                window = self._windows[key] = [now, 0.0, 0.0]
            else:
                suppressed = 0
            if window[1] >= self._burst:
                window[2] += 1
                return False
            window[1] += 1
        if suppressed:
            msg += f" ({suppressed} similar messages suppressed)"
        self._logger.log(level, msg, *args, exc_info=exc_info)
        return True


def log_handler() -> logging.Handler:
    """The handler of a `filesim up` process: stderr, rotated when it is the log file."""
    path = os.environ.get(LOG_FILE_ENV)
    if path:
        return RotatingStdio(Path(path))
    return logging.StreamHandler()


class RotatingStdio(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to stderr, for a process whose stdout and stderr are the log file
    `path`: past `max_bytes` the file is rotated and both descriptors moved to a new one."""

    def __init__(self, path: Path, max_bytes: int = LOG_MAX_BYTES) -> None:
        super().__init__()
        self._path = path
        self._max_bytes = max_bytes

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        try:
            if os.fstat(2).st_size > self._max_bytes:
                self._rotate()
        except OSError:
            self.handleError(record)

    def _rotate(self) -> None:
        sys.stdout.flush()
        self.flush()
        rotate_file(self._path)
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.dup2(fd, 1)
            os.dup2(fd, 2)
        finally:
            os.close(fd)
