#!/usr/bin/env python3
"""Benchmark filesim's NFS server against NFS-Ganesha, same client, same run.

    python3 bench/nfs_server.py [--size-mib 512] [--files 2000] [--runs 3] [--dir /dev/shm]
                                [--same-cpu N]

1. Start-up: `filesim up --detach` of the seven-server default topology; time until every port
   answers an RPC NULL (NFS and MOUNT), and the process's idle RSS.
2. Throughput: a one-server `filesim up` (direct storage, so no sync copies compete) measured by
   ../shared/bench/nfs-bench.sh through libnfs: sequential write + COMMIT and read of a
   --size-mib file, create/list/remove of --files files.
3. The same for NFS-Ganesha (started with ../shared/bench/start-ganesha.sh) when installed.

`--same-cpu N`: everything on CPU N, client and servers (`same_cpu` in servers.py says what
that changes). Prints a table, the ratios filesim/Ganesha, and one line
`FILESIM_NFS_BENCH {json}`.
This is a benchmark, not a test: on a shared 2-CPU machine, compare figures from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from servers import SAME_CPU_HELP, same_cpu

REPO = Path(__file__).resolve().parents[1]
SHARED_BENCH = Path(os.environ.get("FILESIM_SHARED_BENCH", REPO.parent / "shared" / "bench"))
FILESIM = [sys.executable, "-m", "filesim"]
METRICS = [
    ("write_MBps", "seq write incl. COMMIT", "MB/s"),
    ("read_MBps", "seq read", "MB/s"),
    ("create_ops", "create", "ops/s"),
    ("list_entries_per_s", "list", "entries/s"),
    ("remove_ops", "remove", "ops/s"),
]


def free_port(count: int = 1) -> int:
    base = 24000 + os.getpid() % 2000
    while True:
        try:
            socks = []
            for i in range(count):
                s = socket.socket()
                s.bind(("127.0.0.1", base + i))
                socks.append(s)
            for s in socks:
                s.close()
            return base
        except OSError:
            for s in socks:
                s.close()
            base += count


def rpc_null_ok(port: int) -> bool:
    sys.path.insert(0, str(REPO / "src"))
    from filesim.nfsclient.client import NfsClient

    try:
        with NfsClient("127.0.0.1", port, timeout=1.0) as client:
            client.null()
            client.mount_null()
        return True
    except Exception:
        return False


def measure_startup(workdir: Path) -> dict[str, Any]:
    root = workdir / "seven"
    base = free_port(7)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*FILESIM, "up", "--root", str(root), "--base-port", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        pending = set(range(base, base + 7))
        while pending and time.perf_counter() - started < 30:
            pending = {p for p in pending if not rpc_null_ok(p)}
        ready_s = time.perf_counter() - started
        time.sleep(3.0)  # let initial syncs finish: idle means idle
        rss_kib = _rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(15)
    return {
        "ready_s": round(ready_s, 3),
        "all_ready": not pending,
        "idle_rss_mib": round(rss_kib / 1024, 1),
    }


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run_driver(label: str, nfs_port: int, mount_port: int, export: str, args: argparse.Namespace,
               pid: int) -> dict[str, Any]:  # fmt: skip
    cmd = [
        "bash", str(SHARED_BENCH / "nfs-bench.sh"), "127.0.0.1", str(nfs_port), str(mount_port),
        export, "3", "--label", label, "--runs", str(args.runs), "--size-mib", str(args.size_mib),
        "--files", str(args.files), "--server-pid", str(pid), "--idle-wait", "5",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    sys.stderr.write(out.stderr)
    for line in out.stdout.splitlines():
        if line.startswith("NFSBENCH_JSON "):
            return json.loads(line.split(" ", 1)[1])  # type: ignore[no-any-return]
    raise RuntimeError(f"{label}: no result from nfs-bench.sh:\n{out.stdout}\n{out.stderr}")


def bench_filesim(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    root = workdir / "filesim"
    config = workdir / "bench.yaml"
    config.write_text("servers:\n  - {name: bench, role: input, fsid: 1, storage: direct}\n")
    port = free_port()
    subprocess.run([*FILESIM, "up", "--detach", "--config", str(config), "--root", str(root),
                    "--base-port", str(port)], check=True, capture_output=True)  # fmt: skip
    try:
        runtime = json.loads((root / ".filesim" / "runtime.json").read_text())
        return run_driver("filesim", port, port, "/data", args, runtime["pid"])
    finally:
        subprocess.run([*FILESIM, "down", "--root", str(root)], capture_output=True)


def bench_ganesha(workdir: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    if shutil.which("ganesha.nfsd") is None:
        print("NFS-Ganesha is not installed: no reference row", file=sys.stderr)
        return None
    export = workdir / "ganesha-export"
    export.mkdir()
    port = free_port(2)
    start = SHARED_BENCH / "start-ganesha.sh"
    pid = subprocess.run(
        ["bash", str(start), "--export", str(export), "--nfs-port", str(port),
         "--mount-port", str(port + 1), "--protocols", "3"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    try:
        return run_driver("ganesha", port, port + 1, str(export), args, int(pid))
    finally:
        subprocess.run(["bash", str(start), "--stop", pid], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None,
                        help="where exports live (tmpfs: to see server overhead)")  # fmt: skip
    parser.add_argument("--skip-ganesha", action="store_true")
    parser.add_argument("--same-cpu", type=int, metavar="N", help=SAME_CPU_HELP)
    args = parser.parse_args()
    if args.same_cpu is not None:
        same_cpu(args.same_cpu)
    workdir = Path(tempfile.mkdtemp(prefix="filesim-bench-", dir=args.dir))
    try:
        startup = measure_startup(workdir)
        ours = bench_filesim(workdir, args)
        ref = None if args.skip_ganesha else bench_ganesha(workdir, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(startup, ours, ref, args)


def report(startup: dict[str, Any], ours: dict[str, Any], ref: dict[str, Any] | None,
           args: argparse.Namespace) -> None:  # fmt: skip
    print(f"filesim up, seven servers: ready in {startup['ready_s']} s, idle RSS "
          f"{startup['idle_rss_mib']} MiB")  # fmt: skip
    print(f"{'metric':28} {'filesim':>12} {'ganesha':>12} {'ratio':>7}")
    ratios = {}
    for key, name, unit in METRICS:
        a = ours["nfs"][key]["median"]
        b = ref["nfs"][key]["median"] if ref else None
        ratio = round(a / b, 2) if b else None
        ratios[key] = ratio
        print(f"{name + ' (' + unit + ')':28} {a:12,.0f} {b or 0:12,.0f} {ratio or 0:7.2f}")
    line = {
        "size_mib": args.size_mib, "files": args.files, "runs": args.runs, "startup": startup,
        "filesim": {k: ours["nfs"][k] for k, _, _ in METRICS},
        "ganesha": {k: ref["nfs"][k] for k, _, _ in METRICS} if ref else None,
        "ratios": ratios, "same_cpu": args.same_cpu,
        "filesim_rss_kib": ours.get("server_rss_kib"),
    }  # fmt: skip
    print("FILESIM_NFS_BENCH " + json.dumps(line))


if __name__ == "__main__":
    main()
