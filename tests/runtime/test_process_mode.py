"""`processes: auto`: worker processes where the machine has the cores for them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from filesim.runtime.worker import PER_SERVER_CORES, process_mode, usable_cores
from filesim.topology.model import ProcessMode

AUTO, ONE, PER_SERVER = ProcessMode.AUTO, ProcessMode.ONE, ProcessMode.PER_SERVER


@pytest.mark.parametrize(
    ("servers", "cores", "mode"),
    [
        (7, PER_SERVER_CORES, PER_SERVER),
        (2, 64, PER_SERVER),
        (7, PER_SERVER_CORES - 1, ONE),  # one core: nothing to share the work with
        (1, 64, ONE),  # one server gains nothing from a worker
    ],
)
def test_auto_decides_by_servers_and_cores(servers: int, cores: int, mode: ProcessMode) -> None:
    assert process_mode(AUTO, servers, cores) is mode


@pytest.mark.parametrize("mode", [ONE, PER_SERVER])
def test_a_mode_given_is_kept_whatever_the_machine(mode: ProcessMode) -> None:
    assert process_mode(mode, 7, 1) is mode and process_mode(mode, 1, 64) is mode


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux: CPU affinity")
def test_the_usable_cores_are_those_the_process_may_run_on() -> None:
    # A process pinned to one CPU has one core to give its workers, whatever the machine has.
    pinned = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from filesim.runtime.worker import usable_cores; print(usable_cores())"
    )
    out = subprocess.run([sys.executable, "-c", pinned], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
    assert usable_cores() == len(os.sched_getaffinity(0))
