"""Standard-port mode, mounted like production: `filesim up` with NFS on 2049 and rpcbind on 111,
in a private network namespace (the host's ports are never touched); the Linux kernel client
mounting with production's options only; NFSv3 locks through NLM, against NFSv4 locks, and
released when their client restarts; rpcbind as rpcinfo sees it; binding 111 refused."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from filesim.runtime.model import RuntimeDoc
from tests.support.kclient import checks, kclient_run, lockprobe_path
from tests.support.netns import NetNs
from tests.support.topology import FILESIM

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ALONE = "ports: standard\nservers:\n  - {name: nas-input-1, role: input, fsid: 1}\n"


@dataclass
class Running:
    ns: NetNs
    root: Path

    def filesim(self, *args: str, check: bool = True, timeout: float = 90) -> str:
        return self.ns.run(*FILESIM, *args, "--root", str(self.root), check=check,
                           timeout=timeout).stdout  # fmt: skip

    def status(self) -> RuntimeDoc:
        return RuntimeDoc.model_validate_json(self.filesim("status", "--json"))


def _tool(name: str, package: str) -> str:
    """A client tool's path; a missing one skips (and fails under CI=true, which has it)."""
    tool = shutil.which(name)
    if tool is None:
        pytest.skip(f"{name} is not installed (Debian package {package})")
    return tool


def _rpcinfo() -> str:
    return _tool("rpcinfo", "rpcbind")


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One server on 127.0.0.1, where kclient's guest reaches it (10.0.2.2)."""
    with NetNs() as ns:
        root = tmp_path_factory.mktemp("standard")
        config = root / "topology.yaml"
        config.write_text(ALONE)
        running = Running(ns, root)
        running.filesim("up", "--detach", "--config", str(config))
        try:
            yield running
        finally:
            running.filesim("down", check=False)


def test_a_lone_server_serves_2049_and_111_on_127_0_0_1(alone: Running) -> None:
    (server,) = alone.status().servers
    assert (server.host, server.port, server.standard_ports) == ("127.0.0.1", 2049, True)
    listening = alone.ns.run("ss", "-ltnuH").stdout
    for proto, port in (("tcp", 2049), ("tcp", 111), ("udp", 2049), ("udp", 111)):
        assert re.search(rf"^{proto}\s.*127\.0\.0\.1:{port}\s", listening, re.M), (proto, port)


def _rpcinfo_p(ns: NetNs, host: str) -> set[tuple[int, int, str, int]]:
    out = ns.run(_rpcinfo(), "-p", host).stdout
    rows = set()
    for line in out.splitlines()[1:]:
        prog, vers, proto, port, *_ = line.split()
        rows.add((int(prog), int(vers), proto, int(port)))
    return rows


EXPECTED = {
    *((100000, v, p, 111) for v in (2, 3, 4) for p in ("tcp", "udp")),
    (100003, 3, "tcp", 2049), (100003, 4, "tcp", 2049),
    *((100005, v, p, 2049) for v in (1, 3) for p in ("tcp", "udp")),
    *((100021, 4, p, 2049) for p in ("tcp", "udp")),
    *((100024, 1, p, 2049) for p in ("tcp", "udp")),
}  # fmt: skip


def test_rpcinfo_sees_what_rpcbind_should_list(alone: Running) -> None:
    assert _rpcinfo_p(alone.ns, "127.0.0.1") >= EXPECTED
    rpcinfo = _rpcinfo()
    for args in (("-T", "tcp", "127.0.0.1", "nfs", "3"), ("-T", "tcp", "127.0.0.1", "nfs", "4"),
                 ("-T", "tcp", "127.0.0.1", "mountd", "3"),
                 ("-T", "udp", "127.0.0.1", "mountd", "1"),
                 ("-T", "tcp", "127.0.0.1", "nlockmgr", "4"),
                 ("-T", "udp", "127.0.0.1", "nlockmgr", "4"),
                 ("-T", "udp", "127.0.0.1", "status", "1")):  # fmt: skip
        out = alone.ns.run(rpcinfo, *args).stdout
        assert f"version {args[-1]} ready and waiting" in out, (args, out)
    # rpcbind v3/v4: DUMP with universal addresses and netids, GETADDRLIST (-l)
    dump = alone.ns.run(rpcinfo, "127.0.0.1").stdout
    assert re.search(r"100003\s+3\s+tcp\s+127\.0\.0\.1\.8\.1\s", dump), dump
    assert re.search(r"100021\s+4\s+udp\s+127\.0\.0\.1\.8\.1\s", dump), dump
    assert re.search(r"100000\s+4\s+tcp\s+127\.0\.0\.1\.0\.111\s", dump), dump
    listed = alone.ns.run(rpcinfo, "-l", "127.0.0.1", "100003", "3").stdout
    assert "127.0.0.1.8.1" in listed, listed
    # no NFS over UDP, and nothing that is not served
    proc = alone.ns.run(rpcinfo, "-T", "udp", "127.0.0.1", "nfs", "3", check=False)
    assert proc.returncode != 0
    showmount = _tool("showmount", "nfs-common")  # MOUNT's EXPORT, found through 111
    assert "/data" in alone.ns.run(showmount, "-e", "127.0.0.1").stdout


GUEST = r"""
set -u
S=$KCLIENT_SERVER_IP
P=/kclient/files/lockprobe; chmod +x $P /kclient/files/sm-notify
r() { "$P" "$@" 2>&1 | head -n 1; }
m() {  # m NAME DIR OPTIONS: mount the export with exactly OPTIONS
  mkdir -p "$2"
  if out=$(mount.nfs "$S:/data" "$2" -o "$3" 2>&1); then echo "CHECK $1 ok"
  else echo "CHECK $1 FAIL $out"; fi
  echo "MOUNT $(grep " $2 " /proc/mounts)"
}
m mount_vers3 /m1 vers=3
m mount_production /m2 nfsvers=3,tcp,hard,intr
m mount_v41 /m3 vers=4.1
grep ' /m1 ' /proc/mounts | grep -q local_lock=none && echo "CHECK nlm_locking ok" || echo "CHECK nlm_locking FAIL"
echo hello > /m1/hello.txt
echo "CHECK read_production $(cat /m2/hello.txt)"
echo "CHECK read_v41 $(cat /m3/hello.txt)"
# NFSv3 locks through NLM: first lock, a second taker while held (v3 and v4), after release
echo "CHECK first_lock $(r /m1/lk)"
$P /m1/lk 8 > /tmp/holder & sleep 2
echo "CHECK v3_taker_while_held $(r /m1/lk)"
echo "CHECK v4_taker_while_nlm_holds $(r /m3/lk)"
wait
echo "CHECK v3_after_release $(r /m1/lk)"
echo "CHECK v4_after_release $(r /m3/lk)"
# the other way round: an NFSv4 lock held, an NLM taker
$P /m3/lk 8 > /tmp/holder4 & sleep 2
echo "CHECK nlm_taker_while_v4_holds $(r /m1/lk)"
wait
# a client that restarts: its status monitor says so (sm-notify, over UDP as always), and the
# server releases what the client's previous life held, here a lock still "held" by a process
$P /m1/lk 300 > /tmp/orphan & OP=$!; sleep 2
echo "CHECK v4_taker_before_notify $(r /m3/lk)"
ls /var/lib/nfs/sm | sed 's/^/SMFILE /'
timeout 60 /kclient/files/sm-notify -f -d -m 1 2>&1 | sed 's/^/SMNOTIFY /'
echo "CHECK v4_taker_after_notify $(r /m3/lk)"
kill $OP; wait
"""

WANTED = {
    "mount_vers3": "ok", "mount_production": "ok", "mount_v41": "ok", "nlm_locking": "ok",
    "read_production": "hello", "read_v41": "hello",
    "first_lock": "LOCKED", "v3_taker_while_held": "BUSY", "v4_taker_while_nlm_holds": "BUSY",
    "v3_after_release": "LOCKED", "v4_after_release": "LOCKED",
    "nlm_taker_while_v4_holds": "BUSY",
    "v4_taker_before_notify": "BUSY", "v4_taker_after_notify": "LOCKED",
}  # fmt: skip


@pytest.mark.kernel
def test_kernel_client_mounts_and_locks_like_production(alone: Running) -> None:
    sm_notify = _tool("sm-notify", "nfs-common")
    proc = kclient_run(
        2049, GUEST, mount=False, prefix=alone.ns.argv(), timeout=240,
        files=[lockprobe_path(), Path(sm_notify)],
    )  # fmt: skip
    result = checks(proc.stdout)
    context = f"{proc.stdout}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, context
    assert {k: result.get(k) for k in WANTED} == WANTED, context
    mounts = [line for line in proc.stdout.splitlines() if line.startswith("MOUNT ")]
    assert "vers=3" in mounts[0] and "port=2049" in mounts[0], mounts  # found through 111
    log = (alone.root / ".filesim" / "filesim.log").read_text(errors="replace")
    assert re.search(r"NSM: kclient .* restarted", log), log[-3000:]


def test_binding_111_refused_says_how_to_allow_it(tmp_path: Path) -> None:
    """Without CAP_NET_BIND_SERVICE (dropped from root's bounding set; the namespace keeps the
    default net.ipv4.ip_unprivileged_port_start=1024): one line naming the three ways."""
    config = tmp_path / "topology.yaml"
    config.write_text(ALONE)
    with NetNs() as ns:
        proc = ns.run(
            "setpriv", "--bounding-set=-net_bind_service", "--inh-caps=-net_bind_service",
            *FILESIM, "up", "--root", str(tmp_path), "--config", str(config),
            "--http-port", "0", check=False,
        )  # fmt: skip
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for way in ("root", "CAP_NET_BIND_SERVICE", "net.ipv4.ip_unprivileged_port_start"):
        assert way in lines[0], lines[0]
    assert "2049 and 111" in lines[0], lines[0]


def test_a_topology_gets_an_address_per_server(tmp_path: Path) -> None:
    """`filesim up --standard-ports` with the built-in seven servers: 127.0.0.11-17, each with
    NFS on 2049 and rpcbind on 111; a mount there needs no port (MOUNT found through 111)."""
    with NetNs() as ns:
        running = Running(ns, tmp_path)
        running.filesim("up", "--detach", "--standard-ports")
        try:
            servers = running.status().servers
            assert [(s.host, s.port) for s in servers] == [
                (f"127.0.0.{11 + i}", 2049) for i in range(7)
            ]
            for host in ("127.0.0.11", "127.0.0.17"):
                rows = _rpcinfo_p(ns, host)
                assert (100005, 3, "tcp", 2049) in rows and (100000, 2, "tcp", 111) in rows
            nfs_ls = _tool("nfs-ls", "libnfs-utils")
            # libnfs asks rpcbind on 111 for MOUNT and NFS without nfsport=/mountport=
            (servers[3].store / "found.txt").write_text("x")
            out = ns.run(nfs_ls, "nfs://127.0.0.14/data?version=3").stdout
            assert "found.txt" in out, out
        finally:
            running.filesim("down", check=False)
