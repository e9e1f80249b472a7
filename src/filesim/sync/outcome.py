"""What running a step came to: its status, the archive updates and events it produced.

Shared by the executor (which fills outcomes in), the scheduler (which decides when a path that
did not finish is looked at again) and the agent (which accounts for them). No I/O.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from filesim.events import Event
from filesim.sync.actions import Action, Copy, Rename, Step
from filesim.sync.state import Entry, Update


class Status(StrEnum):
    DONE = "done"
    STALE = "stale"
    """The path changed since it was planned: plan it again."""
    UNSETTLED = "unsettled"
    """The source was written too recently: try again once it has settled."""
    FAILED = "failed"
    """An OS error (permissions, disk full...): try again later."""


class Stale(Exception):
    """Raised inside an action: the path no longer holds what the plan saw."""


class Unsettled(Exception):
    """Raised inside an action: the source was written less than settle_ms ago."""

    def __init__(self, ready_at: float) -> None:
        super().__init__(ready_at)
        self.ready_at = ready_at


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
    staged: tuple[Copy, str, Entry] | None = None
    """A copy whose temp file is written but not yet renamed into place."""

    @property
    def paths(self) -> set[str]:
        out: set[str] = set()
        for a in self.step:
            if isinstance(a, Rename):
                out |= {a.src, a.dst}
            else:
                out.add(a.path)
        return out


@contextlib.contextmanager
def outcome_of(out: Outcome, action: Action) -> Iterator[None]:
    """Turn an action's failure into the outcome's status."""
    try:
        yield
    except Stale:
        out.status = Status.STALE
    except Unsettled as exc:
        out.status, out.ready_at = Status.UNSETTLED, exc.ready_at
    except Exception as exc:
        # (an OSError mostly; on Windows also a sharing violation, retried like any failure):
        # the agent goes on with the others and reports it, it never dies of one path.
        out.status, out.error = Status.FAILED, f"{type(action).__name__}: {exc}"
