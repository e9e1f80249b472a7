"""Holes stay holes (issue 10 item 5): a sparse file is copied sparse, both directions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from filesim.nfs.const import StableHow
from filesim.nfsclient.client import NfsClient
from filesim.sync.state import Side
from filesim.testing import start_topology
from filesim.waiting import poll_until
from tests.runtime.libnfs import Libnfs

from .conftest import Rig

GIB = 1 << 30
ALLOWED = 1 << 20
"""What a copy of a file with one byte of data may allocate (a block, some metadata)."""


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def sparse_file(path: Path, size: int, data_at: int | None = None) -> None:
    with open(path, "wb") as fh:
        fh.truncate(size)
        if data_at is not None:
            fh.seek(data_at)
            fh.write(b"x")


@pytest.mark.parametrize("src", ["folder", "export"])
async def test_a_sparse_file_is_copied_sparse(rig: Rig, src: Side) -> None:
    roots = {"folder": rig.folder, "export": rig.store}
    dst = "export" if src == "folder" else "folder"
    sparse_file(roots[src] / "one-byte-at-1GiB", GIB + 1, data_at=GIB)
    sparse_file(roots[src] / "empty-256MiB", 256 << 20)
    with open(roots[src] / "dense-start", "wb") as fh:  # data, a hole, data at the end
        fh.write(b"a" * 100_000)
        fh.seek(64 << 20)
        fh.write(b"z")
    if allocated(roots[src] / "one-byte-at-1GiB") >= ALLOWED:
        pytest.skip("the filesystem under the test's tmp dir does not keep holes")
    await rig.agent().run_once()
    copy = roots[dst] / "one-byte-at-1GiB"
    assert copy.stat().st_size == GIB + 1 and allocated(copy) < ALLOWED
    with open(copy, "rb") as fh:
        fh.seek(GIB - 1)
        assert fh.read() == b"\0x"
    empty = roots[dst] / "empty-256MiB"
    assert empty.stat().st_size == 256 << 20 and allocated(empty) < ALLOWED
    mixed = roots[dst] / "dense-start"
    assert mixed.stat().st_size == (64 << 20) + 1 and allocated(mixed) < 2 * ALLOWED
    assert mixed.read_bytes() == b"a" * 100_000 + bytes((64 << 20) - 100_000) + b"z"


ONE = """
servers:
  - {name: nas-sparse, role: input, fsid: 1}
"""


@pytest.mark.integration
def test_sparse_files_written_over_nfs_reach_the_folder_sparse(tmp_path: Path) -> None:
    """The report: one 1-byte WRITE at offset 2^30 (then COMMIT); SETATTR size=256 MiB on an
    empty file (libnfs truncate: no COMMIT, it moves after the stall time)."""
    with start_topology(tmp_path / "sim", config=ONE) as topo:
        nas = topo.server("nas-sparse")
        with NfsClient(nas.host, nas.port) as client:
            root = client.mnt(nas.export)
            fh = client.create(root, "far.bin")
            client.write(fh, GIB, b"x", StableHow.UNSTABLE)
            client.commit(fh)
            client.create(root, "grown.bin")
        if allocated(nas.store / "far.bin") >= ALLOWED:
            pytest.skip("the filesystem under the test's tmp dir does not keep holes")
        with Libnfs(nas.port, nas.export) as nfs:
            grown = nfs.truncate("/grown.bin", 256 << 20)
            assert grown.ok, grown.error
        far, big = nas.folder / "far.bin", nas.folder / "grown.bin"
        poll_until(lambda: _size(far) == GIB + 1, 60, what="far.bin in the folder")
        poll_until(lambda: _size(big) == 256 << 20, 60, what="grown.bin in the folder")
        assert allocated(far) < ALLOWED, f"far.bin allocates {allocated(far)} bytes"
        assert allocated(big) < ALLOWED, f"grown.bin allocates {allocated(big)} bytes"


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None
