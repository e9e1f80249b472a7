"""The event loop a server runs on, in `filesim up` and in each worker process alike."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (`pip install filesim[fast]`): cheaper per small RPC.
    `FILESIM_NO_UVLOOP` set: the standard loop (None) even then."""
    if os.environ.get("FILESIM_NO_UVLOOP"):
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
