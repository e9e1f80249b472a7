"""A blocking ONC RPC connection over TCP: one call at a time, record marking, reply checks.

Used by our NFS client (`client.py`) for `filesim verify` and tests; the server never imports it.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct

from filesim.errors import FilesimError
from filesim.nfs.const import REPLY, AcceptStat, AuthStat, RejectStat, ReplyStat
from filesim.nfs.rpc import LAST_FRAGMENT, Credentials, encode_call, record_mark
from filesim.nfs.xdr import Unpacker, XdrError

_U32 = struct.Struct(">I")
MAX_REPLY = 64 << 20


class NfsClientError(FilesimError):
    """Anything our NFS client reports: the base of every error below."""


class NfsConnectionError(NfsClientError):
    """The server cannot be reached, stopped answering, or closed the connection."""


class RpcError(NfsClientError):
    """The server rejected a call at the RPC level (program unavailable, auth error, ...)."""


class RpcConnection:
    """One TCP connection to an RPC server; `call` sends a call and returns its result body."""

    def __init__(
        self, host: str, port: int, timeout: float = 10.0, cred: Credentials | None = None
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.cred = cred
        # Random start so two clients (or a reconnect) never reuse xids the server may cache.
        self._xids = itertools.count(int.from_bytes(os.urandom(3), "big") << 4)
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise NfsConnectionError(
                f"cannot connect to {self.address}: {exc.strerror or exc}"
            ) from None
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._broken: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def close(self) -> None:
        self._sock.close()

    def _break(self, reason: str) -> None:
        self._broken = reason
        self._sock.close()

    def call(self, prog: int, vers: int, proc: int, args: bytes | bytearray = b"") -> Unpacker:
        """Send one call and return an Unpacker positioned at the start of its results."""
        what = f"RPC program {prog} v{vers} procedure {proc}"
        if self._broken is not None:
            raise NfsConnectionError(f"connection to {self.address} is unusable: {self._broken}")
        xid = next(self._xids) & 0xFFFFFFFF
        message = encode_call(xid, prog, vers, proc, bytes(args), self.cred)
        try:
            self._sock.sendall(record_mark(len(message)) + message)
            while True:
                reply = self._receive_record()
                if _U32.unpack_from(reply, 0)[0] == xid:
                    break  # a reply to an earlier, timed-out call is skipped
        except TimeoutError:
            # Part of a reply may still be on its way: the stream cannot be trusted any more.
            self._break(f"no answer to {what} within {self.timeout:g} s")
            raise NfsConnectionError(
                f"{self.address} did not answer {what} within {self.timeout:g} s"
            ) from None
        except OSError as exc:
            self._break(str(exc))
            raise NfsConnectionError(f"connection to {self.address} failed: {exc}") from None
        except NfsConnectionError as exc:
            self._break(str(exc))
            raise
        return _check_reply(reply, what, self.address)

    def _receive_record(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            header = _U32.unpack(self._receive_exact(4))[0]
            length = header & ~LAST_FRAGMENT
            total += length
            if total > MAX_REPLY:
                raise NfsConnectionError(f"{self.address} sent a reply of more than {MAX_REPLY}")
            parts.append(self._receive_exact(length))
            if header & LAST_FRAGMENT:
                return b"".join(parts)

    def _receive_exact(self, n: int) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        while view:
            got = self._sock.recv_into(view)
            if got == 0:
                raise NfsConnectionError(f"{self.address} closed the connection")
            view = view[got:]
        return bytes(buf)


def _check_reply(reply: bytes, what: str, address: str) -> Unpacker:
    u = Unpacker(reply)
    try:
        u.uint32()  # xid, already matched
        if u.uint32() != REPLY:
            raise RpcError(f"{address} sent a call instead of a reply to {what}")
        if u.uint32() == ReplyStat.MSG_DENIED:
            raise RpcError(f"{address} denied {what}: {_denied_reason(u)}")
        u.uint32()  # verifier flavor
        u.opaque()  # verifier body
        stat = u.uint32()
        if stat == AcceptStat.PROG_MISMATCH:
            low, high = u.uint32(), u.uint32()
            raise RpcError(f"{address} supports versions {low}..{high} only, not for {what}")
        if stat != AcceptStat.SUCCESS:
            name = AcceptStat(stat).name if stat in AcceptStat._value2member_map_ else str(stat)
            raise RpcError(f"{address} answered {what} with {name}")
    except XdrError as exc:
        raise RpcError(f"{address} sent a malformed reply to {what}: {exc}") from None
    return u


def _denied_reason(u: Unpacker) -> str:
    if u.uint32() == RejectStat.RPC_MISMATCH:
        return "RPC version mismatch"
    stat = u.uint32()
    name = AuthStat(stat).name if stat in AuthStat._value2member_map_ else str(stat)
    return f"authentication error {name}"
