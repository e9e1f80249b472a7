"""Fault specifications: how a simulated NAS should misbehave, as data.

The same model describes a static fault in a topology file (`servers[i].faults`), a fault added
at run time (`filesim fault add`, `POST /api/faults`) and the fixture helpers of
`filesim.testing`; the runtime turns it into the state of one server's fault layer (see
`filesim.nfs.faults`). Procedure and error names are those of the enums in
`filesim.oncrpc.programs`, the one list the server, the client and this model share.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from filesim.oncrpc.programs import NfsProc, NfsStat
from filesim.topology.kinds import FaultKind as FaultKind

NFS_PROCEDURES = tuple(proc.name for proc in NfsProc)
"""NFSv3 procedure names in procedure-number order (RFC 1813)."""

ERROR_NAMES = tuple(status.name for status in NfsStat if status is not NfsStat.OK)
"""NFS3ERR_* names an error fault may answer with (without the prefix)."""


SYNC_KINDS = frozenset({FaultKind.SYNC_PAUSE, FaultKind.SYNC_SLOW})
"""The kinds that act on the sync agent; the others act on the NFS server."""


def error_name(value: str) -> str:
    """'EIO', 'NFS3ERR_IO', 'io' -> 'IO'; raises ValueError for an unknown status."""
    name = value.strip().upper().removeprefix("NFS3ERR_")
    if name not in ERROR_NAMES and name.startswith("E") and name[1:] in ERROR_NAMES:
        name = name[1:]
    if name not in ERROR_NAMES:
        known = ", ".join(f"E{n}" for n in ERROR_NAMES[:20])
        raise ValueError(f"unknown NFS error {value!r} (known: {known}, JUKEBOX, ...)")
    return name


MAX_DELAY_MS = 3_600_000.0
"""The longest delay a latency or sync-slow fault may add (one hour): longer is an outage."""
MAX_DURATION_S = 30 * 86_400.0
"""The longest a fault may be set to last by itself (30 days); without `duration_s`, forever."""


class FaultSpec(BaseModel):
    """One fault on one server. Fields that do not apply to the kind must stay unset."""

    # Numbers are finite and bounded (no NaN, no infinity, no 1e400): a fault goes into JSON
    # documents and timers, and one that cannot be written back must never be stored.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: FaultKind
    procedures: list[str] = Field(
        default_factory=list,
        description="NFS procedures affected (e.g. READ, WRITE); empty: all of them.",
    )
    paths: list[str] = Field(
        default_factory=list,
        description="error: export-relative path globs (fnmatch, e.g. 'in/*.csv'); empty: all.",
    )
    error: str | None = Field(None, description="error: the status, e.g. EIO, NOSPC, JUKEBOX.")
    probability: float = Field(1.0, ge=0.0, le=1.0, description="error: chance per call.")
    delay_ms: float = Field(
        0.0, ge=0.0, le=MAX_DELAY_MS, description="latency/sync-slow: the (minimum) delay."
    )
    distribution: Literal["fixed", "uniform", "normal", "exponential"] = Field(
        "fixed",
        description="latency: fixed delay_ms; uniform delay_ms..delay_ms+jitter_ms; normal "
        "around delay_ms with sd jitter_ms (never below 0); exponential: delay_ms plus an "
        "exponential tail of mean jitter_ms.",
    )
    jitter_ms: float = Field(
        0.0, ge=0.0, le=MAX_DELAY_MS, description="latency: spread of the distribution."
    )
    mode: Literal["refuse", "blackhole"] = Field(
        "blackhole",
        description="outage: refuse connections, or accept them and never answer (clients "
        "time out, as with a NAS that hangs).",
    )
    duration_s: float | None = Field(
        None,
        gt=0,
        le=MAX_DURATION_S,
        description="Clear the fault by itself after this long (default: never).",
    )

    @field_validator("procedures")
    @classmethod
    def _known_procedures(cls, value: list[str]) -> list[str]:
        names = [p.strip().upper() for p in value]
        for name in names:
            if name not in NFS_PROCEDURES:
                raise ValueError(
                    f"unknown NFS procedure {name!r} (known: {', '.join(NFS_PROCEDURES)})"
                )
        return names

    @field_validator("error")
    @classmethod
    def _known_error(cls, value: str | None) -> str | None:
        return None if value is None else error_name(value)

    @field_validator("paths")
    @classmethod
    def _relative_globs(cls, value: list[str]) -> list[str]:
        return [p.strip("/") or "*" for p in value]

    @model_validator(mode="after")
    def _fits_kind(self) -> FaultSpec:
        kind = self.kind
        if kind is FaultKind.ERROR and self.error is None:
            raise ValueError("an error fault needs `error`, e.g. EIO or NOSPC")
        if kind is not FaultKind.ERROR:
            for name in ("error", "paths"):
                if getattr(self, name):
                    raise ValueError(f"`{name}` applies to error faults only, not {kind.value}")
            if self.probability != 1.0:
                raise ValueError(f"`probability` applies to error faults only, not {kind.value}")
        if kind in (FaultKind.LATENCY, FaultKind.SYNC_SLOW):
            if self.delay_ms <= 0 and self.jitter_ms <= 0:
                raise ValueError(f"a {kind.value} fault needs delay_ms (or jitter_ms) above 0")
        elif self.delay_ms or self.jitter_ms:
            raise ValueError(f"delay_ms/jitter_ms apply to latency faults only, not {kind.value}")
        if self.procedures and kind not in (FaultKind.LATENCY, FaultKind.ERROR):
            raise ValueError(f"`procedures` applies to latency and error faults, not {kind.value}")
        return self

    def summary(self) -> str:
        """A short human description, e.g. 'error EIO on READ for *.csv (p=0.5)'."""
        parts = [self.kind.value]
        if self.kind is FaultKind.ERROR:
            parts.append(f"E{self.error}" if self.error != "JUKEBOX" else "JUKEBOX")
        if self.kind in (FaultKind.LATENCY, FaultKind.SYNC_SLOW):
            spread = f"+{self.jitter_ms:g} {self.distribution}" if self.jitter_ms else ""
            parts.append(f"{self.delay_ms:g} ms{spread}")
        if self.kind is FaultKind.OUTAGE:
            parts.append(self.mode)
        if self.procedures:
            parts.append("on " + ",".join(self.procedures))
        if self.paths:
            parts.append("for " + ",".join(self.paths))
        if self.probability < 1:
            parts.append(f"(p={self.probability:g})")
        if self.duration_s:
            parts.append(f"for {self.duration_s:g} s")
        return " ".join(parts)


def nfs_faults(specs: Iterable[FaultSpec]) -> list[FaultSpec]:
    """Those of `specs` that act on the NFS server (the others act on the sync agent)."""
    return [s for s in specs if s.kind not in SYNC_KINDS]
