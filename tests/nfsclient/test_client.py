"""Our NFSv3 client against a real server, checked against what libnfs (nfs-cat, nfs-cp, nfs-ls)
sees on the same export: bytes we write, libnfs reads; bytes libnfs writes, we read; listings
agree.

The server is our own (`filesim up`, one direct-mode server) and NFS-Ganesha as a second
opinion, started by ../shared/bench/start-ganesha.sh (root, Debian's nfs-ganesha packages;
`.ci/run` installs them). Where Ganesha cannot run, its half is skipped locally and fails in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from filesim.nfs.const import CreateMode, Ftype, StableHow
from filesim.nfs.types import decode_fattr3
from filesim.nfsclient.client import MountError, NfsClient, NfsConnectionError, NfsStatusError
from filesim.oncrpc.programs import MOUNT_PROGRAM, NFS_PROGRAM, NfsStat
from filesim.oncrpc.xdr import Packer, Unpacker
from filesim.waiting import poll_until
from tests.conftest import not_applicable
from tests.support.ports import refusing_port, unused_port

FILESIM = [sys.executable, "-c", "from filesim.cli import main; main()"]
REPO = Path(__file__).resolve().parents[2]
GANESHA = Path(
    os.environ.get("FILESIM_GANESHA", REPO.parent / "shared" / "bench" / "start-ganesha.sh")
)
NFS_TOOLS = all(shutil.which(t) for t in ("nfs-ls", "nfs-cat", "nfs-cp"))
needs_libnfs = pytest.mark.skipif(not NFS_TOOLS, reason="libnfs-utils (nfs-ls, nfs-cat, nfs-cp)")


@dataclass(frozen=True)
class Endpoint:
    kind: str
    host: str
    port: int
    mount_port: int
    export: str
    directory: Path
    """The directory the export serves, on this machine."""

    def client(self) -> NfsClient:
        return NfsClient(self.host, self.port, mount_port=self.mount_port, timeout=10)

    def url(self, path: str = "") -> str:
        query = f"version=3&nfsport={self.port}&mountport={self.mount_port}"
        return f"nfs://{self.host}{self.export}{'/' + path if path else ''}?{query}"


ONE_SERVER = """\
servers:
  - name: nas-test
    role: output
    fsid: 42
    storage: direct
    folder: {folder}
"""


def _filesim_endpoint(tmp: Path) -> Iterator[Endpoint]:
    folder = tmp / "export"
    folder.mkdir()
    config = tmp / "topology.yaml"
    config.write_text(ONE_SERVER.format(folder=folder))
    root = tmp / "root"
    cmd = [*FILESIM, "up", "--config", str(config), "--root", str(root), "--base-port", "0",
           "--http-port", "0"]  # fmt: skip
    log = (tmp / "up.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    runtime = root / ".filesim" / "runtime.json"

    def port() -> int | None:  # the server's bound port, once it serves
        if proc.poll() is not None:
            text = (tmp / "up.log").read_text(errors="replace")
            pytest.fail(f"filesim up exited: {text[-2000:]}")
        return (
            int(json.loads(runtime.read_text())["servers"][0]["port"]) if runtime.exists() else None
        )

    try:
        served = poll_until(port, 30, what="filesim up to serve")
        yield Endpoint("filesim", "127.0.0.1", served, served, "/data", folder)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _ganesha_endpoint(tmp: Path) -> Iterator[Endpoint]:
    if os.geteuid() != 0 or not GANESHA.exists() or not shutil.which("ganesha.nfsd"):
        pytest.skip(
            f"NFS-Ganesha needs root, {GANESHA} and Debian's nfs-ganesha, nfs-ganesha-vfs and "
            "rpcbind (.ci/run installs them)"
        )
    export = tmp / "gexport"
    export.mkdir()
    # Ganesha cannot bind port 0 and report: it is told two ports that were free a moment ago,
    # and tried again on others when one was taken in between.
    for _attempt in range(3):
        port, mport = unused_port(), unused_port()
        started = subprocess.run(
            ["bash", str(GANESHA), "--export", str(export), "--nfs-port", str(port),
             "--mount-port", str(mport), "--max-lifetime", "600"],
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        if started.returncode == 0 or "already in use" not in started.stderr:
            break
    if started.returncode != 0:
        pytest.fail(f"NFS-Ganesha did not start: {started.stderr[-1000:]}")
    pid = started.stdout.strip()
    try:
        yield Endpoint("ganesha", "127.0.0.1", port, mport, str(export), export)
    finally:
        subprocess.run(["bash", str(GANESHA), "--stop", pid], capture_output=True, timeout=60)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("filesim", marks=pytest.mark.integration),
        pytest.param("ganesha", marks=pytest.mark.integration),
    ],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Endpoint]:
    tmp = tmp_path_factory.mktemp(f"client-{request.param}")
    if request.param == "filesim":
        yield from _filesim_endpoint(tmp)
    else:
        yield from _ganesha_endpoint(tmp)


@pytest.fixture
def workdir(server: Endpoint, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh directory in the export for one test, removed afterwards."""
    name = f"t-{request.node.name}"[:60].replace("[", "-").replace("]", "")
    path = server.directory / name
    path.mkdir()
    os.chmod(path, 0o777)
    yield name
    shutil.rmtree(path, ignore_errors=True)


def nfs_cat(server: Endpoint, path: str) -> bytes:
    done = subprocess.run(["nfs-cat", server.url(path)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def nfs_ls(server: Endpoint, path: str) -> dict[str, tuple[str, int]]:
    """name -> (type letter, size) as nfs-ls prints them."""
    done = subprocess.run(["nfs-ls", server.url(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listing: dict[str, tuple[str, int]] = {}
    for line in done.stdout.splitlines():
        mode, _nlink, _uid, _gid, size, name = line.split(None, 5)
        listing[name] = (mode[0], int(size))
    return listing


# ---------------------------------------------------------------- agreement with libnfs
@needs_libnfs
def test_bytes_written_by_us_read_by_nfs_cat(server: Endpoint, workdir: str) -> None:
    data = os.urandom(700_000) + b"tail"  # several WRITE calls, an unaligned end
    with server.client() as nfs:
        root = nfs.mnt(server.export)
        nfs.write_file(nfs.walk(root, workdir), "ours.bin", data)
    assert nfs_cat(server, f"{workdir}/ours.bin") == data


@needs_libnfs
def test_bytes_written_by_nfs_cp_read_by_us(server: Endpoint, workdir: str, tmp_path: Path) -> None:
    data = os.urandom(600_001)
    local = tmp_path / "theirs.bin"
    local.write_bytes(data)
    done = subprocess.run(
        ["nfs-cp", str(local), server.url(f"{workdir}/theirs.bin")], capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    with server.client() as nfs:
        fh = nfs.walk(nfs.mnt(server.export), f"{workdir}/theirs.bin")
        assert nfs.read_all(fh) == data
        assert nfs.getattr(fh).size == len(data)


@needs_libnfs
def test_listing_agrees_with_nfs_ls(server: Endpoint, workdir: str) -> None:
    with server.client() as nfs:
        wd = nfs.walk(nfs.mnt(server.export), workdir)
        for i in range(5):
            nfs.write_file(wd, f"file-{i}.txt", b"x" * (i * 1000 + 1))
        nfs.mkdir(wd, "child")
        ours = {
            e.name: ("d" if e.attrs and e.attrs.type is Ftype.DIR else "-", e.attrs.size)
            for e in nfs.readdirplus(wd)
            if e.attrs is not None
        }
    theirs = nfs_ls(server, workdir)
    assert {n: v for n, v in ours.items() if v[0] == "-"} == {
        n: v for n, v in theirs.items() if v[0] == "-"
    }
    assert set(ours) == set(theirs) == {*(f"file-{i}.txt" for i in range(5)), "child"}


@needs_libnfs
def test_readdirplus_pages_through_a_large_directory(server: Endpoint, workdir: str) -> None:
    names = {f"entry-{i:04d}-{'n' * 40}" for i in range(400)}
    for name in names:
        (server.directory / workdir / name).touch()
    with server.client() as nfs:
        wd = nfs.walk(nfs.mnt(server.export), workdir)
        # Small pages force many READDIRPLUS calls, each resuming from the last cookie.
        entries = nfs.readdirplus(wd, dircount=512, maxcount=2048)
    assert [e.name for e in entries if e.name in names] == [e.name for e in entries], (
        "no stray entries"
    )
    assert len(entries) == len(names)
    assert {e.name for e in entries} == names == set(nfs_ls(server, workdir))


@needs_libnfs
def test_rename_remove_and_directories_seen_by_libnfs(server: Endpoint, workdir: str) -> None:
    with server.client() as nfs:
        wd = nfs.walk(nfs.mnt(server.export), workdir)
        sub = nfs.mkdir(wd, "sub-1")
        nfs.write_file(sub, "a.txt", b"first")
        nfs.rename(sub, "a.txt", wd, "b.txt")
        nfs.write_file(wd, "gone.txt", b"bye")
        nfs.remove(wd, "gone.txt")
        nfs.mkdir(wd, "empty")
        nfs.rmdir(wd, "empty")
        assert nfs.listdir(wd) == ["b.txt", "sub-1"]
    assert set(nfs_ls(server, workdir)) == {"b.txt", "sub-1"}
    assert nfs_ls(server, f"{workdir}/sub-1") == {}
    assert nfs_cat(server, f"{workdir}/b.txt") == b"first"


# ---------------------------------------------------------------- protocol details
def test_errors_carry_status_operation_and_path(server: Endpoint, workdir: str) -> None:
    with server.client() as nfs:
        wd = nfs.walk(nfs.mnt(server.export), workdir)
        with pytest.raises(NfsStatusError) as missing:
            nfs.lookup(wd, "missing.txt")
        assert missing.value.status is NfsStat.NOENT
        assert missing.value.op == "LOOKUP"
        assert missing.value.path.endswith(f"{workdir}/missing.txt")
        assert "NFS3ERR_NOENT" in str(missing.value)

        nfs.write_file(wd, "once.txt", b"1")
        with pytest.raises(NfsStatusError) as exists:
            nfs.create(wd, "once.txt", CreateMode.GUARDED)
        assert exists.value.status is NfsStat.EXIST

        sub = nfs.mkdir(wd, "full")
        nfs.write_file(sub, "x", b"")
        with pytest.raises(NfsStatusError) as notempty:
            nfs.rmdir(wd, "full")
        assert notempty.value.status is NfsStat.NOTEMPTY


def test_unchecked_create_truncates_and_reads_back(server: Endpoint, workdir: str) -> None:
    with server.client() as nfs:
        wd = nfs.walk(nfs.mnt(server.export), workdir)
        nfs.write_file(wd, "f.txt", b"a long first version")
        fh = nfs.write_file(wd, "f.txt", b"short", CreateMode.UNCHECKED)
        assert nfs.read_all(fh) == b"short"
    assert (server.directory / workdir / "f.txt").read_bytes() == b"short"


def test_unstable_write_then_commit_returns_the_write_verifier(
    server: Endpoint, workdir: str
) -> None:
    with server.client() as nfs:
        wd = nfs.walk(nfs.mnt(server.export), workdir)
        fh = nfs.create(wd, "u.bin")
        result = nfs.write(fh, 0, b"abc", StableHow.UNSTABLE)
        assert result.count == 3
        assert nfs.commit(fh) == result.verifier
        data, eof = nfs.read(fh, 1, 100)
        assert (data, eof) == (b"bc", True)


def test_mount_export_list_fsinfo_and_access(server: Endpoint) -> None:
    with server.client() as nfs:
        nfs.null()
        nfs.mount_null()
        assert server.export in [e.path for e in nfs.exports()]
        root = nfs.mnt(server.export)
        attrs = nfs.getattr(root)
        assert attrs.type is Ftype.DIR
        info = nfs.fsinfo(root)
        assert info.rtmax >= 4096 and info.wtmax >= 4096
        assert nfs.access(root, 0x1F) & 0x01  # READ granted to root
        with pytest.raises(MountError) as refused:
            nfs.mnt("/no-such-export-here")
        assert "/no-such-export-here" in str(refused.value)
        nfs.umnt(server.export)


def test_portmap_on_the_nfs_port(server: Endpoint) -> None:
    if server.kind != "filesim":
        not_applicable("only our server answers PORTMAP on its NFS port")
    with server.client() as nfs:
        nfs.portmap_null()
        assert nfs.getport(NFS_PROGRAM, 3) == server.port
        assert nfs.getport(MOUNT_PROGRAM, 3) == server.port
        assert nfs.getport(123456, 1) == 0


# ---------------------------------------------------------------- no server needed
def test_connection_refused_names_the_address() -> None:
    with refusing_port() as port, pytest.raises(NfsConnectionError, match=f"127.0.0.1:{port}"):
        NfsClient("127.0.0.1", port, timeout=2)


def test_silent_server_times_out_with_a_clear_message() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        nfs = NfsClient("127.0.0.1", port, timeout=0.5)
        with pytest.raises(NfsConnectionError, match="did not answer"):
            nfs.null()
        # A late reply could arrive mid-stream: the connection is not reused after a timeout.
        with pytest.raises(NfsConnectionError, match="unusable: no answer"):
            nfs.null()
        nfs.close()


def test_fattr_decoding() -> None:
    p = Packer()
    for v in (Ftype.REG, 0o100644, 1, 1000, 1000):
        p.uint32(v)
    p.uint64(12345), p.uint64(16384)
    p.uint32(0), p.uint32(0)
    p.uint64(7), p.uint64(99)
    for sec in (10, 20, 30):
        p.uint32(sec), p.uint32(500_000_000)
    attrs = decode_fattr3(Unpacker(p.getvalue()))
    assert (attrs.type, attrs.size, attrs.fsid, attrs.fileid) == (Ftype.REG, 12345, 7, 99)
    assert (attrs.atime, attrs.mtime, attrs.ctime) == (10.5, 20.5, 30.5)
    assert not attrs.is_dir
