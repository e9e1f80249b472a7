"""Fault injection on one NFS server, built in once and inert while no fault is active.

- `FaultyVfs` wraps the storage for good. Its state: error rules (a status for chosen
  procedures, optionally only on paths matching globs) and a read-only flip. Which rules fire is
  decided once per call, in `call_scope(proc)`, so a probability is the chance that a call fails.
  While no fault is in force its operations are the storage's own: it costs nothing.
- `ServerFaults` turns the active `FaultSpec`s of a server into that state, and holds what only
  the server can do: latency and "blackhole" outages (the server asks `hold` for each call while
  `holding`) and "refuse" outages (`refusing`). It is given to `NfsServer` when it is built.

Sync faults (pause, slowdown) belong to the sync agent and are applied by the runtime.
"""

from __future__ import annotations

import fnmatch
import math
import random
import re
import struct
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from filesim.nfs.attrs import Attrs
from filesim.nfs.vfs import FRAME, FsStat, NfsError, SetAttrs, Vfs, VfsEntry
from filesim.oncrpc.programs import NFS_PROGRAM, NfsProc, NfsStat
from filesim.topology.faults import FaultKind, FaultSpec

_PROG_VERS_PROC = struct.Struct(">III")  # program, version, procedure: 12 bytes into a call


@dataclass(frozen=True)
class ErrorRule:
    procedures: frozenset[int] | None
    """NFS procedure numbers, None: all."""
    paths: re.Pattern[str] | None
    """Export-relative paths the rule applies to, None: the whole call fails."""
    status: NfsStat
    probability: float

    def fires(self, proc: int) -> bool:
        if proc == FRAME:
            return False
        if self.procedures is not None and proc not in self.procedures:
            return False
        return self.probability >= 1.0 or random.random() < self.probability

    @classmethod
    def of(cls, spec: FaultSpec) -> ErrorRule:
        assert spec.error is not None
        return cls(_procedures(spec.procedures), _globs(spec.paths), NfsStat[spec.error],
                   spec.probability)  # fmt: skip


@dataclass(frozen=True)
class LatencyRule:
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
    """The NFS faults active on one server: the state of its `FaultyVfs` and its call gate."""

    def __init__(self, vfs: FaultyVfs) -> None:
        self.vfs = vfs
        self._latencies: list[LatencyRule] = []
        self._blackhole = False
        self.holding = False
        """True while `hold` must be asked about every call (latency or a blackhole)."""
        self.refusing = False
        """True while connections are refused (a "refuse" outage)."""

    def apply(self, specs: Sequence[FaultSpec]) -> bool:
        """Make `specs` (every active NFS fault of this server) the server's behaviour.

        Returns whether the server must drop its open connections: a refuse outage began, or a
        blackhole ended (the calls it swallowed are lost: clients reconnect and resend)."""
        errors = [ErrorRule.of(s) for s in specs if s.kind is FaultKind.ERROR]
        self.vfs.set_errors(errors)
        self.vfs.set_readonly(any(s.kind is FaultKind.READONLY for s in specs))
        self._latencies = [
            LatencyRule(
                _procedures(s.procedures), s.delay_ms / 1000, s.jitter_ms / 1000, s.distribution
            )
            for s in specs
            if s.kind is FaultKind.LATENCY
        ]
        outages = {s.mode for s in specs if s.kind is FaultKind.OUTAGE}
        refuse, blackhole = "refuse" in outages, "blackhole" in outages
        drop = (refuse and not self.refusing) or (self._blackhole and not blackhole)
        self.refusing, self._blackhole = refuse, blackhole
        self.holding = blackhole or bool(self._latencies)
        return drop

    def hold(self, record: memoryview | bytes) -> float:
        """Seconds to hold the call `record` before dispatching it: 0 at once, inf never."""
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


class FaultyVfs:
    """`inner`, failing calls as the active error rules say, and read-only while flipped.

    Each operation is an attribute: the inner storage's own bound method while no fault is in
    force (the layer then costs nothing), a guarded one while one is (`_bind`)."""

    stat: Callable[[str], Attrs]
    read: Callable[[str, int, int], bytes]
    open_read: Callable[[str], int]
    readlink: Callable[[str], str]
    seek: Callable[[str, int, int], int]
    listdir: Callable[[str], list[VfsEntry]]
    statvfs: Callable[[], FsStat]
    commit: Callable[[str, bool], None]
    write: Callable[[str, int, memoryview | bytes, bool], None]
    create: Callable[[str, int, bool, tuple[int, int] | None, SetAttrs], None]
    truncate: Callable[[str, int], None]
    allocate: Callable[[str, int, int, bool], None]
    setattr: Callable[[str, SetAttrs], None]
    mkdir: Callable[[str, int, tuple[int, int] | None], None]
    symlink: Callable[[str, str, tuple[int, int] | None], None]
    mknod: Callable[[str, int, tuple[int, int] | None, int], None]
    remove: Callable[[str], None]
    rmdir: Callable[[str], None]
    rename: Callable[[str, str], None]
    link: Callable[[str, str], None]
    call_scope: Callable[[int], AbstractContextManager[None]]

    def __init__(self, inner: Vfs) -> None:
        self.inner = inner
        self._call_rules: list[ErrorRule] = []
        self._path_rules: list[ErrorRule] = []
        self._readonly = False
        self.readonly = inner.readonly
        """The flip, or the storage's own read-only state (read when the flip changes): a
        plain attribute, read by every mutating call and ACCESS."""
        self._armed = threading.local()
        """Per thread (COMMIT runs in executor threads): the path rules that fired for the
        call in progress there."""
        self._bind()

    # -- state ------------------------------------------------------------------------------

    def find(self, ino: int, budget: int | None = None) -> str | None:
        return self.inner.find(ino, budget)  # resolving a handle by search is never failed

    def set_errors(self, rules: Sequence[ErrorRule]) -> None:
        self._call_rules = [r for r in rules if r.paths is None]
        self._path_rules = [r for r in rules if r.paths is not None]
        self._bind()

    def set_readonly(self, flipped: bool) -> None:
        self._readonly = flipped
        self.readonly = flipped or self.inner.readonly
        self._bind()

    @property
    def active(self) -> bool:
        """Whether any error rule or the read-only flip is in force."""
        return bool(self._call_rules or self._path_rules or self._readonly)

    def _bind(self) -> None:
        inner, paths = self.inner, bool(self._path_rules)
        changes = paths or self._readonly
        self.call_scope = self._call_scope if self._call_rules or paths else inner.call_scope
        self.stat = self._stat if paths else inner.stat
        self.read = self._read if paths else inner.read
        self.open_read = self._open_read if paths else inner.open_read
        self.readlink = self._readlink if paths else inner.readlink
        self.seek = self._seek if paths else inner.seek
        self.listdir = self._listdir if paths else inner.listdir
        self.statvfs = self._statvfs if paths else inner.statvfs
        self.commit = self._commit if paths else inner.commit  # flushing is no change
        self.write = self._write if changes else inner.write
        self.create = self._create if changes else inner.create
        self.truncate = self._truncate if changes else inner.truncate
        self.allocate = self._allocate if changes else inner.allocate
        self.setattr = self._setattr if changes else inner.setattr
        self.mkdir = self._mkdir if changes else inner.mkdir
        self.symlink = self._symlink if changes else inner.symlink
        self.mknod = self._mknod if changes else inner.mknod
        self.remove = self._remove if changes else inner.remove
        self.rmdir = self._rmdir if changes else inner.rmdir
        self.rename = self._rename if changes else inner.rename
        self.link = self._link if changes else inner.link

    def _call_scope(self, proc: int) -> AbstractContextManager[None]:
        return _FaultScope(self, proc)

    def close(self) -> None:
        self.inner.close()

    # -- guarded operations, bound while a fault is in force ------------------------------------

    def _guard(self, *paths: str) -> None:
        for rule in getattr(self._armed, "rules", None) or ():
            if rule.paths is None or any(rule.paths.match(p) for p in paths):
                raise NfsError(rule.status, "injected fault")

    def _change(self, *paths: str) -> None:
        if self._readonly:
            raise NfsError(NfsStat.ROFS, "read-only (injected fault)")
        self._guard(*paths)

    def _stat(self, path: str) -> Attrs:
        self._guard(path)
        return self.inner.stat(path)

    def _read(self, path: str, offset: int, count: int) -> bytes:
        self._guard(path)
        return self.inner.read(path, offset, count)

    def _open_read(self, path: str) -> int:
        self._guard(path)
        return self.inner.open_read(path)

    def _readlink(self, path: str) -> str:
        self._guard(path)
        return self.inner.readlink(path)

    def _seek(self, path: str, offset: int, whence: int) -> int:
        self._guard(path)
        return self.inner.seek(path, offset, whence)

    def _listdir(self, path: str) -> list[VfsEntry]:
        self._guard(path)
        return self.inner.listdir(path)

    def _statvfs(self) -> FsStat:
        self._guard("")
        return self.inner.statvfs()

    def _commit(self, path: str, complete: bool) -> None:
        self._guard(path)
        self.inner.commit(path, complete)

    def _write(self, path: str, offset: int, data: memoryview | bytes, sync: bool) -> None:
        self._change(path)
        self.inner.write(path, offset, data, sync)

    def _create(
        self, path: str, mode: int, exclusive: bool, owner: tuple[int, int] | None,
        initial: SetAttrs,
    ) -> None:  # fmt: skip
        self._change(path)
        self.inner.create(path, mode, exclusive, owner, initial)

    def _truncate(self, path: str, size: int) -> None:
        self._change(path)
        self.inner.truncate(path, size)

    def _allocate(self, path: str, offset: int, length: int, punch: bool) -> None:
        self._change(path)
        self.inner.allocate(path, offset, length, punch)

    def _setattr(self, path: str, attrs: SetAttrs) -> None:
        self._change(path)
        self.inner.setattr(path, attrs)

    def _mkdir(self, path: str, mode: int, owner: tuple[int, int] | None) -> None:
        self._change(path)
        self.inner.mkdir(path, mode, owner)

    def _symlink(self, path: str, target: str, owner: tuple[int, int] | None) -> None:
        self._change(path)
        self.inner.symlink(path, target, owner)

    def _mknod(self, path: str, mode: int, owner: tuple[int, int] | None, rdev: int) -> None:
        self._change(path)
        self.inner.mknod(path, mode, owner, rdev)

    def _remove(self, path: str) -> None:
        self._change(path)
        self.inner.remove(path)

    def _rmdir(self, path: str) -> None:
        self._change(path)
        self.inner.rmdir(path)

    def _rename(self, src: str, dst: str) -> None:
        self._change(src, dst)
        self.inner.rename(src, dst)

    def _link(self, src: str, dst: str) -> None:
        self._change(src, dst)
        self.inner.link(src, dst)


class _FaultScope:
    """One call while error rules are set: the call fails outright, or its path rules are
    armed on this thread until it ends."""

    __slots__ = ("_inner", "_outer", "_proc", "_vfs")

    def __init__(self, vfs: FaultyVfs, proc: int) -> None:
        self._vfs, self._proc = vfs, proc
        self._inner: AbstractContextManager[None] | None = None
        self._outer: list[ErrorRule] | None = None

    def __enter__(self) -> None:
        vfs, proc = self._vfs, self._proc
        armed = [r for r in vfs._path_rules if r.fires(proc)]
        for rule in vfs._call_rules:
            if rule.fires(proc):
                raise NfsError(rule.status, "injected fault")
        self._outer = getattr(vfs._armed, "rules", None)
        vfs._armed.rules = armed
        self._inner = vfs.inner.call_scope(proc)
        self._inner.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._vfs._armed.rules = self._outer
        if self._inner is not None:
            self._inner.__exit__(None, None, None)
