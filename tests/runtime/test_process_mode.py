"""`processes: auto`: worker processes where the machine has the cores for them; which
servers each worker serves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from filesim.runtime.cores import cgroup_cpus, usable_cores
from filesim.runtime.worker import WORKER_CORES, process_mode, worker_groups
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


CPU_V1 = Path("/sys/fs/cgroup/cpu")


@pytest.mark.parametrize(("quota_us", "cores"), [(100_000, 1), (150_000, 2)])
def test_a_cgroup_cpu_quota_caps_the_usable_cores(quota_us: int, cores: int) -> None:
    """A process in a cgroup with a CPU quota (a container's `--cpus`, a Kubernetes CPU limit)
    counts the quota's cores, rounded up, not the machine's: here a real cgroup (v1, as this
    kernel mounts the cpu controller) with the process moved into it."""
    if os.geteuid() != 0:
        pytest.skip("only root makes cgroups")
    if not (CPU_V1 / "cgroup.procs").exists():
        pytest.fail(f"no cgroup v1 cpu controller at {CPU_V1}: this test needs one")
    group = CPU_V1 / f"filesim-test-{os.getpid()}-{quota_us}"
    group.mkdir()
    try:
        (group / "cpu.cfs_period_us").write_text("100000")
        (group / "cpu.cfs_quota_us").write_text(str(quota_us))
        code = "from filesim.runtime.cores import usable_cores; print(usable_cores())"
        script = f'echo $$ > {group}/cgroup.procs && exec {sys.executable} -c "{code}"'
        out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == str(min(cores, len(os.sched_getaffinity(0))))
    finally:
        group.rmdir()


def test_cgroup_v2_quotas_are_read_along_the_path_and_the_smallest_counts(tmp_path: Path) -> None:
    """cgroup v2 (`cpu.max`), as a container or a Kubernetes pod sees it, its mount and its
    path given the way the kernel lists them: the pod's 1.5 CPUs bind the container's 2.5."""
    mount = tmp_path / "cgroup"
    pod = mount / "kubepods" / "pod1"
    (pod / "ctr").mkdir(parents=True)
    (mount / "kubepods" / "cpu.max").write_text("max 100000\n")
    (pod / "cpu.max").write_text("150000 100000\n")
    (pod / "ctr" / "cpu.max").write_text("250000 100000\n")
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text("0::/kubepods/pod1/ctr\n")
    (proc / "mountinfo").write_text(
        f"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
        f"30 25 0:26 / {mount} rw,nosuid,nodev shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
    )
    assert cgroup_cpus(proc) == 1.5
    assert usable_cores(proc) == min(2, len(os.sched_getaffinity(0)))
    (pod / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpus(proc) == 2.5
    (pod / "ctr" / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpus(proc) is None  # no quota anywhere: the affinity alone counts
    assert usable_cores(proc) == len(os.sched_getaffinity(0))


def test_unreadable_cgroup_files_count_as_no_limit(tmp_path: Path) -> None:
    assert cgroup_cpus(tmp_path / "no-such-proc") is None  # not Linux, or /proc hidden
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text("1:cpu,cpuacct:/gone\n")
    (proc / "mountinfo").write_text(f"30 25 0:26 / {tmp_path}/cpu rw - cgroup cgroup rw,cpu\n")
    assert cgroup_cpus(proc) is None
