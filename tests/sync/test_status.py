"""The measurements behind SyncStatus: the latency window and the echo check, on their own and
fed through a real agent."""

from __future__ import annotations

import os

import pytest

from filesim.sync.state import Entry, Kind
from filesim.sync.status import EchoCheck, LatencyWindow, SyncStatus

from .conftest import Rig, write

T0 = 1_700_000_000.0


def test_latency_percentiles() -> None:
    window = LatencyWindow(size=100)
    assert window.percentile(0.5) is None
    window.add(7.0)
    assert window.percentile(0.99) == 7.0
    for ms in range(1, 201):  # only the last 100 stay: 101..200
        window.add(float(ms))
    assert len(window) == 100
    assert window.percentile(0.50) == pytest.approx(150.5)
    assert window.percentile(0.99) == pytest.approx(199.0, abs=0.1)


def f(size: int, ino: int, mtime_ns: int = 10**18) -> Entry:
    return Entry(Kind.FILE, size, mtime_ns, 0o644, ino)


def test_echo_is_the_very_file_we_published_coming_back() -> None:
    check = EchoCheck()
    assert not check.copied("folder", "a", f(1, ino=11), published=f(1, ino=21))
    # The export now holds our copy (inode 21). An edit there is a new file: no echo.
    assert not check.copied("export", "a", f(2, ino=22), published=f(2, ino=12))
    # Copying back what we published in the folder (inode 12) is one.
    assert check.copied("folder", "a", f(2, ino=12), published=f(2, ino=23))
    assert check.count == 1
    # An equal file that is not ours (another inode) is not.
    assert not check.copied("export", "a", f(2, ino=99), published=None)
    assert check.count == 1


def test_echo_memory_is_bounded() -> None:
    check = EchoCheck(size=2)
    for i in range(3):
        check.copied("folder", f"p{i}", f(1, ino=i), published=f(1, ino=100 + i))
    assert not check.copied("export", "p0", f(1, ino=100), published=None), "forgotten"
    assert check.copied("export", "p2", f(1, ino=102), published=None)


async def test_an_agent_counts_an_echo_when_its_own_copy_comes_back(rig: Rig) -> None:
    """White-box: the archive forgets one path (as a lost or broken archive would), so the
    next plan no longer knows the export's file is the agent's own copy; the folder's file is
    older, so the export's version wins and is copied back. The echo check, which does not
    rely on the archive, must count that."""
    write(rig.folder, "doc.txt", "v1", mtime=T0)
    agent = rig.agent()
    await agent.run_once()
    assert agent.status().echoes == 0
    published = os.stat(rig.store / "doc.txt")
    agent._archive.apply_batch([], [("doc.txt", None)])
    write(rig.folder, "doc.txt", "an older, other version", mtime=T0 - 100)
    await agent.run_once()
    assert (rig.folder / "doc.txt").read_text() == "v1", "the export's copy came back"
    assert os.stat(rig.store / "doc.txt").st_ino == published.st_ino
    status = agent.status()
    assert status.echoes == 1
    assert [e.path for e in rig.events if e.kind == "sync.echo"] == ["doc.txt"]
    assert SyncStatus.model_validate(status.model_dump()) == status
