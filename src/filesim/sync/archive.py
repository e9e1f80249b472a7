"""The archive: per path, what both sides held after its last sync — SQLite in WAL mode.

It is written only after an action has completed, so a crash leaves it at worst behind the
disks, never ahead: the next run finds both sides equal where the action had finished (and just
records that) and redoes what had not. It also keeps the halt state of the mass-deletion guard,
which `filesim sync resume` clears from another process.

Names are bytes on POSIX, and not all of them are UTF-8: paths are stored as BLOBs of their
exact bytes (`os.fsencode`, the bytes the os module uses), entries as BLOBs of their text with
the same escapes, so any name round-trips. Archives written before (schema 0: TEXT paths) are
migrated when opened.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from filesim.errors import FilesimError
from filesim.sync.state import Entry, Kind, Record, Side, Update, shown

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (path TEXT PRIMARY KEY, folder TEXT, export TEXT);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS intents (path TEXT PRIMARY KEY, src TEXT, entry TEXT);
"""
SCHEMA_VERSION = 1
"""0: paths as TEXT (UTF-8 only). 1: paths and entries as BLOBs (any byte string)."""

_MIGRATE_TO_1 = """
UPDATE entries SET path = CAST(path AS BLOB) WHERE typeof(path) = 'text';
UPDATE intents SET path = CAST(path AS BLOB) WHERE typeof(path) = 'text';
"""


_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


def _key(path: str) -> bytes:
    """os.fsencode, without its checks (it runs for every row written)."""
    return path.encode(_FS_ENCODING, _FS_ERRORS)


def _path(key: bytes | str) -> str:
    return key.decode(_FS_ENCODING, _FS_ERRORS) if isinstance(key, bytes) else key


def _encode(entry: Entry | None) -> bytes | None:
    """'kind|size|mtime_ns|mode|ino|target' (the link text last: it may contain '|'), as the
    bytes of that text (a link text need not be UTF-8 either)."""
    if entry is None:
        return None
    target = "" if entry.target is None else entry.target
    text = f"{entry.kind.value}|{entry.size}|{entry.mtime_ns}|{entry.mode}|{entry.ino}|{target}"
    return _key(text)


def _decode(value: bytes | str | None) -> Entry | None:
    if value is None:
        return None
    text = _path(value)  # TEXT from archives of schema 0, BLOB since
    if text.startswith("["):  # the first format (JSON), from archives made before
        kind, size, mtime_ns, mode, ino, link = json.loads(text)
        return Entry(Kind(kind), size, mtime_ns, mode, ino, link)
    kind, size, mtime_ns, mode, ino, target = text.split("|", 5)
    return Entry(
        Kind(kind), int(size), int(mtime_ns), int(mode), int(ino),
        target if kind == Kind.SYMLINK.value else None,
    )  # fmt: skip


def connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, timeout=10.0, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a process crash (kill -9); only a power loss
        # may drop the last commits, which the archive's write-after-action order tolerates.
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        _migrate(db)
    except sqlite3.Error as exc:
        raise FilesimError(f"cannot open the sync archive {path}: {exc}") from None
    return db


def _migrate(db: sqlite3.Connection) -> None:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version >= SCHEMA_VERSION:
        return
    db.executescript(f"BEGIN; {_MIGRATE_TO_1} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")


_DELETE = "DELETE FROM entries WHERE path = ?"
_UPSERT = "INSERT OR REPLACE INTO entries VALUES (?, ?, ?)"


class _Rows:
    """Row changes of one transaction, in order: each run of one statement is written with
    one executemany (a batch of 256 copies is one call into SQLite, not 256)."""

    def __init__(self) -> None:
        self._runs: list[tuple[str, list[tuple[bytes | None, ...]]]] = []

    def add(self, sql: str, params: tuple[bytes | None, ...]) -> None:
        if not self._runs or self._runs[-1][0] != sql:
            self._runs.append((sql, []))
        self._runs[-1][1].append(params)

    def write(self, db: sqlite3.Connection) -> None:
        for sql, params in self._runs:
            db.executemany(sql, params)


class SyncArchive:
    """The archive of one server, cached in memory (reads are per path and frequent)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = connect(path)
        self._lock = threading.Lock()
        self._rows: dict[str, Record] = self._load()

    def _load(self) -> dict[str, Record]:
        return {
            _path(p): Record(_decode(f), _decode(e))
            for p, f, e in self._db.execute("SELECT path, folder, export FROM entries")
        }

    @property
    def records(self) -> dict[str, Record]:
        """The live mapping; read it only from the thread that applies updates."""
        return self._rows

    def get(self, path: str) -> Record | None:
        return self._rows.get(path)

    def _put(self, path: str, rec: Record | None, rows: _Rows) -> None:
        """Update the cache now, and queue the row's change in `rows` (written in order)."""
        if rec is None or rec == Record(None, None):
            self._rows.pop(path, None)
            rows.add(_DELETE, (_key(path),))
        else:
            self._rows[path] = rec
            rows.add(_UPSERT, (_key(path), _encode(rec.folder), _encode(rec.export)))

    def apply_batch(self, rekeys: list[tuple[str, str]], updates: list[Update]) -> None:
        """Rekeys (renames done), then updates, then forget the batch's intents: one
        transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                rows = _Rows()
                for old, new in rekeys:
                    for path, rec in self._subtree(old):
                        self._put(path, None, rows)
                        self._put(new + path[len(old) :], rec, rows)
                for path, update in updates:
                    self._put(path, update, rows)
                rows.write(self._db)
                self._db.execute("DELETE FROM intents")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                self._rows = self._load()  # the cache had gone ahead of the database
                raise

    def _subtree(self, top: str) -> list[tuple[str, Record]]:
        return [(p, r) for p, r in self._rows.items() if p == top or p.startswith(top + "/")]

    # -- intents: copies about to be published (a crash between publish and record)

    def intend(self, items: Iterable[tuple[str, Side, Entry]]) -> None:
        """Before publishing: 'path will get a copy of this entry from side src'."""
        rows = [(_key(p), side, _encode(e)) for p, side, e in items]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO intents VALUES (?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def intents(self) -> list[tuple[str, Side, Entry]]:
        with self._lock:
            rows = self._db.execute("SELECT path, src, entry FROM intents").fetchall()
        out: list[tuple[str, Side, Entry]] = []
        for key, src, value in rows:
            entry = _decode(value)
            if entry is not None and src in ("folder", "export"):
                out.append((_path(key), src, entry))
        return out

    def forget(self) -> None:
        """Drop every row: the next sync is a first sync."""
        with self._lock:
            self._db.execute("DELETE FROM entries")
            self._db.execute("DELETE FROM intents")
            self._rows.clear()

    def store_identity(self) -> str | None:
        return self._meta("store")

    def set_store_identity(self, ident: str) -> None:
        self._set_meta("store", ident)

    # -- halt state (shared with other processes through the database)

    def _meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str | None) -> None:
        with self._lock:
            if value is None:
                self._db.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def halted(self) -> str | None:
        return self._meta("halted")

    def set_halted(self, reason: str | None) -> None:
        self._set_meta("halted", None if reason is None else shown(reason))

    def resume_requested(self) -> bool:
        return self._meta("resume") is not None

    def clear_resume(self) -> None:
        self._set_meta("resume", None)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def request_resume(path: Path) -> str | None:
    """Ask the agent of this archive to resume (it may run in another process, or later).

    Returns the halt reason that is being lifted, or None if the archive was not halted.
    """
    if not path.exists():
        raise FilesimError(
            f"no sync archive at {path}: this server has never synced here "
            "(check --root/--state-dir)"
        )
    db = connect(path)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'halted'").fetchone()
        if row is not None:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('resume', '1')")
        return None if row is None else str(row[0])
    finally:
        db.close()
