"""Helpers for sync tests: servers with a given policy, trees on real temp dirs, polling."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from filesim.events import Event
from filesim.sync.agent import SyncAgent
from filesim.topology.layout import is_temp_name
from filesim.topology.model import Server, SyncPolicy


def make_server(name: str = "nas-test", role: str = "input", **policy: Any) -> Server:
    return Server(name=name, role=role, fsid=1, sync=SyncPolicy(**policy))  # type: ignore[arg-type]


def write(root: Path, rel: str, data: bytes | str, mtime: float | None = None) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


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


async def wait_until(pred: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or pred}")
        await asyncio.sleep(0.01)


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
    """Start agent.run() and wait until its watcher is live."""
    task = asyncio.create_task(agent.run())
    await wait_until(lambda: bool(agent._watchers) or task.done(), 10, "the agent to start")
    if task.done():
        task.result()
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
