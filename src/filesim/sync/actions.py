"""What a plan is made of: the actions on the two trees, grouped in steps, and conflicts.

Plain frozen values produced by `plan.reconcile()`, performed by `execute.Executor`, journalled
by the agent. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from filesim.sync.state import Entry, Record, Side, other


@dataclass(frozen=True, slots=True)
class Copy:
    """Publish `entry` (a file or symlink on side `src`) at `path` on the other side."""

    src: Side
    path: str
    entry: Entry
    replaces: Entry | None
    """What the target must still hold when the copy lands (None: nothing)."""
    to: str | None = None
    """Another name on the target side (a conflict copy where `path` would collide with a
    case variant on a case-insensitive side); None: `path`."""

    @property
    def dst(self) -> Side:
        return other(self.src)

    @property
    def target(self) -> str:
        return self.path if self.to is None else self.to


@dataclass(frozen=True, slots=True)
class MakeDir:
    """Create directory `path` on `side`, mirroring `source` (the directory on the other side)."""

    side: Side
    path: str
    source: Entry


@dataclass(frozen=True, slots=True)
class Delete:
    side: Side
    path: str
    entry: Entry
    """What must still be there; anything else is a new change and is left alone."""


@dataclass(frozen=True, slots=True)
class Rename:
    side: Side
    src: str
    dst: str
    entry: Entry
    aside: bool = False
    """True: a conflict loser set aside (the archive row stays with the name, not the copy)."""


@dataclass(frozen=True, slots=True)
class Remember:
    """Archive-only: the sides already agree (or knowingly differ); record it, touch nothing."""

    path: str
    record: Record | None


Action = Copy | MakeDir | Delete | Rename | Remember
Step = tuple[Action, ...]
"""Actions on one path, run in order; a failed action skips the rest of its step."""


@dataclass(frozen=True, slots=True)
class Conflict:
    path: str
    winner: Side
    loser: Side
    kept_as: str | None
    """Where the losing version now lives (None when nothing needed keeping, e.g. delete vs
    modify: the modification simply wins)."""
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    steps: tuple[Step, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    halt: str | None = None
    """Set by the mass-deletion guard: nothing may be done."""

    @property
    def actions(self) -> list[Action]:
        return [action for step in self.steps for action in step]

    @property
    def work(self) -> list[Action]:
        """The actions that touch a disk (everything but Remember)."""
        return [a for a in self.actions if not isinstance(a, Remember)]
