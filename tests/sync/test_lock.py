"""One agent per archive: the lock on its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from filesim.errors import FilesimError
from filesim.sync.lock import ArchiveLock


def test_one_holder_at_a_time_reentrant_and_released(tmp_path: Path) -> None:
    archive = tmp_path / "state" / "nas.db"
    first, second = ArchiveLock(archive, "nas"), ArchiveLock(archive, "nas")
    with first.holding():
        with first.holding():  # the same holder again: fine
            assert first.held
        assert first.held, "an inner block does not release an outer one"
        with pytest.raises(FilesimError, match=r"already running for nas \(archive .*nas.db"):
            second.acquire()
    assert not first.held
    second.acquire()
    second.release()
    second.release()  # twice is harmless
