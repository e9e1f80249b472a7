"""A flood of COMMITs on one server does not delay another server's sync (issue 10, item 10):
each server's blocking calls run in its own bounded executor, each sync agent in its own."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import subprocess
import threading
from pathlib import Path

import pytest

from filesim.nfsclient.client import NfsClient
from filesim.oncrpc.message import encode_call
from filesim.oncrpc.programs import NFS_PROGRAM, NfsProc
from filesim.oncrpc.record import RecordReader, frame
from filesim.testing import start_topology
from filesim.waiting import poll_until
from tests.nfs.v4.v4rig import ROOT

pytestmark = pytest.mark.integration

COMMITS = 6_000
CONNECTIONS = 4


def _flood(port: int, fh: bytes, answered: list[int], done: threading.Event) -> None:
    """COMMITs pipelined on CONNECTIONS connections, all sent at once; counts the replies."""
    args = struct.pack(">I", len(fh)) + fh + b"\0" * (-len(fh) % 4) + struct.pack(">QI", 0, 0)
    call = frame(encode_call(1, NFS_PROGRAM, 3, NfsProc.COMMIT, args, ROOT))
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
    per = COMMITS // CONNECTIONS
    senders = [threading.Thread(target=s.sendall, args=(call * per,)) for s in socks]
    for t in senders:
        t.start()

    def drain(s: socket.socket) -> None:
        reader = RecordReader()
        got = 0
        while got < per:
            chunk = s.recv(1 << 20)
            if not chunk:
                return
            n = len(reader.feed(chunk))
            got += n
            answered[0] += n  # one counter: a race loses counts, never adds any
        s.close()

    drains = [threading.Thread(target=drain, args=(s,)) for s in socks]
    for t in drains:
        t.start()
    for t in senders + drains:
        t.join(120)
    done.set()


def test_a_commit_flood_on_one_server_does_not_hold_back_another_servers_sync(
    tmp_path: Path,
) -> None:
    with start_topology(tmp_path / "t", servers=["nas-input-1", "nas-input-2"]) as topo:
        a, b = topo.server("nas-input-1"), topo.server("nas-input-2")
        with NfsClient(a.host, a.port) as client:
            root = client.mnt(a.export)
            fh = client.create(root, "flooded.bin")
        answered, done = [0], threading.Event()
        flood = threading.Thread(target=_flood, args=(a.port, fh, answered, done))
        flood.start()
        try:
            src = tmp_path / "meanwhile.txt"
            src.write_text("synced while the other server is flooded")
            subprocess.run(["nfs-cp", str(src), b.url("/meanwhile.txt")], check=True, timeout=60)
            topo.wait_visible("nas-input-2", "meanwhile.txt", side="folder", timeout=60)
            # the barrier: the file is in the folder; the flood must still be going on
            assert not done.is_set(), f"synced only after the flood ({answered[0]} answered)"
        finally:
            flood.join(180)
        assert done.is_set()


@pytest.mark.parametrize("processes", ["one", "per-server"])
def test_the_connection_cap_comes_from_the_topology(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, processes: str
) -> None:
    """The cap refuses a second connection, and says so in the topology's log: with
    `processes: per-server` the warning is logged in the worker and reaches it too."""
    config = (
        "servers:\n  - {name: d, role: input, fsid: 1, storage: direct,\n"
        "     export: {max_connections: 1, idle_timeout_s: 60}}\n"
    )
    caplog.set_level(logging.WARNING)
    with start_topology(tmp_path, config=config, http=False, processes=processes) as topo:
        d = topo.server("d")
        with NfsClient(d.host, d.port) as first:
            first.null()
            with socket.create_connection((d.host, d.port)) as second:
                second.settimeout(10)
                with contextlib.suppress(ConnectionResetError):  # refused either way
                    assert second.recv(10) == b""

            def logged() -> list[logging.LogRecord]:
                return [r for r in caplog.records if "refused a connection" in r.getMessage()]

            records = poll_until(logged, 10, what="the cap's warning in this process")
            first.null()  # the first connection is untouched
    assert records[0].name == "filesim.nfs.server" and records[0].levelno == logging.WARNING
