"""The asyncio server: every program of one export (NFS, MOUNT, rpcbind, NLM, NSM) on one port,
over TCP and (all but NFS) UDP; in standard-port mode rpcbind also on 111 of the same address.

The only module of `filesim.nfs` that knows about sockets. Bytes are received straight into the
record reader's buffer (`BufferedProtocol`), every complete record is dispatched at once, and a
READ reply goes out as header and payload separately so the payload is never copied. Calls that
may block on the disk (COMMIT, WRITE on a `sync` export) run in this server's own bounded
executor, so a flood of them on one server never delays another server or a sync agent.

Memory is bounded by `ServerLimits`: receive buffers start small and grow per record (and are
given back when a connection goes quiet), a connection stops being read while its replies are
not drained or too many of its calls wait for a thread, the server as a whole stops reading
when too many calls wait or too many connections have unsent replies, connections beyond
`max_connections` are refused, and idle ones are closed after `idle_timeout_s`.

Fault injection that only the server can do (latency, outages) is one hook given at build time:
the `ServerFaults` of `filesim.nfs.faults`, asked about each call only while it is `holding`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from filesim.logs import RateLimited
from filesim.nfs.dispatch import Dispatcher, Observer
from filesim.nfs.export import Export
from filesim.nfs.faults import ServerFaults
from filesim.nfs.handles import bound_searches
from filesim.nfs.services import Origin
from filesim.nfs.v4.service import V4Options
from filesim.nfs.vfs import SearchTooLong
from filesim.oncrpc.record import RecordError, RecordReader, record_mark

log = logging.getLogger(__name__)
_limited = RateLimited(log)

MAX_RECORD = (1 << 20) + (64 << 10)  # a 1 MiB WRITE (wtmax) plus its headers


@dataclass(frozen=True)
class ServerLimits:
    """What one server may hold at once; beyond it, clients wait (TCP backpressure)."""

    max_connections: int = 1024
    idle_timeout_s: float = 300.0
    """A connection that sends nothing for this long is closed (clients reconnect at once)."""
    calls_per_connection: int = 16
    """Calls of one connection waiting for a thread or held by a latency fault."""
    calls_total: int = 128
    """The same, for all connections of the server."""
    backlogged_connections: int = 32
    """Connections whose unsent replies are over `write_buffer` (each holds at most that plus
    one reply): with this many, the server reads no new calls until one drains."""
    write_buffer: int = 256 << 10
    write_stall_s: float = 20.0
    """A backlogged connection whose client takes no reply bytes for this long is closed, so
    clients that never read cannot keep the others waiting at `backlogged_connections`."""
    workers: int = 4
    """Threads for the calls that block on the disk (COMMIT, sync WRITE)."""


class NfsServer:
    """Serves `export` on `host:port` (port 0 picks a free one; see `.port` after start)."""

    def __init__(
        self, export: Export, host: str = "127.0.0.1", port: int = 0,
        observer: Observer | None = None, faults: ServerFaults | None = None,
        v4: V4Options | None = None, rpcbind_port: int | None = None, udp: bool = True,
        nlm_state: Path | None = None,
        limits: ServerLimits | None = None,
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
        self.limits = limits or ServerLimits()
        self.executor = ThreadPoolExecutor(
            self.limits.workers, thread_name_prefix=f"nfs-{export.config.name}"
        )
        self.v4_lane = ThreadPoolExecutor(1, thread_name_prefix=f"nfs4-{export.config.name}")
        """NFSv4 COMPOUNDs that may block run here, one at a time; while any waits, every
        NFSv4 COMPOUND of this server goes here too, so v4 state is never used by two
        threads at once."""
        self.v4_queued = 0
        export.index.background = self.executor  # long handle searches (NFSv4) go there
        self._server: asyncio.Server | None = None
        self._others: list[asyncio.Server] = []
        self._datagrams: list[asyncio.DatagramTransport] = []
        self._sweeper: asyncio.Task[None] | None = None
        self._connections: set[_Connection] = set()
        self._parked: dict[_Connection, None] = {}  # waiting for a server-wide limit, in order
        self.calls_waiting = 0
        """Calls in the executor or held by a fault, over all connections."""
        self.backlogged = 0
        """Connections whose transport holds more unsent replies than `write_buffer`."""
        self.swallowed = 0
        """Calls never answered because of an outage fault."""
        self.refused = 0
        """Connections refused because `max_connections` were open."""

    async def start(self) -> None:
        """Bind every port (OSError when one cannot be: nothing stays bound then)."""
        loop = asyncio.get_running_loop()
        bound_searches()  # this thread runs the loop: no search of the whole export on it
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
        self._sweeper = loop.create_task(self._sweep())

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
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
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
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.v4_lane.shutdown(wait=False, cancel_futures=True)

    def drop_connections(self) -> None:
        for conn in list(self._connections):
            conn.close()

    @property
    def connections(self) -> int:
        return len(self._connections)

    def admits(self) -> bool:
        """Whether a connection may read more calls as far as server-wide limits go."""
        limits = self.limits
        return (
            self.calls_waiting < limits.calls_total
            and self.backlogged < limits.backlogged_connections
        )

    def park(self, conn: _Connection) -> None:
        self._parked[conn] = None

    def unpark(self) -> None:
        """Let parked connections go on, oldest first, while the server-wide limits allow."""
        while self._parked and self.admits():
            conn = next(iter(self._parked))
            del self._parked[conn]
            conn.wake()

    def forget(self, conn: _Connection) -> None:
        self._connections.discard(conn)
        self._parked.pop(conn, None)

    def admit(self, conn: _Connection, client: str) -> bool:
        """Whether a new connection from `client` may stay (refused beyond the limit)."""
        if len(self._connections) >= self.limits.max_connections:
            self.refused += 1
            _limited.warning(
                f"refuse {self.export.config.name}",
                "NFS server %s: refused a connection from %s: %d connections are open, the "
                "limit (max_connections); idle ones close after %.0f s",
                self.export.config.name, client, len(self._connections),
                self.limits.idle_timeout_s,
            )  # fmt: skip
            return False
        self._connections.add(conn)
        return True

    async def _sweep(self) -> None:
        """Close idle connections; give back the receive buffers of quiet ones."""
        limits = self.limits
        period = min(max(min(limits.idle_timeout_s, limits.write_stall_s) / 4, 0.05), 30.0)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            try:
                self._sweep_once(loop.time(), period)
            except Exception:  # the sweep must go on: it is what keeps connections bounded
                _limited.error("sweep", "NFS server %s: connection sweep failed",
                               self.export.config.name, exc_info=True)  # fmt: skip

    def _sweep_once(self, now: float, period: float) -> None:
        limits = self.limits
        for conn in list(self._connections):
            quiet = now - conn.last_active
            stalled = conn.stalled_for(now)
            if quiet >= limits.idle_timeout_s and conn.calls_waiting == 0:
                self._close(conn, "idle", quiet)
            elif stalled >= limits.write_stall_s:
                self._close(conn, "not reading its replies", stalled)
            elif quiet >= period:
                conn.shrink()

    def _close(self, conn: _Connection, why: str, seconds: float) -> None:
        _limited.warning(
            f"close {self.export.config.name} {why}",
            "NFS server %s: closing a connection from %s %s for %.0f s",
            self.export.config.name, conn.client, why, seconds,
        )  # fmt: skip
        conn.close()


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
        self.client = ""
        self._loop = asyncio.get_running_loop()
        self.last_active = self._loop.time()
        self.calls_waiting = 0
        """Calls of this connection in the executor or held by a fault."""
        self._writing_paused = False
        self._reading_paused = False
        self._stalled_since = 0.0
        self._unsent = 0

    def stalled_for(self, now: float) -> float:
        """Seconds the client has taken none of the replies backlogged for it (0: none)."""
        transport = self._transport
        if not self._writing_paused or transport is None:
            return 0.0
        unsent = transport.get_write_buffer_size()
        if unsent < self._unsent:  # it reads, slowly
            self._stalled_since = now
        self._unsent = unsent
        return now - self._stalled_since

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.client = str(peer[0]) if peer else ""
        local = transport.get_extra_info("sockname")
        self._origin = Origin(self.client, str(local[0]) if local else "")
        faults = self._server.faults
        if (faults is not None and faults.refusing) or not self._server.admit(self, self.client):
            self._transport.abort()
            return
        self._transport.set_write_buffer_limits(high=self._server.limits.write_buffer)

    def connection_lost(self, exc: Exception | None) -> None:
        server = self._server
        server.forget(self)
        if self._writing_paused:
            self._writing_paused = False
            server.backlogged -= 1
            server.unpark()
        self._transport = None
        self._reader.shrink()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def shrink(self) -> None:
        self._reader.shrink()

    @property
    def allocated(self) -> int:
        return self._reader.allocated

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self._reader.advance(nbytes)
        self.last_active = self._loop.time()
        self._process()

    def _may_go_on(self) -> bool:
        return (
            not self._writing_paused
            and self.calls_waiting < self._server.limits.calls_per_connection
            and self._server.admits()
        )

    def _process(self) -> None:
        """Answer the complete calls received, until a limit says to wait (then stop reading:
        the rest stays in the buffer and the client's TCP window closes)."""
        if self._transport is None:
            return
        try:
            if self._may_go_on():
                for record in self._reader.records():
                    self._handle(record)
                    if not self._may_go_on():
                        break
        except RecordError as exc:
            self._bad_record(exc)
            return
        self._pause_or_resume()

    def _pause_or_resume(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self._may_go_on():
            if self._reading_paused:
                self._reading_paused = False
                transport.resume_reading()
            return
        if not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()
        if (
            not self._writing_paused
            and self.calls_waiting < self._server.limits.calls_per_connection
        ):
            self._server.park(self)  # only a server-wide limit holds it: wait in line

    def wake(self) -> None:
        """A limit this connection waited for may be lifted: answer what is buffered."""
        self._process()

    def _handle(self, record: memoryview) -> None:
        faults = self._server.faults
        if faults is not None and faults.holding and (delay := faults.hold(record)):
            self._hold(record, delay)
        elif not self._answer_here(record):
            self._job_started()
            self._in_thread(bytes(record))

    def _answer_here(self, record: memoryview | bytes) -> bool:
        """Answer `record` on the event loop; False when it belongs in a thread (it may block
        on the disk, or a stale handle needs a search of the export)."""
        dispatcher = self._server.dispatcher
        if dispatcher.needs_thread(record):
            return False
        if self._server.v4_queued and dispatcher.is_v4(record):
            return False  # behind an NFSv4 COMPOUND in the lane: keep their order
        try:
            parts = self._dispatch(record)
        except SearchTooLong:
            return False
        self._send(parts)
        return True

    def _bad_record(self, exc: RecordError) -> None:
        _limited.warning(
            f"record {self.client}", "closing connection from %s: %s", self.client, exc
        )
        self.close()

    def _job_started(self) -> None:
        self.calls_waiting += 1
        self._server.calls_waiting += 1

    def _job_done(self) -> None:
        self.calls_waiting -= 1
        self._server.calls_waiting -= 1
        self._process()
        self._server.unpark()

    def _hold(self, record: memoryview, delay: float) -> None:
        """Answer `record` after `delay` seconds (never when infinite): an injected fault."""
        if math.isinf(delay):
            self._server.swallowed += 1
            return
        # The receive buffer is reused by the next read: keep a copy of the call.
        self._job_started()
        self._loop.call_later(delay, self._dispatch_held, bytes(record))

    def _dispatch_held(self, record: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            self._job_done()
            return
        try:
            if not self._answer_here(record):
                self._in_thread(record)  # still counted as waiting until answered
                return
        except RecordError as exc:
            self._bad_record(exc)
        self._job_done()

    def _dispatch(self, record: memoryview | bytes) -> list[bytes] | None:
        return self._server.dispatcher.dispatch(
            record, self.client, self._origin, self._rpcbind_only
        )

    def _in_thread(self, record: bytes) -> None:
        server = self._server
        v4 = server.dispatcher.is_v4(record)
        if v4:
            server.v4_queued += 1
        future = self._loop.run_in_executor(
            server.v4_lane if v4 else server.executor, server.dispatcher.dispatch, record,
            self.client,
        )  # fmt: skip
        future.add_done_callback(functools.partial(self._sent_later, v4))

    def _sent_later(self, v4: bool, future: asyncio.Future[list[bytes] | None]) -> None:
        if v4:
            self._server.v4_queued -= 1
        try:
            if not future.cancelled():
                self._send(future.result())
        except RecordError:
            self.close()
        finally:
            self._job_done()

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
        # Called by the transport when unsent replies pass `write_buffer`: read no more calls.
        if not self._writing_paused:
            self._writing_paused = True
            self._stalled_since = self._loop.time()
            self._unsent = 0
            self._server.backlogged += 1

    def resume_writing(self) -> None:
        if self._writing_paused:
            self._writing_paused = False
            self._server.backlogged -= 1
        self.last_active = self._loop.time()
        self._process()
        self._server.unpark()


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
