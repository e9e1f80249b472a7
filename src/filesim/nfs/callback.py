"""Calls the server makes to its clients (asyncio, beside `server.py`): NLM GRANTED when a
blocked lock frees, NLM _RES answers to _MSG calls, and NSM NOTIFY to the hosts that held locks
when the server last ran, so they reclaim them.

Each call finds the client's service through the client's rpcbind (PORTMAP GETPORT on port 111
of the client's address, TCP), then makes one call on a fresh TCP connection, within `timeout`.
A client that cannot be reached this way (behind NAT or slirp, a firewall, no rpcbind) gets its
blocked lock by its own re-poll instead; that is decided per call, and a host that failed once
is not called again for GRANTED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from collections.abc import Coroutine
from typing import Any

from filesim.nfs.nlm.manager import LockManager, Waiter
from filesim.nfs.nlm.monitor import HostRecord, Peer
from filesim.nfs.nlm.types import Notify, Res, TestArgs
from filesim.nfs.services import Origin
from filesim.oncrpc.message import ReplyError, encode_call, parse_reply, reply_xid
from filesim.oncrpc.programs import (
    IPPROTO_TCP,
    NLM_PROGRAM,
    NLM_VERSION,
    NSM_PROGRAM,
    NSM_VERSION,
    PORTMAP_PROGRAM,
    PORTMAP_VERSION,
    NlmProc,
    NlmStat,
    NsmProc,
    PortmapProc,
)
from filesim.oncrpc.record import read_mark, record_mark
from filesim.oncrpc.xdr import Unpacker, XdrError

log = logging.getLogger(__name__)

RPCBIND_PORT = 111
MAX_UNREACHABLE = 1024
"""Client addresses remembered as unreachable for GRANTED, at most."""
_MAX_REPLY = 1 << 16
_GETPORT = struct.Struct(">IIII")


class CallFailed(Exception):
    """A callback that could not be delivered or was refused."""


class Callbacks:
    """The server's outgoing calls for one export; every task ends with `close()`."""

    def __init__(
        self, manager: LockManager, record: HostRecord, timeout: float = 5.0,
        rpcbind_port: int = RPCBIND_PORT,
    ) -> None:  # fmt: skip
        self.manager = manager
        self.record = record
        self.timeout = timeout
        self.rpcbind_port = rpcbind_port
        self.unreachable: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._xid = int.from_bytes(os.urandom(3), "big") << 4

    def start(self, loop: asyncio.AbstractEventLoop, notify_as: str) -> None:
        """Begin on `loop`: tell the hosts of the last run that the server restarted
        (`notify_as`: the name they know this server by, when they did not record one)."""
        self._loop = loop
        for peer in list(self.record.to_notify.values()):
            self._spawn(self._notify(peer, notify_as))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    # -- Granter (the lock manager's I/O) -------------------------------------------------------

    def reachable(self, waiter: Waiter) -> bool:
        """No callback to a client that called from our own address (slirp, NAT: it would
        reach us, not it) or that could not be reached before."""
        return (
            self._loop is not None
            and waiter.address != waiter.local
            and waiter.address not in self.unreachable
        )

    def granted(self, waiter: Waiter) -> None:
        args = TestArgs(waiter.cookie, waiter.exclusive, waiter.lock).encode()
        self._spawn(self._granted(waiter, args))

    async def _granted(self, waiter: Waiter, args: bytes) -> None:
        ok = False
        try:
            u = await self.call(waiter.address, NLM_PROGRAM, NLM_VERSION, NlmProc.GRANTED, args)
            ok = Res.decode(u).stat is NlmStat.GRANTED
        except (CallFailed, XdrError, ValueError) as exc:
            log.info("NLM GRANTED to %s failed (%s): it re-polls", waiter.address, exc)
            if len(self.unreachable) >= MAX_UNREACHABLE:
                self.unreachable.clear()  # forgetting costs one more failed callback each
            self.unreachable.add(waiter.address)
        self.manager.callback_done(waiter, ok)

    # -- one-way answers (NLM _MSG) -------------------------------------------------------------

    def send(self, to: Origin, prog: int, vers: int, proc: int, args: bytes) -> None:
        self._spawn(self._one_way(to.client, prog, vers, proc, args))

    async def _one_way(self, host: str, prog: int, vers: int, proc: int, args: bytes) -> None:
        try:
            await self.call(host, prog, vers, proc, args, reply=False)
        except CallFailed as exc:
            log.info("NLM answer %d to %s not delivered: %s", proc, host, exc)

    # -- restart notification -------------------------------------------------------------------

    async def _notify(self, peer: Peer, notify_as: str) -> None:
        name = peer.local or notify_as
        args = Notify(name, self.record.state).encode()
        try:
            await self.call(peer.address, NSM_PROGRAM, NSM_VERSION, NsmProc.NOTIFY, args)
            log.info("NSM: told %s (%s) that %s restarted", peer.name, peer.address, name)
        except CallFailed as exc:
            log.info("NSM: cannot tell %s (%s) of the restart: %s", peer.name, peer.address, exc)
        self.record.notified(peer.name)

    # -- the calls ------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        loop = self._loop
        if loop is None:
            coro.close()
            return

        def create() -> None:
            task = loop.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            create()
        else:  # a lock released in a worker thread
            loop.call_soon_threadsafe(create)

    async def call(
        self, host: str, prog: int, vers: int, proc: int, args: bytes, reply: bool = True
    ) -> Unpacker:
        """Call `prog` on `host` (found through its rpcbind); the results, or CallFailed."""
        try:
            async with asyncio.timeout(self.timeout):
                port = await self._getport(host, prog, vers)
                return await self._call(host, port, prog, vers, proc, args, reply)
        except TimeoutError:
            raise CallFailed(f"no answer from {host} within {self.timeout:g} s") from None
        except OSError as exc:
            raise CallFailed(f"{host}: {exc.strerror or exc}") from None

    async def _getport(self, host: str, prog: int, vers: int) -> int:
        args = _GETPORT.pack(prog, vers, IPPROTO_TCP, 0)
        u = await self._call(
            host, self.rpcbind_port, PORTMAP_PROGRAM, PORTMAP_VERSION, PortmapProc.GETPORT, args
        )
        port = u.uint32()
        if not port:
            raise CallFailed(f"{host} has no program {prog} v{vers} registered")
        return port

    async def _call(
        self, host: str, port: int, prog: int, vers: int, proc: int, args: bytes,
        reply: bool = True,
    ) -> Unpacker:  # fmt: skip
        self._xid = (self._xid + 1) & 0xFFFFFFFF
        xid = self._xid
        message = encode_call(xid, prog, vers, proc, args)
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(record_mark(len(message)) + message)
            await writer.drain()
            if not reply:
                return Unpacker(b"")
            while True:
                record = await _read_record(reader)
                if reply_xid(record) == xid:
                    break
            try:
                return parse_reply(record)
            except ReplyError as exc:
                raise CallFailed(f"{host}:{port} refused the call: {exc}") from None
        except asyncio.IncompleteReadError:
            raise CallFailed(f"{host}:{port} closed the connection") from None
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _read_record(reader: asyncio.StreamReader) -> bytes:
    """One record, its fragments joined."""
    parts: list[bytes] = []
    size = 0
    while True:
        length, last = read_mark(await reader.readexactly(4))
        size += length
        if size > _MAX_REPLY:
            raise CallFailed(f"a reply of more than {_MAX_REPLY} bytes")
        parts.append(await reader.readexactly(length))
        if last:
            return b"".join(parts)
