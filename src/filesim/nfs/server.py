"""The asyncio server: every program of one export (NFS, MOUNT, rpcbind, NLM, NSM) on one port,
over TCP and (all but NFS) UDP; in standard-port mode rpcbind also on 111 of the same address.

The only module of `filesim.nfs` that knows about sockets. Bytes are received straight into the
record reader's buffer (`BufferedProtocol`), every complete record is dispatched at once, and a
READ reply goes out as header and payload separately so the payload is never copied. Calls that
may block on the disk (COMMIT, WRITE on a `sync` export) run in a thread.

Fault injection that only the server can do (latency, outages) is one hook given at build time:
the `ServerFaults` of `filesim.nfs.faults`, asked about each call only while it is `holding`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from filesim.nfs.dispatch import Dispatcher, Observer
from filesim.nfs.export import Export
from filesim.nfs.faults import ServerFaults
from filesim.nfs.services import Origin
from filesim.nfs.v4.service import V4Options
from filesim.oncrpc.record import RecordError, RecordReader, record_mark

log = logging.getLogger(__name__)

MAX_RECORD = (1 << 20) + (64 << 10)  # a 1 MiB WRITE (wtmax) plus its headers


class NfsServer:
    """Serves `export` on `host:port` (port 0 picks a free one; see `.port` after start)."""

    def __init__(
        self, export: Export, host: str = "127.0.0.1", port: int = 0,
        observer: Observer | None = None, faults: ServerFaults | None = None,
        v4: V4Options | None = None, rpcbind_port: int | None = None, udp: bool = True,
        nlm_state: Path | None = None,
    ) -> None:  # fmt: skip
        """`rpcbind_port`: rpcbind answers there too (111 in standard-port mode); `udp`: serve
        UDP on the port(s) too (what sm-notify, Windows and `rpcinfo -p` over UDP use)."""
        self.export = export
        self.host = host
        self.port = port
        self.rpcbind_port = rpcbind_port
        self.udp = udp
        self.dispatcher = Dispatcher(export, port, observer, v4, nlm_state)
        self.faults = faults
        """Latency and outage faults (None: never any). While `faults.holding`, each call waits
        `faults.hold(call)` seconds before it is dispatched (inf: never answered); while
        `faults.refusing`, connections are refused. The owner of `faults` drops the open
        connections (`drop_connections`) when `ServerFaults.apply` says so."""
        self._server: asyncio.Server | None = None
        self._others: list[asyncio.Server] = []
        self._datagrams: list[asyncio.DatagramTransport] = []
        self._connections: set[_Connection] = set()
        self.swallowed = 0
        """Calls never answered because of an outage fault."""

    async def start(self) -> None:
        """Bind every port (OSError when one cannot be: nothing stays bound then)."""
        loop = asyncio.get_running_loop()
        try:
            self._server = await _tcp_server(loop, lambda: _Connection(self), self.host, self.port)
            self.port = self._server.sockets[0].getsockname()[1]
            if self.rpcbind_port is not None:
                other = await _tcp_server(
                    loop, lambda: _Connection(self, rpcbind_only=True), self.host,
                    self.rpcbind_port,
                )  # fmt: skip
                self._others.append(other)
            if self.udp:
                await self._udp_ports(loop)
        except OSError:
            await self.stop()
            raise
        self.dispatcher.listening(self.host, self.port, self.rpcbind_port, self.udp)
        self.dispatcher.callbacks.start(loop, self.host)

    async def _udp_ports(self, loop: asyncio.AbstractEventLoop) -> None:
        """UDP beside TCP. On a custom port it is a bonus (port 0 chose a free TCP port, whose
        UDP twin may be taken): without it, rpcbind says so. In standard-port mode, required."""
        try:
            await self._udp(loop, self.port, rpcbind_only=False)
        except OSError as exc:
            if self.rpcbind_port is not None:
                raise
            log.warning("%s: no UDP on %s:%d (%s): TCP only", self.export.config.name,
                        self.host, self.port, exc.strerror or exc)  # fmt: skip
            self.udp = False
            return
        if self.rpcbind_port is not None:
            await self._udp(loop, self.rpcbind_port, rpcbind_only=True)

    async def _udp(self, loop: asyncio.AbstractEventLoop, port: int, rpcbind_only: bool) -> None:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self, rpcbind_only), local_addr=(self.host, port)
        )
        self._datagrams.append(transport)

    async def stop(self) -> None:
        for transport in self._datagrams:
            transport.close()
        self._datagrams.clear()
        servers = [s for s in (self._server, *self._others) if s is not None]
        for server in servers:
            server.close()
        for conn in list(self._connections):
            conn.close()
        for server in servers:
            await server.wait_closed()
        self._server = None
        self._others.clear()
        await self.dispatcher.callbacks.close()

    def drop_connections(self) -> None:
        for conn in list(self._connections):
            conn.close()

    @property
    def connections(self) -> int:
        return len(self._connections)


class _Datagrams(asyncio.DatagramProtocol):
    """RPC over UDP: one call per datagram, no record marks; NFS itself is not served here."""

    def __init__(self, server: NfsServer, rpcbind_only: bool) -> None:
        self._server = server
        self._rpcbind_only = rpcbind_only
        self._transport: asyncio.DatagramTransport | None = None
        self._local = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        self._local = str(transport.get_extra_info("sockname")[0])

    def datagram_received(self, data: bytes, addr: Any) -> None:
        client = str(addr[0])
        origin = Origin(client, self._local, udp=True)
        try:
            parts = self._server.dispatcher.dispatch(data, client, origin, self._rpcbind_only)
        except Exception as exc:  # a datagram that is no RPC call: nothing to answer
            log.debug("ignoring a datagram from %s: %s", client, exc)
            return
        if parts is not None and self._transport is not None:
            self._transport.sendto(b"".join(parts), addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error on %s: %s", self._local, exc)


class _Connection(asyncio.BufferedProtocol):
    def __init__(self, server: NfsServer, rpcbind_only: bool = False) -> None:
        self._server = server
        self._rpcbind_only = rpcbind_only
        self._origin = Origin("")
        self._reader = RecordReader(
            max_record=MAX_RECORD, min_free=MAX_RECORD, buffer_size=4 * MAX_RECORD
        )
        self._transport: asyncio.Transport | None = None
        self._client = ""
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self._client = str(peer[0]) if peer else ""
        local = transport.get_extra_info("sockname")
        self._origin = Origin(self._client, str(local[0]) if local else "")
        faults = self._server.faults
        if faults is not None and faults.refusing:
            self._transport.abort()
            return
        self._server._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server._connections.discard(self)
        self._transport = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self._reader.advance(nbytes)
        server = self._server
        dispatcher = server.dispatcher
        faults = server.faults
        try:
            for record in self._reader.records():
                if faults is not None and faults.holding and (delay := faults.hold(record)):
                    self._hold(record, delay)
                elif dispatcher.needs_thread(record):
                    self._in_thread(bytes(record))
                else:
                    self._send(self._dispatch(record))
        except RecordError as exc:
            log.warning("closing connection from %s: %s", self._client, exc)
            self.close()

    def _hold(self, record: memoryview, delay: float) -> None:
        """Answer `record` after `delay` seconds (never when infinite): an injected fault."""
        if math.isinf(delay):
            self._server.swallowed += 1
            return
        # The receive buffer is reused by the next read: keep a copy of the call.
        self._loop.call_later(delay, self._dispatch_held, bytes(record))

    def _dispatch_held(self, record: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        dispatcher = self._server.dispatcher
        try:
            if dispatcher.needs_thread(record):
                self._in_thread(record)
            else:
                self._send(self._dispatch(record))
        except RecordError as exc:
            log.warning("closing connection from %s: %s", self._client, exc)
            self.close()

    def _dispatch(self, record: memoryview | bytes) -> list[bytes] | None:
        return self._server.dispatcher.dispatch(
            record, self._client, self._origin, self._rpcbind_only
        )

    def _in_thread(self, record: bytes) -> None:
        future = self._loop.run_in_executor(
            None, self._server.dispatcher.dispatch, record, self._client
        )
        future.add_done_callback(self._sent_later)

    def _sent_later(self, future: asyncio.Future[list[bytes] | None]) -> None:
        try:
            self._send(future.result())
        except RecordError:
            self.close()

    def _send(self, parts: list[bytes] | None) -> None:
        transport = self._transport
        if parts is None or transport is None or transport.is_closing():
            return
        total = sum(len(p) for p in parts)
        transport.write(record_mark(total) + parts[0])
        for part in parts[1:]:
            if part:
                transport.write(part)

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()


async def _tcp_server(
    loop: asyncio.AbstractEventLoop, factory: Callable[[], _Connection], host: str, port: int
) -> asyncio.Server:
    """A TCP listener on (host, port) that no other process can share."""
    sock = _exclusive_socket(host, port)
    if sock is not None:
        return await loop.create_server(factory, sock=sock)
    # SO_REUSEADDR on POSIX only lets a restart bind while old connections linger.
    return await loop.create_server(factory, host, port, reuse_address=True)


def _exclusive_socket(host: str, port: int) -> socket.socket | None:
    """A listening socket no other process can bind too, where the platform needs asking for
    that (Windows: SO_EXCLUSIVEADDRUSE; there SO_REUSEADDR would let a second topology take
    the port); None elsewhere."""
    exclusive = getattr(socket, "SO_EXCLUSIVEADDRUSE", None)
    if exclusive is None:
        return None
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, exclusive, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
