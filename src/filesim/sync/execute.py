"""Performing a plan's actions safely on the two trees.

Every action first checks that its path still holds what the plan saw; if not, the action is
*stale* and the path is planned again later — a change that arrived meanwhile is never
overwritten. A file is copied only once it has settled (no write for `settle_ns`, and no
pending write the schedule holds back) and only if it did not change between the start and the
end of the copy. It is published by writing a temp file in the target directory (a name the
scanner and NFS READDIR hide), fsync, then rename over the target, with mtime and mode
preserved: a reader sees the old file or the new one, never half.

Both trees are reached only through their `Dir`s (tree.py: directory descriptors, or
lstat-checked paths where the platform has no descriptors), opened once per cycle (`session`):
a symlink where a directory is expected is refused, never followed, on either side; the temp
file is created and renamed in its directory, and only if that directory is still where the
path says. The copies are here; making directories, deleting and renaming are in
tree_actions.py.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

from filesim.sync import tree_actions
from filesim.sync.actions import Action, Copy, Delete, MakeDir, Remember, Step
from filesim.sync.backend import Backend, open_tree
from filesim.sync.outcome import Outcome, Staged, Stale, Status, Unsettled, outcome_of
from filesim.sync.publish import (
    can_sync_filesystem,
    fsync_at,
    publish_file,
    publish_symlink,
    sync_filesystem,
    unlink_quietly,
)
from filesim.sync.scan import remove_temp_files
from filesim.sync.state import Kind, Record, Side
from filesim.sync.tree import Dir, Refused, Tree, split
from filesim.sync.tree_actions import expect_at, note, target_dir
from filesim.topology.layout import TEMP_PREFIX

log = logging.getLogger("filesim.sync")

BATCH = 256
SYNCFS_MIN_BATCH = 16
"""From this many copies in a batch on, one syncfs replaces the fsync of each file."""

_T = TypeVar("_T")

__all__ = ["BATCH", "SYNCFS_MIN_BATCH", "Executor", "Journal"]


def _is_parallel(step: Step) -> bool:
    return isinstance(step[-1], Copy)


def _batches(steps: Iterable[Step], size: int = BATCH) -> Iterator[tuple[bool, list[Step]]]:
    """Runs of copy steps (parallel) and of other steps (in order), at most `size` each."""
    batch: list[Step] = []
    parallel = False
    for step in steps:
        if batch and (_is_parallel(step) != parallel or len(batch) >= size):
            yield parallel, batch
            batch = []
        parallel = _is_parallel(step)
        batch.append(step)
    if batch:
        yield parallel, batch


class Journal(Protocol):
    """Where the executor reports progress (the agent's archive)."""

    def before(self, copies: list[Copy]) -> None:
        """About to publish these: remember them, so a crash right after a publish is
        recognised as our own copy at the next start."""

    def after(self, outcomes: list[Outcome]) -> None:
        """These steps ran: record what completed."""


class Executor:
    """Runs steps against a folder and an export store. Thread-safe per distinct path."""

    def __init__(
        self,
        folder: Path,
        export: Path,
        *,
        server: str = "",
        settle_ms: int = 100,
        workers: int = 1,
        clock: Callable[[], float] = time.time,
        backend: Backend = "auto",
    ) -> None:
        """`backend`: how the trees are walked (tree.py), "auto" by what the platform has."""
        self.roots: dict[Side, Path] = {"folder": folder, "export": export}
        self.backend = backend
        self.server = server
        self.settle_ns = settle_ms * 1_000_000
        self.clock = clock
        self._workers = workers
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=f"sync-{server}")
        self._trees: dict[Side, Tree] | None = None
        self._held: Mapping[str, float] = {}
        self._temp_prefix = TEMP_PREFIX + os.urandom(6).hex() + "-"
        self._temp_serial = itertools.count()
        """Temp names: a random prefix per executor and a counter (next() is atomic under the
        GIL), not 8 random bytes per file: a getrandom syscall of the dozen a small file costs.
        The temp file is created with O_EXCL, so a clash would fail the copy, never clobber."""
        self._lost_temps = False
        """A temp file could not be removed where it was made: its directory was renamed away
        (the path tree cannot follow it there). Swept by name when the session ends."""

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    @contextlib.contextmanager
    def session(self) -> Iterator[dict[Side, Tree]]:
        """Both trees open (their directory descriptors kept) for the block: one cycle's scan,
        plan and execution walk each directory once. Re-entrant."""
        if self._trees is not None:
            yield self._trees
            return
        trees: dict[Side, Tree] = {}
        try:
            for side, root in self.roots.items():
                trees[side] = open_tree(root, self.backend)
            self._trees = trees
            yield trees
        finally:
            self._trees = None
            for tree in trees.values():
                tree.close()
            if self._lost_temps:
                self._lost_temps = False
                self._sweep_temps()

    def _sweep_temps(self) -> None:
        """Remove this executor's temp files wherever they are now (a directory renamed away
        took one along); a failure is logged, and the next start's `clean_temp` retries."""
        for root in self.roots.values():
            try:
                remove_temp_files(root, self.backend, self._temp_prefix)
            except OSError as exc:
                log.warning("%s: could not remove a temp file under %s: %s", self.server,
                            root, exc)  # fmt: skip

    def clean_temp(self) -> list[str]:
        """Remove temp files a crash left behind (they were never published)."""
        return [
            f"{side}:{path}"
            for side, root in self.roots.items()
            for path in remove_temp_files(root, self.backend)
        ]

    def run(
        self,
        steps: Iterable[Step],
        forced: frozenset[str] = frozenset(),
        journal: Journal | None = None,
        held: Mapping[str, float] | None = None,
    ) -> list[Outcome]:
        """Run steps in plan order, in batches; the copies of a batch run in parallel (they
        touch disjoint paths). `forced` paths skip the settle wait (their writer declared them
        complete); `held` paths are not copied before the time (time.time()) given for each:
        a writer is still at them (the schedule knows). The journal hears of each batch's
        copies before and of its outcomes after, so the archive keeps up with the disks batch
        by batch."""
        outcomes: list[Outcome] = []
        self._held = held or {}
        with self.session():
            for parallel, batch in _batches(steps):
                copies = [s[-1] for s in batch if isinstance(s[-1], Copy)]
                if journal is not None and copies:
                    journal.before(copies)
                if parallel:
                    done = self._run_copies(batch, forced)
                else:
                    done = [self.run_step(s, forced) for s in batch]
                if journal is not None:
                    journal.after(done)
                outcomes += done
        return outcomes

    def _run_copies(self, batch: list[Step], forced: frozenset[str]) -> list[Outcome]:
        """Copies in parallel. A large batch is made durable with one syncfs between writing
        the temp files and renaming them, instead of one fsync per file: the same guarantee
        (data on disk before the name points at it), a fraction of the journal commits."""
        if len(batch) < SYNCFS_MIN_BATCH or not can_sync_filesystem():
            return self._map(lambda s: self.run_step(s, forced), batch)
        staged = self._map(lambda s: self.run_step(s, forced, stage=True), batch)
        try:
            try:
                for side in {o.staged.copy.dst for o in staged if o.staged is not None}:
                    sync_filesystem(self.roots[side])
            except OSError:
                for o in staged:  # the slow way, still durable
                    if o.staged is not None:
                        fsync_at(o.staged.tmp, o.staged.dir)
            return self._map(self._land_staged, staged)
        finally:
            for o in staged:  # landed ones are gone; anything left must not stay behind
                if o.staged is not None:
                    self._discard(o.staged)
                    o.staged = None

    def _map(self, fn: Callable[[_T], Outcome], items: list[_T]) -> list[Outcome]:
        """fn over items on the pool, one slice per worker (a task per item would cost more
        in thread hand-offs than a small file costs to copy), results in order."""
        # One worker is the default: with small files, threads only fight over the GIL
        # (10k x 10 KiB on tmpfs: 0.58 s with one, 1.2 s with two or four).
        if self._workers == 1 or len(items) <= 1:
            return [fn(item) for item in items]
        # Contiguous slices: neighbours in plan order share a directory, and threads creating
        # files in one directory queue on its lock.
        size = -(-len(items) // self._workers)
        slices = [items[i : i + size] for i in range(0, len(items), size)]
        results = self._pool.map(lambda part: [fn(item) for item in part], slices)
        return [outcome for part in results for outcome in part]

    def run_step(
        self, step: Step, forced: frozenset[str] = frozenset(), *, stage: bool = False
    ) -> Outcome:
        """Run a step's actions in order. `stage`: a final Copy only writes its temp file
        (not fsync'd, not renamed); `_land_staged` finishes it."""
        if self._trees is None:  # called on its own: open the trees for this step
            with self.session():
                return self.run_step(step, forced, stage=stage)
        out = Outcome(step, Status.DONE)
        for action in step:
            with outcome_of(out, action):
                if stage and isinstance(action, Copy):
                    out.staged = self._stage(action, action.path in forced, False)
                else:
                    self._run(action, out, forced)
            if out.status is not Status.DONE:
                break
        return out

    def _land_staged(self, out: Outcome) -> Outcome:
        staged, out.staged = out.staged, None
        if staged is None:
            return out
        with outcome_of(out, staged.copy):
            self._land(staged, out)
            out.done += 1
        return out

    # -- one action

    def _run(self, action: Action, out: Outcome, forced: frozenset[str]) -> None:
        if isinstance(action, Remember):
            out.updates.append((action.path, action.record))
            return
        if isinstance(action, Copy):
            self._land(self._stage(action, action.path in forced, durable=True), out)
        elif isinstance(action, MakeDir):
            tree_actions.make_dir(self._tree(action.side), action, out, self.server)
        elif isinstance(action, Delete):
            tree_actions.delete(self._tree(action.side), action, out, self.server)
        else:
            tree_actions.rename(self._tree(action.side), action, out, self.server)
        out.done += 1

    def _tree(self, side: Side) -> Tree:
        assert self._trees is not None, "outside a session"
        return self._trees[side]

    def _check_settled(self, a: Copy, forced: bool) -> None:
        held = self._held.get(a.path)
        if held is not None:
            raise Unsettled(held)
        age = self.clock() * 1e9 - a.entry.mtime_ns
        if not forced and 0 <= age < self.settle_ns:
            raise Unsettled((a.entry.mtime_ns + self.settle_ns) / 1e9)

    def _stage(self, a: Copy, forced: bool, durable: bool) -> Staged:
        """Write the temp file in the target directory; fsync it when `durable`. The target
        directory stays held (Staged.dir) until `_land` or `_discard`."""
        self._check_settled(a, forced)
        head, name = split(a.path)
        try:
            src = self._tree(a.src).acquire(head)
        except (FileNotFoundError, Refused):
            raise Stale from None  # the source's directory is gone or was replaced
        try:
            dst = target_dir(self._tree(a.dst), head)
            tmp = f"{self._temp_prefix}{next(self._temp_serial)}"
            try:
                if a.entry.kind is Kind.SYMLINK:
                    published = publish_symlink(src, name, dst, tmp, a.entry)
                else:
                    published = publish_file(src, name, dst, tmp, a.entry, durable)
            except BaseException:
                self._remove_temp(tmp, dst)
                self._tree(a.dst).release(dst)
                raise
        finally:
            self._tree(a.src).release(src)
        return Staged(a, dst, tmp, published)

    def _land(self, staged: Staged, out: Outcome) -> None:
        """Rename the temp file over the target, if the target is still what we planned on
        and its directory is still where the path says."""
        a = staged.copy
        head, name = split(a.target)  # the path, or its conflict copy's name beside it
        try:
            if not self._tree(a.dst).still_at(head, staged.dir):
                raise Stale  # the directory was renamed away meanwhile
            if a.replaces is not None or not _land_new(staged.tmp, name, staged.dir):
                expect_at(staged.dir, name, a.replaces)
                staged.dir.rename(staged.tmp, staged.dir, name)
        except BaseException:
            self._discard(staged)
            raise
        self._tree(a.dst).release(staged.dir)
        if a.to is None:
            out.updates.append((a.path, Record.of(a.src, a.entry, staged.published)))
        else:  # a conflict copy on a case-insensitive side: each name is on one side only
            out.updates.append((a.path, Record.of(a.src, a.entry, None)))
            out.updates.append((a.to, Record.of(a.dst, staged.published, None)))
        note(out, self.server, "sync.copy", a.dst, a.target, size=a.entry.size, source=a.src)

    def _discard(self, staged: Staged) -> None:
        try:
            self._remove_temp(staged.tmp, staged.dir)
        finally:
            self._tree(staged.copy.dst).release(staged.dir)

    def _remove_temp(self, tmp: str, d: Dir) -> None:
        try:
            unlink_quietly(tmp, d)
        except OSError:  # its directory moved away: swept when the session ends
            self._lost_temps = True


def _land_new(tmp: str, name: str, d: Dir) -> bool:
    """Rename onto a name planned to be free, refusing (Stale) when it is taken by now; False
    when the filesystem cannot refuse (then look first, then rename)."""
    try:
        return d.rename_new(tmp, name)
    except FileExistsError:
        raise Stale from None
