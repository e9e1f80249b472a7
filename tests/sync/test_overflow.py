"""A watcher that loses events (the OS queue overflowed) makes the agent rescan everything, and
says so: a `sync.events-lost` event, a log line, `events_lost` in the status.

What each platform reports, from watchdog 7.1.1's source: on Linux the inotify observer emits
an `EventsLostEvent` after an IN_Q_OVERFLOW, on Windows the ReadDirectoryChangesW observer one
after a buffer overflow; on macOS watchdog passes the FSEvents MustScanSubDirs/UserDropped/
KernelDropped flags over, and filesim's emitter (sync/watch.py) queues the same event.

The Linux overflow is a real one here: the observer's reader thread is starved of the GIL while
`touch` makes events faster than the kernel queue (16384 by default) holds. Windows and macOS
cannot run here: for them the event their observer emits is fed in at the platform's boundary
(the emitter's queue), which is what the real emitter does."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from watchdog.events import EventsLostEvent

from filesim.sync.agent import SyncAgent
from filesim.sync.watch import EventWatcher, events_were_lost
from filesim.waiting import apoll_until

from .conftest import Rig, make_server, running, stop, write


def _emitters(agent: SyncAgent) -> list[object]:
    watchers = [w for w in agent._watchers.watchers if isinstance(w, EventWatcher)]
    assert watchers, "the agent watches with OS events"
    return [e for w in watchers if w._observer is not None for e in w._observer.emitters]


async def _rescans_after(rig: Rig, agent: SyncAgent, overflow: object) -> None:
    """`overflow()` makes the folder watcher lose events; the store gets a file nobody
    announced: only a full rescan finds it."""
    write(rig.store, "unannounced.txt", "nobody told the agent")
    await agent.flush(timeout=10)
    assert not (rig.folder / "unannounced.txt").exists(), "synced without being told"
    assert callable(overflow)
    overflow()
    await apoll_until(lambda: (rig.folder / "unannounced.txt").exists(), 30, what="rescan")
    status = agent.status()
    assert status.events_lost >= 1 and status.events_lost_at is not None, status
    assert "sync.events-lost" in rig.kinds(), rig.kinds()


async def test_the_event_a_windows_or_macos_observer_emits_triggers_a_rescan(rig: Rig) -> None:
    agent = rig.agent(make_server(settle_ms=0, rescan_interval_s=3600, watcher="events"))
    task = await running(agent)
    try:

        def overflow() -> None:
            for emitter in _emitters(agent):
                path = emitter.watch.path  # type: ignore[attr-defined]
                emitter.queue_event(EventsLostEvent(path, is_directory=True))  # type: ignore[attr-defined]

        await _rescans_after(rig, agent, overflow)
    finally:
        await stop(task)


def test_fsevents_dropped_flags_are_recognised() -> None:
    def native(**flags: bool) -> SimpleNamespace:
        unset = {"must_scan_subdirs": False, "is_user_dropped": False, "is_kernel_dropped": False}
        return SimpleNamespace(**{**unset, **flags})

    plain = native()
    assert not events_were_lost([plain, plain])
    for flag in ("must_scan_subdirs", "is_user_dropped", "is_kernel_dropped"):
        assert events_were_lost([plain, native(**{flag: True})]), flag


def _starve_the_reader(directory: str, seconds: float) -> None:
    """Hold the GIL (a pure-Python loop, a long switch interval) while `touch` updates one file
    thousands of times: the observer's reader thread cannot drain the kernel queue."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    touch = subprocess.Popen(["touch", *["busy.txt"] * 30_000], cwd=directory)
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
    finally:
        sys.setswitchinterval(old)
        touch.wait(60)


@pytest.mark.slow
async def test_a_real_inotify_overflow_triggers_a_rescan(rig: Rig) -> None:
    agent = rig.agent(make_server(settle_ms=0, rescan_interval_s=3600, watcher="events"))
    task = await running(agent)
    try:
        await _rescans_after(rig, agent, lambda: _starve_the_reader(str(rig.folder), 4.0))
    finally:
        await stop(task)
