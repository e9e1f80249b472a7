"""The sync agent of one server: watches, plans, executes and remembers, on one event loop.

All blocking work (scans, copies, the archive) runs in a worker thread, one cycle at a time,
so the NFS servers sharing the loop never stall. Two kinds of cycle:

- *full*: scan both trees, reconcile everything (at start, every `rescan_interval_s`, after a
  watcher overflow, and whenever a deletion could be a mass deletion);
- *partial*: only the paths events pointed at, once each has been quiet for `settle_ms`
  (an NFS COMMIT makes a file due at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import statistics
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filesim.errors import FilesimError
from filesim.events import Event, null_sink
from filesim.sync.archive import SyncArchive, Update
from filesim.sync.execute import Executor, Outcome, Status
from filesim.sync.plan import MASS_DELETION_MIN_FILES, Copy, Delete, Plan, Rename, reconcile
from filesim.sync.scan import scan, stat_path
from filesim.sync.state import Entry, Kind, Record, Side, ancestors, is_under, other
from filesim.sync.status import SyncStatus
from filesim.sync.watch import EventWatcher, PollingWatcher, Watcher
from filesim.topology.layout import Layout
from filesim.topology.model import Server, StorageMode

log = logging.getLogger("filesim.sync")

EXPORT_CHANGE_KINDS = frozenset(
    {
        "create",
        "write",
        "commit",
        "setattr",
        "remove",
        "rmdir",
        "mkdir",
        "rename",
        "link",
        "symlink",
        "mknod",
        "rename-from",
        "rename-to",
    }
)
_DATA_WRITES = frozenset({"create", "write", "setattr"})
_REMOVALS = frozenset({"remove", "rmdir", "rename", "rename-from"})
_RETRY_FAILED_S = 5.0
_HALT_POLL_S = 0.5


@dataclass
class _Dirty:
    since: float
    """monotonic time of the first event not yet synced (latency is measured from it)."""
    due: float
    forced: bool = False


@dataclass
class _Cycle:
    plan: Plan = field(default_factory=Plan)
    outcomes: list[Outcome] = field(default_factory=list)
    escalate: bool = False


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
        self.folder, self.store = Path(folder), Path(store)
        self._emit = events
        self._watch_export = watch_export
        self._guard_min_files = guard_min_files
        self._archive = SyncArchive(archive_path)
        self._executor = Executor(
            self.folder, self.store, server=server.name, settle_ms=self.policy.settle_ms
        )
        self._settle = self.policy.settle_ms / 1000
        self._dirty: dict[str, _Dirty] = {}
        self._trusted: set[str] = set()
        self._rescan_now = False
        self._full_due = 0.0
        self._busy = False
        self._running = False
        self._halted: str | None = self._archive.halted()
        self._resume_pending = False
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchers: list[Watcher] = []
        self._lock_fd: int | None = None
        self._counts: Counter[str] = Counter()
        self._latencies: deque[float] = deque(maxlen=2048)
        self._last_sync: float | None = None
        self.initial_done = False
        """True once the initial sync (if any) is over: the agent is ready."""
        self.gate: Callable[[], Awaitable[None]] | None = None
        """Awaited before each cycle: how injected faults pause or slow the sync down."""
        self.on_latency: Callable[[float], None] | None = None
        """Called with each sync latency (seconds from first change to done): metrics."""

    # -- public API -------------------------------------------------------------------------

    async def run_once(self) -> None:
        """Initial sync: full scan of both sides, converge, return (also when halted)."""
        with self._locked():
            self._bind()
            await self._start()
            await self._converge()
            self.initial_done = True

    async def run(self) -> None:
        """Initial sync (if the policy asks), then continuous sync until cancelled."""
        with self._locked():
            self._bind()
            await self._start()
            if not self.policy.continuous:
                if self.policy.initial:
                    await self._converge()
                self.initial_done = True
                return
            # Watch before the initial sync: a file dropped while it runs is marked dirty
            # and synced right after, instead of waiting for the next full rescan.
            self._start_watchers()
            try:
                self._full_due = time.monotonic() + self.policy.rescan_interval_s
                if self.policy.initial:
                    try:
                        await self._converge()
                    except (OSError, sqlite3.Error) as exc:
                        self._report(exc)
                        self._full_due = 0.0  # the loop's first full cycle tries again
                    else:
                        self.initial_done = True
                else:
                    self.initial_done = True
                self._running = True
                await self._serve()
            finally:
                self._running = False
                self._stop_watchers()

    def notify_export_change(self, path: str, kind: str, dest: str | None = None) -> None:
        """The NFS server changed `path` (export-relative, no leading slash) in the store.

        Call from the event-loop thread. `kind` is one of create, write, commit, setattr,
        remove, rmdir, mkdir, rename, link, symlink. A rename is one call with `dest` (the new
        path) — or, equivalently, two calls with kinds "rename-from" (old) and "rename-to"
        (new). "commit" means the client declared the file complete: it may move before
        settle_ms has passed.
        """
        if kind not in EXPORT_CHANGE_KINDS:  # look at it anyway: never break the NFS call
            log.debug("%s: unknown export change kind %r at %s", self.server.name, kind, path)
        path = path.strip("/")
        if not path:
            return
        if kind in _REMOVALS:
            self._trusted.add(path)
        # Only data writes need to settle; a rename, a removal or a new directory is whole.
        delay = None if kind in _DATA_WRITES else 0.0
        self._mark(path, forced=kind == "commit", delay=delay)
        if dest:
            self._mark(dest.strip("/"), delay=0.0)

    def notify_folder_change(self, path: str | None) -> None:
        """The folder changed at `path` (None: lost track, rescan everything). Loop thread."""
        if path is None:
            self._rescan_now = True
            self._poke()
        else:
            self._mark(path.strip("/"))

    async def flush(self, timeout: float | None = None) -> None:
        """Return once no work is pending (a sync barrier); at once when halted."""
        await asyncio.wait_for(self._flush(), timeout)

    def halted(self) -> str | None:
        return self._halted

    def resume(self) -> None:
        """Lift a mass-deletion halt: the next cycle carries out what the guard stopped."""
        self._archive.set_halted(None)
        self._resume_pending = True
        self._poke()

    def status(self) -> SyncStatus:
        lat = sorted(self._latencies)
        by_kind = {k: v for k, v in self._counts.items() if k.startswith("sync.")}
        return SyncStatus(
            server=self.server.name,
            direction=self.policy.direction.value,
            continuous=self.policy.continuous,
            running=self._running,
            ready=self.initial_done,
            pending=len(self._dirty),
            last_sync=self._last_sync,
            p50_ms=_percentile(lat, 0.50),
            p99_ms=_percentile(lat, 0.99),
            conflicts=self._counts["conflict"],
            halted=self._halted,
            actions=sum(by_kind.values()),
            by_kind=by_kind,
            errors=self._counts["error"],
        )

    def close(self) -> None:
        """Release the archive and worker threads (the agent cannot run afterwards)."""
        self._stop_watchers()
        self._executor.close()
        self._archive.close()
        self._unlock()

    # -- events in --------------------------------------------------------------------------

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._wake = loop, asyncio.Event()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _mark(self, path: str, forced: bool = False, delay: float | None = None) -> None:
        now = time.monotonic()
        due = now if forced else now + (self._settle if delay is None else delay)
        dirty = self._dirty.get(path)
        if dirty is None:
            self._dirty[path] = _Dirty(now, due, forced)
        else:
            dirty.due, dirty.forced = due, forced
        self._poke()

    def _from_thread(self, path: str | None) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed under us: stopping
                loop.call_soon_threadsafe(self.notify_folder_change, path)

    def _from_export_thread(self, path: str | None) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._export_watched, path)

    def _export_watched(self, path: str | None) -> None:
        if path is None:
            self.notify_folder_change(None)
            return
        # Only the NFS server (for a client) and this agent write in the store: a removal
        # seen there is deliberate, like one the NFS server reports — not a vanished tree.
        if not os.path.lexists(os.path.join(self.store, path)):
            self._trusted.add(path)
        self._mark(path)

    def _start_watchers(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._watchers.append(self._watch(self.folder, self._from_thread))
        if self._watch_export:
            self.store.mkdir(parents=True, exist_ok=True)
            self._watchers.append(self._watch(self.store, self._from_export_thread))

    def _watch(self, root: Path, callback: Callable[[str | None], None]) -> Watcher:
        mode, interval = self.policy.watcher, self.policy.poll_interval_s
        if mode != "polling":
            watcher: Watcher = EventWatcher(root)
            try:
                watcher.start(callback)
                return watcher
            except OSError as exc:  # e.g. inotify watch limit reached
                if mode == "events":
                    raise FilesimError(f"cannot watch {root}: {exc}") from None
                log.warning("%s: OS file events unavailable (%s); polling", root, exc)
        watcher = PollingWatcher(root, interval)
        watcher.start(callback)
        return watcher

    def _stop_watchers(self) -> None:
        while self._watchers:
            self._watchers.pop().stop()

    # -- the loop ---------------------------------------------------------------------------

    async def _serve(self) -> None:
        assert self._wake is not None
        while True:
            if self._halted is not None and not self._resume_pending:
                await self._wait_resume()
                continue
            now = time.monotonic()
            if self._resume_pending or self._rescan_now or now >= self._full_due:
                self._full_due = now + self.policy.rescan_interval_s
                self._rescan_now = False
                self._rearm_watchers()
                await self._survive(None)
                continue
            due = [p for p, d in self._dirty.items() if d.due <= now]
            if due:
                await self._survive(due)
                continue
            next_due = min([d.due for d in self._dirty.values()] + [self._full_due])
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_due - now))

    async def _survive(self, paths: list[str] | None) -> None:
        """One cycle; an unexpected error (the folder unreadable, the disk gone) is reported
        and retried with a full rescan later, instead of ending the agent."""
        try:
            await self._cycle(paths)
        except (OSError, sqlite3.Error) as exc:
            self._report(exc)
            self._full_due = min(self._full_due, time.monotonic() + _RETRY_FAILED_S)
        else:
            if paths is None:
                self.initial_done = True  # after an initial sync that had failed

    def _report(self, exc: BaseException) -> None:
        self._counts["error"] += 1
        log.warning("%s: sync cycle failed: %s", self.server.name, exc)
        self._send(Event("sync.error", self.server.name, detail={"error": str(exc)}))

    def _rearm_watchers(self) -> None:
        """A folder that was unmounted and mounted again is a new directory: its old watch
        sees nothing any more."""
        if self._watchers and not all(w.healthy() for w in self._watchers):
            log.info("%s: watching the folder again", self.server.name)
            self._stop_watchers()
            with contextlib.suppress(OSError, FilesimError):
                self._start_watchers()

    async def _wait_resume(self) -> None:
        """Halted: watch the archive for a resume written by `filesim sync resume`."""
        assert self._wake is not None
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), _HALT_POLL_S)
        if await asyncio.to_thread(self._archive.resume_requested):
            self._resume_pending = True

    async def _converge(self, max_idle_rounds: int = 20) -> None:
        """Full cycles until a plan has nothing left to do, or until `max_idle_rounds` in a
        row made no progress (a file written to all along, an error that persists): those are
        left to the continuous sync or the next run, and reported."""
        stuck = 0
        while True:
            if self._halted is not None and not self._resume_pending:
                if not await asyncio.to_thread(self._archive.resume_requested):
                    return
                self._resume_pending = True
            cycle = await self._cycle(None)
            if cycle.plan.halt is not None or not cycle.plan.work:
                return
            waits = [o for o in cycle.outcomes if o.status is not Status.DONE]
            if not waits:
                continue
            progress = len(waits) < len(cycle.outcomes)
            stuck = 0 if progress else stuck + 1
            failed_only = all(o.status is Status.FAILED for o in waits)
            if stuck >= (3 if failed_only else max_idle_rounds):
                log.warning("%s: %d paths not synced yet", self.server.name, len(waits))
                return
            await asyncio.sleep(self._retry_delay(waits))

    def _retry_delay(self, waits: list[Outcome]) -> float:
        ready = [o.ready_at for o in waits if o.status is Status.UNSETTLED]
        if ready:
            return max(0.01, min(ready) - time.time())
        return max(0.05, self._settle)

    async def _flush(self) -> None:
        while self._halted is None or self._resume_pending:
            if self._running:
                if not (self._dirty or self._busy or self._rescan_now):
                    return
                await asyncio.sleep(0.005)
                continue
            self._bind()
            if not self._dirty:
                return
            now = time.monotonic()
            due = [p for p, d in self._dirty.items() if d.due <= now]
            if due:
                with self._locked():
                    await self._cycle(due)
            else:
                await asyncio.sleep(min(d.due for d in self._dirty.values()) - now)

    # -- one cycle --------------------------------------------------------------------------

    async def _cycle(self, paths: list[str] | None) -> _Cycle:
        """Plan and execute for `paths` (None: everything), in the worker thread."""
        if self.gate is not None:
            await self.gate()
        marks = {p: self._dirty.pop(p) for p in paths or () if p in self._dirty}
        forced = frozenset(p for p, d in marks.items() if d.forced)
        guard = not self._resume_pending
        trusted = frozenset(self._trusted)
        self._busy = True
        try:
            cycle = await asyncio.to_thread(self._cycle_blocking, paths, forced, trusted, guard)
        except BaseException:
            for p, d in marks.items():  # nothing was lost: put the work back
                self._dirty.setdefault(p, d)
            raise
        finally:
            self._busy = False
        self._trusted -= trusted if paths is None or cycle.escalate else set(marks) & trusted
        self._after(cycle, marks, guard)
        return cycle

    def _cycle_blocking(
        self, paths: list[str] | None, forced: frozenset[str], trusted: frozenset[str], guard: bool
    ) -> _Cycle:
        archive = self._archive.records
        if paths is not None:
            folder, export, scoped = self._partial(paths)
            plan = reconcile(scoped, folder, export, self.policy, guard=False)
            deletes = [a for a in plan.work if isinstance(a, Delete) and a.path not in trusted]
            if not (guard and deletes):
                return self._execute(plan, forced)
            # A deletion might be part of a vanished tree: decide on the whole picture.
        folder, export = scan(self.folder), scan(self.store)
        plan = reconcile(
            archive,
            folder,
            export,
            self.policy,
            trusted=trusted,
            guard=guard,
            guard_min_files=self._guard_min_files,
        )
        cycle = self._execute(plan, forced)
        cycle.escalate = paths is not None
        return cycle

    def _execute(self, plan: Plan, forced: frozenset[str]) -> _Cycle:
        if plan.halt is not None:
            return _Cycle(plan)
        return _Cycle(plan, self._executor.run(plan.steps, forced, _ArchiveJournal(self._archive)))

    def _recover(self) -> None:
        """After a crash: a copy that was published but not yet recorded is ours — record it,
        or the next plan would see two unexplained versions (a false conflict) or resurrect
        a file deleted since."""
        roots: dict[Side, Path] = {"folder": self.folder, "export": self.store}
        updates: list[Update] = []
        for path, src, entry in self._archive.intents():
            published = stat_path(roots[other(src)], path)
            if published is not None and entry.same_content(published):
                updates.append((path, Record.of(src, entry, published)))
        self._archive.apply_batch([], updates)

    async def _start(self) -> None:
        await asyncio.to_thread(self._check_store)
        await asyncio.to_thread(self._recover)
        await asyncio.to_thread(self._executor.clean_temp)

    def _check_store(self) -> None:
        """A store that is not the directory the archive was made with (recreated: a fresh
        emptyDir in Kubernetes, a wiped state directory) makes the archive meaningless, and
        following it would delete from the folder everything the new store lacks. Forget it:
        the next sync merges the two trees as on a first run, losing nothing."""
        self.store.mkdir(parents=True, exist_ok=True)
        ident = _store_identity(self.store)
        known = self._archive.store_identity()
        if known is not None and known != ident and self._archive.records:
            log.warning("%s: the export store %s is new; syncing from scratch", self.server.name,
                        self.store)  # fmt: skip
            self._archive.forget()
            self._send(Event("sync.reset", self.server.name, "export", detail={"why": "new store"}))
        self._archive.set_store_identity(ident)

    def _partial(
        self, paths: list[str]
    ) -> tuple[dict[str, Entry], dict[str, Entry], dict[str, Record]]:
        """Snapshots and archive rows for `paths`, their ancestors (the entry only), and the
        whole subtree of each path that is, or was, a directory."""
        archive = self._archive.records
        roots: dict[Side, Path] = {"folder": self.folder, "export": self.store}
        snaps: dict[Side, dict[str, Entry]] = {"folder": {}, "export": {}}
        asked = set(paths)
        wanted = asked | {a for p in paths for a in ancestors(p)}
        trees: set[str] = set()
        for p in wanted:
            for side, root in roots.items():
                entry = stat_path(root, p)
                if entry is not None and entry.kind is Kind.DIR and p in asked:
                    snaps[side].update(scan(root, p))
                    trees.add(p)
                elif entry is not None:
                    snaps[side][p] = entry
            rec = archive.get(p)
            if p in asked and rec is not None and Kind.DIR in _kinds(rec):
                trees.add(p)
        scoped = {p: archive[p] for p in wanted if p in archive}
        if trees:
            scoped.update((p, r) for p, r in archive.items() if any(is_under(p, t) for t in trees))
        return snaps["folder"], snaps["export"], scoped

    # -- after a cycle (loop thread) --------------------------------------------------------

    def _after(self, cycle: _Cycle, marks: dict[str, _Dirty], guard: bool) -> None:
        plan = cycle.plan
        if plan.halt is not None:
            self._halt(plan.halt)
            for p, d in marks.items():
                self._dirty.setdefault(p, d)
            return
        if not guard and self._resume_pending:
            self._resume_pending = False
            self._halted = None
            self._archive.set_halted(None)
            self._archive.clear_resume()
            self._send(Event("sync.resume", self.server.name))
        for conflict in plan.conflicts:
            self._counts["conflict"] += 1
            detail = {"winner": conflict.winner, "kept_as": conflict.kept_as}
            detail["why"] = conflict.reason
            name, side = self.server.name, conflict.loser
            self._send(Event("sync.conflict", name, side, conflict.path, None, detail))
        now = time.monotonic()
        for outcome in cycle.outcomes:
            self._account(outcome, marks, now)
        if cycle.outcomes:
            self._last_sync = time.time()

    def _account(self, outcome: Outcome, marks: dict[str, _Dirty], now: float) -> None:
        for event in outcome.events:
            self._counts[event.kind] += 1
            self._send(event)
        if outcome.status is Status.DONE:
            starts = [marks[p].since for p in outcome.paths if p in marks]
            if starts and outcome.done:
                self._latencies.append((now - min(starts)) * 1000)
                if self.on_latency is not None:
                    self.on_latency(now - min(starts))
            for action in outcome.step:  # a conflict copy is a new file: it must travel too
                if isinstance(action, Rename) and action.aside:
                    self._mark(action.dst, delay=0.0)
            return
        if outcome.status is Status.FAILED:
            self._counts["error"] += 1
            self._send(Event("sync.error", self.server.name, detail={"error": outcome.error}))
            log.warning("%s: %s", self.server.name, outcome.error)
        delay = {
            Status.STALE: self._settle,
            Status.UNSETTLED: max(0.0, outcome.ready_at - time.time()),
            Status.FAILED: _RETRY_FAILED_S,
        }[outcome.status]
        for p in outcome.paths:
            self._mark(p, delay=delay)
            if p in marks:  # keep the original start: the latency includes the retries
                self._dirty[p].since = min(self._dirty[p].since, marks[p].since)

    def _halt(self, reason: str) -> None:
        message = (
            f"{self.server.name}: sync halted — {reason} (folder {self.folder}, export store "
            f"{self.store}). Nothing was deleted. If that side was unmounted or emptied by "
            f"mistake, restore it first. Then run `filesim sync resume {self.server.name}`: "
            "whatever is still missing then is deleted on the other side too."
        )
        if self._halted != message:
            log.error("%s", message)
            self._send(Event("sync.halt", self.server.name, detail={"reason": message}))
        self._halted = message
        self._archive.set_halted(message)

    def _send(self, event: Event) -> None:
        try:
            self._emit(event)
        except Exception:  # a broken subscriber must not stop the sync
            log.exception("event sink failed")

    # -- one agent per archive --------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self._lock_fd is not None:
            yield
            return
        self._lock()
        try:
            yield
        finally:
            self._unlock()

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: one agent per archive is on the user
            return
        path = self._archive.path.with_suffix(".lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise FilesimError(
                f"another sync agent is already running for {self.server.name} "
                f"(archive {self._archive.path} is locked)"
            ) from None
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


_STORE_XATTR = "user.filesim.store"


def _store_identity(store: Path) -> str:
    """A name for this very directory: an id kept in an extended attribute (invisible to NFS
    clients and scanners); where there are none, device and inode (which a recreated
    directory may well reuse)."""
    try:
        return os.getxattr(store, _STORE_XATTR).decode()
    except (OSError, AttributeError):
        pass
    ident = os.urandom(8).hex()
    try:
        os.setxattr(store, _STORE_XATTR, ident.encode())
        return ident
    except (OSError, AttributeError):
        st = os.stat(store)
        return f"{st.st_dev}:{st.st_ino}"


def _kinds(rec: Record) -> set[Kind]:
    return {e.kind for e in (rec.folder, rec.export) if e is not None}


class _ArchiveJournal:
    def __init__(self, archive: SyncArchive) -> None:
        self.archive = archive

    def before(self, copies: list[Copy]) -> None:
        self.archive.intend((c.path, c.src, c.entry) for c in copies)

    def after(self, outcomes: list[Outcome]) -> None:
        rekeys = [r for o in outcomes for r in o.rekeys]
        self.archive.apply_batch(rekeys, [u for o in outcomes for u in o.updates])


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    if len(sorted_values) == 1:
        return round(sorted_values[0], 1)
    cuts = statistics.quantiles(sorted_values, n=100, method="inclusive")
    return round(cuts[int(q * 100) - 1], 1)


def agent_for(
    server: Server, layout: Layout, events: Callable[[Event], None] = null_sink, **kwargs: Any
) -> SyncAgent | None:
    """The agent a server needs, or None (direct storage, or a policy that never syncs)."""
    if not server.syncs:
        return None
    folder, store, archive = layout.folder(server), layout.store(server), layout.archive(server)
    return SyncAgent(server, folder, store, archive, events, **kwargs)
