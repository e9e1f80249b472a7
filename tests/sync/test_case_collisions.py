"""A side whose names ignore case (macOS, Windows, NTFS) never gets one file copied over
another that differs only in case, and a case-only rename reaches it (issue 13).

The real-filesystem cases run the planner and the executor on NTFS under
`lowntfs-3g -o ignore_case`; that mount lists names in lower case, so the names NTFS keeps
are read back through a case-sensitive mount of the same image."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from filesim.sync.actions import Copy, Delete
from filesim.sync.execute import Executor
from filesim.sync.outcome import Status
from filesim.sync.plan import reconcile
from filesim.sync.scan import scan
from filesim.sync.state import Entry, Kind, Record
from filesim.topology.layout import case_insensitive
from filesim.topology.model import Direction, SyncPolicy
from tests.support.ntfs import NtfsImage, ntfs_ignore_case

from .conftest import write

BOTH = SyncPolicy(direction=Direction.BOTH, settle_ms=0)


def _file(size: int, ino: int) -> Entry:
    return Entry(Kind.FILE, size, 1_700_000_000 * 10**9 + size, 0o644, ino)


def test_a_name_colliding_on_the_folded_side_is_copied_to_a_conflict_copy() -> None:
    folder = {"Budget.xlsx": _file(10, 1), "budget.xlsx": _file(20, 2)}
    plan = reconcile({}, folder, {}, BOTH, folded=frozenset({"export"}))
    copies = [a for a in plan.actions if isinstance(a, Copy)]
    assert [(c.path, c.to) for c in copies] == [
        ("Budget.xlsx", None),
        ("budget.xlsx", "budget.conflict-folder-20231114T221320Z.xlsx"),
    ]
    [conflict] = plan.conflicts
    assert conflict.kept_as == copies[1].to and "both kept" in conflict.reason
    # exact names on both sides: both copied as they are
    plain = reconcile({}, folder, {}, BOTH)
    assert [(c.path, c.to) for c in plain.actions if isinstance(c, Copy)] == [
        ("Budget.xlsx", None),
        ("budget.xlsx", None),
    ]


def test_a_case_only_rename_without_inodes_deletes_the_old_spelling_first() -> None:
    """Windows scandir reports no inode: the rename is planned as delete + copy, and on a
    folded side the delete must come first (after the copy it would delete the copy)."""
    old = _file(5, 0)
    archive = {"Report.txt": Record(old, _file(5, 9))}
    plan = reconcile(
        archive, {"REPORT.TXT": old}, {"Report.txt": _file(5, 9)}, BOTH,
        folded=frozenset({"export"}),
    )  # fmt: skip
    [step] = [s for s in plan.steps if any(isinstance(a, Copy | Delete) for a in s)]
    assert [type(a).__name__ for a in step] == ["Delete", "Copy"]  # and no Delete step after
    assert step[0].path == "Report.txt" and step[1].path == "REPORT.TXT"


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[tuple[Path, NtfsImage]]:
    with ntfs_ignore_case(tmp_path) as ntfs:
        (ntfs.mountpoint / "store").mkdir()
        folder = tmp_path / "folder"
        folder.mkdir()
        yield folder, ntfs


def _as_kept(ntfs: NtfsImage) -> dict[str, Entry]:
    """The store's scan under the names NTFS keeps (what a case-preserving system lists)."""
    kept = {n.casefold(): n for n in ntfs.names_on_disk("store")}
    return {kept[p.casefold()]: e for p, e in scan(ntfs.mountpoint / "store").items()}


def _sync(folder: Path, ntfs: NtfsImage, archive: dict[str, Record]) -> None:
    store = ntfs.mountpoint / "store"
    folded = frozenset(
        side for side, root in (("folder", folder), ("export", store)) if case_insensitive(root)
    )
    assert folded == {"export"}
    plan = reconcile(archive, scan(folder), _as_kept(ntfs), BOTH, folded=folded)  # type: ignore[arg-type]
    ex = Executor(folder, store, settle_ms=0)
    try:
        outcomes = ex.run(plan.steps)
    finally:
        ex.close()
    assert all(o.status is Status.DONE for o in outcomes), outcomes
    for out in outcomes:
        for path, record in out.updates:
            if record is None:
                archive.pop(path, None)
            else:
                archive[path] = record


def test_two_names_differing_in_case_both_reach_ntfs(sides: tuple[Path, NtfsImage]) -> None:
    folder, ntfs = sides
    write(folder, "Budget.xlsx", b"the real budget")
    write(folder, "budget.xlsx", b"a draft")
    _sync(folder, ntfs, {})
    names = ntfs.names_on_disk("store")
    assert len(names) == 2 and names[0] == "Budget.xlsx", names
    assert names[1].startswith("budget.conflict-folder-")
    store = ntfs.mountpoint / "store"
    assert (store / "Budget.xlsx").read_bytes() == b"the real budget"
    assert (store / names[1]).read_bytes() == b"a draft"


def test_a_case_only_rename_reaches_ntfs(sides: tuple[Path, NtfsImage]) -> None:
    folder, ntfs = sides
    store = ntfs.mountpoint / "store"
    write(folder, "Report.txt", b"figures")
    archive: dict[str, Record] = {}
    _sync(folder, ntfs, archive)
    assert ntfs.names_on_disk("store") == ["Report.txt"]
    os.rename(folder / "Report.txt", folder / "REPORT.TXT")
    _sync(folder, ntfs, archive)
    assert ntfs.names_on_disk("store") == ["REPORT.TXT"]
    assert (store / "report.txt").read_bytes() == b"figures"
