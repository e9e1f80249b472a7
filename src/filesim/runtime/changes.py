"""What a client changed over NFS, handed to the server's sync agent and written as an event.

A large write is hundreds of WRITE calls: each reaches the agent (it waits for the file to
settle), but the event log gets at most one `nfs.write` per file and second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from filesim.events import Event
from filesim.logs import RateLimited

if TYPE_CHECKING:
    from filesim.sync.agent import SyncAgent

log = logging.getLogger(__name__)
_limited = RateLimited(log)  # called once per NFS change

WRITE_EVENT_INTERVAL = 1.0
"""At most one nfs.write event per file and second."""

MAX_WRITE_EVENT_PATHS = 10_000
"""Files remembered for that (ones written and never committed are forgotten past this)."""


class ChangeRelay:
    """The change listener of one server: `relay(kind, path, dest)`."""

    def __init__(self, server: str, store: Path, emit: Callable[[Event], None]) -> None:
        self._server, self._store, self._emit = server, store, emit
        self.agent: SyncAgent | None = None
        """The server's sync agent, once it runs."""
        self._last_write_event: dict[str, float] = {}

    def each(self, changes: list[tuple[str, str, str | None]]) -> None:
        """A batch of changes, in order (what a worker process sends)."""
        for kind, path, dest in changes:
            self(kind, path, dest)

    def __call__(self, kind: str, path: str, dest: str | None) -> None:
        agent = self.agent
        if agent is not None:
            try:
                agent.notify_export_change(path, kind, dest)
            except Exception:  # the client's change is done: a sync hiccup must not fail it
                _limited.error(
                    f"refused {self._server}", "%s: sync agent refused a %s of %s",
                    self._server, kind, path, exc_info=True,
                )  # fmt: skip
        if not self._worth_an_event(kind, path):
            return
        detail = {"dest": dest} if dest else {}
        name = "nfs.write-complete" if kind == "commit" else f"nfs.{kind}"
        size = self._size(path) if kind in ("write", "commit") else None
        self._emit(Event(name, self._server, "nfs", path, size, detail))

    def _worth_an_event(self, kind: str, path: str) -> bool:
        last = self._last_write_event
        if kind == "write":
            now = time.monotonic()
            if now - last.get(path, 0.0) < WRITE_EVENT_INTERVAL:
                return False
            if len(last) > MAX_WRITE_EVENT_PATHS:
                last.clear()
            last[path] = now
        elif kind in ("commit", "remove", "rename"):
            last.pop(path, None)
        return True

    def _size(self, path: str) -> int | None:
        """The size of `path` in the export store now (events of a write say how big it is)."""
        try:
            return (self._store / path).stat().st_size
        except OSError:
            return None
