"""The SyncAgent on real directories: initial sync, continuous sync, conflicts, loops, the
mass-deletion guard, the seed profile's semantics."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from filesim.errors import FilesimError
from filesim.sync.agent import SyncAgent, agent_for
from filesim.topology import Layout, default_topology
from filesim.topology.model import Server, StorageMode

from .conftest import Rig, files, make_server, running, stop, temps, wait_until, write

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
    server would) is recognised and does nothing."""
    agent = rig.agent()
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
    agent = rig.agent(quick(make_server()))
    task = await running(agent)
    try:
        for i in range(40):
            src, dst = (rig.folder, rig.store) if i % 2 == 0 else (rig.store, rig.folder)
            write(src, "w.txt", f"round {i}", mtime=T0 + i)
            if src == rig.store:
                agent.notify_export_change("w.txt", "commit")
            target, want = dst / "w.txt", f"round {i}".encode()
            await wait_until(lambda t=target, w=want: _read(t) == w, 10, f"round {i}")
        await asyncio.sleep(0.5)  # let every echo event arrive and be looked at
        await agent.flush(timeout=10)
        assert rig.kinds().count("sync.copy") == 40
    finally:
        await stop(task)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


async def test_continuous_create_rename_delete_through_the_watcher(rig: Rig) -> None:
    agent = rig.agent(quick(make_server()))
    task = await running(agent)
    try:
        write(rig.folder, "dir/a.txt", "hello")
        await wait_until(lambda: _read(rig.store / "dir/a.txt") == b"hello", what="copy")
        ino = os.stat(rig.store / "dir/a.txt").st_ino
        os.rename(rig.folder / "dir", rig.folder / "moved")
        await wait_until(lambda: (rig.store / "moved/a.txt").exists(), what="rename")
        assert os.stat(rig.store / "moved/a.txt").st_ino == ino, "a rename became a copy"
        assert "sync.rename" in rig.kinds()
        (rig.folder / "moved/a.txt").unlink()
        await wait_until(lambda: not (rig.store / "moved/a.txt").exists(), what="delete")
        assert agent.status().p50_ms is not None
    finally:
        await stop(task)


async def test_export_changes_arrive_by_notification(rig: Rig) -> None:
    server = make_server(settle_ms=60_000)  # only COMMIT can make this file move now
    agent = rig.agent(server.model_copy(update={"sync": server.sync}))
    task = await running(agent)
    try:
        write(rig.store, "nfs.bin", b"\0" * 1000)
        agent.notify_export_change("nfs.bin", "write")
        await asyncio.sleep(0.3)
        assert not (rig.folder / "nfs.bin").exists(), "moved before settling"
        agent.notify_export_change("nfs.bin", "commit")
        await wait_until(lambda: (rig.folder / "nfs.bin").exists(), what="committed file")
        os.rename(rig.store / "nfs.bin", rig.store / "renamed.bin")
        agent.notify_export_change("nfs.bin", "rename", "renamed.bin")
        await wait_until(lambda: (rig.folder / "renamed.bin").exists(), what="rename")
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
        for i in range(5):
            (folder / f"f{i}.txt").unlink()
        await wait_until(lambda: agent.halted() is not None, what="the guard")
        assert "folder lost all 5 files" in (agent.halted() or "")
        await asyncio.sleep(0.3)
        assert len(files(store)) == 5, "deleted despite the halt"
        done = subprocess.run(
            [sys.executable, "-m", "filesim", "sync", "resume", "nas-input-1", "--root", str(tmp_path)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "resume requested" in done.stdout
        await wait_until(lambda: files(store) == {}, what="deletions after resume")
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
        await wait_until(lambda: (rig.folder / "result.csv").exists(), what="output copied")
        (rig.store / "result.csv").unlink()
        agent.notify_export_change("result.csv", "remove")
        await agent.flush(timeout=10)
        await asyncio.sleep(0.2)
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


async def test_watcher_overflow_triggers_a_full_rescan(rig: Rig) -> None:
    agent = rig.agent(quick(make_server(rescan_interval_s=3600)))
    task = await running(agent)
    try:
        write(rig.store, "unannounced.txt", "nobody told the agent")
        await asyncio.sleep(0.3)
        assert not (rig.folder / "unannounced.txt").exists()
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost"
        )
        await wait_until(lambda: (rig.folder / "unannounced.txt").exists(), what="rescan")
    finally:
        await stop(task)


async def test_polling_watcher_for_network_folders(rig: Rig) -> None:
    agent = rig.agent(quick(make_server(watcher="polling", poll_interval_s=0.1)))
    task = await running(agent)
    try:
        write(rig.folder, "polled.txt", "seen by polling")
        await wait_until(lambda: (rig.store / "polled.txt").exists(), what="polling")
    finally:
        await stop(task)


async def test_periodic_rescan_catches_missed_changes(rig: Rig) -> None:
    agent = rig.agent(quick(make_server(rescan_interval_s=0.3)))
    task = await running(agent)
    try:
        write(rig.store, "missed.txt", "no event")
        await wait_until(lambda: (rig.folder / "missed.txt").exists(), what="rescan")
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
        first = agent._watchers[0]
        os.rename(rig.folder, rig.folder.with_name("unmounted"))
        rig.folder.mkdir()  # "mounted again": same path, a new directory
        agent.notify_folder_change(None)  # what an overflow or the periodic rescan does
        await wait_until(lambda: agent._watchers and agent._watchers[0] is not first, what="rearm")
        write(rig.folder, "after-remount.txt", "seen")
        await wait_until(lambda: (rig.store / "after-remount.txt").exists(), what="new watch")
    finally:
        await stop(task)


async def test_a_failing_cycle_is_reported_and_the_agent_carries_on(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = rig.agent(quick(make_server()))
    real = agent._cycle_blocking
    failures = iter([OSError(5, "Input/output error")])

    def flaky(*args: object) -> object:
        for exc in failures:
            raise exc
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(agent, "_cycle_blocking", flaky)
    task = await running(agent)
    try:
        write(rig.folder, "x.txt", "eventually")
        await wait_until(lambda: (rig.store / "x.txt").exists(), what="the retry")
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
        await wait_until(lambda: len(files(rig.store)) == 4, what="initial copy")
        for i in range(4):
            (rig.store / f"in{i}").unlink()
        await wait_until(lambda: files(rig.folder) == {}, what="consumed inputs to vanish")
        assert agent.halted() is None
    finally:
        await stop(task)


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
    await wait_until(lambda: bool(agent._watchers), 10, "the watcher")
    assert not agent.initial_done, "the initial sync should still be running"
    write(rig.folder, "late.txt", "dropped mid-sync")
    try:
        await wait_until(lambda: (rig.store / "late.txt").exists(), 20, "late.txt in the store")
        assert (rig.store / "late.txt").read_text() == "dropped mid-sync"
    finally:
        await stop(task)
