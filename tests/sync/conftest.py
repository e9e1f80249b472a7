"""Helpers for sync tests: servers with a given policy, trees on real temp dirs, barriers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from filesim.errors import FilesimError
from filesim.events import Event
from filesim.sync.agent import SyncAgent
from filesim.sync.backend import fd_usable
from filesim.topology.layout import is_temp_name
from filesim.topology.model import Server, SyncPolicy
from filesim.waiting import apoll_until
from tests.support.files import write_whole

READY_TIMEOUT = 60.0

TREE_BACKENDS = ["fd", "path"] if fd_usable() else ["path"]
"""The tree backends this platform has (tests/support/winsurface has no directory fds)."""


def make_server(name: str = "nas-test", role: str = "input", **policy: Any) -> Server:
    return Server(name=name, role=role, fsid=1, sync=SyncPolicy(**policy))


def write(root: Path, rel: str, data: bytes | str, mtime: float | None = None) -> Path:
    """`root/rel` written whole, in one rename (see tests.support.files)."""
    return write_whole(root, rel, data, mtime)


def files(root: Path) -> dict[str, bytes]:
    """Every regular file under root (temp files included: they must not be there)."""
    out = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = Path(dirpath, name)
            if full.is_file() and not full.is_symlink():
                out[full.relative_to(root).as_posix()] = full.read_bytes()
    return out


def temps(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if is_temp_name(p.name)]


class Rig:
    """A folder, an export store and an archive under tmp_path, and agents on them."""

    def __init__(self, tmp_path: Path) -> None:
        self.folder = tmp_path / "folder"
        self.store = tmp_path / "store"
        self.db = tmp_path / "state" / "archive.db"
        self.folder.mkdir()
        self.store.mkdir()
        self.events: list[Event] = []
        self.agents: list[SyncAgent] = []

    def agent(self, server: Server | None = None, **kwargs: Any) -> SyncAgent:
        agent = SyncAgent(
            server or make_server(settle_ms=0),
            self.folder,
            self.store,
            self.db,
            self.events.append,
            **kwargs,
        )
        self.agents.append(agent)
        return agent

    def kinds(self, prefix: str = "sync.") -> list[str]:
        return [e.kind for e in self.events if e.kind.startswith(prefix)]

    def close(self) -> None:
        for agent in self.agents:
            agent.close()
        self.agents.clear()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.close()


async def running(agent: SyncAgent) -> asyncio.Task[None]:
    """Start agent.run() and wait until it is ready (initial sync over, watchers live)."""
    task = asyncio.create_task(agent.run())
    try:
        await agent.wait_ready(READY_TIMEOUT)
    except FilesimError:
        if task.done():
            task.result()  # the run's own error says more
        raise
    return task


_markers = itertools.count()


async def settled(agent: SyncAgent, folder: Path, store: Path, timeout: float = 30) -> None:
    """A barrier for the folder watcher as well as for the agent: write a marker file into the
    folder and wait until it is in the store, then flush. The watcher reports events in order,
    so every event of an earlier change (an echo of a copy included) reached the agent before
    the marker's did; flush() then waits for whatever they made due. Needs a policy under which
    folder changes flow to the export."""
    name = f"zz-barrier-{next(_markers)}"
    write(folder, name, name)
    await apoll_until(lambda: (store / name).exists(), timeout, interval=0.01, what=f"{name}")
    await agent.flush(timeout)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
