"""Waiting for a condition: the one poll loop of filesim (CLI, verify, fixture and tests).

A condition that a callback or an event can signal should be awaited that way; polling is for
what only shows from outside (a port that answers, a file that appears in another process).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from filesim.errors import FilesimError

T = TypeVar("T")


class WaitTimeout(FilesimError, TimeoutError):
    """The condition did not hold within the time allowed."""


def poll_until(
    predicate: Callable[[], T | None],
    timeout: float,
    *,
    interval: float = 0.05,
    what: str = "the condition",
) -> T:
    """Call `predicate` until it returns a truthy value, and return that value.

    Raises WaitTimeout naming `what` after `timeout` seconds. The predicate is always called at
    least once, and once more right at the deadline, so a slow machine never loses the race.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(min(interval, left))


async def apoll_until(
    predicate: Callable[[], T | Awaitable[T | None] | None],
    timeout: float,
    *,
    interval: float = 0.05,
    what: str = "the condition",
) -> T:
    """`poll_until` for coroutines: the predicate may be sync or async; sleeps on the loop."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(min(interval, left))
