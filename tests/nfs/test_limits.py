"""Memory a client can make the server hold is bounded (issue 10, item 4).

Receive buffers start small and are given back when a connection goes quiet; a client that
pipelines calls but never reads the replies stops being read; the server as a whole holds a
bounded number of backlogged connections; connections beyond the cap are refused with a log
line; idle connections are closed."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from filesim.nfs.limits import MAX_RECORD, ServerLimits
from filesim.nfs.server import NfsServer
from filesim.nfsclient.client import NfsClient
from filesim.oncrpc.message import encode_call
from filesim.oncrpc.programs import NFS_PROGRAM, NfsProc
from filesim.oncrpc.record import frame
from filesim.waiting import poll_until
from tests.support.threaded import serving

MIB = 1 << 20


def _read_call(xid: int, fh: bytes, count: int) -> bytes:
    args = struct.pack(">I", len(fh)) + fh + b"\0" * (-len(fh) % 4) + struct.pack(">QI", 0, count)
    return frame(encode_call(xid, NFS_PROGRAM, 3, NfsProc.READ, args))


def _unsent(server: NfsServer) -> list[int]:
    """Reply bytes each connection holds that its client did not take yet."""
    return [
        c._transport.get_write_buffer_size()
        for c in list(server._connections)
        if c._transport is not None
    ]


def _nfs_cat(server: NfsServer, path: str) -> bytes:
    url = f"nfs://127.0.0.1/data{path}?version=3&nfsport={server.port}&mountport={server.port}"
    return subprocess.run(["nfs-cat", url], check=True, capture_output=True, timeout=30).stdout


@pytest.fixture
def big_file(tmp_path: Path) -> Iterator[tuple[Path, bytes]]:
    root = tmp_path / "export"
    root.mkdir()
    data = bytes(range(256)) * (MIB // 256)
    (root / "big").write_bytes(data)
    yield root, data


def _stuck_reader(port: int, fh: bytes, calls: int) -> socket.socket:
    """A connection that pipelines `calls` 1 MiB READs and never reads a reply."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"".join(_read_call(i, fh, MIB) for i in range(calls)))
    return s


@pytest.mark.slow
def test_unread_replies_stop_the_reading_and_others_are_served(
    big_file: tuple[Path, bytes],
) -> None:
    root, data = big_file
    # write_stall_s leaves room for the checks below on a loaded machine before stuck[0] reads
    limits = ServerLimits(backlogged_connections=2, write_stall_s=10.0)
    with serving(root, limits=limits) as server, ExitStack() as stack:
        client = stack.enter_context(NfsClient("127.0.0.1", server.port))
        fh = client.walk(client.mnt("/data"), "big")
        stuck = [stack.enter_context(_stuck_reader(server.port, fh, 200)) for _ in range(2)]
        # barrier: both are backlogged, so the server stopped reading from them
        poll_until(lambda: server.backlogged == 2, 10, what="both readers to back up")
        bound = limits.write_buffer + MAX_RECORD + 64 * 1024
        assert max(_unsent(server)) <= bound
        assert sum(_unsent(server)) <= limits.backlogged_connections * bound
        # at the server-wide cap, a third reader is parked: its calls stay unread
        stack.enter_context(_stuck_reader(server.port, fh, 200))
        poll_until(lambda: len(server._parked) >= 1, 10, what="the third reader to wait")
        assert sum(_unsent(server)) <= limits.backlogged_connections * bound
        # the ones that never read are closed after write_stall_s; one that reads gets all
        # its replies, however long the others stall
        stuck[0].settimeout(30)
        got = 0
        while got < 200 * (MIB + 100):
            chunk = stuck[0].recv(4 * MIB)
            assert chunk, "the server closed a connection that was reading"
            got += len(chunk)
        # the client and the reader are left (the third was let in, then stalled in turn),
        # and none is counted as backlogged. Both in one poll: the server's loop runs in
        # another thread, which forgets a closed connection before it uncounts its backlog.
        poll_until(
            lambda: (server.connections, server.backlogged) == (2, 0),
            60,
            what="the stalled readers to be closed and uncounted",
        )
        assert _nfs_cat(server, "/big") == data


def test_connections_beyond_the_cap_are_refused_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    limits = ServerLimits(max_connections=2)
    caplog.set_level(logging.WARNING, logger="filesim.nfs.server")
    with serving(tmp_path / "e", limits=limits) as server, ExitStack() as stack:
        kept = [stack.enter_context(NfsClient("127.0.0.1", server.port)) for _ in range(2)]
        for c in kept:
            c.null()
        extra = stack.enter_context(socket.create_connection(("127.0.0.1", server.port)))
        extra.settimeout(10)
        with contextlib.suppress(ConnectionResetError):  # an abort may arrive as a reset
            assert extra.recv(10) == b""
        assert server.refused == 1
        assert "refused a connection from 127.0.0.1" in caplog.text
        assert "limit (max_connections)" in caplog.text
        kept[0].null()  # the ones admitted keep working


def test_idle_connections_give_back_buffers_and_are_closed(tmp_path: Path) -> None:
    limits = ServerLimits(idle_timeout_s=1.0)
    with serving(tmp_path / "e", limits=limits) as server, ExitStack() as stack:
        busy = stack.enter_context(socket.create_connection(("127.0.0.1", server.port)))
        # a 1 MiB call (NULL ignores its arguments) grows the receive buffer past 1 MiB
        busy.sendall(frame(encode_call(1, NFS_PROGRAM, 3, 0, b"\0" * MIB)))
        busy.settimeout(10)
        assert busy.recv(100)
        poll_until(
            lambda: server.connections == 1
            and all(c.allocated <= 64 * 1024 for c in server._connections),
            10, what="the quiet connection to give its buffer back",
        )  # fmt: skip
        assert busy.recv(10) == b""  # then closed for idleness
        assert server.connections == 0


def test_many_idle_connections_hold_little(tmp_path: Path) -> None:
    with serving(tmp_path / "e") as server, ExitStack() as stack:
        socks = [
            stack.enter_context(socket.create_connection(("127.0.0.1", server.port)))
            for _ in range(50)
        ]
        for s in socks:
            s.sendall(frame(encode_call(1, NFS_PROGRAM, 3, 0)))
        for s in socks:
            s.settimeout(10)
            assert s.recv(100)
        poll_until(lambda: server.connections == 50, 10, what="50 connections")
        assert sum(c.allocated for c in server._connections) <= 50 * 64 * 1024
