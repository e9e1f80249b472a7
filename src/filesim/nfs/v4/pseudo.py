"""The pseudo-filesystem: the directories above the export, so `HOST:/` shows the export path.

For an export at /data/x the pseudo-filesystem has "/" and "/data"; LOOKUP of "x" in "/data"
crosses into the export root. Pseudo nodes are read-only directories with handles of their own
(never confused with export handles, which have another length) and their own fsid.
"""

from __future__ import annotations

import stat
import time

from filesim.nfs.attrs import Attrs

PREFIX = b"filesim-pseudo-v4:"
PSEUDO_FSID = (0, 0)


class Pseudo:
    def __init__(self, export_path: str) -> None:
        self.components = [p for p in export_path.split("/") if p]
        now = time.time_ns()
        self._stats = [self._stat(depth, now) for depth in range(len(self.components))]

    @property
    def depth(self) -> int:
        """Pseudo nodes are depths 0 .. depth-1; the export root sits at `depth`."""
        return len(self.components)

    def handle(self, depth: int) -> bytes:
        return PREFIX + bytes([depth])

    def depth_of(self, handle: bytes) -> int | None:
        """The pseudo node a handle names, or None when it is not a pseudo handle."""
        if len(handle) == len(PREFIX) + 1 and handle.startswith(PREFIX):
            depth = handle[-1]
            return depth if depth < self.depth else -1
        return None

    def child(self, depth: int, name: str) -> int | None:
        """The depth reached by LOOKUP of `name` in pseudo node `depth` (None: no such)."""
        return depth + 1 if self.components[depth] == name else None

    def entry(self, depth: int) -> str:
        """The one name listed in pseudo directory `depth`."""
        return self.components[depth]

    def stat(self, depth: int) -> Attrs:
        return self._stats[depth]

    def fileid(self, depth: int) -> int:
        return depth + 1

    def _stat(self, depth: int, now: int) -> Attrs:
        return Attrs(
            st_mode=stat.S_IFDIR | 0o555, st_ino=self.fileid(depth), st_dev=0, st_nlink=2,
            st_uid=0, st_gid=0, st_size=4096, st_blocks=8, st_rdev=0, st_atime_ns=now,
            st_mtime_ns=now, st_ctime_ns=now, st_birthtime_ns=now,
        )  # fmt: skip
