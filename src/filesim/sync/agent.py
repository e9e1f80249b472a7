"""The sync agent of one server: keeps its export store and its folder in step.

`SyncAgent` is the face the runtime and the CLI use, and the place the parts are wired:

- events in: the NFS server's notifications and the watchers (`watch.py`) mark paths in the
  schedule (`schedule.py`, pure: when each path is due);
- the cycles over time (`loop.py`): continuous sync, the initial sync, a flush; each cycle's
  blocking part (`cycle.py`: scan, `plan.reconcile`, `execute.Executor`, the archive) runs in a
  worker thread, so the NFS servers sharing the event loop never stall;
- the lifecycle: one agent per archive (`lock.py`), the start-up checks (`recover.py`), the
  public "ready" signal once the initial sync is over, the status (`status.py`) and the health
  (`health.py`: starting, running, failing, halted, stopped — why, and since when).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from filesim.errors import FilesimError
from filesim.events import Event, null_sink
from filesim.sync.archive import SyncArchive
from filesim.sync.backend import open_tree
from filesim.sync.cycle import Cycles
from filesim.sync.execute import Executor
from filesim.sync.health import Health
from filesim.sync.lock import ArchiveLock
from filesim.sync.loop import SyncLoop
from filesim.sync.plan import MASS_DELETION_MIN_FILES
from filesim.sync.recover import adopt_store, recover_published
from filesim.sync.schedule import EXPORT_CHANGE_KINDS, Schedule
from filesim.sync.state import shown
from filesim.sync.status import SyncStatus
from filesim.sync.watch import LOST, OnChange, WatcherGroup
from filesim.topology.layout import Layout
from filesim.topology.model import Server, StorageMode

log = logging.getLogger("filesim.sync")

_FLUSH_POLL_S = 0.005


class SyncAgent:
    """Keeps one mirror-mode server's export store and its folder in step."""

    def __init__(
        self,
        server: Server,
        folder: Path,
        store: Path,
        archive_path: Path,
        events: Callable[[Event], None] = null_sink,
        *,
        watch_export: bool = False,
        guard_min_files: int = MASS_DELETION_MIN_FILES,
    ) -> None:
        """`watch_export`: also watch the store with OS events — for an agent running without
        the NFS server in its process (`filesim sync NAME`), which then cannot notify it."""
        if server.storage is StorageMode.DIRECT:
            raise FilesimError(
                f"{server.name} serves its folder directly (storage: direct): nothing to sync"
            )
        self.server, self.policy = server, server.sync
        # Resolved: macOS FSEvents reports real paths (/private/tmp for /tmp), which must fall
        # under the root the watcher compares them with.
        self.folder, self.store = Path(os.path.realpath(folder)), Path(os.path.realpath(store))
        self._emit = events
        self._watch_export = watch_export
        self._archive = SyncArchive(archive_path)
        self._executor = Executor(
            self.folder,
            self.store,
            server=server.name,
            settle_ms=self.policy.settle_ms,
            backend=self.policy.backend,
        )
        self._schedule = Schedule(
            self.policy.settle_ms / 1000, self.policy.rescan_interval_s, self.policy.stall_s
        )
        self._watchers = WatcherGroup(
            self.policy.watcher, self.policy.poll_interval_s, self.policy.backend
        )
        self._lock = ArchiveLock(archive_path, server.name)
        cycles = Cycles(
            self.folder, self.store, self._archive, self._executor, self.policy, guard_min_files
        )
        self._health = Health(server.name, self._send)
        self._sync = SyncLoop(
            server.name, cycles, self._schedule, self._archive, self._watchers, self._send,
            self._set_ready, self._health,
        )  # fmt: skip
        if self._sync.halted is not None:
            self._health.halted(self._sync.halted)
        self._active = False
        """A run() or run_once() drives the cycles (flush() waits for it instead)."""
        self._running = False
        """The continuous loop is alive."""
        self._ready = False
        self._ended = False
        """The last run ended before the agent became ready."""
        self._aio: asyncio.AbstractEventLoop | None = None
        self._ready_signal: asyncio.Event | None = None

    # -- public API -------------------------------------------------------------------------

    async def run_once(self) -> None:
        """Initial sync: full scan of both sides, converge, return (also when halted)."""
        async with self._driving(continuous=False):
            await self._sync.converge()
            self._set_ready()

    async def run(self) -> None:
        """Initial sync (if the policy asks), then continuous sync until cancelled."""
        async with self._driving(continuous=self.policy.continuous):
            if not self.policy.continuous:
                if self.policy.initial:
                    await self._sync.converge()
                self._set_ready()
                return
            # Watch before the initial sync: a file dropped while it runs is marked dirty
            # and synced right after, instead of waiting for the next full rescan.
            try:
                self._watchers.start(self._watch_targets())
            except (OSError, FilesimError) as exc:  # each full cycle tries again
                self._health.error(f"cannot watch the folder yet: {shown(str(exc))}")
            self._running = True
            try:
                self._schedule.full_due = time.monotonic() + self.policy.rescan_interval_s
                if self.policy.initial:
                    try:
                        await self._sync.converge()
                    except Exception as exc:  # the loop's first full cycle tries again
                        self._sync.report(exc)
                        self._schedule.full_failed(time.monotonic())
                    else:
                        self._set_ready()
                else:
                    self._set_ready()
                await self._sync.serve()
            finally:
                self._running = False
                self._watchers.stop()

    @property
    def ready(self) -> bool:
        """True once the initial sync (if the policy asks for one) is over."""
        return self._ready

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Return once the agent is ready (at once if it is). Raises FilesimError when its
        run ends before that, TimeoutError after `timeout` seconds."""
        self._bind()
        assert self._ready_signal is not None
        async with asyncio.timeout(timeout):  # not wait_for: it can drop a cancellation
            await self._ready_signal.wait()
        if not self._ready:
            raise FilesimError(
                f"the sync agent of {self.server.name} stopped before its initial sync was over"
            )

    def notify_export_change(self, path: str, kind: str, dest: str | None = None) -> None:
        """The NFS server changed `path` (export-relative, no leading slash) in the store.

        Call from the event-loop thread. `kind` is one of create, write, commit, setattr,
        remove, rmdir, mkdir, rename, link, symlink, mknod. A rename is one call with `dest`
        (the new path) — or, equivalently, two calls with kinds "rename-from" (old) and
        "rename-to" (new). "commit" means the client declared the file complete: it may move
        before settle_ms has passed.
        """
        if kind not in EXPORT_CHANGE_KINDS:  # look at it anyway: never break the NFS call
            log.debug("%s: unknown export change kind %r at %s", self.server.name, kind, path)
        path = path.strip("/")
        if path:
            target = dest.strip("/") if dest else None
            self._schedule.export_change(path, kind, time.monotonic(), target)
            self._sync.poke()

    def notify_folder_change(self, path: str | None, kind: str = "") -> None:
        """The folder changed at `path` (None: lost track, rescan everything). Loop thread.

        `kind` (see watch.py): "write" (data changed, the writer may not be done: the path
        waits for a close or stall_s of quiet), "close" (the writer closed it), "attrib", or ""
        for a change that is whole (the default)."""
        if path is None:
            self._schedule.request_full()
        else:
            self._schedule.mark(path.strip("/"), time.monotonic(), kind=kind)
        self._sync.poke()

    async def flush(self, timeout: float | None = None) -> None:
        """Return once no work is pending (a sync barrier); at once when halted.

        While run() drives the agent, that is once the initial sync is over and nothing is
        marked, due or running; otherwise flush() runs the pending cycles itself."""
        async with asyncio.timeout(timeout):
            await self._flush()

    def halted(self) -> str | None:
        return self._sync.halted

    def resume(self) -> None:
        """Lift a mass-deletion halt: the next cycle carries out what the guard stopped."""
        self._sync.resume()

    @property
    def gate(self) -> Callable[[], Awaitable[None]] | None:
        """Awaited before each cycle: how injected faults pause or slow the sync down."""
        return self._sync.gate

    @gate.setter
    def gate(self, gate: Callable[[], Awaitable[None]] | None) -> None:
        self._sync.gate = gate

    @property
    def on_latency(self) -> Callable[[float], None] | None:
        """Called with each sync latency (seconds from first change to done): metrics."""
        return self._sync.on_latency

    @on_latency.setter
    def on_latency(self, observer: Callable[[float], None] | None) -> None:
        self._sync.on_latency = observer

    def status(self) -> SyncStatus:
        sync, health = self._sync, self._health
        by_kind = {k: v for k, v in sync.counts.items() if k.startswith("sync.")}
        return SyncStatus(
            state=health.state.value,
            reason=health.reason,
            since=health.since,
            failing_paths=health.failing_paths,
            last_error=health.last_error,
            last_error_at=health.last_error_at,
            cycles=sync.counts["cycle"],
            events_lost=health.events_lost,
            events_lost_at=health.events_lost_at,
            server=self.server.name,
            direction=self.policy.direction.value,
            continuous=self.policy.continuous,
            running=self._running,
            ready=self._ready,
            pending=self._schedule.pending,
            last_sync=sync.last_sync,
            p50_ms=sync.latency.percentile(0.50),
            p99_ms=sync.latency.percentile(0.99),
            conflicts=sync.counts["conflict"],
            halted=sync.halted,
            actions=sum(by_kind.values()),
            by_kind=by_kind,
            echoes=sync.echoes.count,
            errors=sync.counts["error"],
            watcher=self._watchers.describe(),
        )

    def close(self) -> None:
        """Release the archive and worker threads (the agent cannot run afterwards)."""
        self._health.stopped("closed", crashed=False)
        self._watchers.stop()
        self._sync.close()
        self._executor.close()
        self._archive.close()
        self._lock.release()

    # -- lifecycle --------------------------------------------------------------------------

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if self._aio is not loop:
            self._aio, self._ready_signal = loop, asyncio.Event()
            self._sync.bind()
            if self._ready or self._ended:
                self._ready_signal.set()

    @contextlib.asynccontextmanager
    async def _driving(self, continuous: bool) -> AsyncIterator[None]:
        """A run: the event loop bound, the archive locked, the start-up checks done;
        afterwards, whoever waits for readiness learns that the run ended before it, and the
        health says why it ended."""
        self._bind()
        assert self._ready_signal is not None
        if not self._ready:
            self._ready_signal.clear()
        self._ended, self._active = False, True
        if self._sync.halted is None:
            self._health.starting(continuous)
        try:
            with self._lock.holding():
                await self._start()
                yield
        except asyncio.CancelledError:
            self._health.stopped("shut down", crashed=False)
            raise
        except BaseException as exc:
            reason = f"{type(exc).__name__}: {shown(str(exc))}"
            self._health.stopped(reason, crashed=True)
            raise
        else:
            if continuous:  # a continuous run only ends by cancellation or an error
                self._health.stopped("its run returned", crashed=True)
        finally:
            self._active = False
            if not self._ready:
                self._ended = True
                self._ready_signal.set()

    async def _start(self) -> None:
        if await self._sync.in_thread(adopt_store, self._archive, self.store):
            log.warning("%s: the export store %s is new; syncing from scratch", self.server.name,
                        self.store)  # fmt: skip
            self._send(Event("sync.reset", self.server.name, "export", detail={"why": "new store"}))
        await self._sync.in_thread(
            recover_published, self._archive, self.folder, self.store, self.policy.backend
        )
        await self._sync.in_thread(self._executor.clean_temp)

    def _set_ready(self) -> None:
        if self._ready:
            return
        self._ready = True
        self._health.ready()
        if self._ready_signal is not None:
            self._ready_signal.set()
        self._send(Event("sync.ready", self.server.name))

    async def _flush(self) -> None:
        while self._sync.halted is None or self._sync.resume_pending:
            if not self._active:  # nobody drives the cycles: run what is pending here
                if self._schedule.pending:
                    self._bind()
                    with self._lock.holding():
                        await self._sync.drain()
                return
            # run() or run_once() does the work: wait until it is over, or serving and idle.
            if self._running and self._ready and self._sync.idle:
                return
            await asyncio.sleep(_FLUSH_POLL_S)

    # -- watchers ---------------------------------------------------------------------------

    def _watch_targets(self) -> list[tuple[Path, OnChange]]:
        targets: list[tuple[Path, OnChange]] = [(self.folder, self._from_folder_thread)]
        if self._watch_export:
            targets.append((self.store, self._from_store_thread))
        return targets

    def _from_folder_thread(self, path: str | None, kind: str) -> None:
        self._to_loop(self._folder_watched, path, kind)

    def _folder_watched(self, path: str | None, kind: str) -> None:
        if path is None and kind == LOST:
            self._health.lost_events("folder")
        self.notify_folder_change(path, kind)

    def _from_store_thread(self, path: str | None, kind: str) -> None:
        self._to_loop(self._store_watched, path, kind)

    def _to_loop(self, fn: Callable[[str | None, str], None], path: str | None, kind: str) -> None:
        loop = self._aio
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed under us: stopping
                loop.call_soon_threadsafe(fn, path, kind)

    def _store_watched(self, path: str | None, kind: str) -> None:
        if path is None:
            if kind == LOST:
                self._health.lost_events("export")
            self.notify_folder_change(None)
            return
        # Only the NFS server (for a client) and this agent write in the store: a removal
        # seen there is deliberate, like one the NFS server reports — not a vanished tree.
        with open_tree(self.store, self.policy.backend) as store:
            gone = store.lstat(path) is None
        if gone:
            self._schedule.trust_removal(path)
        self._schedule.mark(path, time.monotonic(), kind=kind)
        self._sync.poke()

    def _send(self, event: Event) -> None:
        try:
            self._emit(event)
        except Exception:  # a broken subscriber must not stop the sync
            log.exception("event sink failed")


def agent_for(
    server: Server,
    layout: Layout,
    events: Callable[[Event], None] = null_sink,
    *,
    watch_export: bool = False,
    guard_min_files: int = MASS_DELETION_MIN_FILES,
) -> SyncAgent | None:
    """The agent a server needs, or None (direct storage, or a policy that never syncs)."""
    if not server.syncs:
        return None
    folder, store, archive = layout.folder(server), layout.store(server), layout.archive(server)
    return SyncAgent(
        server, folder, store, archive, events,
        watch_export=watch_export, guard_min_files=guard_min_files,
    )  # fmt: skip
