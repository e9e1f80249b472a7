"""Barriers for a sync agent running in another process (`filesim up --detach`, `filesim sync`),
through what it shows from outside: the events it logs and the files it copies."""

from __future__ import annotations

import itertools
import json
import os
from functools import partial
from pathlib import Path
from typing import Any

from filesim.waiting import poll_until
from tests.support.files import write_whole

TIMEOUT = 30.0

_markers = itertools.count()


def sync_events(root: Path, server: str) -> list[dict[str, Any]]:
    """The sync.* events of `server` logged under the filesim root `root`."""
    try:
        lines = (root / ".filesim" / "events.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return []
    events = [json.loads(line) for line in lines if line.strip()]
    return [e for e in events if e.get("server") == server and e["kind"].startswith("sync.")]


def ready_count(root: Path, server: str) -> int:
    """How often the agent of `server` became ready (its initial sync was over): once per
    start."""
    return sum(e["kind"] == "sync.ready" for e in sync_events(root, server))


def wait_ready(root: Path, server: str, starts: int = 1, timeout: float = TIMEOUT) -> None:
    """Until the agent of `server` has become ready for the `starts`-th time."""
    poll_until(lambda: ready_count(root, server) >= starts, timeout,
               what=f"the sync agent of {server} to be ready")  # fmt: skip


def barrier(root: Path, server: str, folder: Path, timeout: float = TIMEOUT) -> None:
    """Return once the agent has looked at every change made in `folder` before the call, and
    logged what it did about them. For a policy under which folder changes reach the export.

    A marker file is written into the folder and its copy awaited in the event log. The folder
    watcher reports events in order, so earlier changes (the echoes of the agent's own copies
    included) reached the agent first and were due no later than the marker. Twice: a cycle
    logs its events one by one, and the second marker is only looked at once the first one's
    cycle has logged all of them."""
    for _ in range(2):
        name = f"zz-barrier-{os.getpid()}-{next(_markers)}"
        write_whole(folder, name, name)
        poll_until(partial(_copied, root, server, name), timeout, what=f"the marker {name} to sync")


def _copied(root: Path, server: str, path: str) -> bool:
    return any(
        e["kind"] == "sync.copy" and e.get("path") == path for e in sync_events(root, server)
    )
