"""Fault injection on one NFS server: the active `FaultSpec`s turned into cheap hooks.

Nothing here runs while no fault is active: `ServerFaults.apply` installs exactly the hooks the
active faults need and removes the others, so the hot path pays one `is None` test per call.

- error faults without paths: the dispatcher's `fault` hook answers the procedure's status;
- error faults with path globs: a `FaultyVfs` wrapped around the export's storage raises the
  status when a matching procedure touches a matching path (the hook arms it per call);
- latency and "blackhole" outages: the server's `intercept` hook holds or drops calls;
- "refuse" outages: the server's `paused` flag; read-only flips: the export's `readonly`.

Sync faults (pause, slowdown) belong to the sync agent and are applied by the runtime.
"""

from __future__ import annotations

import fnmatch
import math
import os
import random
import re
import struct
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from filesim.nfs.const import NFS_PROGRAM, NfsProc, NfsStat
from filesim.nfs.server import NfsServer
from filesim.nfs.vfs import DirEntry, FsStat, NfsError, SetAttrs, Vfs
from filesim.topology.faults import FaultKind, FaultSpec

_PROG_VERS_PROC = struct.Struct(">III")  # program, version, procedure: 12 bytes into a call


@dataclass(frozen=True)
class _ErrorRule:
    procedures: frozenset[int] | None
    """NFS procedure numbers, None: all."""
    paths: re.Pattern[str] | None
    status: NfsStat
    probability: float

    def fires(self, proc: int) -> bool:
        if self.procedures is not None and proc not in self.procedures:
            return False
        return self.probability >= 1.0 or random.random() < self.probability


@dataclass(frozen=True)
class _LatencyRule:
    procedures: frozenset[int] | None
    delay: float
    jitter: float
    distribution: str

    def sample(self) -> float:
        d, j = self.delay, self.jitter
        if not j or self.distribution == "fixed":
            return d
        if self.distribution == "uniform":
            return d + random.uniform(0.0, j)
        if self.distribution == "normal":
            return max(0.0, random.gauss(d, j))
        return d + random.expovariate(1.0 / j)


def _procedures(names: Sequence[str]) -> frozenset[int] | None:
    return frozenset(NfsProc[n] for n in names) if names else None


def _globs(patterns: Sequence[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


class ServerFaults:
    """The faults active on one `NfsServer`, installed as hooks on it."""

    def __init__(self, server: NfsServer) -> None:
        self.server = server
        self.export = server.export
        self.storage: Vfs = server.export.vfs
        self.readonly_configured = server.export.config.readonly
        self._call_errors: list[_ErrorRule] = []
        self._path_errors: list[_ErrorRule] = []
        self._latencies: list[_LatencyRule] = []
        self._blackhole = False
        self._armed = threading.local()
        """Per thread: the path rules that fire for the call being dispatched on it. Only NFS
        calls re-arm it: a MOUNT call right after an armed NFS call on the same thread may
        meet the same rules when it looks up the mounted path (a glob matching directories)."""

    def apply(self, specs: Sequence[FaultSpec]) -> None:
        """Make `specs` (every active NFS fault of this server) the server's behaviour."""
        errors = [s for s in specs if s.kind is FaultKind.ERROR]
        self._call_errors = [_error_rule(s) for s in errors if not s.paths]
        self._path_errors = [_error_rule(s) for s in errors if s.paths]
        self._latencies = [
            _LatencyRule(
                _procedures(s.procedures), s.delay_ms / 1000, s.jitter_ms / 1000, s.distribution
            )
            for s in specs
            if s.kind is FaultKind.LATENCY
        ]
        outages = {s.mode for s in specs if s.kind is FaultKind.OUTAGE}
        readonly = any(s.kind is FaultKind.READONLY for s in specs)

        server, export = self.server, self.export
        export.config.readonly = self.readonly_configured or readonly
        export.vfs = FaultyVfs(self.storage, self) if self._path_errors else self.storage
        server.dispatcher.fault = self._check if errors else None
        refuse, blackhole = "refuse" in outages, "blackhole" in outages
        if refuse and not server.paused:
            server.drop_connections()
        server.paused = refuse
        if self._blackhole and not blackhole:
            # Calls swallowed during the outage are lost: make clients reconnect and resend.
            server.drop_connections()
        self._blackhole = blackhole
        server.intercept = self._intercept if (blackhole or self._latencies) else None

    # -- hooks (hot while a fault is active) ---------------------------------------------------

    def _intercept(self, record: memoryview) -> float:
        if self._blackhole:
            return math.inf
        if len(record) < 24:
            return 0.0
        prog, vers, proc = _PROG_VERS_PROC.unpack_from(record, 12)
        if prog != NFS_PROGRAM:
            return 0.0
        if vers != 3:  # an NFSv4 COMPOUND: only latency on every procedure applies
            proc = -1
        delay = 0.0
        for rule in self._latencies:
            if rule.procedures is None or proc in rule.procedures:
                delay += rule.sample()
        return delay

    def _check(self, proc: int, client: str) -> NfsStat | None:
        # Decide once per call (not per storage operation) which path rules fire, so a
        # probability is the chance that a call fails.
        self._armed.rules = [r for r in self._path_errors if r.fires(proc)]
        for rule in self._call_errors:
            if rule.fires(proc):
                return rule.status
        return None

    def armed(self) -> list[_ErrorRule]:
        return getattr(self._armed, "rules", None) or []


def _error_rule(spec: FaultSpec) -> _ErrorRule:
    assert spec.error is not None
    status = NfsStat[spec.error]
    return _ErrorRule(_procedures(spec.procedures), _globs(spec.paths), status, spec.probability)


class FaultyVfs:
    """A `Vfs` that fails operations on paths matching the armed error rules of the call."""

    def __init__(self, inner: Vfs, faults: ServerFaults) -> None:
        self.inner = inner
        self._faults = faults

    def _guard(self, *paths: str) -> None:
        for rule in self._faults.armed():
            if rule.paths is None or any(rule.paths.match(p) for p in paths):
                raise NfsError(rule.status, "injected fault")

    def stat(self, path: str) -> os.stat_result:
        self._guard(path)
        return self.inner.stat(path)

    def read(self, path: str, offset: int, count: int) -> bytes:
        self._guard(path)
        return self.inner.read(path, offset, count)

    def write(self, path: str, offset: int, data: memoryview | bytes, sync: bool) -> None:
        self._guard(path)
        self.inner.write(path, offset, data, sync)

    def commit(self, path: str) -> None:
        self._guard(path)
        self.inner.commit(path)

    def create(self, path: str, mode: int, exclusive: bool, owner: tuple[int, int] | None) -> None:
        self._guard(path)
        self.inner.create(path, mode, exclusive, owner)

    def mkdir(self, path: str, mode: int, owner: tuple[int, int] | None) -> None:
        self._guard(path)
        self.inner.mkdir(path, mode, owner)

    def symlink(self, path: str, target: str, owner: tuple[int, int] | None) -> None:
        self._guard(path)
        self.inner.symlink(path, target, owner)

    def mknod(self, path: str, mode: int, owner: tuple[int, int] | None) -> None:
        self._guard(path)
        self.inner.mknod(path, mode, owner)

    def readlink(self, path: str) -> str:
        self._guard(path)
        return self.inner.readlink(path)

    def remove(self, path: str) -> None:
        self._guard(path)
        self.inner.remove(path)

    def rmdir(self, path: str) -> None:
        self._guard(path)
        self.inner.rmdir(path)

    def rename(self, src: str, dst: str) -> None:
        self._guard(src, dst)
        self.inner.rename(src, dst)

    def link(self, src: str, dst: str) -> None:
        self._guard(src, dst)
        self.inner.link(src, dst)

    def setattr(self, path: str, attrs: SetAttrs) -> None:
        self._guard(path)
        self.inner.setattr(path, attrs)

    def listdir(self, path: str) -> list[DirEntry]:
        self._guard(path)
        return self.inner.listdir(path)

    def statvfs(self) -> FsStat:
        self._guard("")
        return self.inner.statvfs()

    def call_scope(self) -> AbstractContextManager[None]:
        return self.inner.call_scope()

    def find(self, ino: int) -> str | None:
        return self.inner.find(ino)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()
