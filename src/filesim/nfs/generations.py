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

from collections import OrderedDict
from pathlib import Path

from filesim.nfs.appendlog import AppendLog

_MASK = 0xFFFFFFFF


class Generations:
    def __init__(self, path: Path | None, cap: int = 200_000) -> None:
        self._cap = cap
        self._gens: OrderedDict[int, int] = OrderedDict()
        self._log = None if path is None else AppendLog(path)
        if self._log is not None:
            self._load(self._log)

    def of(self, ino: int) -> int:
        return self._gens.get(ino, 0)

    def bump(self, ino: int) -> None:
        """The inode `ino` lost its last name through this server: older handles are stale."""
        gen = (self._gens.pop(ino, 0) + 1) & _MASK
        self._gens[ino] = gen
        while len(self._gens) > self._cap:
            self._gens.popitem(last=False)
        log = self._log
        if log is None:
            return
        if log.lines > 2 * len(self._gens) + 1024:
            log.rewrite(f"{i} {g}" for i, g in self._gens.items())
            return
        log.append(f"{ino} {gen}")
        log.flush()  # in the OS before the reply

    def _load(self, log: AppendLog) -> None:
        for line in log.read():
            parts = line.split()
            # A torn last line (a crash mid-append) is skipped; its bump is lost, no more.
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                ino, gen = int(parts[0]), int(parts[1]) & _MASK
                self._gens.pop(ino, None)
                self._gens[ino] = gen
        while len(self._gens) > self._cap:
            self._gens.popitem(last=False)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
