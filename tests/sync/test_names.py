"""Names are bytes (issue 10 item 2): a name that is not UTF-8 syncs like any other, is stored in
the archive losslessly, and neither kills the agent nor makes its status, events or readiness
lie."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from filesim.nfsclient.client import NfsClient
from filesim.sync.archive import SyncArchive
from filesim.sync.state import Entry, Kind, Record
from filesim.testing import NasTopology, start_topology
from filesim.waiting import poll_until
from tests.runtime.libnfs import Libnfs
from tests.support.api import http

from .conftest import Rig

ODD = os.fsdecode(b"x\xff.txt")
"""b'x\\xff.txt' as Python holds it (a surrogate escape for the byte that is not UTF-8)."""
TESTER = os.fsdecode(b"bad-\xff\xfe.txt")


def test_the_archive_round_trips_any_byte_string(tmp_path: Path) -> None:
    link = Entry(Kind.SYMLINK, 3, 4, 0o777, 5, os.fsdecode(b"../t\xe9st"))  # Latin-1 text
    one = Entry(Kind.FILE, 1, 2, 0o644, 3)
    archive = SyncArchive(tmp_path / "a.db")
    archive.intend([(ODD, "export", one)])
    archive.apply_batch([], [(ODD, Record(one, one)), (f"d/{TESTER}", Record(link, link))])
    archive.close()
    again = SyncArchive(tmp_path / "a.db")
    assert again.records == {ODD: Record(one, one), f"d/{TESTER}": Record(link, link)}
    again.close()


def test_an_archive_of_the_first_schema_is_migrated(tmp_path: Path) -> None:
    """Archives written before stored paths as TEXT: opened now, their rows are the same
    paths (not duplicates next to new BLOB keys)."""
    db = sqlite3.connect(tmp_path / "old.db")
    db.executescript(
        "CREATE TABLE entries (path TEXT PRIMARY KEY, folder TEXT, export TEXT);"
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
        "CREATE TABLE intents (path TEXT PRIMARY KEY, src TEXT, entry TEXT);"
        "INSERT INTO entries VALUES ('dir/é.txt', 'file|1|2|420|3|', 'file|1|2|420|4|');"
    )
    db.commit()
    db.close()
    archive = SyncArchive(tmp_path / "old.db")
    one = Entry(Kind.FILE, 1, 2, 0o644, 3)
    assert archive.records["dir/é.txt"] == Record(one, Entry(Kind.FILE, 1, 2, 0o644, 4))
    archive.apply_batch([], [("dir/é.txt", None)])
    archive.close()
    assert SyncArchive(tmp_path / "old.db").records == {}


async def test_a_tester_file_that_is_not_utf8_syncs_and_the_agent_lives_on(rig: Rig) -> None:
    (rig.folder / TESTER).write_bytes(b"odd name")
    os.symlink(os.fsdecode(b"t\xe9st"), rig.folder / "link")
    agent = rig.agent()
    await agent.run_once()
    assert (rig.store / TESTER).read_bytes() == b"odd name"
    assert os.readlink(rig.store / "link") == os.fsdecode(b"t\xe9st")
    status = agent.status()
    assert status.errors == 0 and status.state == "done", status
    status.model_dump_json()  # the status is valid JSON (no lone surrogate)
    for event in rig.events:
        event.to_json().encode("utf-8")


# -- over NFS, in a running topology ------------------------------------------------------------

ONE = """
servers:
  - {name: nas-odd, role: input, fsid: 1}
"""


@pytest.mark.integration
def test_non_utf8_names_over_nfs_and_from_the_tester_sync_and_survive_a_restart(
    tmp_path: Path,
) -> None:
    root = tmp_path / "sim"
    with start_topology(root, config=ONE) as topo:
        nas = topo.server("nas-odd")
        with Libnfs(nas.port, nas.export) as nfs:
            created = nfs.create(b"/x\xff.txt")  # one NFS CREATE, as in the report
            assert created.ok, created.error
        with NfsClient(nas.host, nas.port) as client:
            client.write_file(client.mnt(nas.export), os.fsdecode(b"data-\xfe.bin"), b"payload")
        (nas.folder / TESTER).write_bytes(b"from the tester")
        poll_until(lambda: (nas.folder / ODD).exists(), 30, what="x\\xff.txt in the folder")
        poll_until(lambda: _read(nas.folder / os.fsdecode(b"data-\xfe.bin")) == b"payload", 30,
                   what="data-\\xfe.bin in the folder")  # fmt: skip
        poll_until(lambda: _read(nas.store / TESTER) == b"from the tester", 30,
                   what="the tester's file in the export")  # fmt: skip
        topo.flush()
        _truthful(topo)
        status, body = http(topo.http_url + "/api/events?limit=1000")
        assert status == 200, body
        assert any(e.get("path_hex") == b"x\xff.txt".hex() for e in body["events"])
    with start_topology(root, config=ONE) as topo:  # the archive holds the odd names now
        poll_until(lambda: http(topo.http_url + "/readyz")[0] == 200, 30, what="ready again")
        nas = topo.server("nas-odd")
        later = os.fsdecode(b"later-\xff")
        (nas.folder / later).write_bytes(b"after the restart")
        poll_until(lambda: _read(nas.store / later) == b"after the restart", 30,
                   what="a file after the restart")  # fmt: skip
        topo.flush()
        _truthful(topo)


def _truthful(topo: NasTopology) -> None:
    """The agent runs, says so, and its status and readiness are valid JSON."""
    doc = topo.status()
    doc.to_json().encode("utf-8")
    sync = doc.server("nas-odd").sync_status
    assert sync is not None and sync.running and sync.errors == 0, sync
    status, body = http(topo.http_url + "/readyz")
    assert status == 200 and body["ready"], body


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
