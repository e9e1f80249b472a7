"""What the Files view shows: a directory of both sides merged, with a sync state per entry;
the conflicts of a server; file counts. Blocking (it reads directories): run it in a thread."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from filesim.runtime.dashboard.files import Item, Parts, Tree
from filesim.runtime.dashboard.model import (
    ConflictList,
    ConflictPair,
    Crumb,
    FileListing,
    FileRow,
    SideCounts,
    SideEntry,
    SyncMark,
)
from filesim.runtime.model import ServerState

MAX_PAGE = 1000
MAX_CONFLICTS = 500
CONFLICT_WALK_LIMIT = 500_000
COUNT_WALK_LIMIT = 2_000_000
COUNTS_TTL_S = 5.0
SCAN_TTL_S = 2.0

# `sync.plan.conflict_name`: stem + ".conflict-<side>-<UTC stamp>[-n]" + ext (a test holds the
# two together).
CONFLICT = re.compile(
    rb"^(?P<stem>.+)\.conflict-(?P<side>folder|export)-(?P<stamp>\d{8}T\d{6}Z)(?:-\d+)?"
    rb"(?P<ext>\.[^.]*)?$",
    re.DOTALL,
)


def ref(parts: Parts) -> str:
    """A path's bytes, percent-encoded ('/' kept): safe in URLs and JSON, lossless."""
    return quote(b"/".join(parts), safe="/")


def display(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _side(item: Item | None) -> SideEntry | None:
    if item is None:
        return None
    return SideEntry(kind=item.kind, size=item.size, mtime=item.mtime_ns / 1e9)


def _carried(server: ServerState, side: str) -> bool:
    """Whether a change on `side` reaches the other side while this server runs."""
    sync, direction = server.sync, server.sync.direction
    flows = direction.folder_to_export if side == "folder" else direction.export_to_folder
    return sync.agent and sync.continuous and flows


def sync_mark(
    server: ServerState, name: bytes, folder: Item | None, export: Item | None
) -> SyncMark:
    """The state of one entry (see `SyncMark`)."""
    if server.storage.value == "direct":
        return "direct"
    if CONFLICT.match(name):
        return "conflict"
    if folder is not None and export is not None:
        same = folder.kind == export.kind and (
            folder.kind == "dir" or (folder.size, folder.mtime_ns) == (export.size, export.mtime_ns)
        )
        if same:
            return "synced"
        newer = "folder" if folder.mtime_ns >= export.mtime_ns else "export"
    else:
        newer = "folder" if folder is not None else "export"
    return "pending" if _carried(server, newer) else "unsynced"


Row = tuple[bytes, Item | None, Item | None, SyncMark]


@dataclass(frozen=True)
class Scan:
    """Directory `parts` of a server, both sides read and merged: sorted rows with their marks
    (the expensive part of a listing, which `ListingCache` keeps for the next pages)."""

    server: ServerState
    parts: Parts
    rows: list[Row]
    shown: list[str]
    """Each row's display name, case-folded (what the filter searches)."""
    folder_exists: bool
    export_exists: bool


def scan_directory(server: ServerState, parts: Parts) -> Scan:
    direct = server.storage.value == "direct"
    folder = Tree(server.folder).list(parts)
    export = None if direct else Tree(server.store).list(parts)
    by_name: dict[bytes, list[Item | None]] = {}
    for index, items in enumerate((folder, export)):
        for item in items or ():
            by_name.setdefault(item.name, [None, None])[index] = item
    rows: list[Row] = [(n, f, e, sync_mark(server, n, f, e)) for n, (f, e) in by_name.items()]
    rows.sort(key=_order)
    shown = [display(r[0]).casefold() for r in rows]
    return Scan(server, parts, rows, shown, folder is not None, direct or export is not None)


def page_of(
    scan: Scan, offset: int = 0, limit: int = 200, query: str = "", state: str = ""
) -> FileListing:
    """One page of a scanned directory, filtered by name (substring) and sync state."""
    needle = query.casefold()
    rows = [
        row for row, shown in zip(scan.rows, scan.shown, strict=True)
        if (not needle or needle in shown) and (not state or row[3] == state)
    ]  # fmt: skip
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    parts, server = scan.parts, scan.server
    page = [_row(parts, *row) for row in rows[offset : offset + limit]]
    crumbs = [Crumb(name=display(p), ref=ref(parts[: i + 1])) for i, p in enumerate(parts)]
    return FileListing(
        server=server.name, path="/" + display(b"/".join(parts)), ref=ref(parts), crumbs=crumbs,
        storage=server.storage.value, folder_exists=scan.folder_exists,
        export_exists=scan.export_exists, total=len(rows), offset=offset, limit=limit,
        states=dict(Counter(r[3] for r in rows)), rows=page,
    )  # fmt: skip


def list_directory(
    server: ServerState, parts: Parts, offset: int = 0, limit: int = 200, query: str = "",
    state: str = "",
) -> FileListing:  # fmt: skip
    """One page of directory `parts`: folder and export merged by name, directories first."""
    return page_of(scan_directory(server, parts), offset, limit, query, state)


class ListingCache:
    """Recent scans, so that the next page, a filter or a re-render costs no directory read.
    A scan is dropped after `ttl` seconds, and at once when an event names its server (a
    change the page must show: the NFS server and the synchroniser report every one)."""

    def __init__(self, ttl: float = SCAN_TTL_S, size: int = 16,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.ttl, self.size, self.clock = ttl, size, clock
        self._scans: dict[tuple[str, Parts], tuple[float, Scan]] = {}
        self._lock = threading.Lock()

    def scan(self, server: ServerState, parts: Parts) -> Scan:
        key = (server.name, parts)
        with self._lock:
            known = self._scans.get(key)
        if known is not None and self.clock() - known[0] < self.ttl:
            return known[1]
        fresh = scan_directory(server, parts)
        with self._lock:
            self._scans[key] = (self.clock(), fresh)
            while len(self._scans) > self.size:
                self._scans.pop(next(iter(self._scans)))
        return fresh

    def forget(self, server: str) -> None:
        with self._lock:
            for key in [k for k in self._scans if k[0] == server]:
                del self._scans[key]


def _row(parts: Parts, name: bytes, f: Item | None, e: Item | None, mark: SyncMark) -> FileRow:
    full = ref((*parts, name))
    return FileRow(name=display(name), ref=full, folder=_side(f), export=_side(e), state=mark)


def _order(row: Row) -> tuple[bool, str, bytes]:
    """Directories first, then by name as shown (case-insensitive), then by bytes."""
    name, f, e, _ = row
    is_dir = (f is not None and f.kind == "dir") or (e is not None and e.kind == "dir")
    return (not is_dir, display(name).casefold(), name)


def conflicts(server: ServerState) -> ConflictList:
    """The conflict copies on either side of `server`, each with the version that won."""
    sides = {"folder": Tree(server.folder), "export": Tree(server.store)}
    found: dict[Parts, None] = {}
    truncated = False
    for tree in sides.values():
        for parts, is_file in tree.entries(CONFLICT_WALK_LIMIT) or ():
            if is_file and CONFLICT.match(parts[-1]):
                found[parts] = None
                if len(found) > MAX_CONFLICTS:
                    truncated = True
                    break
        if truncated:
            break
    pairs = []
    for parts in sorted(found)[:MAX_CONFLICTS]:
        match = CONFLICT.match(parts[-1])
        assert match is not None
        original = (*parts[:-1], match["stem"] + (match["ext"] or b""))
        pairs.append(ConflictPair(
            path=display(b"/".join(parts)), ref=ref(parts),
            original=display(b"/".join(original)), original_ref=ref(original),
            side=match["side"].decode(), stamp=match["stamp"].decode(),
            copy_entry=_side(sides["folder"].stat(parts) or sides["export"].stat(parts)),
            original_entry=_side(sides["folder"].stat(original) or sides["export"].stat(original)),
        ))  # fmt: skip
    return ConflictList(server=server.name, conflicts=pairs, truncated=truncated)


def count_files(tree: Tree) -> int | None:
    """Regular files under `tree` (None when its root is missing)."""
    return tree.count_files(COUNT_WALK_LIMIT)


class CountCache:
    """File counts per server, recounted at most every `ttl` seconds (a walk of 10,000 files
    costs tens of milliseconds per side; the overview asks every few seconds)."""

    def __init__(self, ttl: float = COUNTS_TTL_S, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, SideCounts] = {}
        self._lock = threading.Lock()

    def get(self, server: ServerState) -> SideCounts:
        with self._lock:
            known = self._cache.get(server.name)
        if known is not None and self.clock() - known.at < self.ttl:
            return known
        folder = count_files(Tree(server.folder))
        export = folder if server.storage.value == "direct" else count_files(Tree(server.store))
        fresh = SideCounts(folder=folder, export=export, at=self.clock())
        with self._lock:
            self._cache[server.name] = fresh
        return fresh
