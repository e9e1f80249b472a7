"""Folder watchers: OS events (watchdog) or polling, both reduced to "look at this path again".

A watcher calls `on_change(path, kind)` from its own thread with a root-relative POSIX path, or
`on_change(None, kind)` when it lost track: then the whole tree must be rescanned. `kind` is
`LOST` when the OS dropped events (an inotify queue overflow on Linux, a ReadDirectoryChangesW
buffer overflow on Windows, both reported by watchdog as an EventsLostEvent; an FSEvents batch
flagged MustScanSubDirs, UserDropped or KernelDropped on macOS, which watchdog passes over and
`_fsevents_observer` turns into the same event), "" otherwise (a polling error).

Paths of temp files are never reported. `kind` says what the schedule needs to know to never
publish a file that is still being written:

- "write": the file's data changed and its writer may not be done (created, modified);
- "close": its writer closed it after writing (inotify's close-write, Linux only);
- "attrib": its mode or times changed (says nothing about the writer);
- "": a change that is whole (moved in or out, deleted, a directory).

Where no close events exist (polling, FSEvents, Windows), every data change is a "write": the
file moves once it has been quiet for the stall time.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from watchdog.events import (
    DirAttribEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    EventsLostEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from filesim.errors import FilesimError
from filesim.sync.backend import Backend
from filesim.sync.scan import scan
from filesim.sync.state import Entry, Kind
from filesim.topology.filesystems import filesystem_type
from filesim.topology.layout import is_temp_name

log = logging.getLogger("filesim.sync")

OnChange = Callable[[str | None, str], None]
"""on_change(path, kind): see the module's docstring."""


class Watcher(Protocol):
    kind: str
    """"events" or "polling"."""

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
_WANTED: list[type[FileSystemEvent]] = [
    FileCreatedEvent, FileModifiedEvent, FileAttribEvent, FileClosedEvent, FileMovedEvent,
    FileDeletedEvent, DirCreatedEvent, DirAttribEvent, DirMovedEvent, DirDeletedEvent,
    EventsLostEvent,
]  # fmt: skip
"""Every event but the ignored ones, asked for at the source (on Linux, the inotify mask):
the agent's own initial sync opens and reads every file of the folder, and each open and
close would otherwise be an event decoded in Python only to be dropped (10,000 files: about
2 s of CPU, more than the copies themselves)."""


def kind_of(event: FileSystemEvent) -> str:
    """What a watchdog event says about its file (see the module's docstring)."""
    if event.is_synthetic:  # the contents of a directory moved in: whole
        return ""
    if isinstance(event, FileCreatedEvent | FileModifiedEvent):
        return "write"
    if isinstance(event, FileClosedEvent):
        return "close"
    if isinstance(event, FileAttribEvent):
        return "attrib"
    return ""


LOST = "lost"
"""The kind of `on_change(None, LOST)`: the OS dropped events, everything is rescanned."""


class _Handler(FileSystemEventHandler):
    def __init__(self, root: str, on_change: OnChange) -> None:
        self.root, self.on_change = root, on_change

    def on_any_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, EventsLostEvent):
            self.on_change(None, LOST)
            return
        if isinstance(event, _IGNORED):
            return
        kind = kind_of(event)
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path and (rel := relative(self.root, path)) is not None:
                self.on_change(rel, kind)


def _observer() -> BaseObserver:
    """watchdog's observer; on Linux one that reports a file moved in from outside the tree as
    moved (complete), not as created (possibly still being written); on macOS one that reports
    dropped events."""
    if sys.platform.startswith("linux"):
        from watchdog.observers.inotify import InotifyObserver

        return InotifyObserver(generate_full_events=True)
    if sys.platform == "darwin":
        return _fsevents_observer()
    return Observer()


_FSEVENTS_LOST = ("must_scan_subdirs", "is_user_dropped", "is_kernel_dropped")
"""FSEvents flags of a batch after which the tree must be rescanned: the kernel or fseventsd
dropped events (MustScanSubDirs, often with one of the other two)."""


def events_were_lost(native_events: Sequence[object]) -> bool:
    """Whether a batch of FSEvents native events says events were dropped."""
    return any(getattr(e, flag, False) for e in native_events for flag in _FSEVENTS_LOST)


def _fsevents_observer() -> BaseObserver:  # pragma: no cover - macOS only
    from watchdog.observers.fsevents import FSEventsEmitter, FSEventsObserver

    class Emitter(FSEventsEmitter):
        def queue_events(self, timeout: float, events: list[Any]) -> None:  # type: ignore[override]
            if events_were_lost(events):  # watchdog itself passes these flags over
                self.queue_event(EventsLostEvent(self.watch.path, is_directory=True))
            super().queue_events(timeout, events)

    observer = FSEventsObserver()
    observer._emitter_class = Emitter  # FSEventsObserver takes no emitter class argument
    return observer


class EventWatcher:
    """OS file events through watchdog (inotify, FSEvents, ReadDirectoryChangesW)."""

    kind = "events"

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self._observer: BaseObserver | None = None
        self._on_change: OnChange | None = None
        self._root_id: tuple[int, int] | None = None

    def start(self, on_change: OnChange) -> None:
        self._on_change = on_change
        observer = _observer()
        observer.schedule(
            _Handler(self.root, on_change), self.root, recursive=True, event_filter=_WANTED
        )
        observer.daemon = True
        self._root_id = _root_id(Path(self.root))
        observer.start()
        self._observer = observer

    def healthy(self) -> bool:
        alive = self._observer is not None and self._observer.is_alive()
        return alive and _root_id(Path(self.root)) == self._root_id

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None


class PollingWatcher:
    """Rescans the tree every `interval` seconds and reports what differs: for network
    folders (9p, CIFS, NFS) where OS events never arrive."""

    kind = "polling"

    def __init__(self, root: Path, interval: float = 1.0, backend: Backend = "auto") -> None:
        self.root, self.interval, self.backend = root, interval, backend
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, on_change: OnChange) -> None:
        self._stop.clear()
        before = scan(self.root, backend=self.backend)
        self._thread = threading.Thread(
            target=self._loop, args=(on_change, before), daemon=True, name="sync-poll"
        )
        self._thread.start()

    def healthy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self, on_change: OnChange, before: dict[str, Entry]) -> None:
        while not self._stop.wait(self.interval):
            try:
                now = scan(self.root, backend=self.backend)
            except OSError:
                on_change(None, "")
                continue
            for path in set(before) | set(now):
                entry = now.get(path)
                if before.get(path) != entry:
                    on_change(path, "write" if entry and entry.kind is Kind.FILE else "")
            before = now

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


WatcherMode = Literal["auto", "events", "polling"]

# Filesystems whose changes made on the other side (the host of a VM or container, another
# client) raise no inotify event here: host shares and network filesystems ("remote": a
# Windows network drive, see filesim.topology.filesystems.windows_type). `auto` polls them.
REMOTE_FILESYSTEMS = frozenset(
    {"9p", "drvfs", "cifs", "smb3", "smbfs", "remote", "nfs", "nfs4", "fuse", "virtiofs", "vboxsf"}
)


def polled_filesystem(path: Path, mountinfo: str | None = None) -> str | None:
    """The type of `path`'s filesystem when OS events cannot be trusted there, else None."""
    fstype = filesystem_type(path, mountinfo)
    if fstype is not None and (fstype in REMOTE_FILESYSTEMS or fstype.startswith("fuse.")):
        return fstype
    return None


def choose(root: Path, mode: WatcherMode) -> tuple[str, str]:
    """The watcher `mode` gives for `root` and why: ("polling", "9p folder") for `auto` on a
    9p mount, ("events", "") on a local disk, ("polling", "watcher: polling") when asked."""
    if mode == "polling":
        return "polling", "watcher: polling"
    if mode == "events":
        return "events", "watcher: events"
    remote = polled_filesystem(root)
    if remote is not None:
        return "polling", f"{remote} folder"
    return "events", "local folder"


def make_watcher(
    root: Path,
    mode: WatcherMode,
    poll_interval: float,
    on_change: OnChange,
    backend: Backend = "auto",
) -> Watcher:
    """A started watcher of `root`. `auto` polls a host share or network folder (9p, drvfs,
    CIFS, NFS, FUSE...: see `choose`), and otherwise tries OS events, falling back to polling
    when the platform refuses them (e.g. the inotify watch limit is reached); `events` fails
    instead."""
    kind, why = choose(root, mode)
    if kind == "events":
        watcher = EventWatcher(root)
        try:
            watcher.start(on_change)
            return watcher
        except OSError as exc:
            if mode == "events":
                raise FilesimError(f"cannot watch {root}: {exc}") from None
            log.warning("%s: OS file events unavailable (%s); polling", root, exc)
    elif mode == "auto":
        log.info("%s: a %s delivers no change events from the other side; polling", root, why)
    polling = PollingWatcher(root, poll_interval, backend)
    polling.start(on_change)
    return polling


class WatcherGroup:
    """The watchers of one agent: started together, stopped together, and started again
    together when one of them lost its root (a folder unmounted and mounted again is a new
    directory: its old watch sees nothing any more)."""

    def __init__(self, mode: WatcherMode, poll_interval: float, backend: Backend = "auto") -> None:
        self.mode, self.poll_interval, self.backend = mode, poll_interval, backend
        self.watchers: list[Watcher] = []
        self._targets: list[tuple[Path, OnChange]] = []

    def start(self, targets: Sequence[tuple[Path, OnChange]]) -> None:
        """Watch each root (created if missing) with its callback."""
        self._targets = list(targets)
        self._start()

    def _start(self) -> None:
        try:
            for root, on_change in self._targets:
                root.mkdir(parents=True, exist_ok=True)
                self.watchers.append(
                    make_watcher(root, self.mode, self.poll_interval, on_change, self.backend)
                )
        except BaseException:
            self._stop()
            raise

    def stop(self) -> None:
        self._targets = []
        self._stop()

    def _stop(self) -> None:
        while self.watchers:
            self.watchers.pop().stop()

    def healthy(self) -> bool:
        return len(self.watchers) == len(self._targets) and all(w.healthy() for w in self.watchers)

    def describe(self) -> str | None:
        """What watches the first root (the folder): "events (local folder)", "polling
        (9p folder)"...; None while nothing is watched."""
        if not self.watchers or not self._targets:
            return None
        kind, why = choose(self._targets[0][0], self.mode)
        actual = self.watchers[0].kind
        return f"{actual} ({why})" if actual == kind else f"{actual} (OS events unavailable)"

    def restart_if_unhealthy(self) -> bool:
        """Start the watchers afresh if one of them went blind or could not start last time;
        True when that was needed. Raises FilesimError or OSError when a root cannot be
        watched now (the next call tries again)."""
        if self.healthy():
            return False
        self._stop()
        self._start()
        return True
