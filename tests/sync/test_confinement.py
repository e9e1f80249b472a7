"""Confinement (issue 10 item 1): the synchroniser never reads or writes outside its two trees,
whatever is swapped in while it works — a symlink where a directory was, a directory renamed
away — and leaves no temp file behind."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from filesim.sync import publish
from filesim.sync.actions import Copy, Delete
from filesim.sync.execute import Executor
from filesim.sync.outcome import Status
from filesim.sync.scan import stat_path
from filesim.sync.state import Side, other
from filesim.testing import NasTopology, start_topology
from filesim.topology.layout import TEMP_PREFIX
from filesim.waiting import poll_until
from tests.runtime.libnfs import Libnfs

from .conftest import TREE_BACKENDS, write


def all_temps(*roots: Path) -> list[str]:
    """Temp files anywhere under the roots (never following a symlink)."""
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            found += [os.path.join(dirpath, n) for n in dirnames + filenames
                      if n.startswith(TEMP_PREFIX)]  # fmt: skip
    return found


def regular_files(root: Path) -> set[str]:
    """Relative paths of the regular files under root (never following a symlink)."""
    out = set()
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            full = Path(dirpath, name)
            if full.is_file() and not full.is_symlink():
                out.add(full.relative_to(root).as_posix())
    return out


@pytest.fixture(params=TREE_BACKENDS)
def ex(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Executor]:
    """An executor on each tree backend: directory fds, and the path walk Windows uses."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "export").mkdir()
    (tmp_path / "outside").mkdir()
    executor = Executor(
        tmp_path / "folder", tmp_path / "export", settle_ms=0, backend=request.param
    )
    yield executor
    executor.close()


def swap_for_symlink(root: Path, name: str, target: Path) -> None:
    """What an NFS client (or a tester) did: the directory renamed away, a symlink in its
    place."""
    os.rename(root / name, root / f"{name}-away")
    os.symlink(target, root / name)


@pytest.mark.parametrize("dst", ["export", "folder"])
def test_a_symlink_swapped_in_for_the_target_directory_is_refused(
    ex: Executor, tmp_path: Path, dst: Side
) -> None:
    src = other(dst)
    write(ex.roots[src], "race/a.txt", "tester data")
    (ex.roots[dst] / "race").mkdir()
    entry = stat_path(ex.roots[src], "race/a.txt")
    assert entry is not None
    step = (Copy(src, "race/a.txt", entry, None),)  # planned before the swap
    swap_for_symlink(ex.roots[dst], "race", tmp_path / "outside")
    [out] = ex.run([step])
    assert os.listdir(tmp_path / "outside") == [], "written through the symlink"
    assert out.status is Status.FAILED and "refused to follow" in out.error, out
    assert all_temps(ex.roots[dst], tmp_path / "outside") == []


def test_a_delete_under_a_swapped_in_symlink_does_not_reach_outside(
    ex: Executor, tmp_path: Path
) -> None:
    outside = tmp_path / "outside" / "keep.txt"
    write(ex.roots["export"], "race/keep.txt", "precious")
    os.link(ex.roots["export"] / "race/keep.txt", outside)  # the very same file outside
    entry = stat_path(ex.roots["export"], "race/keep.txt")
    assert entry is not None
    swap_for_symlink(ex.roots["export"], "race", tmp_path / "outside")
    [out] = ex.run([(Delete("export", "race/keep.txt", entry),)])
    assert outside.read_text() == "precious", "deleted through the symlink"
    assert out.status is Status.STALE


def test_a_directory_renamed_away_during_a_copy_gets_nothing_and_no_temp_file(
    ex: Executor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The target directory is renamed away (and a new one made) while the copy runs: the copy
    is stale, nothing lands in the moved directory, and its temp file is removed (the issue's
    77 orphaned .filesim-tmp-* files)."""
    write(ex.roots["folder"], "race/a.txt", "tester data")
    store = ex.roots["export"]
    (store / "race").mkdir()
    entry = stat_path(ex.roots["folder"], "race/a.txt")
    assert entry is not None
    real = publish.copy_data

    def copy_then_swap(src: int, dst: int, *sizes: int) -> None:
        real(src, dst, *sizes)
        os.rename(store / "race", store / "race-away")
        (store / "race").mkdir()

    monkeypatch.setattr(publish, "copy_data", copy_then_swap)
    [out] = ex.run([(Copy("folder", "race/a.txt", entry, None),)])
    assert out.status is not Status.DONE
    assert all_temps(store) == [], "a temp file was left behind"
    assert regular_files(store) == set()


# -- the race of the issue, over NFS --------------------------------------------------------------

RACE = """
servers:
  - {name: nas-race, role: input, fsid: 1, sync: {settle_ms: 0, backend: BACKEND}}
"""
FILES = 2000


@pytest.mark.integration
@pytest.mark.parametrize("backend", TREE_BACKENDS)
def test_a_symlink_swapped_in_over_nfs_mid_sync_lets_nothing_out(
    tmp_path: Path, backend: str
) -> None:
    """A tester writes 2,000 files into race/ while an NFS client renames race away and creates
    a symlink race -> a directory outside the export: nothing is written outside, no temp file
    stays behind, the agent keeps running and both sides end up agreeing. On both tree
    backends: the path walk Windows uses must hold as well as directory fds."""
    outside = tmp_path / "outside"
    outside.mkdir()
    with start_topology(tmp_path / "sim", config=RACE.replace("BACKEND", backend)) as topo:
        nas = topo.server("nas-race")
        (nas.folder / "race").mkdir()
        topo.flush()
        assert (nas.store / "race").is_dir()
        written = threading.Event()
        tester = threading.Thread(target=_write_files, args=(nas.folder / "race", written))
        tester.start()
        try:
            poll_until(lambda: _count(nas.store / "race") >= 200, 60, what="200 files synced")
            with Libnfs(nas.port, nas.export) as nfs:
                # The agent may make race/ again between the two calls: the tester is still
                # filling the folder's race/, and its next file has to land somewhere. Then
                # that one is moved away too, and the symlink tried again. How often the agent
                # wins depends on the machine's load (CI lost ten tries in a row once), so
                # the bound is time, not a count; once the tester is done the agent stops
                # making race/ again and the swap goes in.
                deadline = time.monotonic() + 90
                attempt = 0
                while True:
                    moved = nfs.rename("/race", f"/race-away-{attempt}")
                    assert moved.ok, moved.error
                    linked = nfs.symlink(str(outside), "/race")
                    attempt += 1
                    if linked.ok or "EXIST" not in linked.error or time.monotonic() > deadline:
                        break
                assert linked.ok, f"after {attempt} tries: {linked.error}"
        finally:
            tester.join(120)
        assert written.is_set(), "the tester did not finish"
        topo.flush(120)
        topo.flush(120)  # what the first round changed (conflict copies) has travelled too
        assert sorted(os.listdir(outside)) == [], "files were written outside the export"
        assert all_temps(nas.store, nas.folder) == []
        status = _status(topo, "nas-race")
        assert status.running and status.state == "running", status
        assert regular_files(nas.folder) == regular_files(nas.store)


def _write_files(directory: Path, done: threading.Event) -> None:
    """The tester: files created through a descriptor of the directory it opened first (a
    tester's own writes never follow the symlink the client put up)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(FILES):
            f = os.open(f"t{i:05d}.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=fd)
            try:
                os.write(f, f"tester file {i}\n".encode())
            finally:
                os.close(f)
        done.set()
    finally:
        os.close(fd)


def _count(directory: Path) -> int:
    try:
        return len(os.listdir(directory))
    except OSError:
        return 0


def _status(topo: NasTopology, name: str):  # type: ignore[no-untyped-def]
    server = topo.status().server(name)
    assert server.sync_status is not None
    return server.sync_status
