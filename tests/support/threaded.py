"""An NfsServer running on its own event loop in a background thread, for socket-level tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filesim.nfs.export import Export, ExportConfig
from filesim.nfs.limits import ServerLimits
from filesim.nfs.notify import ChangeListener, NotifyingVfs
from filesim.nfs.server import NfsServer
from filesim.nfs.vfs import Vfs
from filesim.topology.layout import is_temp_name
from tests.support.backend import store


@contextmanager
def serving(
    root: Path,
    listener: ChangeListener | None = None,
    limits: ServerLimits | None = None,
    wrap: Callable[[Vfs], Vfs] | None = None,
    **options: object,
) -> Iterator[NfsServer]:
    """A server of `root`; `listener` hears of each change (on the thread that made it);
    `wrap` composes a storage layer of the test's around the store."""
    root.mkdir(parents=True, exist_ok=True)
    storage: Vfs = store(root, hidden=is_temp_name)
    if wrap is not None:
        storage = wrap(storage)
    if listener is not None:
        storage = NotifyingVfs(storage, listener)
    export = Export(ExportConfig(name="t", **options), storage, b"s" * 32)  # type: ignore[arg-type]
    server = NfsServer(export, "127.0.0.1", 0, limits=limits)
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10), "server did not start"
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
