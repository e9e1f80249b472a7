"""The foreground process of `filesim up` / `serve`: one event loop until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from filesim.logs import log_handler
from filesim.runtime.loop import loop_factory
from filesim.runtime.memory import tune_malloc
from filesim.runtime.model import ServerState
from filesim.runtime.runner import TopologyRunner

ReadyCallback = Callable[[list[ServerState]], None]


def run_topology(runner: TopologyRunner, on_ready: ReadyCallback | None = None) -> None:
    """Run `runner`'s topology until a stop signal, then close its event bus; raises
    FilesimError when it cannot start."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[log_handler()],
    )  # fmt: skip
    tune_malloc()
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as loop:
            loop.run(_serve(runner, on_ready))
    finally:
        runner.events.close()


def _on_signals(loop: asyncio.AbstractEventLoop, handler: Callable[[], None]) -> None:
    """Call `handler` on the loop at SIGINT/SIGTERM (and Ctrl-Break where there is one).
    Windows' loops have no add_signal_handler: there `signal.signal` hands over instead."""
    names = ("SIGINT", "SIGTERM", "SIGBREAK")
    for sig in (getattr(signal, n) for n in names if hasattr(signal, n)):
        try:
            loop.add_signal_handler(sig, handler)
        except NotImplementedError:
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(handler))


async def _serve(runner: TopologyRunner, on_ready: ReadyCallback | None) -> None:
    stop = runner.stop_requested  # set by a signal, or by `POST /api/stop` (filesim down)
    _on_signals(asyncio.get_running_loop(), stop.set)
    try:
        await runner.start()
        if on_ready is not None:
            on_ready([s.describe() for s in runner.servers])
        if runner.http is not None:
            print(f"HTTP API: {runner.http.url}", flush=True)
        await stop.wait()
    finally:
        await runner.stop()
