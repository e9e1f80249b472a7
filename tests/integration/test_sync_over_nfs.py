"""Files crossing between folders and NFS exports of a running `filesim up`, seen by real clients."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from filesim.nfsclient.client import NfsClient
from filesim.waiting import poll_until
from tests.support.files import write_whole
from tests.support.sync import barrier, ready_count, wait_ready
from tests.support.topology import by_name, detached, filesim, nfs_url, status

pytestmark = pytest.mark.integration

LIMIT = 15.0  # generous: these tests check behaviour, the benchmark measures latency


def wait_for(pred: Callable[[], bool], what: str, timeout: float = LIMIT) -> None:
    poll_until(pred, timeout, what=what)


def nfs_cat(server: dict[str, Any], name: str) -> bytes | None:
    proc = subprocess.run(["nfs-cat", nfs_url(server, "/" + name)], capture_output=True, timeout=30)
    return proc.stdout if proc.returncode == 0 else None


def nfs_names(server: dict[str, Any]) -> set[str]:
    proc = subprocess.run(["nfs-ls", nfs_url(server)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return {line.split()[-1] for line in proc.stdout.splitlines() if line.strip()}


def nfs_put(server: dict[str, Any], name: str, data: bytes, tmp_path: Path) -> None:
    src = tmp_path / f"upload-{name}"
    src.write_bytes(data)
    subprocess.run(["nfs-cp", str(src), nfs_url(server, "/" + name)], check=True,
                   capture_output=True, timeout=120)  # fmt: skip


def nfs_remove(server: dict[str, Any], name: str) -> None:
    with NfsClient(server["host"], server["port"]) as client:
        client.remove(client.mnt(server["export"]), name)


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("sync")
    with detached(root) as doc:
        doc["root"] = root
        yield doc


def servers(topology: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return by_name(topology)


def test_folder_to_nfs_create_edit_delete(topology: dict[str, Any]) -> None:
    server = servers(topology)["nas-input-1"]
    path = Path(server["folder"]) / "dropped.txt"
    path.write_text("first version")
    wait_for(lambda: nfs_cat(server, "dropped.txt") == b"first version", "the new file over NFS")
    path.write_text("second, longer version")
    wait_for(lambda: nfs_cat(server, "dropped.txt") == b"second, longer version", "the edit")
    path.unlink()
    wait_for(lambda: "dropped.txt" not in nfs_names(server), "the deletion")


def test_nfs_to_folder_appears_complete(topology: dict[str, Any], tmp_path: Path) -> None:
    server = servers(topology)["nas-output-2"]
    payload = os.urandom(2 << 20)
    nfs_put(server, "result.bin", payload, tmp_path)
    target = Path(server["folder"]) / "result.bin"
    wait_for(lambda: target.exists() and target.read_bytes() == payload, "the file in the folder")


def test_reader_never_sees_a_partial_file_during_a_100_mib_write(
    topology: dict[str, Any], tmp_path: Path
) -> None:
    server = servers(topology)["nas-output-3"]
    payload = os.urandom(100 << 20)
    digest = hashlib.sha256(payload).hexdigest()
    target = Path(server["folder"]) / "large.bin"
    seen_sizes: list[int] = []
    writer = threading.Thread(target=nfs_put, args=(server, "large.bin", payload, tmp_path))
    writer.start()

    def whole() -> bool:
        try:
            seen_sizes.append(target.stat().st_size)
        except FileNotFoundError:
            return False
        return hashlib.sha256(target.read_bytes()).hexdigest() == digest

    try:
        poll_until(whole, 120, interval=0.005, what="the whole file in the folder")
    finally:
        writer.join(60)
    assert seen_sizes, "the file never appeared in the folder"
    assert set(seen_sizes) == {len(payload)}, f"partial sizes seen: {sorted(set(seen_sizes))[:5]}"
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest


def test_tester_file_in_an_output_folder_is_kept_and_shown(topology: dict[str, Any]) -> None:
    server = servers(topology)["nas-output-1"]
    folder = Path(server["folder"])
    dropped = write_whole(folder, "tester-note.txt", "left by the tester")
    wait_for(lambda: nfs_cat(server, "tester-note.txt") == b"left by the tester", "it over NFS")
    barrier(topology["root"], "nas-output-1", folder)  # later events looked at: still there
    assert dropped.read_text() == "left by the tester"
    assert nfs_cat(server, "tester-note.txt") == b"left by the tester"


def test_backup_gets_folder_changes_and_refuses_nfs_writes(
    topology: dict[str, Any], tmp_path: Path
) -> None:
    server = servers(topology)["nas-backup"]
    (Path(server["folder"]) / "nightly.tar").write_bytes(b"backup data")
    wait_for(lambda: nfs_cat(server, "nightly.tar") == b"backup data", "the backup file")
    src = tmp_path / "x"
    src.write_text("x")
    proc = subprocess.run(["nfs-cp", str(src), nfs_url(server, "/x")], capture_output=True)
    assert proc.returncode != 0
    assert not (Path(server["folder"]) / "x").exists()


@pytest.mark.slow
def test_consumed_input_disappears_and_stays_gone_after_restart(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with detached(root) as doc:
        server = by_name(doc)["nas-input-2"]
        (Path(server["folder"]) / "order-1.csv").write_text("a,b\n1,2\n")
        wait_for(lambda: nfs_cat(server, "order-1.csv") == b"a,b\n1,2\n", "the input over NFS")
        nfs_remove(server, "order-1.csv")  # the system under test consumes it
        wait_for(lambda: not (Path(server["folder"]) / "order-1.csv").exists(), "its removal")
        starts = ready_count(root, "nas-input-2")
        filesim("down", "--root", str(root))
        # Any free ports again: the first start's neighbours may be taken by now.
        filesim("up", "--detach", "--root", str(root), "--base-port", "0")
        try:
            again = by_name(status(root))["nas-input-2"]
            # Barrier: the initial sync after the restart — where a resurrection would happen.
            wait_ready(root, "nas-input-2", starts=starts + 1)
            assert "order-1.csv" not in nfs_names(again)
            assert not (Path(server["folder"]) / "order-1.csv").exists()
        finally:
            filesim("down", "--root", str(root))


def test_seed_profile_output_never_deletes_tester_files(tmp_path: Path) -> None:
    root = tmp_path / "root"
    # The tester's file is there before the start: the initial sync (a full one) considers it.
    # (Dropped while running, in an export-to-folder policy nothing of it would show outside
    # the agent; tests/sync covers that case with an in-process barrier.)
    kept = write_whole(root / "nas-output-1", "tester.txt", "mine")
    with detached(root, "--profile", "seed") as doc:
        out = by_name(doc)["nas-output-1"]
        assert Path(out["folder"]) == kept.parent
        wait_ready(root, "nas-output-1")
        nfs_put(out, "from-sut.txt", b"written by the system", tmp_path)
        target = Path(out["folder"]) / "from-sut.txt"
        wait_for(lambda: target.exists() and target.read_bytes() == b"written by the system",
                 "the output in the folder")  # fmt: skip
        assert kept.read_text() == "mine"
        assert "tester.txt" not in nfs_names(out)  # seed: output syncs export -> folder only
