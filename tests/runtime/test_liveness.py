"""A topology is running while its process holds the runtime lock: not judged by a pid (which
the OS reuses, and which `os.kill(pid, 0)` cannot probe on Windows)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from filesim.errors import FilesimError
from filesim.runtime.state import hold_liveness, running
from filesim.sync.lock import unlock
from filesim.topology import Layout
from filesim.waiting import poll_until

HOLDER = """
import sys, time
from pathlib import Path
from filesim.runtime.state import hold_liveness
from filesim.topology import Layout
hold_liveness(Layout(Path(sys.argv[1])))
print("held", flush=True)
time.sleep(120)
"""


def test_the_lock_holder_is_running_until_it_is_killed(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    assert not running(layout)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        assert running(layout)
        with pytest.raises(FilesimError, match="already running"):
            hold_liveness(layout)
    finally:
        proc.kill()  # SIGKILL; TerminateProcess on Windows
        proc.wait(10)
    poll_until(lambda: not running(layout), 10, what="the lock to go with the process")


def test_a_lock_released_in_process_is_not_running(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    fd = hold_liveness(layout)
    assert running(layout)  # seen from another open of the file, as `status` would
    unlock(fd)
    assert not running(layout) and layout.runtime_lock.exists()
