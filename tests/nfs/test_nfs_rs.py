"""filesim's NFS server through nfs-rs (a Rust NFS client from PyPI that nobody here wrote)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nfs_rs
import pytest

from tests.support.topology import by_name, detached

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    with detached(tmp_path_factory.mktemp("nfsrs")) as doc:
        yield by_name(doc)


def connect(server: dict[str, Any]) -> Any:
    port = server["port"]
    return nfs_rs.Client.connect(
        f"nfs://127.0.0.1{server['export']}?version=3", nfs_port=port, mount_port=port,
        connect_timeout=10, operation_timeout=30,
    )  # fmt: skip


def test_files_directories_links_and_attributes(servers: dict[str, dict[str, Any]]) -> None:
    server = servers["nas-input-3"]
    client = connect(server)
    payload = os.urandom(5 << 20)
    client.mkdir("rs-dir")
    with client.open("rs-dir/data.bin", "wb") as f:
        f.write(payload)
    with client.open("rs-dir/data.bin", "rb") as f:
        assert f.read() == payload
    assert client.stat("rs-dir/data.bin").size == len(payload)
    store = Path(server["store"])
    assert (store / "rs-dir" / "data.bin").read_bytes() == payload
    client.rename("rs-dir/data.bin", "rs-dir/renamed.bin")
    client.symlink("renamed.bin", "rs-dir/link")
    assert client.readlink("rs-dir/link") == "renamed.bin"
    client.chmod("rs-dir/renamed.bin", 0o600)
    assert (store / "rs-dir" / "renamed.bin").stat().st_mode & 0o777 == 0o600
    assert sorted(n for n in client.listdir("rs-dir") if n not in (".", "..")) == [
        "link",
        "renamed.bin",
    ]
    client.remove("rs-dir/link")
    client.remove("rs-dir/renamed.bin")
    client.rmdir("rs-dir")
    assert not (store / "rs-dir").exists()
    client.close()


def test_listing_a_large_directory_pages_completely(servers: dict[str, dict[str, Any]]) -> None:
    server = servers["nas-output-3"]
    store = Path(server["store"]) / "many"
    store.mkdir()
    for i in range(3000):
        (store / f"f{i:04d}").touch()
    client = connect(server)
    names = [n for n in client.listdir("many") if n not in (".", "..")]
    assert sorted(names) == [f"f{i:04d}" for i in range(3000)]
    client.close()


def test_backup_refuses_writes(servers: dict[str, dict[str, Any]]) -> None:
    client = connect(servers["nas-backup"])
    with pytest.raises(nfs_rs.NfsError), client.open("nope.txt", "wb") as f:
        f.write(b"x")
    assert not (Path(servers["nas-backup"]["store"]) / "nope.txt").exists()
    client.close()
