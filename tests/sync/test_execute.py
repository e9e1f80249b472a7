"""The executor: settle, consistency checks, atomic publish, temp files."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from filesim.sync import fdtree, pathtree, publish
from filesim.sync.actions import Copy, Delete, MakeDir, Rename
from filesim.sync.backend import Backend
from filesim.sync.execute import Executor
from filesim.sync.outcome import Status
from filesim.sync.scan import stat_path
from filesim.topology.layout import TEMP_PREFIX
from filesim.waiting import apoll_until

from .conftest import TREE_BACKENDS, Rig, files, make_server, running, stop, temps, write


@pytest.fixture(params=TREE_BACKENDS)
def ex(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Executor]:
    """An executor on each tree backend: directory fds, and the path walk Windows uses."""
    (tmp_path / "f").mkdir()
    (tmp_path / "e").mkdir()
    executor = Executor(tmp_path / "f", tmp_path / "e", settle_ms=0, backend=request.param)
    yield executor
    executor.close()


def copy_of(ex: Executor, path: str) -> Copy:
    entry = stat_path(ex.roots["folder"], path)
    assert entry is not None
    return Copy("folder", path, entry, stat_path(ex.roots["export"], path))


def test_copy_publishes_with_mtime_and_mode(ex: Executor) -> None:
    src = write(ex.roots["folder"], "d/a.bin", os.urandom(3000), mtime=1_600_000_000)
    os.chmod(src, 0o640)
    (ex.roots["export"] / "d").mkdir()
    [out] = ex.run([(copy_of(ex, "d/a.bin"),)])
    assert out.status is Status.DONE
    dst = ex.roots["export"] / "d/a.bin"
    assert dst.read_bytes() == src.read_bytes()
    assert dst.stat().st_mtime == 1_600_000_000 and dst.stat().st_mode & 0o777 == 0o640
    [(path, record)] = out.updates
    assert path == "d/a.bin" and record is not None
    assert record.export == stat_path(ex.roots["export"], "d/a.bin")


@pytest.mark.parametrize("batch", [1, 40], ids=["one", "a batch with syncfs"])
def test_any_mode_is_published_exactly_whatever_the_umask(ex: Executor, batch: int) -> None:
    """The temp file is created with its final permissions when the umask lets them through;
    the umask, setuid/setgid and sticky bits must still come out exactly as the source's."""
    modes = [0o777, 0o666, 0o640, 0o4755, 0o2750, 0o1777, 0o000]
    (ex.roots["export"] / "m").mkdir()
    old = os.umask(0o027)
    try:
        steps = []
        for i in range(batch):
            mode = modes[i % len(modes)]
            src = write(ex.roots["folder"], f"m/{i:02d}-{mode:o}", os.urandom(100))
            os.chmod(src, mode)
            steps.append((copy_of(ex, f"m/{i:02d}-{mode:o}"),))
        outs = ex.run(steps)
    finally:
        os.umask(old)
    assert [o.status for o in outs] == [Status.DONE] * batch
    for out in outs:
        [(path, record)] = out.updates
        want = os.stat(ex.roots["folder"] / path).st_mode & 0o7777
        got = os.stat(ex.roots["export"] / path).st_mode & 0o7777
        assert got == want, f"{path}: {got:o}"
        assert record is not None and record.export == stat_path(ex.roots["export"], path)


def test_nothing_is_put_in_a_directory_the_plan_did_not_make(ex: Executor) -> None:
    """A copy, a rename or a MakeDir whose target directory is missing is stale, and makes
    no directory on the way: one made so would have no archive record, and the next plan
    would take it for a new directory (and bring back one a client had just removed)."""
    write(ex.roots["folder"], "a/b/c.txt", "c")
    write(ex.roots["folder"], "x.txt", "x")
    write(ex.roots["export"], "y.txt", "y")
    source = stat_path(ex.roots["folder"], "a/b")
    moved = stat_path(ex.roots["export"], "y.txt")
    assert source is not None and moved is not None
    outs = ex.run([(copy_of(ex, "a/b/c.txt"),), (MakeDir("export", "a/b", source),),
                   (Rename("export", "y.txt", "a/y.txt", moved),)])  # fmt: skip
    assert [o.status for o in outs] == [Status.STALE] * 3
    assert all(o.updates == [] and not o.error for o in outs)
    assert sorted(p.name for p in ex.roots["export"].iterdir()) == ["y.txt"]


def test_a_missing_root_is_made_again(ex: Executor) -> None:
    """The folder itself removed by hand: the next copy into it makes it again."""
    write(ex.roots["folder"], "x.txt", "x")
    ex.roots["export"].rmdir()
    [out] = ex.run([(copy_of(ex, "x.txt"),)])
    assert out.status is Status.DONE
    assert (ex.roots["export"] / "x.txt").read_text() == "x"


def test_unsettled_file_waits_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "f").mkdir()
    (tmp_path / "e").mkdir()
    ex = Executor(tmp_path / "f", tmp_path / "e", settle_ms=10_000)
    try:
        write(ex.roots["folder"], "fresh", "just written")
        step = (copy_of(ex, "fresh"),)
        [out] = ex.run([step])
        assert out.status is Status.UNSETTLED and out.ready_at > time.time()
        assert not (ex.roots["export"] / "fresh").exists()
        [out] = ex.run([step], forced=frozenset({"fresh"}))  # an NFS COMMIT
        assert out.status is Status.DONE
    finally:
        ex.close()


def test_source_changed_since_planned_is_stale(ex: Executor) -> None:
    write(ex.roots["folder"], "a", "v1", mtime=1)
    step = (copy_of(ex, "a"),)
    write(ex.roots["folder"], "a", "v2 longer", mtime=2)
    [out] = ex.run([step])
    assert out.status is Status.STALE and out.updates == []
    assert files(ex.roots["export"]) == {}


def test_source_written_during_the_copy_is_not_published(
    ex: Executor, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write(ex.roots["folder"], "growing.log", "line 1\n", mtime=1)
    real = publish.copy_data

    def copy_then_append(a: int, b: int, *sizes: int) -> None:
        real(a, b, *sizes)
        with open(src, "a") as fh:  # the writer is still at it
            fh.write("line 2\n")

    monkeypatch.setattr(publish, "copy_data", copy_then_append)
    [out] = ex.run([(copy_of(ex, "growing.log"),)])
    assert out.status is Status.STALE
    assert files(ex.roots["export"]) == {}, "a half-written file was published"


def test_target_changed_since_planned_is_not_overwritten(ex: Executor) -> None:
    write(ex.roots["folder"], "a", "from folder", mtime=1)
    step = (copy_of(ex, "a"),)
    write(ex.roots["export"], "a", "someone else, meanwhile")
    [out] = ex.run([step])
    assert out.status is Status.STALE
    assert (ex.roots["export"] / "a").read_bytes() == b"someone else, meanwhile"
    assert temps(ex.roots["export"]) == []


def test_a_directory_whose_parent_goes_away_meanwhile_is_stale_not_an_error(
    ex: Executor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client removes the export's `a/b` (deepest first, as `rm -r` over NFS does) just as
    the agent makes `a/b/new` in it: the action is planned again, not a sync error."""
    (ex.roots["folder"] / "a/b/new").mkdir(parents=True)
    (ex.roots["export"] / "a/b").mkdir(parents=True)
    source = stat_path(ex.roots["folder"], "a/b/new")
    assert source is not None
    for cls in (fdtree.FdDir, pathtree.PathDir):
        real = cls.mkdir

        def removed_first(self: Any, name: str, mode: int, real: Any = real) -> None:
            (ex.roots["export"] / "a/b").rmdir()  # gone between the walk and the mkdir
            real(self, name, mode)

        monkeypatch.setattr(cls, "mkdir", removed_first)
    [out] = ex.run([(MakeDir("export", "a/b/new", source),)])
    assert out.status is Status.STALE and not out.error and out.updates == []
    assert not (ex.roots["export"] / "a/b").exists()


def test_copy_data_stops_at_the_size_it_is_given_or_at_eof(tmp_path: Path) -> None:
    """A copy told the size reads no further (the caller checks the file did not grow)."""
    (tmp_path / "src").write_bytes(b"0123456789" * 300_000)  # 3 MB: several 1 MiB reads
    for size, expect in ((-1, 3_000_000), (2_500_000, 2_500_000), (0, 0)):
        src = os.open(tmp_path / "src", os.O_RDONLY)
        dst = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        publish.copy_data(src, dst, size)
        os.close(src)
        os.close(dst)
        assert (tmp_path / "dst").read_bytes() == (b"0123456789" * 300_000)[:expect]


@pytest.mark.parametrize(
    ("backend", "refusing_rename"),
    [
        pytest.param(backend, refusing, id=name)
        for backend, refusing, name in [
            ("fd", True, "renameat2"),
            ("fd", False, "look-then-rename"),
            ("path", False, "path-tree"),
        ]
        if backend in TREE_BACKENDS
    ],
)
def test_a_copy_lands_on_a_free_name_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: Backend, refusing_rename: bool
) -> None:
    """A new file is renamed into place with RENAME_NOREPLACE where the filesystem has it, and
    by a look then a rename where it has not (and always on the path tree): either way a name
    taken meanwhile is kept."""
    (tmp_path / "f").mkdir()
    (tmp_path / "e").mkdir()
    ex = Executor(tmp_path / "f", tmp_path / "e", settle_ms=0, backend=backend)
    request_close = ex.close
    if refusing_rename:
        assert fdtree._renameat2 is not None, "this Linux has renameat2: the fast path is tested"
    else:
        monkeypatch.setattr(fdtree, "_renameat2", None)
    write(ex.roots["folder"], "free", "new", mtime=1)
    write(ex.roots["folder"], "taken", "from folder", mtime=1)
    steps = [(copy_of(ex, "free"),), (copy_of(ex, "taken"),)]
    write(ex.roots["export"], "taken", "someone else, meanwhile")
    free, taken = ex.run(steps)
    assert (free.status, taken.status) == (Status.DONE, Status.STALE)
    assert (ex.roots["export"] / "free").read_text() == "new"
    assert (ex.roots["export"] / "taken").read_text() == "someone else, meanwhile"
    assert temps(ex.roots["export"]) == []
    request_close()


def test_delete_and_rename_check_what_they_act_on(ex: Executor) -> None:
    write(ex.roots["export"], "a", "v1")
    entry = stat_path(ex.roots["export"], "a")
    assert entry is not None
    write(ex.roots["export"], "a", "v2 - changed after planning")
    [out] = ex.run([(Delete("export", "a", entry),)])
    assert out.status is Status.STALE and (ex.roots["export"] / "a").exists()
    fresh = stat_path(ex.roots["export"], "a")
    assert fresh is not None
    write(ex.roots["export"], "b", "taken")
    [out] = ex.run([(Rename("export", "a", "b", fresh),)])
    assert out.status is Status.STALE and (ex.roots["export"] / "b").read_text() == "taken"


def test_clean_temp_removes_leftovers_of_a_crash(ex: Executor) -> None:
    write(ex.roots["folder"], f"sub/{TEMP_PREFIX}abc", "half")
    write(ex.roots["export"], f"{TEMP_PREFIX}def", "half")
    write(ex.roots["export"], "real", "keep")
    assert len(ex.clean_temp()) == 2
    assert temps(ex.roots["folder"]) == temps(ex.roots["export"]) == []
    assert (ex.roots["export"] / "real").exists()


@pytest.mark.parametrize("direction", ["folder->export", "export->folder"])
async def test_a_reader_never_sees_a_partial_file(rig: Rig, direction: str) -> None:
    """A writer produces 24 MiB in pieces, pausing far less than the settle time (a busy
    machine may stretch a 20 ms pause a lot); a reader polls the other side the whole time and
    must see nothing or the whole file."""
    src, dst = (rig.folder, rig.store) if direction == "folder->export" else (rig.store, rig.folder)
    agent = rig.agent(make_server(settle_ms=1000))
    task = await running(agent)
    chunk = os.urandom(1 << 20)
    whole = hashlib.sha256(chunk * 24).hexdigest()
    seen: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                data = (dst / "big.bin").read_bytes()
            except FileNotFoundError:
                continue
            seen.append(hashlib.sha256(data).hexdigest())

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        with open(src / "big.bin", "wb") as fh:
            for _ in range(24):
                fh.write(chunk)
                fh.flush()
                if src == rig.store:
                    agent.notify_export_change("big.bin", "write")
                await asyncio.sleep(0.02)
        if src == rig.store:
            agent.notify_export_change("big.bin", "commit")
        await apoll_until(lambda: seen, 30, interval=0.02, what="the file on the other side")
        await agent.flush(timeout=30)  # nothing else is coming: the reader has seen it all
    finally:
        done.set()
        thread.join()
        await stop(task)
    assert seen, "the file never arrived"
    assert set(seen) == {whole}, "a reader saw a partial file"
