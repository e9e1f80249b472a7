"""NLM over real sockets, in a private network namespace (ports 111 and 2049 are the
namespace's): a blocked lock granted by a GRANTED callback to the waiting client's own lock
manager, found through the client's rpcbind on its port 111; after a server restart the
client is told (NSM NOTIFY) and, during the grace period, only reclaims are granted.

The two clients are hosts 127.0.0.2 (beta, which runs a small rpcbind + NLM + NSM of its own,
as rpc.statd and lockd do) and 127.0.0.3 (alpha, which runs nothing)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from filesim.nfs.export import Export, ExportConfig
from filesim.nfs.localfs import LocalVfs
from filesim.nfs.nlm.types import LockArgs, NlmLock, Notify, Res, TestArgs, UnlockArgs
from filesim.nfs.server import NfsServer
from filesim.nfs.v4.service import V4Options
from filesim.oncrpc.message import (
    accepted_header,
    encode_call,
    parse_call,
    parse_reply,
)
from filesim.oncrpc.programs import (
    MOUNT_PROGRAM,
    NLM_PROGRAM,
    NSM_PROGRAM,
    PORTMAP_PROGRAM,
    MountProc,
    NlmProc,
    NlmStat,
    NsmProc,
    PortmapProc,
)
from filesim.oncrpc.record import read_mark, record_mark
from filesim.oncrpc.xdr import Packer, Unpacker
from tests.support.netns import NetNs

pytestmark = [pytest.mark.integration]

SERVER = "127.0.0.1"
BETA, ALPHA = "127.0.0.2", "127.0.0.3"
BETA_NLM_PORT = 4045
TIMEOUT = 10.0


async def _record(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        length, last = read_mark(await reader.readexactly(4))
        parts.append(await reader.readexactly(length))
        if last:
            return b"".join(parts)


async def rpc(prog: int, vers: int, proc: int, args: bytes, source: str) -> Unpacker:
    """One call to the server over TCP from `source` (a client host's address)."""
    reader, writer = await asyncio.open_connection(SERVER, 2049, local_addr=(source, 0))
    try:
        message = encode_call(1, prog, vers, proc, args)
        writer.write(record_mark(len(message)) + message)
        return parse_reply(await asyncio.wait_for(_record(reader), TIMEOUT))
    finally:
        writer.close()


async def one_way(prog: int, vers: int, proc: int, args: bytes, source: str) -> None:
    """A call the server answers with a call of its own (an NLM _MSG): no reply comes."""
    _, writer = await asyncio.open_connection(SERVER, 2049, local_addr=(source, 0))
    message = encode_call(2, prog, vers, proc, args)
    writer.write(record_mark(len(message)) + message)
    await writer.drain()
    writer.close()


class BetaHost:
    """Client host beta's rpcbind (port 111) and lock manager/status monitor: records what
    the server calls it with."""

    def __init__(self) -> None:
        self.granted: asyncio.Queue[TestArgs] = asyncio.Queue()
        self.notified: asyncio.Queue[Notify] = asyncio.Queue()
        self.answers: asyncio.Queue[Res] = asyncio.Queue()
        """The server's answers to _MSG calls (LOCK_RES, ...), which are calls to us."""
        self.servers: list[asyncio.Server] = []

    async def start(self) -> None:
        for port in (111, BETA_NLM_PORT):
            self.servers.append(await asyncio.start_server(self._serve, BETA, port))

    def close(self) -> None:
        for server in self.servers:
            server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                call = parse_call(await _record(reader))
                reply = accepted_header(call.xid) + self._answer(call.prog, call.proc, call.args)
                writer.write(record_mark(len(reply)) + reply)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def _answer(self, prog: int, proc: int, u: Unpacker) -> bytes:
        p = Packer()
        if (prog, proc) == (PORTMAP_PROGRAM, PortmapProc.GETPORT):
            asked = u.uint32()
            p.uint32(BETA_NLM_PORT if asked in (NLM_PROGRAM, NSM_PROGRAM) else 0)
        elif (prog, proc) == (NLM_PROGRAM, NlmProc.GRANTED):
            args = TestArgs.decode(u)
            self.granted.put_nowait(args)
            return Res(args.cookie, NlmStat.GRANTED).encode()
        elif (prog, proc) == (NLM_PROGRAM, NlmProc.LOCK_RES):
            self.answers.put_nowait(Res.decode(u))
        elif (prog, proc) == (NSM_PROGRAM, NsmProc.NOTIFY):
            self.notified.put_nowait(Notify.decode(u))
        return p.getvalue()


def server(root: Path) -> NfsServer:
    export = Export(ExportConfig(name="t"), LocalVfs(root), b"s" * 32)
    return NfsServer(
        export, SERVER, 2049, rpcbind_port=111, v4=V4Options(grace_s=60),
        nlm_state=root.parent / "nlm.json",
    )  # fmt: skip


async def nlm(proc: NlmProc, args: bytes, source: str, test: bool = False) -> Res:
    return Res.decode(await rpc(NLM_PROGRAM, 4, proc, args, source), test=test)


async def scenario(root: Path) -> None:
    beta_host = BetaHost()
    await beta_host.start()
    first = server(root)
    await first.start()
    try:
        p = Packer()
        p.string("/data")
        u = await rpc(MOUNT_PROGRAM, 3, MountProc.MNT, p.getvalue(), ALPHA)
        assert u.uint32() == 0
        fh = bytes(u.opaque())  # the export's root directory: locks need only a handle
        alpha = NlmLock("alpha", fh, b"a", 1, 0, 0)
        beta = NlmLock("beta", fh, b"b", 2, 0, 0)
        held = await nlm(NlmProc.LOCK, LockArgs(b"1", False, True, alpha, False, 1).encode(), ALPHA)
        assert held.stat is NlmStat.GRANTED
        wait = LockArgs(b"2", True, True, beta, False, 1).encode()
        assert (await nlm(NlmProc.LOCK, wait, BETA)).stat is NlmStat.BLOCKED
        # alpha lets go: the server takes the lock for beta and calls beta back
        assert (await nlm(NlmProc.UNLOCK, UnlockArgs(b"3", alpha).encode(), ALPHA)).stat == 0
        granted = await asyncio.wait_for(beta_host.granted.get(), TIMEOUT)
        assert (granted.cookie, granted.lock) == (b"2", beta)
        test = await nlm(NlmProc.TEST, TestArgs(b"4", True, alpha).encode(), ALPHA, test=True)
        assert test.stat is NlmStat.DENIED and test.holder is not None
        assert test.holder.svid == 2
        # the asynchronous form: no reply, the answer comes as a LOCK_RES call to beta
        again = LockArgs(b"msg", False, True, beta, False, 1).encode()
        await one_way(NLM_PROGRAM, 4, NlmProc.LOCK_MSG, again, BETA)
        answer = await asyncio.wait_for(beta_host.answers.get(), TIMEOUT)
        assert (answer.cookie, answer.stat) == (b"msg", NlmStat.GRANTED)
        state = first.dispatcher.nlm.hosts.state  # type: ignore[attr-defined]
    finally:
        await first.stop()
    # a restart: beta, which held a lock, is told; until the grace ends, only reclaims
    second = server(root)
    await second.start()
    try:
        notice = await asyncio.wait_for(beta_host.notified.get(), TIMEOUT)
        assert notice.name == SERVER and notice.state > state and notice.state % 2 == 1
        fresh = LockArgs(b"5", False, True, alpha, False, 1).encode()
        assert (await nlm(NlmProc.LOCK, fresh, ALPHA)).stat is NlmStat.DENIED_GRACE_PERIOD
        reclaim = LockArgs(b"6", False, True, beta, True, 1).encode()
        assert (await nlm(NlmProc.LOCK, reclaim, BETA)).stat is NlmStat.GRANTED
    finally:
        await second.stop()
        beta_host.close()


def test_blocked_lock_is_called_back_and_reclaimed_after_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "export"
    root.mkdir()
    with NetNs() as ns:
        ns.call(lambda: asyncio.run(scenario(root)))
