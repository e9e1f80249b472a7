"""From an RPC record to the reply buffers: program, version and procedure routing, with no I/O.

Every program a server answers is routed here, on each of its ports and transports: NFS v3 and
v4 (TCP only), MOUNT v1/v3, and the `Program`s of `services` (rpcbind v2-v4, NLM v4, NSM v1).
A port that is only rpcbind's (111 in standard-port mode) answers rpcbind only. Errors
become RPC-level replies (PROG_UNAVAIL, PROG_MISMATCH, PROC_UNAVAIL, GARBAGE_ARGS, AUTH_ERROR)
or NFS statuses with the procedure's failure body; the server keeps serving whatever came in.
"""

from __future__ import annotations

import functools
import logging
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

from filesim.logs import RateLimited
from filesim.nfs import mount
from filesim.nfs.callback import Callbacks
from filesim.nfs.export import Export
from filesim.nfs.filedata import Part, materialized
from filesim.nfs.locks import FileKey, LockTable
from filesim.nfs.nlm.manager import LockManager, StaleHandle
from filesim.nfs.nlm.monitor import HostRecord
from filesim.nfs.nlm.procedures import NLM
from filesim.nfs.nlm.status import NSM
from filesim.nfs.procedures import NFS3
from filesim.nfs.registry import Procedure
from filesim.nfs.rpcbind import RPCBIND, Registrations
from filesim.nfs.services import Origin, Program, Services
from filesim.nfs.v4.blocking import may_block
from filesim.nfs.v4.compound import compound
from filesim.nfs.v4.const import NFS4_VERSION
from filesim.nfs.v4.service import V4Options, V4Service
from filesim.nfs.vfs import NfsError, SearchTooLong, status_of
from filesim.oncrpc.const import AcceptStat, AuthStat
from filesim.oncrpc.message import (
    CallRejected,
    NotACall,
    RpcCall,
    accepted_header,
    auth_error_reply,
    parse_call,
    prog_mismatch_reply,
)
from filesim.oncrpc.programs import (
    MOUNT_PROGRAM,
    MOUNT_VERSION,
    MOUNT_VERSIONS,
    NFS_PROGRAM,
    NFS_VERSION,
    PORTMAP_PROGRAM,
    MountProc,
    NfsProc,
    NfsStat,
)
from filesim.oncrpc.xdr import XdrError

log = logging.getLogger(__name__)
_limited = RateLimited(log)  # a client repeating a failing call must not fill the log

_U32 = struct.Struct(">I")
_PROGRAMS: dict[int, Program] = {p.number: p for p in (RPCBIND, NLM, NSM)}
_OK = _U32.pack(NfsStat.OK)
_NULL = int(NfsProc.NULL)
_PROG_PROC = struct.Struct(">I4xI")  # program and procedure, 12 bytes into a call
_PROG_VERS = struct.Struct(">II")


_DIGEST_BYTES = 1024


def _digest(data: memoryview | bytes) -> int:
    """What tells a retried NFSv4 request from another: a CRC of its first 1 KiB (with its
    length beside it). As Linux's nfsd does (256 bytes): the head holds the xid, the
    operations and their arguments up to the first bytes of a WRITE's data, and a CRC of a
    whole 1 MiB WRITE twice per call (4.0 key, 4.1 arguments) cost 0.9 ms."""
    return zlib.crc32(data[:_DIGEST_BYTES])


def _padded(length: int) -> int:
    return length + (-length % 4)


Observer = Callable[[str, str, int, float, int], None]
"""observer(program, procedure, nfs status, seconds, reply bytes), after each call."""

PROGRAM_NAMES = {MOUNT_PROGRAM: "mount", NFS_PROGRAM: "nfs"} | {
    p.number: p.name for p in _PROGRAMS.values()
}


@functools.lru_cache(maxsize=256)  # an enum lookup per call costs more than the observer
def _proc_name(prog: int, proc: int) -> str:
    try:
        if prog == NFS_PROGRAM:
            return NfsProc(proc).name
        if prog == MOUNT_PROGRAM:
            return MountProc(proc).name
    except ValueError:
        return str(proc)
    return _PROGRAMS[prog].proc_name(proc)


class Dispatcher:
    """Answers RPC calls for one export served on `port`."""

    def __init__(
        self, export: Export, port: int, observer: Observer | None = None,
        v4: V4Options | None = None, nlm_state: Path | None = None,
    ) -> None:  # fmt: skip
        """`nlm_state`: where the lock manager keeps its NSM state number and the hosts that
        hold locks (None: in memory, no grace period after a restart)."""
        self.export = export
        self.locks = LockTable()
        """Share reservations and byte-range locks of this export, for every protocol."""
        self.v4 = V4Service(export, v4, self.locks)
        self.port = port
        self.observer = observer
        record = HostRecord(nlm_state)
        # Hosts held locks when the server last stopped: they get the grace to reclaim them.
        grace = self.v4.options.grace_s if record.to_notify else 0
        self.nlm = LockManager(self.locks, self._file_key, record, grace)
        self.callbacks = Callbacks(self.nlm, record)
        self.nlm.granter = self.callbacks
        self.services = Services(
            export, Registrations.of_server("", port), self.nlm, record, self.callbacks.send
        )
        self._procedures = NFS3.table()
        # Export options do not change while serving: which calls block is known now.
        self._blocking = frozenset(p.proc for p in NFS3 if p.blocks(export))

    def listening(self, host: str, port: int, rpcbind_port: int | None, udp: bool) -> None:
        """What rpcbind answers, once the server's ports are bound: everything on `host:port`
        (UDP too where `udp`), rpcbind also on `rpcbind_port`."""
        self.port = port
        self.services.rpcbind = Registrations.of_server(host, port, rpcbind_port, udp)

    def _file_key(self, handle: bytes) -> FileKey:
        """The lock table's name of the file an NFSv3 handle names (NLM's `fh`)."""
        export = self.export
        try:
            # unbounded: NLM has no "later" for a handle (rare: a lock after a restart)
            _, st = export.index.resolve(export.codec.decode(handle), bounded=False)
        except (NfsError, OSError) as exc:
            raise StaleHandle(f"{handle.hex()}: {exc}") from None
        return FileKey(export.fsid, st.st_ino)

    def needs_thread(self, record: memoryview | bytes) -> bool:
        """Whether the call may block on the disk (fsync) and belongs off the event loop."""
        if len(record) < 24:
            return False
        prog, proc = _PROG_PROC.unpack_from(record, 12)
        if prog != NFS_PROGRAM:
            return False
        if _U32.unpack_from(record, 16)[0] == NFS4_VERSION:
            return proc == 1 and self._v4_blocks(record)
        return proc in self._blocking

    def is_v4(self, record: memoryview | bytes) -> bool:
        """An NFSv4 call: its state is kept by one thread at a time (the loop or the lane)."""
        return len(record) >= 24 and _PROG_VERS.unpack_from(record, 12) == (
            NFS_PROGRAM, NFS4_VERSION,
        )  # fmt: skip

    def _v4_blocks(self, record: memoryview | bytes) -> bool:
        try:  # past the credential and the verifier (both opaque) to the COMPOUND arguments
            pos = 32 + _padded(_U32.unpack_from(record, 28)[0])
            pos += 8 + _padded(_U32.unpack_from(record, pos + 4)[0])
        except struct.error:
            return False
        return may_block(memoryview(record)[pos:], self.export.config.sync)

    def dispatch(
        self, record: memoryview | bytes, client: str, origin: Origin | None = None,
        rpcbind_only: bool = False,
    ) -> list[bytes] | None:  # fmt: skip
        """The reply to `record` as buffers (no record mark), or None when there is none; as
        `dispatch_parts`, with a large READ's data read into memory."""
        parts = self.dispatch_parts(record, client, origin, rpcbind_only)
        return None if parts is None else materialized(parts)

    def dispatch_parts(
        self, record: memoryview | bytes, client: str, origin: Origin | None = None,
        rpcbind_only: bool = False,
    ) -> Sequence[Part] | None:  # fmt: skip
        """The reply to `record` as buffers (no record mark), or None when there is none. A
        large READ's data is left in its file (`FileData`, the reply's second part), which
        the caller sends and closes.

        `origin`: our address the call came to and its transport (default: TCP from `client`);
        `rpcbind_only`: the call came to rpcbind's own port. Raises RecordError when the
        record cannot even be read as an RPC message, and SearchTooLong (before any change)
        when the call must be dispatched again in a thread.
        """
        try:
            call = parse_call(record)
        except CallRejected as exc:
            log.debug("rejected call from %s: %s", client, exc)
            return [exc.reply]
        except NotACall:
            return None
        prog = call.prog
        udp = origin is not None and origin.udp
        if (rpcbind_only and prog != PORTMAP_PROGRAM) or (udp and prog == NFS_PROGRAM):
            return [accepted_header(call.xid, AcceptStat.PROG_UNAVAIL)]
        if prog == NFS_PROGRAM:
            if call.vers == NFS4_VERSION:
                return self._nfs4(call, client, record)
            if call.vers != NFS_VERSION:
                return [prog_mismatch_reply(call.xid, NFS_VERSION, NFS4_VERSION)]
            return self._nfs(call, client)
        if prog == MOUNT_PROGRAM:
            if call.vers not in MOUNT_VERSIONS:
                return [prog_mismatch_reply(call.xid, min(MOUNT_VERSIONS), MOUNT_VERSION)]
            handler = mount.procedure(call.vers, call.proc)
            return self._simple(call, handler, self.export, client)
        program = _PROGRAMS.get(prog)
        if program is None:
            return [accepted_header(call.xid, AcceptStat.PROG_UNAVAIL)]
        return self._program(call, program, origin or Origin(client))

    def _program(self, call: RpcCall, program: Program, origin: Origin) -> list[bytes] | None:
        """A call of rpcbind, NLM or NSM; None when it is answered by a call of our own."""
        if call.vers not in program.versions:
            return [prog_mismatch_reply(call.xid, program.low, program.high)]
        handler = program.handler(call.vers, call.proc)
        if handler is None:
            return [accepted_header(call.xid, AcceptStat.PROC_UNAVAIL)]
        if program is NLM and not self.export.allows(origin.client):
            # a client the export refuses takes no locks on it either (its handles may leak)
            return [auth_error_reply(call.xid, AuthStat.AUTH_TOOWEAK)]
        started = time.perf_counter()
        try:
            body = handler(self.services, origin, call.args)
        except XdrError:
            return [accepted_header(call.xid, AcceptStat.GARBAGE_ARGS)]
        except Exception:  # a bug must not take the connection down with it
            name = f"{program.name} {program.proc_name(call.proc)}"
            _limited.error(name, "%s failed", name, exc_info=True)
            return [accepted_header(call.xid, AcceptStat.SYSTEM_ERR)]
        if body is None:
            return None
        self._observe(call, 0, started, len(body))
        return [accepted_header(call.xid) + body]

    def _nfs4(self, call: RpcCall, client: str, record: memoryview | bytes) -> Sequence[Part]:
        """NFSv4: NULL and COMPOUND (the operations are observed one by one)."""
        if call.proc == 0:
            return [accepted_header(call.xid)]
        if call.proc != 1:
            return [accepted_header(call.xid, AcceptStat.PROC_UNAVAIL)]
        key = (client, _digest(record), len(record))  # a 4.0 retransmission: same bytes
        args_crc = _digest(record[call.args.position :])  # a 4.1 retry: same arguments
        parts = compound(self.v4, call, client, self.observer, key, args_crc)
        return [accepted_header(call.xid) + cast(bytes, parts[0]), *parts[1:]]

    def _simple(self, call: RpcCall, procedure: object, *context: object) -> list[bytes]:
        if procedure is None:
            return [accepted_header(call.xid, AcceptStat.PROC_UNAVAIL)]
        started = time.perf_counter()
        try:
            body: bytes = procedure(*context, call.args)  # type: ignore[operator]
        except XdrError:
            return [accepted_header(call.xid, AcceptStat.GARBAGE_ARGS)]
        self._observe(call, 0, started, len(body))
        return [accepted_header(call.xid) + body]

    def _nfs(self, call: RpcCall, client: str) -> Sequence[Part]:
        procedure = self._procedures.get(call.proc)
        if procedure is None:
            return [accepted_header(call.xid, AcceptStat.PROC_UNAVAIL)]
        if call.proc == _NULL:
            return [accepted_header(call.xid)]
        started = time.perf_counter()
        export = self.export
        try:
            if not export.allows(client):
                raise NfsError(NfsStat.ACCES, f"client {client} is not allowed")
            if procedure.mutating and (export.config.readonly or export.vfs.readonly):
                raise NfsError(NfsStat.ROFS)
            with export.vfs.call_scope(call.proc):
                parts = procedure.handler(export, export.caller(call.cred), call.args)
        except XdrError:
            return [accepted_header(call.xid, AcceptStat.GARBAGE_ARGS)]
        except NfsError as exc:
            return self._nfs_error(call, procedure, exc.status, started)
        except OSError as exc:
            return self._nfs_error(call, procedure, status_of(exc), started)
        except SearchTooLong:
            raise  # the server answers this call from a thread
        except Exception:
            name = _proc_name(call.prog, call.proc)
            _limited.error(
                f"{name} {export.config.name}", "NFS %s failed on %s", name, export.config.name,
                exc_info=True,
            )  # fmt: skip
            return self._nfs_error(call, procedure, NfsStat.SERVERFAULT, started)
        head = accepted_header(call.xid) + _OK
        if parts:
            head += cast(bytes, parts[0])  # a procedure's first part is never FileData
        self._observe(call, NfsStat.OK, started, sum(map(len, parts)))
        return [head, *parts[1:]]

    def _nfs_error(
        self, call: RpcCall, procedure: Procedure, status: NfsStat, started: float
    ) -> list[bytes]:
        body = procedure.failure
        self._observe(call, status, started, len(body))
        return [accepted_header(call.xid) + _U32.pack(status) + body]

    def _observe(self, call: RpcCall, status: int, started: float, size: int) -> None:
        if self.observer is not None:
            self.observer(
                PROGRAM_NAMES[call.prog],
                _proc_name(call.prog, call.proc),
                status,
                time.perf_counter() - started,
                size,
            )
