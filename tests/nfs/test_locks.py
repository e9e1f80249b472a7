"""The lock table NFSv4 (and NLM) share: POSIX byte ranges per owner, share reservations."""

from __future__ import annotations

from filesim.nfs.locks import SHARE_READ, SHARE_WRITE, TO_EOF, FileKey, LockTable

F = FileKey(1, 42)
A, B = ("v4", 1, b"a"), ("nlm", "host", 7)


def test_conflicts_between_owners_not_within_one() -> None:
    t = LockTable()
    assert t.lock(F, A, True, 0, 100) is None
    assert t.lock(F, A, False, 50, 60) is None  # downgrade a part of its own lock
    held = t.lock(F, B, True, 55, 56)
    assert held is not None and held.owner == A and not held.exclusive
    assert t.lock(F, B, False, 55, 56) is None  # shared with shared
    assert t.test(F, B, True, 0, 10) is not None
    assert t.test(F, B, True, 100, TO_EOF) is None


def test_unlock_splits_and_release_owner_frees_everything() -> None:
    t = LockTable()
    released: list[FileKey] = []
    t.on_release.append(released.append)
    t.lock(F, A, True, 0, TO_EOF)
    t.unlock(F, A, 10, 20)
    assert [(h.start, h.end) for h in t.locks_of(F)] == [(0, 10), (20, TO_EOF)]
    assert t.lock(F, B, True, 12, 18) is None
    assert released == [F]
    t.release_owner(A)
    assert not t.holds_locks(A) and t.holds_locks(B)
    assert t.lock(F, A, True, 0, 5) is None


def test_adjacent_locks_of_one_owner_merge() -> None:
    t = LockTable()
    t.lock(F, A, True, 0, 10)
    t.lock(F, A, True, 10, 20)
    assert [(h.start, h.end) for h in t.locks_of(F)] == [(0, 20)]


def test_share_reservations() -> None:
    t = LockTable()
    t.set_share(F, "open-1", SHARE_READ, SHARE_WRITE)
    assert t.share_conflict(F, "open-2", SHARE_WRITE, 0)
    assert not t.share_conflict(F, "open-2", SHARE_READ, 0)
    assert t.share_conflict(F, "open-2", SHARE_READ, SHARE_READ)
    assert t.denied(F, SHARE_WRITE) and not t.denied(F, SHARE_READ)
    t.drop_share(F, "open-1")
    assert not t.share_conflict(F, "open-2", SHARE_WRITE, SHARE_WRITE)
    assert list(t) == []
