"""One client connection of an NFS server (TCP, record-marked) and its datagram endpoint (UDP):
reading records within the server's limits, dispatching them here or in a thread, sending
replies with flow control."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from filesim.logs import RateLimited
from filesim.nfs.filedata import SENDS_FILES, FileData, Part, ShortRead, close_all
from filesim.nfs.limits import MAX_RECORD
from filesim.nfs.services import Origin
from filesim.nfs.vfs import SearchTooLong
from filesim.oncrpc.record import RecordError, RecordReader, record_mark

if TYPE_CHECKING:
    from filesim.nfs.server import NfsServer

log = logging.getLogger("filesim.nfs.server")
_limited = RateLimited(log)
_JOIN_BELOW = 64 * 1024
"""Reply parts smaller than this are copied into one buffer with their neighbours."""


def _socket_fd(loop: asyncio.AbstractEventLoop, transport: asyncio.BaseTransport) -> int:
    """The fd of a TCP transport of asyncio's own selector loop, which writes to it only
    what its buffer holds (uvloop's transports keep their own ways: -1)."""
    sock = transport.get_extra_info("socket")
    if not SENDS_FILES or sock is None or not isinstance(loop, asyncio.SelectorEventLoop):
        return -1
    return int(sock.fileno())


class Datagrams(asyncio.DatagramProtocol):
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


class Connection(asyncio.BufferedProtocol):
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
        self._socket_fd = -1
        """The socket, for READ data sent from its file; -1: none (not asyncio's own loop)."""

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
        self._socket_fd = _socket_fd(self._loop, transport)

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
        reader = self._reader
        try:
            while self._may_go_on():
                record = reader.next_record()
                if record is None:
                    if not self._reading_paused:
                        return  # all answered and reading on: nothing to pause or resume
                    break
                self._handle(record)
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

    def _dispatch(self, record: memoryview | bytes) -> Sequence[Part] | None:
        return self._server.dispatcher.dispatch_parts(
            record, self.client, self._origin, self._rpcbind_only
        )

    def _in_thread(self, record: bytes) -> None:
        server = self._server
        v4 = server.dispatcher.is_v4(record)
        if v4:
            server.v4_queued += 1
        future = self._loop.run_in_executor(
            server.v4_lane if v4 else server.executor, server.dispatcher.dispatch_parts, record,
            self.client,
        )  # fmt: skip
        future.add_done_callback(functools.partial(self._sent_later, v4))

    def _sent_later(self, v4: bool, future: asyncio.Future[Sequence[Part] | None]) -> None:
        if v4:
            self._server.v4_queued -= 1
        try:
            if not future.cancelled():
                self._send(future.result())
        except RecordError:
            self.close()
        finally:
            self._job_done()

    def _send(self, parts: Sequence[Part] | None) -> None:
        """One reply, record-marked. Its small parts go out joined, in one write: each write
        is a send(2) and a TCP segment the client wakes up for (an NFSv4 COMPOUND has a part
        per operation). A large part (READ data) is written on its own, never copied."""
        transport = self._transport
        if parts is None or transport is None or transport.is_closing():
            if parts is not None:
                close_all(parts)
            return
        if len(parts) == 1:  # most replies
            transport.write(record_mark(len(parts[0])) + cast(bytes, parts[0]))
            return
        total = 0
        for part in parts:
            total += len(part)
        pending: list[bytes] = [record_mark(total)]
        for i, part in enumerate(parts):
            if isinstance(part, FileData):
                transport.write(b"".join(pending))
                pending = []
                if not self._send_file(transport, part):
                    close_all(parts[i:])
                    return
            elif len(part) < _JOIN_BELOW:
                pending.append(part)
            else:
                transport.write(b"".join(pending))
                pending = []
                transport.write(part)
        if rest := b"".join(pending):  # (a READ's padding after its data is often empty)
            transport.write(rest)

    def _send_file(self, transport: asyncio.Transport, data: FileData) -> bool:
        """Write a READ's data: from the file's pages as far as the socket takes them while
        nothing else waits to be sent (the transport's buffer is then empty, so the bytes keep
        their place in the stream), the rest read into the transport's buffer. False, with the
        connection closed, when the file shrank under the READ or the socket failed."""
        try:
            sent = 0
            if self._socket_fd >= 0 and not transport.get_write_buffer_size():
                sent = data.send(self._socket_fd)
            if sent < data.count:
                transport.write(data.read(sent))
            return True
        except ShortRead as exc:
            _limited.warning(
                f"read {self.client}", "closing connection from %s: %s", self.client, exc
            )
            self.close()
            return False
        except OSError as exc:  # the client went away (EPIPE, ECONNRESET) or a stranger fd
            log.debug("closing connection from %s: %s", self.client, exc)
            self.close()
            return False
        finally:
            data.close()

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
