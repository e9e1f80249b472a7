"""How many CPU cores this process may use: those it may run on (its affinity), and no more
than its control group's CPU quota allows (a container started with `--cpus 2`, a Kubernetes
CPU limit). `processes: auto` sizes the worker processes by it.

The quota is read from the cgroup files the kernel mounts (v2 `cpu.max`, v1
`cpu.cfs_quota_us` / `cpu.cfs_period_us`), along the process's cgroup path and its parents;
anything unreadable counts as no limit.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

PROC = Path("/proc/self")


def usable_cores(proc: Path = PROC) -> int:
    """CPUs this process may run on, within its cgroup's CPU quota (at least 1)."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    quota = cgroup_cpus(proc)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return cores


def cgroup_cpus(proc: Path = PROC) -> float | None:
    """The CPU quota of the process's cgroups in CPUs (2.5: 250 ms each 100 ms), the
    smallest along its path; None when there is none or it cannot be read (not Linux)."""
    try:
        groups = (proc / "cgroup").read_text().splitlines()
        mounts = (proc / "mountinfo").read_text().splitlines()
    except OSError:
        return None
    limits = [
        limit
        for directory, version in _cpu_directories(groups, mounts)
        for limit in _limits_upwards(directory, version)
    ]
    return min(limits, default=None)


def _cpu_directories(groups: list[str], mounts: list[str]) -> list[tuple[Path, int]]:
    """(the directory of the process's cgroup, cgroup version) for the cpu controller."""
    paths: dict[int, str] = {}
    for line in groups:  # "0::/path" (v2), "4:cpu,cpuacct:/path" (v1)
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and not controllers:
            paths[2] = path
        elif "cpu" in controllers.split(","):
            paths[1] = path
    found = []
    for line in mounts:  # id parent dev root mountpoint options ... - fstype source super
        fields, _, tail = line.partition(" - ")
        parts, rest = fields.split(), tail.split()
        if len(parts) < 5 or len(rest) < 3:
            continue
        root, point, fstype, options = parts[3], parts[4], rest[0], rest[2].split(",")
        version = 2 if fstype == "cgroup2" else 1 if fstype == "cgroup" and "cpu" in options else 0
        group = paths.get(version)
        if version and group is not None:
            inside = group[len(root) :] if group.startswith(root) and root != "/" else group
            found.append((Path(point) / inside.lstrip("/"), version))
    return found


def _limits_upwards(directory: Path, version: int) -> list[float]:
    """The quotas set on `directory` and every cgroup above it that is still mounted."""
    limits = []
    while True:
        limit = _limit(directory, version)
        if limit is not None:
            limits.append(limit)
        if directory.parent == directory or not (directory.parent / _marker(version)).exists():
            return limits
        directory = directory.parent


def _marker(version: int) -> str:
    return "cpu.max" if version == 2 else "cpu.cfs_quota_us"


def _limit(directory: Path, version: int) -> float | None:
    try:
        if version == 2:
            quota, period = (directory / "cpu.max").read_text().split()
        else:
            quota = (directory / "cpu.cfs_quota_us").read_text().strip()
            period = (directory / "cpu.cfs_period_us").read_text().strip()
        if quota in ("max", "-1"):
            return None
        return int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        return None
