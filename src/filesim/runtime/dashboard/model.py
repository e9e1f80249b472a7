"""The documents the dashboard's endpoints answer with (pydantic, like the runtime document).

Paths travel as `ref`s: the path's bytes percent-encoded ('/' kept), so that any name — not
UTF-8, with '%', '?', '#' or newlines in it — goes to the page and comes back unchanged. `name`
and `path` are for display only (undecodable bytes shown as U+FFFD).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SyncMark = Literal["synced", "pending", "unsynced", "conflict", "direct"]
"""synced: both sides hold the same entry; pending: they differ and the sync will carry it;
unsynced: they differ and this server's sync policy will not carry it; conflict: a copy set
aside by a conflict; direct: the export is the folder itself (nothing to sync)."""


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SideEntry(_Doc):
    """An entry as one side has it."""

    kind: Literal["file", "dir", "symlink", "other"]
    size: int
    mtime: float = Field(description="Unix time of the last modification.")


class Crumb(_Doc):
    name: str
    ref: str


class FileRow(_Doc):
    """One name of a directory, on both sides."""

    name: str
    ref: str
    folder: SideEntry | None
    export: SideEntry | None
    state: SyncMark


class FileListing(_Doc):
    """`GET /api/servers/{name}/files`: one page of a directory, folder and export side by
    side."""

    server: str
    path: str
    ref: str
    crumbs: list[Crumb]
    storage: Literal["mirror", "direct"]
    folder_exists: bool
    export_exists: bool
    total: int = Field(description="Entries matching the filter (all pages).")
    offset: int
    limit: int
    states: dict[str, int] = Field(description="How many matching entries are in each state.")
    rows: list[FileRow]


class ConflictPair(_Doc):
    """A conflict: the copy set aside, and the version that kept the name."""

    path: str
    ref: str
    original: str
    original_ref: str
    side: Literal["folder", "export"] = Field(description="The side whose version lost.")
    stamp: str = Field(description="The set-aside version's modification time (UTC).")
    copy_entry: SideEntry | None
    original_entry: SideEntry | None


class ConflictList(_Doc):
    server: str
    conflicts: list[ConflictPair]
    truncated: bool = Field(description="More conflicts (or files) than one answer holds.")


class SideCounts(_Doc):
    folder: int | None
    export: int | None
    at: float = Field(description="Unix time they were counted.")


class FileCounts(_Doc):
    """`GET /api/counts`: files on each side of every server (recounted every few seconds)."""

    servers: dict[str, SideCounts]


class ConnectDoc(_Doc):
    """`GET /api/servers/{name}/connect`: how a client mounts this server."""

    server: str
    linux: str
    linux_v4: str = Field(description="The Linux command for NFSv4.1 (one port, no MOUNT).")
    macos: str
    windows: str
    windows_note: str | None = Field(
        None, description="Why the Windows command does not work with this server as it runs."
    )
    pv_pvc: str | None = Field(
        None, description="PersistentVolume and claim YAML (when the process can render it)."
    )
