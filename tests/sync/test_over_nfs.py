"""The engine behind a real NFS server (`filesim up`), driven by libnfs's tools: no loops and
conflicts when one side is an NFS client, and renames over NFS arriving as renames."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from filesim.nfs.const import CreateMode
from filesim.nfsclient.client import NfsClient
from filesim.waiting import poll_until
from tests.support.files import write_whole
from tests.support.sync import barrier, sync_events
from tests.support.topology import by_name, detached, nfs_url

pytestmark = [
    pytest.mark.skipif(shutil.which("nfs-cp") is None, reason="libnfs tools missing"),
    pytest.mark.integration,
]

# A real settle time, well above any pause of a busy machine between an NFS client's CREATE
# (which truncates) and its WRITE: the empty file in between never settles.
TOPOLOGY = """
servers:
  - {name: nas-loop, role: input, fsid: 1, sync: {settle_ms: 300}}
"""


def wait_for(pred: Callable[[], bool], what: str, timeout: float = 15) -> None:
    poll_until(pred, timeout, interval=0.02, what=what)


def nfs_cat(server: dict[str, Any], name: str) -> bytes | None:
    proc = subprocess.run(["nfs-cat", nfs_url(server, "/" + name)], capture_output=True,
                          timeout=30)  # fmt: skip
    return proc.stdout if proc.returncode == 0 else None


def nfs_put(server: dict[str, Any], name: str, data: bytes, tmp: Path) -> None:
    src = tmp / "upload"
    src.write_bytes(data)
    subprocess.run(["nfs-cp", str(src), nfs_url(server, "/" + name)], check=True,
                   capture_output=True, timeout=60)  # fmt: skip


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("nfs-loop")
    config = root / "topology.yaml"
    config.write_text(TOPOLOGY)
    with detached(root / "sim", "--config", str(config)) as doc:
        yield root / "sim", by_name(doc)["nas-loop"]


@pytest.mark.slow
def test_alternating_writes_folder_and_nfs_make_exactly_one_copy_each(
    up: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    root, server = up
    folder = Path(server["folder"])
    before = len(sync_events(root, "nas-loop"))
    rounds = 16
    for i in range(rounds):
        data = f"round {i} ".encode() * (i + 1)
        if i % 2 == 0:
            write_whole(folder, "ping.txt", data)
            wait_for(lambda d=data: nfs_cat(server, "ping.txt") == d, f"round {i} over NFS")
        else:
            with NfsClient(server["host"], server["port"]) as client:
                # UNCHECKED: truncate and rewrite the existing file, as an editor would
                client.write_file(client.mnt(server["export"]), "ping.txt", data,
                                  CreateMode.UNCHECKED)  # fmt: skip
            wait_for(lambda d=data: _read(folder / "ping.txt") == d, f"round {i} in the folder")
    barrier(root, "nas-loop", folder)  # every echo (inotify of our own publish) looked at
    events = sync_events(root, "nas-loop")[before:]
    copies = [e for e in events if e["kind"] == "sync.copy" and e.get("path") == "ping.txt"]
    assert len(copies) == rounds, [e.get("side") for e in copies]
    kinds = [e["kind"] for e in events]
    assert "sync.conflict" not in kinds and "sync.echo" not in kinds, kinds


@pytest.mark.slow
def test_a_rename_over_nfs_is_a_rename_in_the_folder(
    up: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, server = up
    folder = Path(server["folder"])
    payload = os.urandom(200_000)
    nfs_put(server, "before.bin", payload, tmp_path)
    # The whole file, not just a name: under load the agent may land an early part of the
    # upload first and replace it (a new inode) once the rest has settled.
    wait_for(lambda: _read(folder / "before.bin") == payload, "the upload in the folder")
    ino = os.stat(folder / "before.bin").st_ino
    with NfsClient(server["host"], server["port"]) as client:
        fh = client.mnt(server["export"])
        client.rename(fh, "before.bin", fh, "after.bin")
    wait_for(lambda: (folder / "after.bin").exists(), "the rename in the folder")
    assert not (folder / "before.bin").exists()
    assert os.stat(folder / "after.bin").st_ino == ino, "renamed by copy + delete"


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
