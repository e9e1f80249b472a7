"""Case collisions on a case-insensitive side (macOS, Windows, NTFS). Pure, no I/O.

Such a side holds one file for `Report.txt` and `report.txt`. A plan made for exact names
would copy the second over the first, or delete a file right after copying its new spelling
over it (a case-only rename on the other side). `fold` rewrites a plan's steps for each
case-insensitive side: a case-only rename deletes the old spelling before the copy of the
new one lands; a name colliding with another file that stays is copied to a conflict name
(`name.conflict-<side>-<UTC>.ext`), so both are kept and neither is overwritten.
"""

from __future__ import annotations

from collections.abc import Callable

from filesim.sync.actions import Action, Conflict, Copy, Delete, Rename
from filesim.sync.state import Side, Snapshot

PlanStep = tuple[int, int, str, tuple[Action, ...]]
"""(phase, depth, path, actions): the planner's steps before they are ordered."""


def fold(
    steps: list[PlanStep],
    side: Side,
    snap: Snapshot,
    rename_aside: Callable[[str, Side, int], str],
    conflicts: list[Conflict],
) -> list[PlanStep]:
    """`steps`, made safe for `side` whose names ignore case; see the module doc."""
    leaving = _leaving(steps, side)
    names = {p.casefold(): p for p in snap if p not in leaving}
    deleted = {p.casefold(): p for p, a in leaving.items() if isinstance(a, Delete)}
    moved: set[str] = set()
    out: list[PlanStep] = []
    for phase, depth, path, actions in sorted(steps, key=lambda s: s[2]):
        copy = actions[-1]
        if not (isinstance(copy, Copy) and copy.dst == side and copy.replaces is None):
            out.append((phase, depth, path, actions))
            continue
        key, target = path.casefold(), path
        holder = names.get(key)
        if holder is None and key in deleted and deleted[key] != path:
            # A case-only rename: the old spelling goes first, in the same step.
            actions = (leaving[deleted[key]], *actions)
            moved.add(deleted[key])
        elif holder is not None and holder != path:
            target = rename_aside(path, copy.src, copy.entry.mtime_ns)
            actions = (*actions[:-1], _retarget(copy, target))
            reason = f"{holder!r} holds this name on the case-insensitive {side}: both kept"
            conflicts.append(Conflict(path, copy.src, side, target, reason))
        names[target.casefold()] = target
        out.append((phase, depth, path, actions))
    return [s for s in out if not (len(s[3]) == 1 and _is_delete_of(s[3][0], side, moved))]


def safe_rename(new: str, old: str, snap: Snapshot) -> bool:
    """Whether renaming `old` to `new` on a case-insensitive side clobbers no other file."""
    key = new.casefold()
    return all(p.casefold() != key or p == old for p in snap)


def _leaving(steps: list[PlanStep], side: Side) -> dict[str, Action]:
    """Paths on `side` that the plan deletes or renames away, with the action doing it."""
    out: dict[str, Action] = {}
    for _, _, _, actions in steps:
        for a in actions:
            if isinstance(a, Delete) and a.side == side:
                out[a.path] = a
            elif isinstance(a, Rename) and a.side == side:
                out[a.src] = a
    return out


def _retarget(copy: Copy, to: str) -> Copy:
    return Copy(copy.src, copy.path, copy.entry, None, to)


def _is_delete_of(action: Action, side: Side, paths: set[str]) -> bool:
    return isinstance(action, Delete) and action.side == side and action.path in paths
