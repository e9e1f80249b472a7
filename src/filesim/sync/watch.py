"""Folder watchers: OS events (watchdog) or polling, both reduced to "look at this path again".

A watcher calls `on_change(path)` from its own thread with a root-relative POSIX path, or
`on_change(None)` when it lost track (inotify queue overflow, a polling error): then the whole
tree must be rescanned. Paths of temp files are never reported.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from watchdog.events import (
    DirModifiedEvent,
    FileClosedNoWriteEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from filesim.sync.scan import scan
from filesim.sync.state import Entry
from filesim.topology.layout import is_temp_name

OnChange = Callable[[str | None], None]


class Watcher(Protocol):
    def start(self, on_change: OnChange) -> None: ...

    def stop(self) -> None: ...

    def healthy(self) -> bool:
        """False when the watcher can no longer see changes (its root was replaced)."""
        ...


def _root_id(root: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(root)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def relative(root: str, path: str | bytes) -> str | None:
    """`path` relative to `root` as 'a/b', or None for the root itself, outside it, or temp."""
    text = os.fsdecode(path)
    rel = os.path.relpath(text, root)
    if rel == "." or rel.startswith(".."):
        return None
    parts = rel.split(os.sep)
    if any(is_temp_name(p) for p in parts):
        return None
    return "/".join(parts)


# Events that say nothing about content: opening or reading a file, a directory's own mtime
# changing because an entry in it changed (that entry has its own event).
_IGNORED = (FileOpenedEvent, FileClosedNoWriteEvent, DirModifiedEvent)


class _Handler(FileSystemEventHandler):
    def __init__(self, root: str, on_change: OnChange) -> None:
        self.root, self.on_change = root, on_change

    def on_any_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, _IGNORED):
            return
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path and (rel := relative(self.root, path)) is not None:
                self.on_change(rel)


class _OverflowListener(logging.Handler):
    """watchdog recovers from an inotify overflow by itself but tells nobody except its log;
    this turns that log line into a full rescan of every live watcher."""

    watchers: weakref.WeakSet[EventWatcher] = weakref.WeakSet()

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            for watcher in list(self.watchers):
                watcher.overflowed()


_listener = _OverflowListener(logging.WARNING)
for _name in ("watchdog.observers.inotify_c", "watchdog.observers.inotify"):
    logging.getLogger(_name).addHandler(_listener)


class EventWatcher:
    """OS file events through watchdog (inotify, FSEvents, ReadDirectoryChangesW)."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self._observer: BaseObserver | None = None
        self._on_change: OnChange | None = None
        self._root_id: tuple[int, int] | None = None

    def start(self, on_change: OnChange) -> None:
        self._on_change = on_change
        observer = Observer()
        observer.schedule(_Handler(self.root, on_change), self.root, recursive=True)
        observer.daemon = True
        self._root_id = _root_id(Path(self.root))
        observer.start()
        self._observer = observer
        _OverflowListener.watchers.add(self)

    def healthy(self) -> bool:
        alive = self._observer is not None and self._observer.is_alive()
        return alive and _root_id(Path(self.root)) == self._root_id

    def overflowed(self) -> None:
        if self._on_change is not None:
            self._on_change(None)

    def stop(self) -> None:
        _OverflowListener.watchers.discard(self)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None


class PollingWatcher:
    """Rescans the tree every `interval` seconds and reports what differs: for network
    folders (9p, CIFS, NFS) where OS events never arrive."""

    def __init__(self, root: Path, interval: float = 1.0) -> None:
        self.root, self.interval = root, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, on_change: OnChange) -> None:
        self._stop.clear()
        before = scan(self.root)
        self._thread = threading.Thread(
            target=self._loop, args=(on_change, before), daemon=True, name="sync-poll"
        )
        self._thread.start()

    def healthy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self, on_change: OnChange, before: dict[str, Entry]) -> None:
        while not self._stop.wait(self.interval):
            try:
                now = scan(self.root)
            except OSError:
                on_change(None)
                continue
            for path in set(before) | set(now):
                if before.get(path) != now.get(path):
                    on_change(path)
            before = now

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def make_watcher(root: Path, mode: str, poll_interval: float) -> Watcher:
    """`auto` tries OS events and falls back to polling if the platform refuses them."""
    if mode == "polling":
        return PollingWatcher(root, poll_interval)
    return EventWatcher(root)
