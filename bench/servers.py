"""Start and stop the servers the benchmarks compare: filesim (`filesim up --detach`) and
NFS-Ganesha (../shared/bench/start-ganesha.sh), with one export or several.

Helpers for bench/all.py and bench/many_clients.py; not a benchmark of its own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_BENCH = Path(os.environ.get("FILESIM_SHARED_BENCH", REPO.parent / "shared" / "bench"))
FILESIM = [sys.executable, "-m", "filesim"]


def free_port(count: int = 1) -> int:
    """The first of `count` consecutive free TCP ports on 127.0.0.1."""
    base = 24000 + os.getpid() % 2000
    while True:
        socks: list[socket.socket] = []
        try:
            for i in range(count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            base += count
        finally:
            for s in socks:
                s.close()


SAME_CPU_HELP = (
    "run this benchmark, its clients and every server it starts on CPU N alone: steadier "
    "figures for comparing two versions (see bench/README.md, 'Where client and server run')"
)


def same_cpu(cpu: int) -> None:
    """This process, and every process it starts from now on (servers, clients, `filesim up`
    and its workers, Ganesha), on `cpu` alone.

    Left to the scheduler on this 2-CPU VM, a client and its server run on different CPUs, and
    each call wakes an idle virtual CPU twice: that costs both servers CPU time, by an amount
    that changes from run to run. On one CPU the figures are lower and steadier; they compare
    two versions of the code, not a server with a client elsewhere."""
    try:
        os.sched_setaffinity(0, {cpu})
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot run on CPU {cpu}: {exc}") from None


@dataclass
class Served:
    """A running server: where each export is reached over v3 (MOUNT path) and v4 (pseudo)."""

    label: str
    pid: int
    ports: list[int]
    """NFS port of each export (filesim: one server each; Ganesha: one port for all)."""
    mount_ports: list[int]
    v3_paths: list[str]
    v4_paths: list[str]
    stop_cmd: list[str]
    more_pids: list[int] = field(default_factory=list)
    """Other processes of this server (filesim's worker processes)."""
    nfs_pids: list[int] = field(default_factory=list)
    """The process serving each export, where that is not `pid` (filesim's per-server
    workers): whose CPU and RSS a driver should read."""

    def pids(self) -> list[int]:
        """Every process of this server."""
        return [self.pid, *self.more_pids]

    def nfs_pid(self, index: int) -> int:
        return self.nfs_pids[index] if self.nfs_pids else self.pid

    def stop(self) -> None:
        """The stop command, then make sure: a server still running 10 s later is killed (a
        benchmark must leave nothing behind, whatever its stop command did). Workers are
        `multiprocessing` spawn children, whose command line does not name filesim."""
        subprocess.run(self.stop_cmd, capture_output=True, check=False)
        for pid in [self.pid, *self.more_pids]:
            _reap(pid, ("filesim", "ganesha", "multiprocessing"))


def _reap(pid: int, names: tuple[str, ...]) -> None:
    """Wait for `pid` to end; SIGTERM, then SIGKILL it if it does not (only if its command line
    still names one of `names`: the pid may have been reused)."""
    for sig in (0, signal.SIGTERM, signal.SIGKILL):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return  # gone
        if not any(n.encode() in cmdline for n in names):
            return
        if sig:
            print(f"bench: pid {pid} outlived its stop: {sig.name}", file=sys.stderr)
            os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)


def start_filesim(
    workdir: Path, names: list[str], processes: str = "one", storage: str = "direct"
) -> Served:
    """`filesim up --detach` of one server per name. `processes`: the topology's `processes`
    key, `one` (every server in the `filesim up` process) or `per-server` (each server's NFS
    side in a worker process of its own). `storage`: `direct` (the export serves the folder:
    no sync copies compete) or `mirror` (the default topology's: each server's sync agent
    copies what clients write into its folder, and removes what they remove)."""
    root = workdir / "filesim"
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "filesim.yaml"
    # The key only where it changes anything: trees from before it existed (before_after.py)
    # refuse it, and one server runs in one process under `auto`, the default, anyway.
    written = processes != "one" or len(names) > 1
    lines = [f"processes: {processes}"] if written else []
    lines += ["servers:"] + [
        f"  - {{name: {n}, role: input, fsid: {i + 1}, storage: {storage}}}"
        for i, n in enumerate(names)
    ]
    config.write_text("\n".join(lines) + "\n")
    base = free_port(len(names))
    subprocess.run([*FILESIM, "up", "--detach", "--config", str(config), "--root", str(root),
                    "--base-port", str(base), "--http-port", "0"],
                   check=True, capture_output=True)  # fmt: skip
    runtime = json.loads((root / ".filesim" / "runtime.json").read_text())
    workers = [s["pid"] for s in runtime["servers"] if s.get("pid") is not None]
    if processes != "one" and len(workers) != len(names):
        raise RuntimeError(f"filesim ({processes}): {len(workers)} worker pids in runtime.json "
                           f"for {len(names)} servers")  # fmt: skip
    ports = [base + i for i in range(len(names))]
    label = "filesim" if processes == "one" else f"filesim-{processes}"
    return Served(label, int(runtime["pid"]), ports, ports, ["/data"] * len(names),
                  ["/data"] * len(names), [*FILESIM, "down", "--root", str(root)],
                  more_pids=sorted(set(workers)), nfs_pids=workers)  # fmt: skip


def _multi_export_script(count: int, export: Path) -> Path:
    """start-ganesha.sh with its one EXPORT block replaced by `count` blocks, one per
    subdirectory s1..sN of `export` (Pseudo /export1..N): seven real exports in one daemon."""
    text = (SHARED_BENCH / "start-ganesha.sh").read_text()
    block = re.search(r"^EXPORT \{\n.*?^\}\n", text, re.S | re.M)
    if block is None:
        raise RuntimeError("start-ganesha.sh has no EXPORT block to multiply")
    blocks = []
    for i in range(1, count + 1):
        (export / f"s{i}").mkdir(parents=True, exist_ok=True)
        one = block.group(0)
        one = one.replace("Export_Id = 1;", f"Export_Id = {i};")
        one = one.replace("Path = $EXPORT_DIR;", f"Path = {export}/s{i};")
        one = one.replace("Pseudo = $PSEUDO;", f"Pseudo = /export{i};")
        blocks.append(one)
    script = export.parent / "start-ganesha-multi.sh"  # removed with the bench's workdir
    script.write_text(text[: block.start()] + "".join(blocks) + text[block.end() :])
    return script


def start_ganesha(workdir: Path, exports: int = 1, protocols: str = "3,4") -> Served | None:
    """NFS-Ganesha (FSAL VFS) serving `exports` exports, or None when it is not installed."""
    if shutil.which("ganesha.nfsd") is None:
        print("NFS-Ganesha is not installed: no reference figures", file=sys.stderr)
        return None
    export = workdir / "ganesha-export"
    export.mkdir(parents=True)
    port = free_port(2)
    script = SHARED_BENCH / "start-ganesha.sh"
    if exports > 1:
        script = _multi_export_script(exports, export)
        v3 = [str(export / f"s{i}") for i in range(1, exports + 1)]
        v4 = [f"/export{i}" for i in range(1, exports + 1)]
    else:
        v3, v4 = [str(export)], ["/export"]
    pid = subprocess.run(
        ["bash", str(script), "--export", str(export), "--nfs-port", str(port),
         "--mount-port", str(port + 1), "--protocols", protocols, "--pseudo", "/export",
         "--state-dir", str(workdir / "ganesha-state")],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    stop = ["bash", str(SHARED_BENCH / "start-ganesha.sh"), "--stop", pid]
    return Served("ganesha", int(pid), [port] * exports, [port + 1] * exports, v3, v4, stop)
