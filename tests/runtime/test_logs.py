"""Logs without a limit (issue 10, item 6): repeated warnings are rate-limited, and the log file
of a background `filesim up` is rotated like events.jsonl."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from filesim.logs import LOG_FILE_ENV, RateLimited

_CHILD = """
import logging, sys
from filesim.logs import log_handler
handler = log_handler()
handler._max_bytes = 10_000
logging.basicConfig(level=logging.INFO, handlers=[handler])
for i in range(1000):
    print("stdout line", i, flush=True)
    logging.getLogger("x").warning("warning line %d %s", i, "." * 40)
"""


def test_rate_limited_warnings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    limited = RateLimited(logging.getLogger("t"), period=3600, burst=3)
    logged = [limited.warning("k", "same problem %d", i) for i in range(1000)]
    assert logged.count(True) == 3
    assert len(caplog.records) == 3
    assert limited.warning("other", "another problem")  # keys are limited separately


def test_suppressed_count_is_told_in_the_next_window(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    limited = RateLimited(logging.getLogger("t"), period=0.0, burst=1)
    limited._period = 3600
    limited.warning("k", "first")
    limited.warning("k", "second")
    limited.warning("k", "third")
    limited._period = 0.0  # the window is over
    limited.warning("k", "fourth")
    assert caplog.messages == ["first", "fourth (2 similar messages suppressed)"]


def test_the_log_file_of_a_background_process_is_rotated(tmp_path: Path) -> None:
    log = tmp_path / "filesim.log"
    env = {**os.environ, LOG_FILE_ENV: str(log)}
    with open(log, "ab") as out:
        subprocess.run(
            [sys.executable, "-c", _CHILD], stdout=out, stderr=out, env=env, check=True, timeout=60
        )
    rotated = tmp_path / "filesim.log.1"
    assert rotated.exists()
    assert log.stat().st_size < 20_000 and rotated.stat().st_size < 20_000
    text = log.read_text()
    assert "warning line 999" in text and "stdout line 999" in text  # both moved over
