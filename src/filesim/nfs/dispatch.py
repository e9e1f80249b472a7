"""From an RPC record to the reply buffers: program, version and procedure routing, with no I/O.

The three programs served on one port (PORTMAP v2, MOUNT v3, NFS v3) are routed here. Errors
become RPC-level replies (PROG_UNAVAIL, PROG_MISMATCH, PROC_UNAVAIL, GARBAGE_ARGS, AUTH_ERROR)
or NFS statuses with the procedure's failure body; the server keeps serving whatever came in.
"""

from __future__ import annotations

import functools
import logging
import struct
import time
import zlib
from collections.abc import Callable

from filesim.logs import RateLimited
from filesim.nfs import mount, portmap
from filesim.nfs.export import Export
from filesim.nfs.locks import LockTable
from filesim.nfs.procedures import NFS3
from filesim.nfs.registry import Procedure
from filesim.nfs.v4.blocking import may_block
from filesim.nfs.v4.compound import compound
from filesim.nfs.v4.const import NFS4_VERSION
from filesim.nfs.v4.service import V4Options, V4Service
from filesim.nfs.vfs import NfsError, SearchTooLong, status_of
from filesim.oncrpc.const import AcceptStat
from filesim.oncrpc.message import (
    CallRejected,
    NotACall,
    RpcCall,
    accepted_header,
    parse_call,
    prog_mismatch_reply,
)
from filesim.oncrpc.programs import (
    MOUNT_PROGRAM,
    MOUNT_VERSION,
    NFS_PROGRAM,
    NFS_VERSION,
    PORTMAP_PROGRAM,
    PORTMAP_VERSION,
    MountProc,
    NfsProc,
    NfsStat,
    PortmapProc,
)
from filesim.oncrpc.xdr import XdrError

log = logging.getLogger(__name__)
_limited = RateLimited(log)  # a client repeating a failing call must not fill the log

_U32 = struct.Struct(">I")
_PROGRAM_VERSIONS = {
    PORTMAP_PROGRAM: PORTMAP_VERSION,
    MOUNT_PROGRAM: MOUNT_VERSION,
    NFS_PROGRAM: NFS_VERSION,
}
_OK = _U32.pack(NfsStat.OK)
_NULL = int(NfsProc.NULL)
_PROG_PROC = struct.Struct(">I4xI")  # program and procedure, 12 bytes into a call
_PROG_VERS = struct.Struct(">II")


def _padded(length: int) -> int:
    return length + (-length % 4)


Observer = Callable[[str, str, int, float, int], None]
"""observer(program, procedure, nfs status, seconds, reply bytes), after each call."""

PROGRAM_NAMES = {PORTMAP_PROGRAM: "portmap", MOUNT_PROGRAM: "mount", NFS_PROGRAM: "nfs"}


@functools.lru_cache(maxsize=256)  # an enum lookup per call costs more than the observer
def _proc_name(prog: int, proc: int) -> str:
    try:
        if prog == NFS_PROGRAM:
            return NfsProc(proc).name
        if prog == MOUNT_PROGRAM:
            return MountProc(proc).name
        return PortmapProc(proc).name
    except ValueError:
        return str(proc)


class Dispatcher:
    """Answers RPC calls for one export served on `port`."""

    def __init__(
        self, export: Export, port: int, observer: Observer | None = None,
        v4: V4Options | None = None,
    ) -> None:  # fmt: skip
        self.export = export
        self.locks = LockTable()
        """Share reservations and byte-range locks of this export, for every protocol."""
        self.v4 = V4Service(export, v4, self.locks)
        self.port = port
        self.observer = observer
        self._procedures = NFS3.table()
        # Export options do not change while serving: which calls block is known now.
        self._blocking = frozenset(p.proc for p in NFS3 if p.blocks(export))

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

    def dispatch(self, record: memoryview | bytes, client: str) -> list[bytes] | None:
        """The reply to `record` as buffers (no record mark), or None when there is none.

        Raises RecordError when the record cannot even be read as an RPC message, and
        SearchTooLong (before any change) when the call must be dispatched again in a thread.
        """
        try:
            call = parse_call(record)
        except CallRejected as exc:
            log.debug("rejected call from %s: %s", client, exc)
            return [exc.reply]
        except NotACall:
            return None
        expected = _PROGRAM_VERSIONS.get(call.prog)
        if expected is None:
            return [accepted_header(call.xid, AcceptStat.PROG_UNAVAIL)]
        if call.prog == NFS_PROGRAM and call.vers == NFS4_VERSION:
            return self._nfs4(call, client, record)
        if call.vers != expected:
            high = NFS4_VERSION if call.prog == NFS_PROGRAM else expected
            return [prog_mismatch_reply(call.xid, expected, high)]
        if call.prog == NFS_PROGRAM:
            return self._nfs(call, client)
        if call.prog == MOUNT_PROGRAM:
            return self._simple(call, mount.PROCEDURES.get(call.proc), self.export, client)
        return self._simple(call, portmap.PROCEDURES.get(call.proc), self.port)

    def _nfs4(self, call: RpcCall, client: str, record: memoryview | bytes) -> list[bytes]:
        """NFSv4: NULL and COMPOUND (the operations are observed one by one)."""
        if call.proc == 0:
            return [accepted_header(call.xid)]
        if call.proc != 1:
            return [accepted_header(call.xid, AcceptStat.PROC_UNAVAIL)]
        key = (client, zlib.crc32(record), len(record))  # a 4.0 retransmission: same bytes
        args_crc = zlib.crc32(record[call.args.position :])  # a 4.1 retry: same arguments
        parts = compound(self.v4, call, client, self.observer, key, args_crc)
        return [accepted_header(call.xid) + parts[0], *parts[1:]]

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

    def _nfs(self, call: RpcCall, client: str) -> list[bytes]:
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
        head = (
            accepted_header(call.xid) + _OK + parts[0] if parts else accepted_header(call.xid) + _OK
        )
        self._observe(call, NfsStat.OK, started, sum(len(p) for p in parts))
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
