"""What survives a restart: the boot epoch and which clients held state; the grace period.

The state file (JSON, in the server's state directory) lists the owner ids of the clients that
were confirmed when the server last ran. After a restart those clients, and only they, may
reclaim their opens and locks during the grace period; new opens and locks wait (NFS4ERR_GRACE)
until it ends, or until every listed client has said RECLAIM_COMPLETE. Without listed clients
there is no grace period at all.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from filesim.nfs.statefile import load_state, save_state

log = logging.getLogger(__name__)


class Recovery:
    def __init__(self, path: Path | None, grace_s: float) -> None:
        self.path = path
        saved = self._load()
        previous = int(saved.get("boot", 0))
        self.boot = max(previous + 1, int(time.time())) & 0xFFFFFFFF
        self.known: set[bytes] = {bytes.fromhex(c) for c in saved.get("clients", [])}
        self.pending: set[bytes] = set(self.known)
        self.current: set[bytes] = set()
        self.grace_end = time.monotonic() + grace_s if self.known else 0.0
        if self.known:
            log.info("NFSv4 grace period of %ss for %d client(s)", grace_s, len(self.known))
        self._save()

    def _load(self) -> dict[str, Any]:
        return load_state(self.path, "NFSv4 state")

    def _save(self) -> None:
        data = {"boot": self.boot, "clients": sorted(c.hex() for c in self.current | self.pending)}
        save_state(self.path, data, "NFSv4 state")

    def in_grace(self) -> bool:
        if not self.grace_end:
            return False
        if time.monotonic() >= self.grace_end or not self.pending:
            self.grace_end = 0.0
            self.pending.clear()
            self._save()
            return False
        return True

    def may_reclaim(self, owner: bytes) -> bool:
        return owner in self.known

    def confirmed(self, owner: bytes) -> None:
        if owner not in self.current:
            self.current.add(owner)
            self._save()

    def reclaimed(self, owner: bytes) -> None:
        """The client said RECLAIM_COMPLETE (4.1): grace may end early."""
        self.pending.discard(owner)

    def forget(self, owner: bytes) -> None:
        if owner in self.current:
            self.current.discard(owner)
            self._save()
