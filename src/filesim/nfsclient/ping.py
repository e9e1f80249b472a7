"""`filesim ping`: is a server up? An ONC RPC NULL call to NFS v3 and to MOUNT v3.

A TCP connect alone says nothing about whether the server answers RPCs; a NULL call through
both programs does, and costs the server nothing. The readiness probe of the chart runs it.
The call and reply handling is pure; `ping` adds a plain blocking socket with a deadline.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass

from filesim.errors import FilesimError
from filesim.nfs.const import MOUNT_PROGRAM, NFS_PROGRAM, REPLY, AcceptStat, ReplyStat
from filesim.nfs.rpc import RecordError, RecordReader, encode_call, record_mark

NULL_PROC = 0
PROGRAMS: tuple[tuple[str, int, int], ...] = (("NFS", NFS_PROGRAM, 3), ("MOUNT", MOUNT_PROGRAM, 3))

_HEAD = struct.Struct(">III")


class PingError(FilesimError):
    """The server did not answer as an NFS server should."""


def null_call(xid: int, prog: int, vers: int) -> bytes:
    """A NULL call to `prog` `vers`, record-marked, ready to send."""
    body = encode_call(xid, prog, vers, NULL_PROC)
    return record_mark(len(body)) + body


def check_null_reply(record: bytes, xid: int, what: str) -> None:
    """Raise PingError unless `record` is a successful reply to call `xid`."""
    if len(record) < _HEAD.size:
        raise PingError(f"{what}: reply of {len(record)} bytes is shorter than an RPC header")
    got_xid, msg_type, reply_stat = _HEAD.unpack_from(record)
    if got_xid != xid or msg_type != REPLY:
        raise PingError(f"{what}: not the reply to our call (xid {got_xid}, type {msg_type})")
    if reply_stat != ReplyStat.MSG_ACCEPTED:
        raise PingError(f"{what}: call denied (reply_stat {reply_stat})")
    offset = _HEAD.size
    # Verifier: flavor, then opaque body padded to 4 bytes.
    if len(record) < offset + 8:
        raise PingError(f"{what}: reply truncated in the verifier")
    verf_len = struct.unpack_from(">I", record, offset + 4)[0]
    offset += 8 + (verf_len + 3) // 4 * 4
    if len(record) < offset + 4:
        raise PingError(f"{what}: reply truncated before accept_stat")
    stat = struct.unpack_from(">I", record, offset)[0]
    if stat != AcceptStat.SUCCESS:
        name = AcceptStat(stat).name if stat in AcceptStat._value2member_map_ else str(stat)
        raise PingError(f"{what}: call not accepted ({name})")


@dataclass(frozen=True)
class PingResult:
    rtt_ms: dict[str, float]


def ping(host: str, port: int, timeout: float = 3.0) -> PingResult:
    """NULL-call NFS v3 and MOUNT v3 at host:port over one TCP connection, within `timeout` s."""
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise PingError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
    rtts: dict[str, float] = {}
    with sock:
        reader = RecordReader(max_record=64 << 10, min_free=4 << 10)
        base = int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF
        for i, (what, prog, vers) in enumerate(PROGRAMS):
            xid = base + i
            start = time.monotonic()
            try:
                sock.settimeout(max(deadline - start, 0.001))
                sock.sendall(null_call(xid, prog, vers))
                record = _receive(sock, reader, deadline)
            except TimeoutError:
                raise PingError(f"{what}: no reply from {host}:{port} in {timeout:g} s") from None
            except (OSError, RecordError) as exc:
                raise PingError(f"{what}: {host}:{port}: {exc}") from None
            check_null_reply(record, xid, what)
            rtts[what] = (time.monotonic() - start) * 1000
    return PingResult(rtts)


def _receive(sock: socket.socket, reader: RecordReader, deadline: float) -> bytes:
    while True:
        for record in reader.records():
            return bytes(record)
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        buf = reader.get_buffer()
        n = sock.recv_into(buf)
        if n == 0:
            raise OSError("connection closed before the reply")
        reader.advance(n)
