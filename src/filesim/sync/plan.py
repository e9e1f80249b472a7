"""Reconciliation: (archive, folder snapshot, export snapshot, policy) -> Plan. Pure, no I/O.

A *change* on a side is a difference between what the side holds now and what the archive says
it held after the last sync. Only changes move; a copy filesim made is recorded in the archive,
so its echo is never mistaken for a new change — that is why there are no loops.

Both directions: a change on one side is applied to the other; a path changed on both sides is a
conflict (the newer file wins the name, the other is kept as `name.conflict-<side>-<UTC>.ext`; a
modification beats a deletion). One direction (`source -> target`): the target follows the
source like `rsync -a` would — a target file the source does not explain is set aside as a
conflict copy before it is overwritten, and files only the target ever had are kept. Deletions
move only when the policy mirrors them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from filesim.sync.actions import (
    Action,
    Conflict,
    Copy,
    Delete,
    MakeDir,
    Plan,
    Remember,
    Rename,
    Step,
)
from filesim.sync.casefold import fold, safe_rename
from filesim.sync.state import (
    SIDES,
    Archive,
    Entry,
    Kind,
    Record,
    Side,
    Snapshot,
    depth,
    is_under,
    other,
    unchanged,
)
from filesim.topology.model import Direction, SyncPolicy

# The actions are re-exported: a plan is made of them, and callers read both from here.

MASS_DELETION_MIN_FILES = 3
"""The guard ignores a side losing fewer synced files than this: deleting the last file or two
of a folder is an ordinary thing to do, losing a whole tree at once is not."""


# --- the function ----------------------------------------------------------------------------


def reconcile(
    archive: Archive,
    folder: Snapshot,
    export: Snapshot,
    policy: SyncPolicy,
    *,
    trusted: Iterable[str] = (),
    guard: bool = True,
    guard_min_files: int = MASS_DELETION_MIN_FILES,
    folded: frozenset[Side] = frozenset(),
) -> Plan:
    """What to do so that folder and export agree again, as `policy` allows.

    `trusted`: paths whose deletion was observed one by one (the NFS server reported the
    REMOVE); the mass-deletion guard does not count them. `guard=False` after a resume.
    `folded`: the sides whose names ignore case (see `filesim.sync.casefold`).
    """
    if policy.direction is Direction.NONE:
        return Plan()
    snaps: dict[Side, Snapshot] = {"folder": folder, "export": export}
    if guard:
        halt = mass_deletion(archive, snaps, policy, frozenset(trusted), guard_min_files)
        if halt is not None:
            return Plan(halt=halt)
    planner = _Planner(archive, snaps, policy, folded)
    return planner.plan()


def mass_deletion(
    archive: Archive,
    snaps: Mapping[Side, Snapshot],
    policy: SyncPolicy,
    trusted: frozenset[str],
    min_files: int = MASS_DELETION_MIN_FILES,
) -> str | None:
    """Why syncing now would be a mass deletion, or None.

    It is one when a side whose deletions would be mirrored has no file left at all, while the
    other side still has at least `min_files` of the files both sides had at the last sync —
    an unmounted or emptied folder looks exactly like that.
    """
    if not policy.mirror_deletes:
        return None
    for side in SIDES:
        if not _flows(policy, side) or any(e.kind is Kind.FILE for e in snaps[side].values()):
            continue
        theirs = snaps[other(side)]
        still = [
            path
            for path, rec in archive.items()
            if rec.folder is not None
            and rec.export is not None
            and rec.folder.kind is Kind.FILE
            and path not in trusted
            and (e := theirs.get(path)) is not None
            and e.kind is Kind.FILE
        ]
        if len(still) >= min_files:
            return (
                f"the {side} lost all {len(still)} files that were in sync while the "
                f"{other(side)} still has them"
            )
    return None


def _flows(policy: SyncPolicy, side: Side) -> bool:
    """True when changes on `side` are carried to the other side."""
    d = policy.direction
    return d.folder_to_export if side == "folder" else d.export_to_folder


def conflict_name(path: str, side: Side, mtime_ns: int, taken: set[str]) -> str:
    """`dir/name.conflict-<side>-<UTC mtime>.ext`, unique among `taken`.

    The loser's own mtime is the timestamp: it says which version this was and keeps the
    function pure.
    """
    head, _, name = path.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not stem:  # no extension, or a dot-file like '.profile'
        stem, dot, ext = name, "", ""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(mtime_ns / 1e9))
    for n in range(1, 10_000):
        tag = f"conflict-{side}-{stamp}" + (f"-{n}" if n > 1 else "")
        candidate = f"{stem}.{tag}{dot}{ext}"
        full = f"{head}/{candidate}" if head else candidate
        if full not in taken:
            return full
    raise ValueError(f"no free conflict name for {path}")  # pragma: no cover - 10k conflicts


# --- the planner -----------------------------------------------------------------------------

_MKDIR, _RENAME, _COPY, _DELETE, _REMEMBER = 0, 1, 2, 3, 4


@dataclass
class _Planner:
    archive: Archive
    snaps: Mapping[Side, Snapshot]
    policy: SyncPolicy
    folded: frozenset[Side]
    steps: list[tuple[int, int, str, Step]] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    covered: list[str] = field(default_factory=list)
    """Subtrees moved by a rename in this plan: re-examined in the next plan, not this one."""
    set_aside: list[str] = field(default_factory=list)
    """Directories renamed out of the way: plans for their old children are void."""
    deleting: dict[Side, set[str]] = field(
        default_factory=lambda: {"folder": set(), "export": set()}
    )
    taken: set[str] = field(default_factory=set)

    def plan(self) -> Plan:
        self.taken = set(self.snaps["folder"]) | set(self.snaps["export"])
        self._renames()
        candidates = set(self.archive) | set(self.snaps["folder"]) | set(self.snaps["export"])
        # Fast path (a rescan of an idle tree): both sides exactly as the archive says.
        paths = [p for p in candidates if not self._settled(p) and not self._is_covered(p)]
        # Deepest first, so a directory knows whether all its children are going too.
        for path in sorted(paths, key=lambda p: (-depth(p), p)):
            self._decide(path)
        for side in sorted(self.folded):
            self.steps = fold(self.steps, side, self.snaps[side], self._aside, self.conflicts)
        steps = [s for s in self.steps if not any(_strictly_under(s[2], d) for d in self.set_aside)]
        steps.sort(key=lambda s: (s[0], s[1] if s[0] != _DELETE else -s[1], s[2]))
        return Plan(tuple(s[3] for s in steps), tuple(self.conflicts))

    # -- bookkeeping

    def _aside(self, path: str, side: Side, mtime_ns: int) -> str:
        kept = conflict_name(path, side, mtime_ns, self.taken)
        self.taken.add(kept)
        return kept

    def _add(self, phase: int, path: str, *actions: Action) -> None:
        self.steps.append((phase, depth(path), path, tuple(actions)))

    def _settled(self, path: str) -> bool:
        rec = self.archive.get(path)
        return rec is not None and (
            self.snaps["folder"].get(path),
            self.snaps["export"].get(path),
        ) == (rec.folder, rec.export)

    def _is_covered(self, path: str) -> bool:
        return any(is_under(path, top) for top in self.covered)

    def _rec(self, path: str) -> Record:
        return self.archive.get(path) or Record(None, None)

    def _get(self, side: Side, path: str) -> Entry | None:
        return self.snaps[side].get(path)

    # -- renames

    def _renames(self) -> None:
        """A path gone from one side whose inode reappeared under a new name is a rename."""
        for side in SIDES:
            if _flows(self.policy, side):
                self._renames_on(side)

    def _renames_on(self, side: Side) -> None:
        theirs = other(side)
        lost: dict[int, str] = {}
        for path, rec in self.archive.items():
            mine = rec.on(side)
            # Inode 0 means the platform did not tell (Windows scandir): no rename detection.
            if mine and mine.ino and rec.on(theirs) is not None and self._get(side, path) is None:
                lost[mine.ino] = path
        if not lost:
            return
        for new, entry in sorted(self.snaps[side].items(), key=lambda kv: depth(kv[0])):
            old = lost.get(entry.ino)
            if old is None or new in self.archive or self._is_covered(new) or self._is_covered(old):
                continue
            rec = self.archive[old]
            was, there = rec.on(side), self._get(theirs, old)
            assert was is not None
            if not (entry.unchanged(was) or (entry.kind is was.kind is Kind.DIR)):
                continue  # renamed and modified: plain delete + copy is right
            if there is None or not unchanged(there, rec.on(theirs)):
                continue
            if self._get(theirs, new) is not None or is_under(new, old) or is_under(old, new):
                continue
            if theirs in self.folded and not safe_rename(new, old, self.snaps[theirs]):
                continue  # it would land on a case variant of another file there
            self._add(_RENAME, new, Rename(theirs, old, new, there))
            self.covered += [old, new]

    # -- one path

    def _decide(self, path: str) -> None:
        f, e = self._get("folder", path), self._get("export", path)
        rec = self._rec(path)
        if (f is None and e is None) or (f is not None and f.same_content(e)):
            self._agree(path, f, e, rec)
            return
        d = self.policy.direction
        if d is Direction.BOTH:
            self._two_way(path, rec)
        else:
            self._one_way(path, "folder" if d is Direction.FOLDER_TO_EXPORT else "export", rec)

    def _agree(self, path: str, f: Entry | None, e: Entry | None, rec: Record) -> None:
        now = Record(f, e) if f is not None else None
        if now != (rec if rec != Record(None, None) else None):
            self._add(_REMEMBER, path, Remember(path, now))

    def _two_way(self, path: str, rec: Record) -> None:
        f, e = self._get("folder", path), self._get("export", path)
        f_changed, e_changed = not unchanged(f, rec.folder), not unchanged(e, rec.export)
        if not f_changed and not e_changed:
            return  # a known disagreement (a deletion not mirrored): nothing new
        if f_changed and e_changed:
            self._conflict(path, rec)
        else:
            self._propagate("folder" if f_changed else "export", path, rec)

    def _propagate(self, src: Side, path: str, rec: Record) -> None:
        """Carry src's change at `path` to the other side (whose entry is unchanged)."""
        dst = other(src)
        x, y = self._get(src, path), self._get(dst, path)
        if x is not None:
            self._put(src, path, rec)
        elif y is None:
            self._add(_REMEMBER, path, Remember(path, None))
        elif self.policy.mirror_deletes and self._deletable(dst, path, y):
            self._delete(dst, path, y)
        elif y.kind is Kind.DIR and _flows(self.policy, dst) and self._children_stay(dst, path):
            self._put(dst, path, rec)  # the dir holds things that stay: bring it back
        else:
            self._add(_REMEMBER, path, Remember(path, Record.of(dst, y, None)))

    def _conflict(self, path: str, rec: Record) -> None:
        f, e = self._get("folder", path), self._get("export", path)
        if f is None or e is None:
            winner: Side = "folder" if f is not None else "export"
            reason = "deleted on one side, changed on the other: the change wins"
            self.conflicts.append(Conflict(path, winner, other(winner), None, reason))
            self._put(winner, path, rec)
            return
        if (f.kind is Kind.DIR) != (e.kind is Kind.DIR):
            winner = "folder" if f.kind is Kind.DIR else "export"
            reason = "a directory on one side, a file on the other: the directory keeps the name"
        else:
            winner = "folder" if f.mtime_ns >= e.mtime_ns else "export"
            reason = "changed on both sides: the newer keeps the name"
        self._put(winner, path, rec, force_aside=True, reason=reason)

    def _one_way(self, path: str, src: Side, rec: Record) -> None:
        dst = other(src)
        x, y = self._get(src, path), self._get(dst, path)
        if x is not None:
            reason = "changed on the target side: the source keeps the name"
            self._put(src, path, rec, reason=reason)
            return
        assert y is not None
        source_had_it = rec.on(src) is not None
        if (
            source_had_it
            and self.policy.mirror_deletes
            and unchanged(y, rec.on(dst))
            and self._deletable(dst, path, y)
        ):
            self._delete(dst, path, y)
        elif (source_had_it or rec.on(dst) is not None) and rec != Record.of(dst, y, None):
            # The source deleted it but the target's copy stays: remember that we know.
            self._add(_REMEMBER, path, Remember(path, Record.of(dst, y, None)))

    # -- building blocks

    def _put(
        self,
        src: Side,
        path: str,
        rec: Record,
        *,
        force_aside: bool = False,
        reason: str = "",
    ) -> None:
        """Make the other side hold src's entry at `path`, keeping whatever it would replace
        unless that is exactly what the last sync left there."""
        dst = other(src)
        x, y = self._get(src, path), self._get(dst, path)
        assert x is not None
        actions: list[Action] = []
        if y is not None:
            ours = unchanged(y, rec.on(dst)) and not force_aside
            if not ours or (y.kind is Kind.DIR and x.kind is not Kind.DIR):
                kept = conflict_name(path, dst, y.mtime_ns, self.taken)
                self.taken.add(kept)
                actions.append(Rename(dst, path, kept, y, aside=True))
                self.conflicts.append(Conflict(path, src, dst, kept, reason or "kept both"))
                if y.kind is Kind.DIR:
                    self.set_aside.append(path)  # its children moved with it
                y = None
            elif y.kind is not Kind.DIR and x.kind is Kind.DIR:
                actions.append(Delete(dst, path, y))
                y = None
        if x.kind is Kind.DIR:
            if y is None:
                actions.append(MakeDir(dst, path, x))
            self._add(_MKDIR, path, *actions)
        else:
            actions.append(Copy(src, path, x, y))
            self._add(_COPY, path, *actions)

    def _delete(self, side: Side, path: str, entry: Entry) -> None:
        self.deleting[side].add(path)
        self._add(_DELETE, path, Delete(side, path, entry))

    def _children(self, side: Side, path: str) -> list[str]:
        prefix = path + "/"
        return [p for p in self.snaps[side] if p.startswith(prefix)]

    def _children_stay(self, side: Side, path: str) -> bool:
        return any(p not in self.deleting[side] for p in self._children(side, path))

    def _deletable(self, side: Side, path: str, entry: Entry) -> bool:
        """A directory goes only when everything in it goes too (decided before, deeper)."""
        return entry.kind is not Kind.DIR or not self._children_stay(side, path)


def _strictly_under(path: str, top: str) -> bool:
    return path.startswith(top + "/")


__all__ = [
    "MASS_DELETION_MIN_FILES",
    "Action",
    "Conflict",
    "Copy",
    "Delete",
    "MakeDir",
    "Plan",
    "Remember",
    "Rename",
    "Step",
    "conflict_name",
    "mass_deletion",
    "reconcile",
]
