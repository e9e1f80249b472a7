"""Following the event bus over HTTP: the backlog, then each new event as it happens, as
server-sent events (the dashboard's live feed, `EventSource`) or JSON lines (`filesim logs`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from filesim.events import Event, EventBus

KEEPALIVE_S = 15.0

EventFilter = Callable[[Event], bool]


def matches(server: str | None, path: str | None) -> EventFilter:
    """Events of `server` (None: any) concerning `path` (None: any; a rename's destination
    counts, so a file's history follows it when it moves)."""

    def test(event: Event) -> bool:
        if server is not None and event.server != server:
            return False
        return path is None or event.path == path or event.detail.get("dest") == path

    return test


def recent(bus: EventBus, wanted: EventFilter, server: str | None, limit: int) -> list[Event]:
    found = [e for e in bus.recent(server) if wanted(e)]
    return found[-limit:] if limit > 0 else found


async def follow(
    bus: EventBus,
    streams: set[asyncio.Queue[Event | None]],
    server: str | None,
    limit: int,
    fmt: str,
    wanted: EventFilter | None = None,
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    test = wanted or matches(server, None)
    queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=10_000)
    streams.add(queue)

    def deliver(event: Event) -> None:
        if test(event):
            with contextlib.suppress(asyncio.QueueFull):  # a reader too slow loses events
                queue.put_nowait(event)

    def subscriber(event: Event) -> None:  # may be called from worker threads
        with contextlib.suppress(RuntimeError):  # loop closed: stopping
            loop.call_soon_threadsafe(deliver, event)

    unsubscribe = bus.subscribe(subscriber)
    try:
        for past in recent(bus, test, server, limit):
            yield _frame(past, fmt)
        if fmt == "sse":
            yield ": following\n\n"
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                if fmt == "sse":
                    yield ": keepalive\n\n"
                continue
            if event is None:  # the API is stopping
                return
            yield _frame(event, fmt)
    finally:
        streams.discard(queue)
        unsubscribe()


def _frame(event: Event, fmt: str) -> str:
    data = event.to_json()
    return f"event: {event.kind}\ndata: {data}\n\n" if fmt == "sse" else data + "\n"
