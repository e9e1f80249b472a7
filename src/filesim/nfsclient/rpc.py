"""A blocking ONC RPC connection over TCP: one call at a time.

The messages and the record marking are `filesim.oncrpc`'s; this module adds the socket, the
timeouts and errors that name the server. Used by our NFS client (`client.py`) and by the
readiness probe (`ping.py`); the server never imports it.
"""

from __future__ import annotations

import itertools
import os
import socket

from filesim.errors import FilesimError
from filesim.oncrpc.const import AcceptStat
from filesim.oncrpc.message import (
    CallDenied,
    CallNotAccepted,
    Credentials,
    MalformedReply,
    ReplyError,
    encode_call,
    parse_reply,
    reply_xid,
)
from filesim.oncrpc.record import read_mark, record_mark
from filesim.oncrpc.xdr import Unpacker

MAX_REPLY = 64 << 20


class NfsClientError(FilesimError):
    """Anything our NFS client reports: the base of every error below."""


class NfsConnectionError(NfsClientError):
    """The server cannot be reached, stopped answering, or closed the connection."""


class RpcTimeout(NfsConnectionError):
    """The server did not answer a call in time; the connection is unusable afterwards."""


class RpcError(NfsClientError):
    """The server rejected a call at the RPC level (program unavailable, auth error, ...);
    `reason` is what `filesim.oncrpc` found wrong with the reply."""

    def __init__(self, message: str, reason: ReplyError) -> None:
        super().__init__(message)
        self.reason = reason


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

    def call(
        self, prog: int, vers: int, proc: int, args: bytes | bytearray = b"",
        timeout: float | None = None,
    ) -> Unpacker:  # fmt: skip
        """Send one call and return an Unpacker positioned at the start of its results.

        `timeout` (seconds) replaces the connection's timeout for this call."""
        what = f"RPC program {prog} v{vers} procedure {proc}"
        if self._broken is not None:
            raise NfsConnectionError(f"connection to {self.address} is unusable: {self._broken}")
        wait = self.timeout if timeout is None else timeout
        xid = next(self._xids) & 0xFFFFFFFF
        message = encode_call(xid, prog, vers, proc, bytes(args), self.cred)
        try:
            if wait != self._sock.gettimeout():
                self._sock.settimeout(wait)
            self._sock.sendall(record_mark(len(message)) + message)
            while True:
                reply = self._receive_record()
                if reply_xid(reply) == xid:
                    break  # a reply to an earlier, timed-out call is skipped
        except TimeoutError:
            # Part of a reply may still be on its way: the stream cannot be trusted any more.
            self._break(f"no answer to {what} within {wait:g} s")
            raise RpcTimeout(f"{self.address} did not answer {what} within {wait:g} s") from None
        except OSError as exc:
            self._break(str(exc))
            raise NfsConnectionError(f"connection to {self.address} failed: {exc}") from None
        except NfsConnectionError as exc:
            self._break(str(exc))
            raise
        except MalformedReply as exc:
            raise self._rejected(what, exc) from None
        try:
            return parse_reply(reply)
        except ReplyError as exc:
            raise self._rejected(what, exc) from None

    def _rejected(self, what: str, exc: ReplyError) -> RpcError:
        address = self.address
        if isinstance(exc, CallDenied):
            return RpcError(f"{address} denied {what}: {exc.reason}", exc)
        if isinstance(exc, CallNotAccepted):
            if exc.status == AcceptStat.PROG_MISMATCH and exc.versions is not None:
                low, high = exc.versions
                return RpcError(f"{address} supports versions {low}..{high} only, not for {what}",
                                exc)  # fmt: skip
            return RpcError(f"{address} answered {what} with {exc.name}", exc)
        return RpcError(f"{address} sent a malformed reply to {what}: {exc}", exc)

    def _receive_record(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            length, last = read_mark(self._receive_exact(4))
            total += length
            if total > MAX_REPLY:
                raise NfsConnectionError(f"{self.address} sent a reply of more than {MAX_REPLY}")
            parts.append(self._receive_exact(length))
            if last:
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
