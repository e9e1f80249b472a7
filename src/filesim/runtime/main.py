"""The foreground process of `filesim up` / `serve`: one event loop until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

from filesim.events import EventBus
from filesim.runtime.memory import tune_malloc
from filesim.runtime.runner import TopologyRunner
from filesim.topology import Layout, Topology

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ReadyCallback = Callable[[list[dict[str, Any]]], None]


def run_topology(
    topology: Topology,
    layout: Layout,
    *,
    on_ready: ReadyCallback | None = None,
    **options: Any,
) -> None:
    """Run the topology until a stop signal; raises FilesimError when it cannot start."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    tune_malloc()
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(topology, layout, on_ready, options))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (`pip install filesim[fast]`): cheaper per small RPC."""
    if os.environ.get("FILESIM_NO_UVLOOP"):
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _serve(
    topology: Topology, layout: Layout, on_ready: ReadyCallback | None, options: dict[str, Any]
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    events = EventBus(layout.events_file) if options.get("write_runtime", True) else EventBus()
    runner = TopologyRunner(topology, layout, events=events, **options)
    try:
        await runner.start()
        if on_ready is not None:
            on_ready([s.describe() for s in runner.servers])
        if runner.http is not None:
            print(f"HTTP API: {runner.http.url}", flush=True)
        await stop.wait()
    finally:
        await runner.stop()
        events.close()
