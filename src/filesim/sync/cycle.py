"""One sync cycle, the blocking part: look at the disks, reconcile, execute, record.

Runs in the agent's worker thread, one cycle at a time. A *partial* cycle looks only at the
paths events pointed at (with their ancestors, and the whole subtree of a directory); a *full*
cycle scans both trees. A partial cycle whose plan would delete something that was not seen
being deleted one by one escalates to a full one: the deletion might be part of a vanished tree,
which only the whole picture shows (the mass-deletion guard decides on it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from filesim.sync.actions import Copy, Delete, Plan
from filesim.sync.archive import SyncArchive
from filesim.sync.execute import Executor
from filesim.sync.ignore import ignored, ignoring, without
from filesim.sync.outcome import Outcome
from filesim.sync.plan import reconcile
from filesim.sync.scan import entry, scan_tree
from filesim.sync.state import Entry, Kind, Record, Side, ancestors, depth, is_under, rooted
from filesim.sync.tree import Tree
from filesim.topology.layout import case_insensitive
from filesim.topology.model import SyncPolicy


@dataclass
class CycleResult:
    plan: Plan = field(default_factory=Plan)
    outcomes: list[Outcome] = field(default_factory=list)
    escalated: bool = False
    """A partial cycle that turned into a full one."""


class Cycles:
    """Runs cycles between a folder and a store, with the agent's archive and executor."""

    def __init__(
        self,
        folder: Path,
        store: Path,
        archive: SyncArchive,
        executor: Executor,
        policy: SyncPolicy,
        guard_min_files: int,
    ) -> None:
        self.roots: dict[Side, Path] = {"folder": folder, "export": store}
        self.archive, self.executor = archive, executor
        self.policy, self.guard_min_files = policy, guard_min_files
        self._journal = _ArchiveJournal(archive)
        self.folded = frozenset(
            side for side, root in self.roots.items() if root.is_dir() and case_insensitive(root)
        )
        """Sides whose names ignore case, found out once (filesim.sync.casefold)."""
        self.ignore = ignoring(policy.ignore)

    def run(
        self,
        paths: list[str] | None,
        forced: frozenset[str],
        trusted: frozenset[str],
        guard: bool,
        held: Mapping[str, float] | None = None,
    ) -> CycleResult:
        """Plan and execute for `paths` (None: everything). `forced`: paths copied without
        the settle check; `trusted`: deletions seen one by one (not counted by the guard);
        `guard`: False only for the cycle that carries out a resume; `held`: paths not to be
        copied before the time given (a writer is still at them)."""
        with self.executor.session() as trees:
            if paths is not None and not self.folded:
                # (Not where a side ignores case: a path's lstat there finds any case variant,
                # and only a full listing tells the names apart.)
                folder, export, scoped = self._partial(paths, trees)
                plan = reconcile(scoped, folder, export, self.policy, guard=False)
                deletes = [a for a in plan.work if isinstance(a, Delete) and a.path not in trusted]
                if not (guard and deletes):
                    return self._execute(plan, forced, held)
            plan = reconcile(
                self.archive.records,
                without(scan_tree(trees["folder"]), self.ignore),
                without(scan_tree(trees["export"]), self.ignore),
                self.policy,
                trusted=trusted,
                guard=guard,
                guard_min_files=self.guard_min_files,
                folded=self.folded,
            )
            result = self._execute(plan, forced, held)
        result.escalated = paths is not None
        return result

    def _execute(
        self, plan: Plan, forced: frozenset[str], held: Mapping[str, float] | None
    ) -> CycleResult:
        if plan.halt is not None:
            return CycleResult(plan)
        return CycleResult(plan, self.executor.run(plan.steps, forced, self._journal, held))

    def _partial(
        self, paths: list[str], trees: Mapping[Side, Tree]
    ) -> tuple[dict[str, Entry], dict[str, Entry], dict[str, Record]]:
        """Snapshots and archive rows for `paths`, their ancestors (the entry only), and the
        whole subtree of each path that is, or was, a directory. Each snapshot holds no entry
        without its parent directory (`rooted`), whatever changed between the lookups."""
        archive = self.archive.records
        snaps: dict[Side, dict[str, Entry]] = {"folder": {}, "export": {}}
        asked = set(paths)
        wanted = asked | {a for p in paths for a in ancestors(p)}
        trees_asked: set[str] = set()
        for p in sorted(wanted, key=lambda p: (depth(p), p)):  # a directory before its entries
            for side, tree in trees.items():
                found = None if ignored(p, self.ignore) else entry(tree, p)
                if found is not None and found.kind is Kind.DIR and p in asked:
                    snaps[side].update(without(scan_tree(tree, p), self.ignore))
                    trees_asked.add(p)
                elif found is not None:
                    snaps[side][p] = found
            rec = archive.get(p)
            if p in asked and rec is not None and Kind.DIR in _kinds(rec):
                trees_asked.add(p)
        scoped = {p: archive[p] for p in wanted if p in archive}
        if trees_asked:
            scoped.update(
                (p, r) for p, r in archive.items() if any(is_under(p, t) for t in trees_asked)
            )
        return rooted(snaps["folder"]), rooted(snaps["export"]), scoped


def _kinds(rec: Record) -> set[Kind]:
    return {e.kind for e in (rec.folder, rec.export) if e is not None}


class _ArchiveJournal:
    """The executor's journal: intents before each batch's copies, results after."""

    def __init__(self, archive: SyncArchive) -> None:
        self.archive = archive

    def before(self, copies: list[Copy]) -> None:
        self.archive.intend((c.path, c.src, c.entry) for c in copies)

    def after(self, outcomes: list[Outcome]) -> None:
        rekeys = [r for o in outcomes for r in o.rekeys]
        self.archive.apply_batch(rekeys, [u for o in outcomes for u in o.updates])
