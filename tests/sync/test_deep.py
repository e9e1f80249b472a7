"""Trees deeper than PATH_MAX (issue 10 item 3): they sync like any other, and cost nothing once
synced — no error of any kind makes the agent spin."""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from filesim.nfsclient.client import NfsClient
from filesim.testing import start_topology
from filesim.waiting import WaitTimeout, poll_until

from .conftest import Rig

LEVELS = 22
NAMES = [f"d{i:02d}" + "x" * 197 for i in range(LEVELS)]  # 22 x 200 characters: > PATH_MAX
WINDOW_S = 20.0


def open_deep(root: Path, parts: list[str]) -> int:
    """A descriptor of root/parts..., walked one component at a time (no full path exists
    for the kernel: it is longer than PATH_MAX)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for part in parts:
        nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    return fd


def read_deep(root: Path, parts: list[str], name: str) -> bytes | None:
    try:
        fd = open_deep(root, parts)
    except FileNotFoundError:
        return None
    try:
        f = os.open(name, os.O_RDONLY, dir_fd=fd)
    except FileNotFoundError:
        return None
    finally:
        os.close(fd)
    try:
        return os.read(f, 100)
    finally:
        os.close(f)


async def test_a_folder_tree_deeper_than_path_max_syncs(rig: Rig) -> None:
    fd = os.open(rig.folder, os.O_RDONLY | os.O_DIRECTORY)
    for name in NAMES:
        os.mkdir(name, dir_fd=fd)
        nxt = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    f = os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(f, b"deep")
    os.close(f)
    os.close(fd)
    agent = rig.agent()
    await agent.run_once()
    assert read_deep(rig.store, NAMES, "bottom.txt") == b"deep"
    assert agent.status().errors == 0


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0
        self.bytes = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.bytes += len(record.getMessage())


@contextmanager
def counting_log_lines() -> Iterator[_Lines]:
    """The lines the sync agents log (in this process), from INFO up."""
    handler = _Lines()
    logger = logging.getLogger("filesim.sync")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


ONE = """
servers:
  - {name: nas-deep, role: input, fsid: 1}
"""


@pytest.mark.integration
def test_a_tree_deeper_than_path_max_made_over_nfs_costs_nothing(tmp_path: Path) -> None:
    """22 nested 200-character directories and a file, made over NFS (the server walks with
    openat and accepts them): synced to the folder within the window, and over ~20 s the agent
    runs a bounded number of cycles and logs a bounded number of lines — the report saw
    540-1,270 cycles/s and megabytes of log per second. Deleting the tree syncs too."""
    with start_topology(tmp_path / "sim", config=ONE) as topo, counting_log_lines() as lines:
        nas = topo.server("nas-deep")
        topo.flush()
        cycles_before = _cycles(topo)
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        start = time.monotonic()
        with NfsClient(nas.host, nas.port) as client:
            handles = [client.mnt(nas.export)]
            for name in NAMES:
                handles.append(client.mkdir(handles[-1], name))
            client.write_file(handles[-1], "bottom.txt", b"deep")
        try:
            poll_until(lambda: read_deep(nas.folder, NAMES, "bottom.txt") == b"deep", WINDOW_S)
            arrived = True
        except WaitTimeout:
            arrived = False
        time.sleep(max(0.0, WINDOW_S - (time.monotonic() - start)))  # the measuring window
        used = resource.getrusage(resource.RUSAGE_SELF)
        cycles = _cycles(topo) - cycles_before
        cpu_s = used.ru_utime - cpu.ru_utime + used.ru_stime - cpu.ru_stime
        print(f"deep tree, {WINDOW_S:.0f} s: {cycles} cycles, {lines.count} log lines "
              f"({lines.bytes} bytes), {cpu_s:.2f} s CPU in this process")  # fmt: skip
        assert lines.count <= 20, f"{lines.count} log lines in {WINDOW_S:.0f} s"
        assert cycles <= 100, f"{cycles} sync cycles in {WINDOW_S:.0f} s"
        assert arrived, "the deep file did not reach the folder"
        with NfsClient(nas.host, nas.port) as client:  # deleting the tree, deepest first
            client.remove(handles[-1], "bottom.txt")
            for parent, name in reversed(list(zip(handles, NAMES, strict=False))):
                client.rmdir(parent, name)
        topo.flush()
        assert not (nas.folder / NAMES[0]).exists()
        sync = topo.status().server("nas-deep").sync_status
        assert sync is not None and sync.state == "running" and sync.errors == 0, sync


def _cycles(topo: object) -> int:
    """Cycles run so far by the agent of nas-deep (0 where the status has no such count)."""
    sync = topo.status().server("nas-deep").sync_status  # type: ignore[attr-defined]
    return int(getattr(sync, "cycles", 0))
