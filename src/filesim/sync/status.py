"""What a sync agent reports about itself: one typed value, read by the runtime document, the
HTTP API, `filesim status`, `filesim verify`, the metrics and the pytest fixture."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SyncStatus(BaseModel):
    """A snapshot of one agent's state and counters."""

    model_config = ConfigDict(extra="forbid")

    server: str
    direction: str = Field(description="both | folder-to-export | export-to-folder | none")
    continuous: bool = Field(description="Whether the agent keeps syncing after the start.")
    running: bool = Field(False, description="The agent's loop is alive (not ended or crashed).")
    ready: bool = Field(False, description="The initial sync (if any) is over.")
    pending: int = Field(0, description="Paths waiting to be synced.")
    last_sync: float | None = Field(None, description="Unix time of the last completed action.")
    p50_ms: float | None = None
    p99_ms: float | None = None
    conflicts: int = 0
    halted: str | None = Field(None, description="Why the mass-deletion guard holds the sync.")
    actions: int = Field(0, description="Sync actions carried out.")
    by_kind: dict[str, int] = Field(default_factory=dict)
    echoes: int = Field(
        0, description="Copies that carried back a version filesim itself had published: a loop."
    )
    errors: int = 0
