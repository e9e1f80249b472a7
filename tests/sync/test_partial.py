"""Never publish a file that is still being written (issue 10): a writer that pauses longer
than settle_ms between pieces is not done. Over NFS the file moves once COMMIT (+ settle) says
it is complete, or after stall_s without writes; in the folder once it is closed (inotify's
close-write), or after stall_s where there are no close events (polling)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from filesim.nfs.const import StableHow
from filesim.nfsclient.client import NfsClient
from filesim.sync.watch import PollingWatcher
from filesim.testing import start_topology
from filesim.waiting import poll_until

PIECE = 256 << 10
PIECES = 8
PAUSE_S = 0.3
"""Three times the settle time (100 ms, the default) between pieces."""
STALL_S = 5.0
"""The default stall time (the topology below leaves it at that)."""

ONE = """
servers:
  - {name: nas-slow, role: input, fsid: 1}
"""


class Reader:
    """Polls a path's size the whole time and notes each size it sees, and when first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sizes: set[int] = set()
        self.first_seen: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                size = os.stat(self.path).st_size
            except FileNotFoundError:
                time.sleep(0.002)
                continue
            if self.first_seen is None:
                self.first_seen = time.monotonic()
            self.sizes.add(size)
            time.sleep(0.002)

    @contextmanager
    def running(self) -> Iterator[Reader]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(10)


WHOLE = PIECE * PIECES


@pytest.mark.integration
@pytest.mark.parametrize("commit", [True, False], ids=["commit", "no-commit"])
def test_a_file_written_over_nfs_in_pieces_is_published_only_when_complete(
    tmp_path: Path, commit: bool
) -> None:
    with start_topology(tmp_path / "sim", config=ONE) as topo:
        nas = topo.server("nas-slow")
        reader = Reader(nas.folder / "slow.bin")
        with reader.running(), NfsClient(nas.host, nas.port) as client:
            fh = client.create(client.mnt(nas.export), "slow.bin")
            stable = StableHow.UNSTABLE if commit else StableHow.FILE_SYNC
            for i in range(PIECES):
                client.write(fh, i * PIECE, os.urandom(PIECE), stable)
                last_write = time.monotonic()
                time.sleep(PAUSE_S)
            complete = time.monotonic()
            if commit:
                client.commit(fh)
            poll_until(lambda: WHOLE in reader.sizes, 60, what="the whole file in the folder")
        assert reader.sizes == {WHOLE}, f"a reader saw partial sizes: {sorted(reader.sizes)}"
        assert reader.first_seen is not None
        if commit:
            assert reader.first_seen >= complete, "published before its COMMIT"
        else:
            waited = reader.first_seen - last_write
            assert waited >= STALL_S - 0.5, f"published {waited:.2f} s after the last write"


@pytest.mark.integration
def test_a_file_written_in_the_folder_in_pieces_is_published_once_closed(tmp_path: Path) -> None:
    with start_topology(tmp_path / "sim", config=ONE) as topo:
        nas = topo.server("nas-slow")
        reader = Reader(nas.store / "slow.log")
        with reader.running():
            with open(nas.folder / "slow.log", "wb") as fh:
                for _ in range(PIECES):
                    fh.write(os.urandom(PIECE))
                    fh.flush()
                    time.sleep(PAUSE_S)
                closing = time.monotonic()
            poll_until(lambda: WHOLE in reader.sizes, 60, what="the whole file in the export")
        assert reader.sizes == {WHOLE}, f"a reader saw partial sizes: {sorted(reader.sizes)}"
        assert reader.first_seen is not None and reader.first_seen >= closing


def test_the_polling_watcher_reports_file_changes_as_writes(tmp_path: Path) -> None:
    """Polling has no close events: a file that changed is a write (it moves after the stall
    time), a removal or a directory is whole."""
    (tmp_path / "gone.txt").write_text("x")
    seen: list[tuple[str | None, str]] = []
    watcher = PollingWatcher(tmp_path, interval=0.05)
    watcher.start(lambda path, kind: seen.append((path, kind)))
    try:
        (tmp_path / "new.txt").write_text("data")
        (tmp_path / "dir").mkdir()
        (tmp_path / "gone.txt").unlink()
        poll_until(lambda: len({p for p, _ in seen}) >= 3, 10, what="three changes")
    finally:
        watcher.stop()
    assert set(seen) >= {("new.txt", "write"), ("dir", ""), ("gone.txt", "")}
