"""Per-export file generations: what tells a removed file's handle from its inode's next file.

A handle names an inode number plus a generation. The generation of an inode goes up each
time this server removes the inode's last name (REMOVE, RMDIR, a RENAME over it), so a handle
taken before answers STALE even once the filesystem gives the number to a new file. Removals
behind the server's back (the sync agent, a tester) are caught by the birth time the handle
also carries, where the platform reports one (see `filesim.nfs.handles`).

The table survives restarts: an append-only file in the state directory, one "ino gen" line
per change, compacted when it holds far more lines than inodes. It holds only inodes that were
removed at least once, at most `cap` of them (the oldest go first).
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from pathlib import Path
from typing import TextIO

_MASK = 0xFFFFFFFF


class Generations:
    def __init__(self, path: Path | None, cap: int = 200_000) -> None:
        self._path = path
        self._cap = cap
        self._gens: OrderedDict[int, int] = OrderedDict()
        self._lines = 0
        self._log: TextIO | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._load(path)

    def of(self, ino: int) -> int:
        return self._gens.get(ino, 0)

    def bump(self, ino: int) -> None:
        """The inode `ino` lost its last name through this server: older handles are stale."""
        gen = (self._gens.pop(ino, 0) + 1) & _MASK
        self._gens[ino] = gen
        while len(self._gens) > self._cap:
            self._gens.popitem(last=False)
        if self._path is None:
            return
        if self._lines > 2 * len(self._gens) + 1024:
            self._compact(self._path)
            return
        if self._log is None:  # kept open: a REMOVE costs one write, not an open and close
            self._log = open(self._path, "a", encoding="ascii")  # noqa: SIM115
        self._log.write(f"{ino} {gen}\n")
        self._log.flush()  # in the OS before the reply (no fsync: a crash may lose the last)
        self._lines += 1

    def _load(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            return
        for line in text.splitlines():
            parts = line.split()
            # A torn last line (a crash mid-append) is skipped; its bump is lost, no more.
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                ino, gen = int(parts[0]), int(parts[1]) & _MASK
                self._gens.pop(ino, None)
                self._gens[ino] = gen
            self._lines += 1
        while len(self._gens) > self._cap:
            self._gens.popitem(last=False)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _compact(self, path: Path) -> None:
        """Rewrite the file with one line per inode, atomically (rename over it)."""
        self.close()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="ascii") as f:
                f.writelines(f"{ino} {gen}\n" for ino, gen in self._gens.items())
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self._lines = len(self._gens)
