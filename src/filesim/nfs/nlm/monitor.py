"""What the lock manager keeps across a restart (the job rpc.statd does for the Linux server):
this server's NSM state number and the hosts that hold locks.

The state number is odd while the server runs and goes up by two at each start, so a client can
tell a restart. The hosts of the last run are told of the restart (SM_NOTIFY, by the server's
I/O side) so they reclaim their locks during the grace period; they stay recorded until they
have been notified or given up on, so a crash in between loses no one. JSON, in the server's
state directory, written only when the set of hosts changes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filesim.nfs.statefile import load_state, save_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Peer:
    """A client host: its name (NLM caller_name), its address, and ours that it called."""

    name: str
    address: str
    local: str


class HostRecord:
    """The NSM state number and the monitored hosts, saved in `path` (None: kept in memory)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        saved = self._load()
        previous = int(saved.get("state", 0))
        self.state = previous + (1 if previous % 2 == 0 else 2)
        self.to_notify: dict[str, Peer] = {}
        """Hosts that held locks when the server last ran: told of this restart."""
        for name, entry in dict(saved.get("hosts", {})).items():
            if isinstance(entry, dict):
                self.to_notify[str(name)] = Peer(
                    str(name), str(entry.get("address", "")), str(entry.get("local", ""))
                )
        self.current: dict[str, Peer] = {}
        self._save()

    def monitor(self, name: str, address: str, local: str) -> None:
        peer = Peer(name, address, local)
        if self.current.get(name) != peer:
            self.current[name] = peer
            self._save()

    def forget(self, name: str) -> None:
        if self.current.pop(name, None) is not None:
            self._save()

    def notified(self, name: str) -> None:
        """`name` was told of the restart (or given up on)."""
        if self.to_notify.pop(name, None) is not None:
            self._save()

    def _load(self) -> dict[str, Any]:
        return load_state(self.path, "NLM state")

    def _save(self) -> None:
        hosts = {
            p.name: {"address": p.address, "local": p.local}
            for p in (*self.to_notify.values(), *self.current.values())
        }
        save_state(self.path, {"state": self.state, "hosts": hosts}, "NLM state")
