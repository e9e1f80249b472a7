"""A removed file's handle never reaches the next file that gets its inode number (issue 10,
item 8): through nfs-rs, a client nobody here wrote, holding a file open across the removal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import nfs_rs
import pytest

from filesim.nfs.generations import Generations
from tests.support.threaded import serving

pytestmark = pytest.mark.integration


def _connect(port: int) -> Any:
    return nfs_rs.Client.connect(
        "nfs://127.0.0.1/data?version=3", nfs_port=port, mount_port=port, connect_timeout=10,
        operation_timeout=30,
    )  # fmt: skip


def _reuse(root: Path, ino: int, make: Callable[[str], None], tag: int) -> Path | None:
    """Make files in bob/ until the filesystem hands out inode `ino` again (None: it did not)."""
    for i in range(2000):
        name = f"bob/payroll-{tag}-{i}.csv"
        make(name)
        if (root / name).stat().st_ino == ino:
            return root / name
    return None


def _stale_after_reuse(
    root: Path, alice: Any, remove: Callable[[str], None], make: Callable[[str], None]
) -> None:
    """Alice holds a file open; it is removed and its inode reused by one of bob's; alice's
    write must then fail as stale and leave bob's file alone. Another process on this
    filesystem may take the freed inode first: then the round is played again, a few times."""
    alice.mkdir("alice")
    alice.mkdir("bob")
    for attempt in range(5):
        f = alice.open(f"alice/payroll-{attempt}.csv", "wb")
        f.write(b"old")
        f.flush()
        ino = (root / f"alice/payroll-{attempt}.csv").stat().st_ino
        remove(f"alice/payroll-{attempt}.csv")
        reused = _reuse(root, ino, make, attempt)
        if reused is not None:
            _write_through_stale(f)
            assert reused.read_bytes() == b"bob's"
            return
    pytest.fail("no freed inode was reused in 5 rounds: this test needs ext4 or xfs")


def _write_through_stale(f: Any) -> None:
    with pytest.raises(nfs_rs.NfsStateLostError, match="invalid file handle"):
        f.write(b"EVIL")
        f.flush()


def test_a_handle_of_a_file_removed_over_nfs_is_stale_after_inode_reuse(tmp_path: Path) -> None:
    root = tmp_path / "e"
    with serving(root) as server:
        alice, bob = _connect(server.port), _connect(server.port)

        def create(name: str) -> None:
            with bob.open(name, "wb") as g:
                g.write(b"bob's")

        _stale_after_reuse(root, alice, bob.remove, create)


def test_a_handle_of_a_file_removed_behind_the_server_is_stale_after_reuse(
    tmp_path: Path,
) -> None:
    """Removed on disk (as the sync agent or a tester would): the birth time tells."""
    root = tmp_path / "e"
    with serving(root) as server:
        alice = _connect(server.port)
        _stale_after_reuse(
            root, alice, lambda name: (root / name).unlink(),
            lambda name: (root / name).write_bytes(b"bob's"),
        )  # fmt: skip


def test_generations_survive_a_restart_and_stay_bounded(tmp_path: Path) -> None:
    path = tmp_path / "state" / "gens.log"
    gens = Generations(path, cap=3)
    for ino in (10, 11, 10, 12, 13):
        gens.bump(ino)
    assert [gens.of(i) for i in (10, 11, 12, 13)] == [2, 0, 1, 1]  # 11 went first (cap)
    with path.open("a") as f:
        f.write("99 ")  # a torn last line from a crash
    again = Generations(path, cap=3)
    assert [again.of(i) for i in (10, 11, 12, 13, 99)] == [2, 0, 1, 1, 0]
    for _ in range(3000):
        again.bump(13)
    assert len(path.read_text().splitlines()) < 2000  # compacted, not one line per bump
    assert Generations(path, cap=3).of(13) == 3001
