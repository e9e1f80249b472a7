"""The scanner and the archive."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from filesim import nodemeta
from filesim.errors import FilesimError
from filesim.nodemeta import NodeMeta
from filesim.sync.archive import SyncArchive, request_resume
from filesim.sync.scan import scan
from filesim.sync.state import Entry, Kind, Record
from filesim.topology.layout import TEMP_PREFIX

from .conftest import write


def test_scan_sees_files_dirs_symlinks_and_hides_temp_files(tmp_path: Path) -> None:
    write(tmp_path, "a/b.txt", "12345", mtime=1_000_000)
    write(tmp_path, f"a/{TEMP_PREFIX}x", "in flight")
    os.symlink("/etc/passwd", tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    snap = scan(tmp_path)
    assert set(snap) == {"a", "a/b.txt", "link"}
    assert snap["a"].kind is Kind.DIR
    assert snap["a/b.txt"].size == 5 and snap["a/b.txt"].mtime_ns == 1_000_000 * 10**9
    assert snap["link"].kind is Kind.SYMLINK and snap["link"].target == "/etc/passwd"
    assert scan(tmp_path, "a") == {"a": snap["a"], "a/b.txt": snap["a/b.txt"]}
    assert scan(tmp_path / "missing") == {}


def test_devices_fifos_and_placeholders_are_skipped_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "tty").touch()  # how an unprivileged server stores a device node
    os.setxattr(tmp_path / "tty", nodemeta.XATTR, NodeMeta(0, 0, 0o20620, 1025).encode())
    (tmp_path / "empty").touch()
    with caplog.at_level(logging.INFO, logger="filesim.sync"):
        assert set(scan(tmp_path)) == {"empty"}
        scan(tmp_path)  # reported once, not at every rescan
    skipped = [r.getMessage() for r in caplog.records if "not syncing" in r.getMessage()]
    assert len(skipped) == 2, skipped
    assert any("fifo" in m and "FIFO" in m for m in skipped)
    assert any("tty" in m and "device node" in m for m in skipped)


def test_archive_persists_rekeys_and_forgets(tmp_path: Path) -> None:
    db = tmp_path / "s" / "a.db"
    one = Entry(Kind.FILE, 1, 2, 0o644, 3)
    archive = SyncArchive(db)
    archive.apply_batch(
        [], [("d", Record(Entry(Kind.DIR), Entry(Kind.DIR))), ("d/x", Record(one, None))]
    )
    archive.apply_batch([("d", "e")], [])
    archive.apply_batch([], [("gone", Record(one, one)), ("gone", None)])
    archive.close()
    again = SyncArchive(db)
    assert set(again.records) == {"e", "e/x"}
    assert again.records["e/x"] == Record(one, None)
    again.close()


def test_halt_and_resume_cross_processes_through_the_database(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    with pytest.raises(FilesimError, match="never synced"):
        request_resume(db)
    archive = SyncArchive(db)
    assert request_resume(db) is None and not archive.resume_requested()
    archive.set_halted("folder emptied")
    assert request_resume(db) == "folder emptied"
    assert archive.resume_requested()
    archive.clear_resume()
    assert not archive.resume_requested()
    archive.close()
