"""The SyncAgent on real directories: initial sync, continuous sync, conflicts, loops, the
mass-deletion guard, the seed profile's semantics."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

from filesim.errors import FilesimError
from filesim.sync.agent import SyncAgent, agent_for
from filesim.topology import Layout, default_topology
from filesim.topology.model import Server, StorageMode
from filesim.waiting import apoll_until

from .conftest import Rig, files, make_server, running, settled, stop, temps, write

T0 = 1_700_000_000.0  # explicit mtimes: 'newer' must not depend on timestamp granularity


def quick(server: Server) -> Server:
    """The same server with settle_ms=0, so tests need not wait for files to settle."""
    return server.model_copy(update={"sync": server.sync.model_copy(update={"settle_ms": 0})})


async def test_initial_sync_both_ways_preserves_mtime_and_mode(rig: Rig) -> None:
    write(rig.folder, "in/a.txt", "from folder", mtime=T0)
    write(rig.store, "out/b.txt", "from export", mtime=T0 + 1)
    os.chmod(rig.store / "out/b.txt", 0o600)
    os.symlink("a.txt", rig.folder / "in/link")
    agent = rig.agent()
    await agent.run_once()
    assert (
        files(rig.folder)
        == files(rig.store)
        == {
            "in/a.txt": b"from folder",
            "out/b.txt": b"from export",
        }
    )
    assert os.stat(rig.store / "in/a.txt").st_mtime == T0
    assert os.stat(rig.folder / "out/b.txt").st_mode & 0o777 == 0o600
    assert os.readlink(rig.store / "in/link") == "a.txt"
    before = agent.status().actions
    await agent.run_once()
    assert agent.status().actions == before, "a second sync found work: an echo"
    assert temps(rig.folder) == temps(rig.store) == []


async def test_conflict_keeps_both_versions(rig: Rig) -> None:
    write(rig.folder, "doc.txt", "v1", mtime=T0)
    agent = rig.agent()
    await agent.run_once()
    write(rig.folder, "doc.txt", "folder edit", mtime=T0 + 10)
    write(rig.store, "doc.txt", "export edit (newer)", mtime=T0 + 20)
    await agent.run_once()
    for root in (rig.folder, rig.store):
        tree = files(root)
        assert tree["doc.txt"] == b"export edit (newer)"
        [kept] = [p for p in tree if p.startswith("doc.conflict-folder-")]
        assert kept.endswith(".txt") and tree[kept] == b"folder edit"
    [conflict] = [e for e in rig.events if e.kind == "sync.conflict"]
    assert conflict.path == "doc.txt" and conflict.detail["winner"] == "export"
    assert agent.status().conflicts == 1


async def test_deleted_on_one_side_edited_on_the_other_keeps_the_edit(rig: Rig) -> None:
    write(rig.folder, "x", "v1", mtime=T0)
    agent = rig.agent()
    await agent.run_once()
    (rig.folder / "x").unlink()
    write(rig.store, "x", "edited", mtime=T0 + 5)
    await agent.run_once()
    assert files(rig.folder) == files(rig.store) == {"x": b"edited"}


@pytest.mark.slow
async def test_no_loops_1000_alternating_writes(rig: Rig) -> None:
    """Each write is one copy; presenting its echo to the agent (as a watcher or the NFS
    server would) is recognised and does nothing. (The echo on the export side is a WRITE
    without COMMIT: held for the stall time, short here.)"""
    agent = rig.agent(make_server(settle_ms=0, stall_s=0.01))
    await agent.run_once()
    for i in range(1000):
        side_root, other_root = (rig.folder, rig.store) if i % 2 == 0 else (rig.store, rig.folder)
        write(side_root, "ping.txt", f"write {i}", mtime=T0 + i)
        if i % 2 == 0:
            agent.notify_folder_change("ping.txt")
        else:
            agent.notify_export_change("ping.txt", "commit")
        await agent.flush(timeout=10)
        assert (other_root / "ping.txt").read_bytes() == f"write {i}".encode()
        # The echo: our publish shows up as a change event on the other side.
        agent.notify_folder_change("ping.txt")
        agent.notify_export_change("ping.txt", "write")
        await agent.flush(timeout=10)
    await agent.run_once()
    assert rig.kinds().count("sync.copy") == 1000
    assert agent.status().actions == 1000


async def test_no_loops_with_the_real_watcher(rig: Rig) -> None:
    """Each write crosses once; the echo of each copy (the watcher seeing our own publish in the
    folder) is looked at and does nothing."""
    agent = rig.agent(make_server(settle_ms=50))
    task = await running(agent)
    try:
        for i in range(40):
            src, dst = (rig.folder, rig.store) if i % 2 == 0 else (rig.store, rig.folder)
            write(src, "w.txt", f"round {i}", mtime=T0 + i)
            if src == rig.store:
                agent.notify_export_change("w.txt", "commit")
            arrived = partial(_has, dst / "w.txt", f"round {i}".encode())
            await apoll_until(arrived, 10, interval=0.01, what=f"round {i}")
        await settled(agent, rig.folder, rig.store)  # every echo has been looked at
        copies = [e for e in rig.events if e.kind == "sync.copy" and e.path == "w.txt"]
        assert len(copies) == 40, [e.side for e in copies]
        assert agent.status().echoes == 0
    finally:
        await stop(task)


def _has(path: Path, data: bytes) -> bool:
    return _read(path) == data


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


@pytest.mark.slow
async def test_continuous_create_rename_delete_through_the_watcher(rig: Rig) -> None:
    agent = rig.agent(quick(make_server()))
    task = await running(agent)
    try:
        write(rig.folder, "dir/a.txt", "hello")
        await apoll_until(lambda: _read(rig.store / "dir/a.txt") == b"hello", 10, what="copy")
        ino = os.stat(rig.store / "dir/a.txt").st_ino
        os.rename(rig.folder / "dir", rig.folder / "moved")
        await apoll_until(lambda: (rig.store / "moved/a.txt").exists(), 10, what="rename")
        assert os.stat(rig.store / "moved/a.txt").st_ino == ino, "a rename became a copy"
        await agent.flush(timeout=10)  # the disk shows a cycle's work before its events are out
        assert "sync.rename" in rig.kinds()
        (rig.folder / "moved/a.txt").unlink()
        await apoll_until(lambda: not (rig.store / "moved/a.txt").exists(), 10, what="delete")
        await agent.flush(timeout=10)
        assert agent.status().p50_ms is not None
    finally:
        await stop(task)


async def test_export_changes_arrive_by_notification(rig: Rig) -> None:
    # A write without COMMIT waits a minute: only a COMMIT (+ settle) can make it move now.
    server = make_server(settle_ms=100, stall_s=60)
    agent = rig.agent(server)
    task = await running(agent)
    try:
        write(rig.store, "nfs.bin", b"\0" * 1000)
        agent.notify_export_change("nfs.bin", "write")
        # Barrier: a file committed after nfs.bin was written has crossed, so the agent has
        # had its chance to move nfs.bin too (it was marked first) — and must not have.
        write(rig.store, "later.bin", b"committed")
        agent.notify_export_change("later.bin", "commit")
        await apoll_until(lambda: (rig.folder / "later.bin").exists(), 10, what="later.bin")
        assert not (rig.folder / "nfs.bin").exists(), "moved before settling"
        assert "nfs.bin" in agent._schedule.marks, "it is still waiting for its writer"
        agent.notify_export_change("nfs.bin", "commit")
        await apoll_until(lambda: (rig.folder / "nfs.bin").exists(), 10, what="committed file")
        os.rename(rig.store / "nfs.bin", rig.store / "renamed.bin")
        agent.notify_export_change("nfs.bin", "rename", "renamed.bin")
        await apoll_until(lambda: (rig.folder / "renamed.bin").exists(), 10, what="rename")
        assert not (rig.folder / "nfs.bin").exists()
    finally:
        await stop(task)


async def test_mass_deletion_halts_and_resume_from_another_process_continues(
    tmp_path: Path,
) -> None:
    layout = Layout(tmp_path)
    server = quick(default_topology().server("nas-input-1"))
    agent = agent_for(server, layout)
    assert agent is not None
    folder, store = layout.folder(server), layout.store(server)
    for i in range(5):
        write(folder, f"f{i}.txt", str(i))
    try:
        await agent.run_once()
        assert len(files(store)) == 5
        task = await running(agent)
        # The folder empties at once, as an unmount would: hold the sync until it has.
        gate = asyncio.Event()

        async def held() -> None:
            await gate.wait()

        agent.gate = held
        for i in range(5):
            (folder / f"f{i}.txt").unlink()
        gate.set()
        await apoll_until(lambda: agent.halted() is not None, 10, what="the guard")
        assert "folder lost all 5 files" in (agent.halted() or "")
        # The cycle that halted did nothing, and a halted agent runs no other.
        assert len(files(store)) == 5, "deleted despite the halt"
        done = subprocess.run(
            [sys.executable, "-m", "filesim", "sync", "resume", "nas-input-1", "--root", str(tmp_path)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "resume requested" in done.stdout
        await apoll_until(lambda: files(store) == {}, 10, what="deletions after resume")
        await agent.flush(timeout=10)  # the resumed cycle is over (it lifts the halt after)
        assert agent.halted() is None
        await stop(task)
    finally:
        agent.close()


async def test_halt_survives_a_restart(rig: Rig) -> None:
    for i in range(4):
        write(rig.folder, f"f{i}", "x")
    agent = rig.agent()
    await agent.run_once()
    for i in range(4):
        (rig.folder / f"f{i}").unlink()
    await agent.run_once()
    assert agent.halted()
    agent.close()
    rig.agents.remove(agent)
    again = rig.agent()
    assert again.halted(), "the halt was forgotten"
    await again.run_once()
    assert len(files(rig.store)) == 4
    again.resume()
    await again.run_once()
    assert files(rig.store) == {} and again.halted() is None


# --- profiles ----------------------------------------------------------------------------------


def seed(name: str) -> Server:
    return quick(default_topology("seed").server(name))


async def test_seed_input_syncs_at_start_only_and_mirrors_deletions(rig: Rig) -> None:
    server = seed("nas-input-1")
    write(rig.folder, "in1", "a")
    write(rig.folder, "in2", "b")
    write(rig.store, "written-by-system", "c")
    agent = rig.agent(server)
    await asyncio.wait_for(agent.run(), 10)  # not continuous: returns after the initial sync
    assert set(files(rig.store)) == {"in1", "in2", "written-by-system"}
    assert set(files(rig.folder)) == {"in1", "in2"}, "seed input copied export -> folder"
    (rig.folder / "in1").unlink()
    (rig.store / "in2").unlink()  # consumed by the system under test
    await agent.run()
    # Deletions in the folder are mirrored; like the original, a consumed input comes back.
    assert set(files(rig.store)) == {"in2", "written-by-system"}


async def test_seed_output_never_deletes_tester_files(rig: Rig) -> None:
    agent = rig.agent(seed("nas-output-1"))
    task = await running(agent)
    try:
        write(rig.folder, "dropped-by-tester.txt", "mine")
        write(rig.store, "result.csv", "1,2,3")
        agent.notify_export_change("result.csv", "commit")
        await apoll_until(lambda: (rig.folder / "result.csv").exists(), 10, what="output copied")
        (rig.store / "result.csv").unlink()
        agent.notify_export_change("result.csv", "remove")
        # Folder changes do not flow here, so no marker can cross: a full rescan is the
        # barrier (it looks at every path the watcher may still report).
        agent.notify_folder_change(None)
        await agent.flush(timeout=10)
        assert files(rig.folder) == {"dropped-by-tester.txt": b"mine", "result.csv": b"1,2,3"}
        assert "dropped-by-tester.txt" not in files(rig.store)
    finally:
        await stop(task)


async def test_seed_backup_copies_folder_to_export_without_deletes(rig: Rig) -> None:
    agent = rig.agent(seed("nas-backup"))
    write(rig.folder, "b1", "1")
    await agent.run()
    (rig.folder / "b1").unlink()
    write(rig.folder, "b2", "2")
    await agent.run()
    assert files(rig.store) == {"b1": b"1", "b2": b"2"}


async def test_default_input_consumed_file_is_gone_for_good(rig: Rig) -> None:
    server = quick(default_topology().server("nas-input-1"))
    write(rig.folder, "job.json", "{}")
    agent = rig.agent(server)
    await agent.run_once()
    (rig.store / "job.json").unlink()
    agent.notify_export_change("job.json", "remove")
    await agent.flush(timeout=10)
    assert not (rig.folder / "job.json").exists()
    agent.close()
    rig.agents.remove(agent)
    await rig.agent(server).run_once()  # a restart does not resurrect it
    assert files(rig.folder) == files(rig.store) == {}


# --- watchers ----------------------------------------------------------------------------------


@pytest.mark.slow
async def test_polling_watcher_for_network_folders(rig: Rig) -> None:
    agent = rig.agent(quick(make_server(watcher="polling", poll_interval_s=0.1)))
    task = await running(agent)
    try:
        write(rig.folder, "polled.txt", "seen by polling")
        await apoll_until(lambda: (rig.store / "polled.txt").exists(), 10, what="polling")
    finally:
        await stop(task)


async def test_periodic_rescan_catches_missed_changes(rig: Rig) -> None:
    agent = rig.agent(quick(make_server(rescan_interval_s=0.3)))
    task = await running(agent)
    try:
        write(rig.store, "missed.txt", "no event")
        await apoll_until(lambda: (rig.folder / "missed.txt").exists(), 10, what="rescan")
    finally:
        await stop(task)


# --- construction ------------------------------------------------------------------------------


def test_direct_mode_has_no_agent(tmp_path: Path) -> None:
    server = make_server().model_copy(update={"storage": StorageMode.DIRECT})
    assert agent_for(server, Layout(tmp_path)) is None
    with pytest.raises(FilesimError, match="nothing to sync"):
        SyncAgent(server, tmp_path, tmp_path, tmp_path / "a.db")
    assert agent_for(make_server(direction="none"), Layout(tmp_path)) is None


async def test_two_agents_on_one_archive_are_refused(rig: Rig) -> None:
    first = rig.agent()
    task = await running(first)
    try:
        with pytest.raises(FilesimError, match="already running"):
            await rig.agent().run_once()
    finally:
        await stop(task)


async def test_status_reports_what_the_runtime_shows(rig: Rig) -> None:
    write(rig.folder, "s", "1")
    agent = rig.agent()
    await agent.run_once()
    status = agent.status()
    assert status.direction == "both" and status.halted is None
    assert status.actions == 1 and status.pending == 0 and status.ready
    assert status.last_sync is not None and status.last_sync <= time.time()


async def test_a_remounted_folder_is_watched_again(rig: Rig) -> None:
    agent = rig.agent(quick(make_server(rescan_interval_s=3600)))
    task = await running(agent)
    try:
        watching = agent._watchers.watchers
        first = watching[0]
        os.rename(rig.folder, rig.folder.with_name("unmounted"))
        rig.folder.mkdir()  # "mounted again": same path, a new directory
        agent.notify_folder_change(None)  # what an overflow or the periodic rescan does
        await apoll_until(lambda: watching and watching[0] is not first, 10, what="rearm")
        write(rig.folder, "after-remount.txt", "seen")
        await apoll_until(lambda: (rig.store / "after-remount.txt").exists(), 10, what="new watch")
    finally:
        await stop(task)


async def test_a_failing_cycle_is_reported_and_the_agent_carries_on(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = rig.agent(quick(make_server()))
    cycles = agent._sync.cycles
    real = cycles.run
    failures = iter([OSError(5, "Input/output error")])

    def flaky(*args: object) -> object:
        for exc in failures:
            raise exc
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(cycles, "run", flaky)
    task = await running(agent)
    try:
        write(rig.folder, "x.txt", "eventually")
        await apoll_until(lambda: (rig.store / "x.txt").exists(), 10, what="the retry")
        assert "sync.error" in rig.kinds()
        assert not task.done()
    finally:
        await stop(task)


async def test_a_new_empty_store_is_filled_again_not_mirrored_as_deletions(rig: Rig) -> None:
    for i in range(5):
        write(rig.folder, f"keep{i}.txt", str(i))
    agent = rig.agent()
    await agent.run_once()
    agent.close()
    rig.agents.remove(agent)
    shutil.rmtree(rig.store)  # a fresh emptyDir after a pod restart
    rig.store.mkdir()
    again = rig.agent()
    await again.run_once()
    assert again.halted() is None
    assert len(files(rig.folder)) == 5 and files(rig.store) == files(rig.folder)
    assert "sync.reset" in rig.kinds()


async def test_removals_seen_in_a_watched_store_are_not_a_mass_deletion(rig: Rig) -> None:
    """`filesim sync NAME` in its own container watches the store: the system under test
    consuming every input over NFS must not halt the sync."""
    for i in range(4):
        write(rig.folder, f"in{i}", str(i))
    agent = rig.agent(quick(make_server()), watch_export=True)
    task = await running(agent)
    try:
        await apoll_until(lambda: len(files(rig.store)) == 4, 10, what="initial copy")
        for i in range(4):
            (rig.store / f"in{i}").unlink()
        await apoll_until(lambda: files(rig.folder) == {}, 10, what="consumed inputs to vanish")
        assert agent.halted() is None
    finally:
        await stop(task)


async def test_removals_reported_just_after_the_scan_are_not_a_mass_deletion(rig: Rig) -> None:
    """The race behind the test above, made certain: a cycle's scan finds the store emptied
    before the NFS server's reports of the removals arrive (they come while it runs)."""
    for i in range(4):
        write(rig.folder, f"in{i}", str(i))
    agent = rig.agent()
    await agent.run_once()
    for i in range(4):
        (rig.store / f"in{i}").unlink()
    gates = 0

    async def reports_come_late() -> None:
        nonlocal gates
        gates += 1
        if gates == 2:  # the first plan saw the store empty and nothing reported yet
            for i in range(4):
                agent.notify_export_change(f"in{i}", "remove")

    agent.gate = reports_come_late
    await agent.run_once()
    assert agent.halted() is None, agent.halted()
    assert files(rig.folder) == {}
    assert gates >= 2, "the first plan did not see the emptied store unreported"


async def test_mode_changes_and_awkward_names_travel(rig: Rig) -> None:
    names = ["with space.txt", "ünïcødé/日本.txt", "a|pipe", "-dash", ".hidden"]
    for name in names:
        write(rig.folder, name, name, mtime=T0)
    agent = rig.agent()
    await agent.run_once()
    assert files(rig.store) == {n: n.encode() for n in names}
    os.chmod(rig.folder / "with space.txt", 0o600)
    await agent.run_once()
    assert os.stat(rig.store / "with space.txt").st_mode & 0o777 == 0o600


async def test_a_file_dropped_during_the_initial_sync_is_not_left_for_the_rescan(rig: Rig) -> None:
    for i in range(2000):  # an initial sync long enough to drop a file while it runs
        write(rig.folder, f"bulk/f{i:04d}", b"x" * 512)
    agent = rig.agent(make_server(settle_ms=0, rescan_interval_s=3600))
    task = asyncio.create_task(agent.run())
    try:
        await apoll_until(lambda: agent.status().running, 10, interval=0.01, what="the watcher")
        assert not agent.ready, "the initial sync should still be running"
        write(rig.folder, "late.txt", "dropped mid-sync")
        await apoll_until(lambda: (rig.store / "late.txt").exists(), 20, what="late.txt")
        assert (rig.store / "late.txt").read_text() == "dropped mid-sync"
    finally:
        await stop(task)


async def test_cancelling_the_loop_just_as_it_is_woken_stops_it(rig: Rig) -> None:
    """asyncio.wait_for (Python 3.11) drops a cancellation that arrives while the future it
    waits for has just completed: a loop sleeping that way would ignore the stop request."""
    agent = rig.agent(make_server(settle_ms=60_000))  # pokes that make nothing due
    task = await running(agent)
    agent.notify_folder_change("poke")  # wakes the sleeping loop: its wait completes...
    task.cancel()  # ...and the stop request arrives in the same turn of the event loop
    done, _ = await asyncio.wait({task}, timeout=10)
    assert done, "the agent ignored the cancellation"
    assert task.cancelled()


# --- readiness and the flush barrier -------------------------------------------------------------


async def test_ready_once_the_initial_sync_is_over(rig: Rig) -> None:
    write(rig.folder, "a.txt", "before the start")
    agent = rig.agent(quick(make_server()))
    assert not agent.ready and not agent.status().ready
    task = asyncio.create_task(agent.run())
    try:
        await agent.wait_ready(timeout=30)
        assert (rig.store / "a.txt").exists(), "ready before the initial sync was over"
        status = agent.status()
        assert agent.ready and status.ready and status.running
        assert rig.kinds().count("sync.ready") == 1
        await agent.wait_ready(timeout=1)  # at once when ready
    finally:
        await stop(task)
    assert not agent.status().running and agent.ready


async def test_wait_ready_raises_when_the_run_ends_before(rig: Rig) -> None:
    first = rig.agent()
    task = await running(first)
    try:
        second = rig.agent()
        run = asyncio.create_task(second.run())
        with pytest.raises(FilesimError, match="stopped before its initial sync was over"):
            await second.wait_ready(timeout=10)
        with pytest.raises(FilesimError, match="already running"):
            await run
    finally:
        await stop(task)


async def test_flush_during_the_initial_sync_waits_for_it(rig: Rig) -> None:
    for i in range(1000):
        write(rig.folder, f"bulk/f{i:04d}", b"x")
    agent = rig.agent(quick(make_server()))
    task = asyncio.create_task(agent.run())
    try:
        await apoll_until(lambda: agent.status().running, 10, interval=0.01, what="the loop")
        await agent.flush(timeout=60)
        assert agent.ready
        assert len(files(rig.store)) == 1000
    finally:
        await stop(task)


# --- converging: when one full cycle is enough ---------------------------------------------------


async def test_an_initial_sync_that_only_adds_takes_one_cycle_and_leaves_nothing(
    rig: Rig,
) -> None:
    """No confirming rescan after a plan of copies and new directories that all completed:
    the next full cycle finds nothing to do (what the rescan would have checked)."""
    for i in range(40):
        write(rig.folder, f"d{i % 4}/sub/f{i:02d}.txt", f"folder {i}", mtime=T0)
    write(rig.store, "out/b.txt", "from export", mtime=T0)
    agent = rig.agent()
    await agent.run_once()
    assert agent.status().cycles == 1
    assert files(rig.folder) == files(rig.store) and len(files(rig.store)) == 41
    before = agent.status().actions
    await agent.run_once()
    assert agent.status().cycles == 2, "a cycle with nothing to do ends converging"
    assert agent.status().actions == before, "the one cycle had left work behind"


async def test_with_watchers_the_initial_sync_still_confirms_and_takes_its_echoes(
    rig: Rig,
) -> None:
    """run(): the confirming full cycle stays; it takes the marks the watched store reported
    for the initial sync's own copies, before the continuous loop starts."""
    for i in range(4):
        write(rig.folder, f"in{i}", str(i))
    agent = rig.agent(quick(make_server()), watch_export=True)
    task = await running(agent)
    try:
        assert agent.status().cycles >= 2
        assert len(files(rig.store)) == 4
    finally:
        await stop(task)


async def test_a_renamed_directory_is_confirmed_by_another_cycle(rig: Rig) -> None:
    """The planner leaves a renamed subtree for the next plan: converging must run it."""
    write(rig.folder, "d/a.txt", "v1", mtime=T0)
    agent = rig.agent()
    await agent.run_once()
    os.rename(rig.folder / "d", rig.folder / "e")
    write(rig.folder, "e/a.txt", "v2", mtime=T0 + 10)
    cycles = agent.status().cycles
    await agent.run_once()
    assert files(rig.store) == {"e/a.txt": b"v2"}
    assert agent.status().cycles - cycles >= 2
