"""What running a step came to: its status, the archive updates and events it produced.

Shared by the executor (which fills outcomes in), the scheduler (which decides when a path that
did not finish is looked at again) and the agent (which accounts for them). No I/O.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from filesim.events import Event
from filesim.sync.actions import Action, Copy, Rename, Step
from filesim.sync.state import Entry, Update, shown
from filesim.sync.tree import Dir, Moved, Refused

log = logging.getLogger("filesim.sync")


class Status(StrEnum):
    DONE = "done"
    STALE = "stale"
    """The path changed since it was planned: plan it again."""
    UNSETTLED = "unsettled"
    """The source was written too recently: try again once it has settled."""
    FAILED = "failed"
    """An OS error (permissions, disk full, a symlink where a directory must be...) or any
    other exception: try again later, later each time it fails again."""


class Stale(Exception):
    """Raised inside an action: the path no longer holds what the plan saw."""


class Unsettled(Exception):
    """Raised inside an action: the source was written less than settle_ms ago."""

    def __init__(self, ready_at: float) -> None:
        super().__init__(ready_at)
        self.ready_at = ready_at


@dataclass(slots=True)
class Staged:
    """A copy whose temp file is written (not fsync'd, not renamed into place yet)."""

    copy: Copy
    dir: Dir
    """The target directory, held (tree.Dir) until the temp file is landed or removed."""
    tmp: str
    """The temp file's name in it."""
    published: Entry


@dataclass
class Outcome:
    step: Step
    status: Status
    updates: list[Update] = field(default_factory=list)
    rekeys: list[tuple[str, str]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    done: int = 0
    """How many actions that touched a disk completed."""
    error: str = ""
    ready_at: float = 0.0
    """For UNSETTLED: when (time.time()) the source will have settled."""
    staged: Staged | None = None

    @property
    def paths(self) -> set[str]:
        out: set[str] = set()
        for a in self.step:
            if isinstance(a, Rename):
                out |= {a.src, a.dst}
            else:
                out.add(a.path)
        return out


def describe(action: Action) -> str:
    """'Copy folder -> export a/b.txt' (display text: valid UTF-8 whatever the name)."""
    name = type(action).__name__
    if isinstance(action, Copy):
        return f"{name} {action.src} -> {action.dst} {shown(action.path)}"
    if isinstance(action, Rename):
        return f"{name} on {action.side} {shown(action.src)} -> {shown(action.dst)}"
    side = getattr(action, "side", "")
    return f"{name} on {side} {shown(action.path)}" if side else f"{name} {shown(action.path)}"


@contextlib.contextmanager
def outcome_of(out: Outcome, action: Action) -> Iterator[None]:
    """Turn an action's failure into the outcome's status. Nothing escapes: whatever goes
    wrong in one action is a failed action, never a failed cycle or a dead agent."""
    try:
        yield
    except (Stale, Moved):
        out.status = Status.STALE
    except Unsettled as exc:
        out.status, out.ready_at = Status.UNSETTLED, exc.ready_at
    except Refused as exc:
        where = shown(str(exc.filename)) if exc.filename else "a path component"
        out.status = Status.FAILED
        out.error = f"{describe(action)}: refused to follow {where}: {exc.strerror}"
    except OSError as exc:
        what = exc.strerror or str(exc)
        out.status, out.error = Status.FAILED, f"{describe(action)}: {what}"
    except Exception as exc:  # a bug: keep the agent alive, and say where
        log.exception("%s failed unexpectedly", describe(action))
        out.status = Status.FAILED
        out.error = f"{describe(action)}: {type(exc).__name__}: {shown(str(exc))}"
