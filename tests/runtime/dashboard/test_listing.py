"""What the Files view computes: sync states, paging, conflict pairs, counts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from filesim.runtime.dashboard.listing import (
    CONFLICT,
    CountCache,
    ListingCache,
    conflicts,
    list_directory,
    ref,
)
from filesim.runtime.model import ServerState, SyncState
from filesim.sync.plan import conflict_name
from filesim.topology.model import Role, StorageMode, SyncPolicy


def state(tmp_path: Path, **sync: object) -> ServerState:
    folder, store = tmp_path / "folder", tmp_path / "store"
    folder.mkdir(exist_ok=True)
    store.mkdir(exist_ok=True)
    policy = SyncPolicy.model_validate(sync)
    return ServerState(
        name="nas", role=Role.INPUT, host="127.0.0.1", port=1, export="/data", folder=folder,
        readonly=False, fsid=1, storage=StorageMode.MIRROR, store=store,
        sync=SyncState(**policy.model_dump(), agent=True),
    )  # fmt: skip


def write(path: Path, data: str, mtime_ns: int) -> None:
    path.write_text(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.mark.parametrize("name", ["report.csv", "archive.tar.gz", ".profile", "noext", "a.b.c"])
@pytest.mark.parametrize("side", ["folder", "export"])
def test_the_conflict_pattern_reads_what_the_synchroniser_writes(name: str, side: str) -> None:
    made = conflict_name(f"dir/{name}", side, 1_700_000_000 * 10**9, {f"dir/{name}"})  # type: ignore[arg-type]
    match = CONFLICT.match(made.rsplit("/", 1)[1].encode())
    assert match is not None and match["side"].decode() == side
    assert (match["stem"] + (match["ext"] or b"")).decode() == name


def test_states_of_entries(tmp_path: Path) -> None:
    s = state(tmp_path)
    write(s.folder / "same.txt", "x", 10**18)
    write(s.store / "same.txt", "x", 10**18)
    write(s.folder / "newer-here.txt", "xx", 2 * 10**18)
    write(s.store / "newer-here.txt", "x", 10**18)
    write(s.folder / "only-folder.txt", "x", 10**18)
    write(s.store / "r.conflict-export-20240101T000000Z.csv", "x", 10**18)
    (s.folder / "dir").mkdir()
    (s.store / "dir").mkdir()
    listing = list_directory(s, ())
    marks = {r.name: r.state for r in listing.rows}
    assert marks == {"dir": "synced", "same.txt": "synced", "newer-here.txt": "pending",
                     "only-folder.txt": "pending",
                     "r.conflict-export-20240101T000000Z.csv": "conflict"}  # fmt: skip
    assert listing.rows[0].name == "dir"  # directories first
    one_way = state(tmp_path, direction="export-to-folder")
    assert {r.name: r.state for r in list_directory(one_way, ()).rows}[
        "only-folder.txt"
    ] == "unsynced"


def test_paging_filter_and_byte_names(tmp_path: Path) -> None:
    s = state(tmp_path)
    for i in range(250):
        (s.folder / f"f{i:03}.txt").write_text("x")
    (s.folder / os.fsdecode(b"odd-\xff name%.txt")).write_text("x")
    first = list_directory(s, (), offset=0, limit=100)
    assert first.total == 251 and len(first.rows) == 100 and first.rows[0].name == "f000.txt"
    last = list_directory(s, (), offset=200, limit=100)
    assert len(last.rows) == 51
    odd = list_directory(s, (), query="ODD")
    assert [r.ref for r in odd.rows] == ["odd-%FF%20name%25.txt"]
    assert odd.rows[0].ref == ref((b"odd-\xff name%.txt",))


def test_conflict_pairs_name_both_versions(tmp_path: Path) -> None:
    s = state(tmp_path)
    (s.folder / "sub").mkdir()
    (s.folder / "sub" / "report.csv").write_text("winner")
    (s.folder / "sub" / "report.conflict-folder-20240101T000000Z.csv").write_text("loser!")
    doc = conflicts(s)
    assert len(doc.conflicts) == 1
    pair = doc.conflicts[0]
    assert pair.original == "sub/report.csv" and pair.side == "folder"
    assert pair.copy_entry is not None and pair.copy_entry.size == 6
    assert pair.original_entry is not None and pair.original_entry.size == 6


def test_counts_are_cached_for_a_while(tmp_path: Path) -> None:
    s = state(tmp_path)
    now = [1000.0]
    cache = CountCache(ttl=5, clock=lambda: now[0])
    (s.folder / "a").write_text("x")
    assert (cache.get(s).folder, cache.get(s).export) == (1, 0)
    (s.folder / "b").write_text("x")
    assert cache.get(s).folder == 1
    now[0] += 6
    assert cache.get(s).folder == 2


def test_scans_are_reused_for_the_next_pages_until_an_event_or_the_ttl(tmp_path: Path) -> None:
    s = state(tmp_path)
    (s.folder / "a").write_text("x")
    now = [0.0]
    cache = ListingCache(ttl=2, clock=lambda: now[0])
    first = cache.scan(s, ())
    (s.folder / "b").write_text("x")
    assert cache.scan(s, ()) is first  # the next page of the same listing
    cache.forget("nas")  # an event of this server
    assert [r[0] for r in cache.scan(s, ()).rows] == [b"a", b"b"]
    (s.folder / "c").write_text("x")
    now[0] += 3
    assert len(cache.scan(s, ()).rows) == 3
