"""Where a running topology keeps things on disk.

ROOT/<name>             the tester's folder of each server (unless the topology says otherwise)
ROOT/.filesim/          state: pid and runtime files, logs
ROOT/.filesim/exports/<name>   the export store of a mirror-mode server
ROOT/.filesim/sync/<name>.db   the sync archive of a server
ROOT/.filesim/generations/<name>.log   the NFS file generations of a server's export
ROOT/.filesim/runtime.lock     held by the process of the running topology
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from filesim.topology.kinds import StorageMode

if TYPE_CHECKING:
    from filesim.topology.model import Server

STATE_DIR_NAME = ".filesim"

TEMP_PREFIX = ".filesim-tmp-"
"""Files being published by the synchroniser: invisible to scanners and to NFS clients."""


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX)


def case_insensitive(root: Path) -> bool:
    """Whether names under `root` ignore case (macOS, Windows, NTFS): creates and removes one
    temporary file (a name the sync agents and the NFS server ignore); a root that refuses
    it is judged by its own entries."""
    token = secrets.token_hex(4)
    lower = root / f"{TEMP_PREFIX}case-probe-{token}"
    try:
        fd = os.open(lower, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return _insensitive_entries(root)
    os.close(fd)
    try:
        return os.path.lexists(root / f"{TEMP_PREFIX}CASE-PROBE-{token}")
    finally:
        os.unlink(lower)


def _insensitive_entries(root: Path) -> bool:
    try:
        names = os.listdir(root)
    except OSError:
        return False
    for name in names:
        variant = name.swapcase()
        if variant != name:
            return variant not in names and os.path.lexists(root / variant)
    return False


@dataclass(frozen=True)
class Layout:
    root: Path
    state: Path | None = None
    """Overrides ROOT/.filesim (in Kubernetes the state lives on its own volume)."""

    @property
    def state_dir(self) -> Path:
        return self.state if self.state is not None else self.root / STATE_DIR_NAME

    def folder(self, server: Server) -> Path:
        if server.folder is None:
            return self.root / server.name
        return server.folder if server.folder.is_absolute() else self.root / server.folder

    def store(self, server: Server) -> Path:
        """The directory the NFS server exports for `server`."""
        if server.storage is StorageMode.DIRECT:
            return self.folder(server)
        return self.state_dir / "exports" / server.name

    def archive(self, server: Server) -> Path:
        return self.state_dir / "sync" / f"{server.name}.db"

    @property
    def runtime_file(self) -> Path:
        return self.state_dir / "runtime.json"

    @property
    def control_token(self) -> Path:
        """The token that authorises a stop through the HTTP API (owner-only, while running)."""
        return self.state_dir / "control.token"

    @property
    def runtime_lock(self) -> Path:
        """Locked by the process of the running topology for as long as it lives."""
        return self.state_dir / "runtime.lock"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "filesim.log"

    @property
    def events_file(self) -> Path:
        return self.state_dir / "events.jsonl"

    def generations_file(self, server: Server) -> Path:
        """The NFS file generations of `server`'s export (filesim.nfs.generations)."""
        return self.state_dir / "generations" / f"{server.name}.log"

    @property
    def secret_file(self) -> Path:
        return self.state_dir / "handle-secret"
