"""Starting safely: copies published just before a crash, and a store that is not the one the
archive knew."""

from __future__ import annotations

import shutil
from pathlib import Path

from filesim.sync.archive import SyncArchive
from filesim.sync.recover import adopt_store, recover_published
from filesim.sync.scan import stat_path
from filesim.sync.state import Record

from .conftest import write


def test_a_copy_published_but_not_recorded_is_recorded(tmp_path: Path) -> None:
    folder, store = tmp_path / "folder", tmp_path / "store"
    write(folder, "a.txt", "v1", mtime=1_600_000_000)
    write(folder, "b.txt", "v1")
    store.mkdir()
    shutil.copy2(folder / "a.txt", store / "a.txt")  # published, then the crash
    src, unpublished = stat_path(folder, "a.txt"), stat_path(folder, "b.txt")
    assert src is not None and unpublished is not None
    archive = SyncArchive(tmp_path / "a.db")
    try:
        archive.intend([("a.txt", "folder", src), ("b.txt", "folder", unpublished)])
        assert recover_published(archive, folder, store) == 1
        assert archive.records == {"a.txt": Record(src, stat_path(store, "a.txt"))}
        assert archive.intents() == [], "b.txt never made it: it is simply copied again"
    finally:
        archive.close()


def test_a_recreated_store_resets_the_archive(tmp_path: Path) -> None:
    store = tmp_path / "store"
    archive = SyncArchive(tmp_path / "a.db")
    try:
        assert not adopt_store(archive, store), "a first start is not a new store"
        archive.apply_batch(
            [], [("x", Record(None, stat_path(write(store, "x", "1").parent, "x")))]
        )
        assert not adopt_store(archive, store), "the same directory again"
        shutil.rmtree(store)
        assert adopt_store(archive, store), "a fresh directory at the same path"
        assert archive.records == {}
    finally:
        archive.close()
