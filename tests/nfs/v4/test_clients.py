"""NFSv4 through clients nobody here wrote: nfs-rs (4.0, 4.1) and libnfs (4.0)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import nfs_rs
import pytest

from tests.support.threaded import serving

pytestmark = pytest.mark.integration


def connect(port: int, vers: str) -> Any:
    return nfs_rs.Client.connect(
        f"nfs://127.0.0.1/data?version={vers}", nfs_port=port, connect_timeout=10,
        operation_timeout=30,
    )  # fmt: skip


@pytest.mark.parametrize("vers", ["4.0", "4.1"])
def test_nfs_rs_round_trip(tmp_path: Path, vers: str) -> None:
    with serving(tmp_path / "e") as server:
        client = connect(server.port, vers)
        payload = os.urandom(5 << 20)
        client.mkdir("rs")
        with client.open("rs/data.bin", "wb") as f:
            f.write(payload)
        with client.open("rs/data.bin", "rb") as f:
            assert f.read() == payload
        assert (tmp_path / "e" / "rs" / "data.bin").read_bytes() == payload
        assert client.stat("rs/data.bin").size == len(payload)
        client.rename("rs/data.bin", "rs/renamed.bin")
        client.symlink("renamed.bin", "rs/link")
        assert client.readlink("rs/link") == "renamed.bin"
        client.chmod("rs/renamed.bin", 0o600)
        assert (tmp_path / "e" / "rs" / "renamed.bin").stat().st_mode & 0o777 == 0o600
        assert sorted(client.listdir("rs")) == ["link", "renamed.bin"]
        client.remove("rs/link")
        client.remove("rs/renamed.bin")
        client.rmdir("rs")
        assert not (tmp_path / "e" / "rs").exists()
        client.close()


def test_nfs_rs_large_listing(tmp_path: Path) -> None:
    with serving(tmp_path / "e") as server:
        (tmp_path / "e" / "many").mkdir()
        for i in range(3000):
            (tmp_path / "e" / "many" / f"f{i:04d}").touch()
        client = connect(server.port, "4.1")
        assert sorted(client.listdir("many")) == [f"f{i:04d}" for i in range(3000)]
        client.close()


def test_readonly_export_refuses_nfs_rs_writes(tmp_path: Path) -> None:
    with serving(tmp_path / "e", readonly=True) as server:
        client = connect(server.port, "4.1")
        with pytest.raises(nfs_rs.NfsError, match=r"(?i)read-only|rofs"):
            client.mkdir("nope")
        client.close()
    assert not (tmp_path / "e" / "nope").exists()


def test_close_tells_the_sync_agent_the_file_is_complete(tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []
    with serving(tmp_path / "e", lambda kind, path, dest: events.append((kind, path))) as server:
        client = connect(server.port, "4.1")
        with client.open("report.bin", "wb") as f:
            for _ in range(12):  # nfs-rs commits every few chunks while the file is open
                f.write(os.urandom(1 << 20))
            f.flush()
            assert ("write", "report.bin") in events
            assert ("commit", "report.bin") not in events  # still open for writing
        assert events[-1] == ("commit", "report.bin")  # CLOSE made it complete
        client.close()


def _libnfs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def test_libnfs_v4_round_trip(tmp_path: Path) -> None:
    with serving(tmp_path / "e") as server:
        url = f"nfs://127.0.0.1/data/%s?version=4&nfsport={server.port}"
        src = tmp_path / "src.bin"
        src.write_bytes(os.urandom(3 << 20))
        (tmp_path / "e" / "sub").mkdir()
        (tmp_path / "e" / "sub" / "hello.txt").write_text("hello v4")
        # libnfs 4.0 cannot encode a v4 WRITE of more than one chunk (see bench/README)
        small = tmp_path / "small.txt"
        small.write_bytes(os.urandom(1000))  # 4000 bytes already fail in libnfs itself
        up = _libnfs("nfs-cp", str(small), url % "up.bin")
        assert up.returncode == 0, up.stderr
        assert (tmp_path / "e" / "up.bin").read_bytes() == small.read_bytes()
        proc = _libnfs("nfs-cat", url % "sub/hello.txt")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "hello v4"
        listing = _libnfs("nfs-ls", url % "sub")
        assert listing.returncode == 0 and "hello.txt" in listing.stdout, listing
        (tmp_path / "e" / "big.bin").write_bytes(src.read_bytes())
        out = tmp_path / "copy.bin"
        copy = _libnfs("nfs-cp", url % "big.bin", str(out))
        assert copy.returncode == 0, copy.stderr
        assert out.read_bytes() == src.read_bytes()


def test_nfs_rs_writes_after_reading_to_the_end(tmp_path: Path) -> None:
    """nfs-rs abandons read-ahead past EOF and reuses those slots' sequence ids: the next
    writes must still be served (they were refused as uncached retries once)."""
    with serving(tmp_path / "e") as server:
        client = connect(server.port, "4.1")
        block = os.urandom(8 << 20)
        for name in ("first.bin", "second.bin"):
            with client.open(name, "wb") as f:
                for _ in range(4):
                    f.write(block)
            with client.open(name, "rb") as f:
                assert f.read() == block * 4
        assert (tmp_path / "e" / "second.bin").read_bytes() == block * 4
        client.close()
