"""`processes: auto`: worker processes where the machine has the cores for them; which
servers each worker serves."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from filesim.runtime.worker import WORKER_CORES, process_mode, usable_cores, worker_groups
from filesim.topology.model import ProcessMode

AUTO, ONE = ProcessMode.AUTO, ProcessMode.ONE
PER_SERVER, PER_CORE = ProcessMode.PER_SERVER, ProcessMode.PER_CORE


@pytest.mark.parametrize(
    ("servers", "cores", "mode"),
    [
        (7, WORKER_CORES, PER_CORE),
        (2, 64, PER_CORE),
        (7, WORKER_CORES - 1, ONE),  # one core: nothing to share the work with
        (1, 64, ONE),  # one server gains nothing from a worker
    ],
)
def test_auto_decides_by_servers_and_cores(servers: int, cores: int, mode: ProcessMode) -> None:
    assert process_mode(AUTO, servers, cores) is mode


@pytest.mark.parametrize("mode", [ONE, PER_SERVER, PER_CORE])
def test_a_mode_given_is_kept_whatever_the_machine(mode: ProcessMode) -> None:
    assert process_mode(mode, 7, 1) is mode and process_mode(mode, 1, 64) is mode


@pytest.mark.parametrize(
    ("mode", "servers", "cores", "groups"),
    [
        (PER_SERVER, 3, 1, [[0], [1], [2]]),  # a worker each, whatever the cores
        (PER_CORE, 7, 2, [[0, 2, 4, 6], [1, 3, 5]]),  # in turn, neighbours apart
        (PER_CORE, 7, 3, [[0, 3, 6], [1, 4], [2, 5]]),
        (PER_CORE, 2, 64, [[0], [1]]),  # never a worker without a server
        (PER_CORE, 3, 1, [[0, 1, 2]]),
    ],
)
def test_each_server_is_in_exactly_one_worker(
    mode: ProcessMode, servers: int, cores: int, groups: list[list[int]]
) -> None:
    assert worker_groups(mode, servers, cores) == groups


def test_one_process_has_no_workers() -> None:
    with pytest.raises(ValueError, match="no worker processes in mode 'one'"):
        worker_groups(ONE, 7, 2)


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
