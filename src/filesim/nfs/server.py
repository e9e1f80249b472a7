"""The asyncio server: every program of one export (NFS, MOUNT, rpcbind, NLM, NSM) on one port,
over TCP and (all but NFS) UDP; in standard-port mode rpcbind also on 111 of the same address.

Sockets are known here, in `connection` (one client connection) and in `callback` (the calls
NLM makes to clients), nowhere else in `filesim.nfs`. Bytes are received straight into the
record reader's buffer (`BufferedProtocol`), every complete record is dispatched at once, and a
READ reply goes out as header and payload separately so the payload is never copied. Calls that
may block on the disk (COMMIT, WRITE on a `sync` export) run in this server's own bounded
executor, so a flood of them on one server never delays another server or a sync agent.

Memory is bounded by `ServerLimits` (`limits`): receive buffers start small and grow per
record (and are given back when a connection goes quiet), a connection stops being read while
its replies are not drained or too many of its calls wait for a thread, the server as a whole
stops reading when too many calls wait or too many connections have unsent replies,
connections beyond `max_connections` are refused, and idle ones are closed after
`idle_timeout_s`.

Fault injection that only the server can do (latency, outages) is one hook given at build time:
the `ServerFaults` of `filesim.nfs.faults`, asked about each call only while it is `holding`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from filesim.logs import RateLimited
from filesim.nfs.connection import Connection, Datagrams
from filesim.nfs.dispatch import Dispatcher, Observer
from filesim.nfs.export import Export
from filesim.nfs.faults import ServerFaults
from filesim.nfs.handles import bound_searches
from filesim.nfs.limits import ServerLimits
from filesim.nfs.v4.service import V4Options
from filesim.topology.faults import FaultSpec

log = logging.getLogger(__name__)
_limited = RateLimited(log)


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
        self._connections: set[Connection] = set()
        self._parked: dict[Connection, None] = {}  # waiting for a server-wide limit, in order
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
            self._server = await _tcp_server(loop, lambda: Connection(self), self.host, self.port)
            self.port = self._server.sockets[0].getsockname()[1]
            if self.rpcbind_port is not None:
                other = await _tcp_server(
                    loop, lambda: Connection(self, rpcbind_only=True), self.host,
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
            lambda: Datagrams(self, rpcbind_only), local_addr=(self.host, port)
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

    def close(self) -> None:
        """Release the export's storage (after `stop`)."""
        self.export.vfs.close()

    def drop_connections(self) -> None:
        for conn in list(self._connections):
            conn.close()

    async def apply_faults(self, specs: Sequence[FaultSpec]) -> None:
        """Make `specs` this server's NFS faults, in force when this returns; open
        connections are dropped when the faults say so (an outage)."""
        if self.faults is None:
            raise ValueError(f"{self.export.config.name} was built without a fault layer")
        if self.faults.apply(specs):
            self.drop_connections()

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

    def park(self, conn: Connection) -> None:
        self._parked[conn] = None

    def unpark(self) -> None:
        """Let parked connections go on, oldest first, while the server-wide limits allow."""
        while self._parked and self.admits():
            conn = next(iter(self._parked))
            del self._parked[conn]
            conn.wake()

    def forget(self, conn: Connection) -> None:
        self._connections.discard(conn)
        self._parked.pop(conn, None)

    def admit(self, conn: Connection, client: str) -> bool:
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

    def _close(self, conn: Connection, why: str, seconds: float) -> None:
        _limited.warning(
            f"close {self.export.config.name} {why}",
            "NFS server %s: closing a connection from %s %s for %.0f s",
            self.export.config.name, conn.client, why, seconds,
        )  # fmt: skip
        conn.close()


async def _tcp_server(
    loop: asyncio.AbstractEventLoop, factory: Callable[[], Connection], host: str, port: int
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
