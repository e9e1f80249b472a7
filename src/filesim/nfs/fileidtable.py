"""The persistent table behind allocated file ids: which id each name of an export has.

A row is `id -> (parent id, name, kind, native number, birth tag)`; the root is `ROOT`. A
path is found by walking names from the root, and an id's path by walking parents up, so a
directory renamed through the server moves one row, not its whole subtree. Ids come from a
counter and are never given out twice, not even after a restart: a handle of a removed file
can never name a later one.

The table survives restarts as an append-only log in the state directory, one line per change,
written before the reply that carries the id leaves (`flush`) and compacted when it holds far
more lines than rows. Lines:

    c NEXT                                 the counter is at least NEXT
    a ID PARENT KIND NATIVE BIRTH NAMEHEX  a row
    m ID PARENT NAMEHEX                    the row moved (a rename)
    n ID KIND NATIVE BIRTH                 what is known of the file, learnt later
    d ID                                   the row is gone

NAMEHEX is the name's bytes in hex, or `w` and hex for a name no bytes stand for (`_hex`). A
torn last line (a crash mid-append) is skipped. Rows of names removed behind the server's
back are dropped when their directory is next listed, and rows no longer reachable from the
root at the next compaction, so the table holds about one row per name the server has seen.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from filesim.nfs.appendlog import AppendLog

ROOT = 1
"""The id of the export root."""
_MAX_DEPTH = 4096


@dataclass(slots=True)
class Row:
    parent: int
    name: str
    kind: int = 0
    """stat.S_IFMT(mode) >> 12; 0 while unknown (a name seen only in a listing)."""
    native: int = 0
    """The filesystem's own number for the file, where it is worth checking; 0: unknown."""
    birth: int = 0
    """A tag of the file's birth time (`filesim.nfs.handles.birth_tag`); 0: unknown."""


_WIDE = "w"
"""Marks a NAMEHEX that holds a surrogate no byte escapes to (see `_hex`)."""


def _hex(name: str) -> str:
    """A name as hex digits: its bytes, as the filesystem has them (a byte that is not UTF-8
    comes as a surrogate escape, U+DC80-U+DCFF). A name with any other lone surrogate (an
    NTFS name on Windows, whose unpaired UTF-16 halves Python hands out as they are) has no
    such bytes: it is written `w` + every surrogate encoded as itself, which the bare hex of
    older logs never starts with."""
    try:
        return name.encode("utf-8", "surrogateescape").hex()
    except UnicodeEncodeError:
        return _WIDE + name.encode("utf-8", "surrogatepass").hex()


def _unhex(text: str) -> str:
    if text.startswith(_WIDE):
        return bytes.fromhex(text[1:]).decode("utf-8", "surrogatepass")
    return bytes.fromhex(text).decode("utf-8", "surrogateescape")


class FileIdTable:
    """Rows and their log. Thread-safe: NFS calls run on the event loop and in threads."""

    def __init__(self, path: Path | None) -> None:
        self.rows: dict[int, Row] = {ROOT: Row(0, "")}
        self._children: dict[int, dict[str, int]] = {}
        self._next = ROOT + 1
        self.lock = threading.RLock()
        self._log = None if path is None else AppendLog(path)
        if self._log is not None:
            for line in self._log.read():
                with contextlib.suppress(ValueError, KeyError, IndexError):
                    self._replay(line.split(" "))
            self._compact(self._log)

    # -- queries -------------------------------------------------------------------------

    def lookup(self, path: str) -> int | None:
        """The id of `path`'s row, or None when a name on the way has none."""
        fid = ROOT
        if not path:
            return fid
        for name in path.split("/"):
            kids = self._children.get(fid)
            found = None if kids is None else kids.get(name)
            if found is None:
                return None
            fid = found
        return fid

    def path_of(self, fid: int) -> str | None:
        """The path of row `fid`, or None when it or a directory above it is gone."""
        names: list[str] = []
        while fid != ROOT:
            row = self.rows.get(fid)
            if row is None or len(names) > _MAX_DEPTH:
                return None
            names.append(row.name)
            fid = row.parent
        return "/".join(reversed(names))

    def children(self, fid: int) -> dict[str, int]:
        return self._children.get(fid, {})

    # -- changes -------------------------------------------------------------------------

    def add(self, parent: int, name: str, kind: int, native: int, birth: int) -> int:
        """A new row for `name` in directory `parent`, replacing the one it had."""
        self.drop_child(parent, name)
        fid = self._next
        self._next += 1
        self._attach(fid, Row(parent, name, kind, native, birth))
        self._write(f"a {fid} {parent} {kind} {native} {birth} {_hex(name)}")
        return fid

    def learn(self, fid: int, kind: int, native: int, birth: int) -> None:
        """Record what is now known of row `fid` (its kind, number, birth tag)."""
        row = self.rows[fid]
        row.kind, row.native, row.birth = kind, native, birth
        self._write(f"n {fid} {kind} {native} {birth}")

    def move(self, fid: int, parent: int, name: str) -> None:
        """Row `fid` is now `name` in `parent` (whatever held that name is dropped)."""
        self.drop_child(parent, name)
        self._detach(fid)
        row = self.rows[fid]
        row.parent, row.name = parent, name
        self._attach(fid, row)
        self._write(f"m {fid} {parent} {_hex(name)}")

    def drop(self, fid: int) -> None:
        if fid == ROOT or fid not in self.rows:
            return
        self._detach(fid)
        del self.rows[fid]
        self._children.pop(fid, None)
        self._write(f"d {fid}")

    def drop_child(self, parent: int, name: str) -> None:
        fid = self._children.get(parent, {}).get(name)
        if fid is not None:
            self.drop(fid)

    def _attach(self, fid: int, row: Row) -> None:
        self.rows[fid] = row
        self._children.setdefault(row.parent, {})[row.name] = fid

    def _detach(self, fid: int) -> None:
        row = self.rows[fid]
        kids = self._children.get(row.parent)
        if kids is not None and kids.get(row.name) == fid:
            del kids[row.name]
            if not kids:
                del self._children[row.parent]

    # -- the log -------------------------------------------------------------------------

    def _write(self, line: str) -> None:
        if self._log is not None:
            self._log.append(line)

    def flush(self) -> None:
        """Hand the lines written so far to the OS, before a reply carries their ids."""
        log = self._log
        if log is not None:
            log.flush()  # nothing written since the last: no system call
            if log.lines > 2 * len(self.rows) + 4096:
                self._compact(log)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()

    def _replay(self, parts: list[str]) -> None:
        op, fid = parts[0], int(parts[1])
        self._next = max(self._next, fid + 1)
        if op == "c":
            self._next = max(self._next, fid)
        elif op == "a" and len(parts) == 7:
            kind, native, birth = (int(p) for p in parts[3:6])
            self._attach(fid, Row(int(parts[2]), _unhex(parts[6]), kind, native, birth))
        elif op == "m" and len(parts) == 4 and fid in self.rows:
            self._detach(fid)
            row = self.rows[fid]
            row.parent, row.name = int(parts[2]), _unhex(parts[3])
            self._attach(fid, row)
        elif op == "n" and len(parts) == 5 and fid in self.rows:
            row = self.rows[fid]
            row.kind, row.native, row.birth = (int(p) for p in parts[2:5])
        elif op == "d" and len(parts) == 2 and fid in self.rows and fid != ROOT:
            self._detach(fid)
            del self.rows[fid]

    def _compact(self, log: AppendLog) -> None:
        """Rewrite the log as the rows reachable from the root."""
        self._prune_unreachable()
        log.rewrite(self._lines())

    def _lines(self) -> Iterator[str]:
        yield f"c {self._next}"
        for fid, r in self.rows.items():
            if fid != ROOT:
                yield f"a {fid} {r.parent} {r.kind} {r.native} {r.birth} {_hex(r.name)}"

    def _prune_unreachable(self) -> None:
        reachable = {ROOT}
        stack = [ROOT]
        while stack:
            for kid in self._children.get(stack.pop(), {}).values():
                if kid not in reachable:
                    reachable.add(kid)
                    stack.append(kid)
        for fid in [f for f in self.rows if f not in reachable]:
            del self.rows[fid]
            self._children.pop(fid, None)
