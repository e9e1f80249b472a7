"""The one table of share reservations and byte-range locks of a server, for every protocol.

NFSv4 (OPEN share access/deny, LOCK/LOCKT/LOCKU) keeps its state here, and so does the NFSv3
lock manager (NLM: LOCK, SHARE), so that a v3 and a v4 lock on the same file conflict; and
their grace periods meet here (`graces`), so that neither grants what the other's clients may
still reclaim. Files are named by
`FileKey` (fsid, inode); owners are any hashable value a protocol chooses (a v4 lock-owner is
("v4", clientid, owner bytes)), compared only for equality. Ranges are half-open [start, end)
in a 65-bit space: `TO_EOF` is the end of a lock that runs to the end of any file.

Byte-range locks follow POSIX semantics within one owner: a new lock replaces the overlapped
parts of the owner's own locks (upgrade, downgrade, merge, split), an unlock may cut a lock in
two. No I/O, no threads: callers serialise (the server calls it from its event loop).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

TO_EOF = 1 << 64
"""The end of a lock to the end of file (NFSv4 length all ones, NLM length 0)."""

# share access and deny bits (the NFSv4 values; NLM SHARE uses the same meaning)
SHARE_READ = 1
SHARE_WRITE = 2


class FileKey(NamedTuple):
    fsid: int
    ino: int


@dataclass(frozen=True, slots=True)
class ByteLock:
    owner: Hashable
    start: int
    end: int
    exclusive: bool

    def overlaps(self, start: int, end: int) -> bool:
        return self.start < end and start < self.end

    def conflicts(self, owner: Hashable, exclusive: bool, start: int, end: int) -> bool:
        return self.owner != owner and (self.exclusive or exclusive) and self.overlaps(start, end)


@dataclass(frozen=True, slots=True)
class Share:
    access: int
    deny: int


class _File:
    __slots__ = ("locks", "shares")

    def __init__(self) -> None:
        self.locks: list[ByteLock] = []
        self.shares: dict[Hashable, Share] = {}

    def empty(self) -> bool:
        return not self.locks and not self.shares


class LockTable:
    """Share reservations and byte-range locks, by file."""

    def __init__(self) -> None:
        self._files: dict[FileKey, _File] = {}
        self.on_release: list[Callable[[FileKey], None]] = []
        """Called with the file after locks on it were released (for blocked NLM waiters)."""
        self.graces: list[Callable[[], bool]] = []
        """Each protocol's grace period (NFSv4 recovery, NLM): while any runs, no protocol
        grants a new lock or share, so that every client can reclaim what it held."""

    def in_grace(self) -> bool:
        """Whether any protocol's grace period runs (each is asked: one may end its own)."""
        return any([grace() for grace in self.graces])

    def _file(self, key: FileKey) -> _File:
        f = self._files.get(key)
        if f is None:
            f = self._files[key] = _File()
        return f

    def _tidy(self, key: FileKey) -> None:
        f = self._files.get(key)
        if f is not None and f.empty():
            del self._files[key]

    # -- share reservations ----------------------------------------------------------------

    def share_conflict(self, key: FileKey, holder: Hashable, access: int, deny: int) -> bool:
        """Whether another holder's reservation denies `access` or holds what `deny` denies."""
        f = self._files.get(key)
        if f is None:
            return False
        for other, share in f.shares.items():
            if other == holder:
                continue
            if share.deny & access or share.access & deny:
                return True
        return False

    def denied(self, key: FileKey, access: int, holder: Hashable | None = None) -> bool:
        """Whether a reservation other than `holder`'s denies `access` (READ/WRITE without an
        open of their own, such as NFSv3 I/O or the anonymous stateid)."""
        f = self._files.get(key)
        if f is None:
            return False
        return any(s.deny & access for h, s in f.shares.items() if h != holder)

    def set_share(self, key: FileKey, holder: Hashable, access: int, deny: int) -> None:
        self._file(key).shares[holder] = Share(access, deny)

    def drop_share(self, key: FileKey, holder: Hashable) -> None:
        f = self._files.get(key)
        if f is not None:
            f.shares.pop(holder, None)
            self._tidy(key)

    def shares(self, key: FileKey) -> dict[Hashable, Share]:
        f = self._files.get(key)
        return dict(f.shares) if f is not None else {}

    # -- byte-range locks -------------------------------------------------------------------

    def test(
        self, key: FileKey, owner: Hashable, exclusive: bool, start: int, end: int
    ) -> ByteLock | None:
        """The first lock of another owner that a lock [start, end) would conflict with."""
        f = self._files.get(key)
        if f is None:
            return None
        for held in f.locks:
            if held.conflicts(owner, exclusive, start, end):
                return held
        return None

    def lock(
        self, key: FileKey, owner: Hashable, exclusive: bool, start: int, end: int
    ) -> ByteLock | None:
        """Take [start, end) for `owner`; the conflicting lock instead when there is one."""
        conflict = self.test(key, owner, exclusive, start, end)
        if conflict is not None:
            return conflict
        f = self._file(key)
        downgraded = any(
            h.owner == owner and h.exclusive and not exclusive and h.overlaps(start, end)
            for h in f.locks
        )
        kept = self._cut(f, owner, start, end)
        mine = ByteLock(owner, start, end, exclusive)
        # merge with adjacent or overlapping locks of the same owner and kind
        merged: list[ByteLock] = []
        for held in kept:
            if (
                held.owner == owner
                and held.exclusive == exclusive
                and (held.start <= mine.end and mine.start <= held.end)
            ):
                mine = ByteLock(owner, min(held.start, mine.start), max(held.end, mine.end),
                                exclusive)  # fmt: skip
            else:
                merged.append(held)
        merged.append(mine)
        f.locks = merged
        if downgraded:
            self._released(key)
        return None

    def unlock(self, key: FileKey, owner: Hashable, start: int, end: int) -> None:
        f = self._files.get(key)
        if f is None:
            return
        before = f.locks
        f.locks = self._cut(f, owner, start, end)
        self._tidy(key)
        if f.locks != before:
            self._released(key)

    @staticmethod
    def _cut(f: _File, owner: Hashable, start: int, end: int) -> list[ByteLock]:
        """The file's locks with [start, end) removed from `owner`'s."""
        out: list[ByteLock] = []
        for held in f.locks:
            if held.owner != owner or not held.overlaps(start, end):
                out.append(held)
                continue
            if held.start < start:
                out.append(ByteLock(owner, held.start, start, held.exclusive))
            if end < held.end:
                out.append(ByteLock(owner, end, held.end, held.exclusive))
        return out

    def holds_locks(self, owner: Hashable, key: FileKey | None = None) -> bool:
        files = [self._files.get(key)] if key is not None else list(self._files.values())
        return any(f is not None and any(h.owner == owner for h in f.locks) for f in files)

    def locks_of(self, key: FileKey) -> list[ByteLock]:
        f = self._files.get(key)
        return list(f.locks) if f is not None else []

    def release_owner(self, owner: Hashable, key: FileKey | None = None) -> None:
        """Drop every lock of `owner` (on `key` only, when given)."""
        keys = [key] if key is not None else list(self._files)
        for k in keys:
            f = self._files.get(k)
            if f is None:
                continue
            before = len(f.locks)
            f.locks = [h for h in f.locks if h.owner != owner]
            if len(f.locks) != before:
                self._tidy(k)
                self._released(k)

    def release_matching(self, key: FileKey, matches: Callable[[Hashable], bool]) -> bool:
        """Drop every lock and share reservation on `key` whose owner `matches` (all of one
        client host, when it restarted); whether there was any."""
        f = self._files.get(key)
        if f is None:
            return False
        before = len(f.locks)
        f.locks = [h for h in f.locks if not matches(h.owner)]
        shares = [h for h in f.shares if matches(h)]
        for holder in shares:
            del f.shares[holder]
        self._tidy(key)
        if len(f.locks) != before:
            self._released(key)
        return len(f.locks) != before or bool(shares)

    def release_file(self, key: FileKey) -> None:
        """Forget every reservation and lock on `key` (the file is gone, its inode reused)."""
        if self._files.pop(key, None) is not None:
            self._released(key)

    def _released(self, key: FileKey) -> None:
        for callback in self.on_release:
            callback(key)

    def __iter__(self) -> Iterator[FileKey]:
        return iter(list(self._files))
