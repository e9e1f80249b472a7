#!/usr/bin/env python3
"""NFSv4.1 read and metadata: one filesim server and NFS-Ganesha (v4 only), same driver, one run.

Both are measured by ../shared/bench/nfs-bench.sh with the nfs-rs client over NFSv4.1:
sequential write (durable: nfs-rs COMMITs every few chunks) and read of a --size-mib file,
create/list/remove of --files files. Prints a table, filesim/Ganesha ratios and one
`FILESIM_NFS4_BENCH {...}` line. Ganesha needs root and `nfs-ganesha`, `nfs-ganesha-vfs`.

    python3 bench/nfs4_server.py --size-mib 256 --files 1000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED_BENCH = REPO.parent / "shared" / "bench"
FILESIM = [sys.executable, "-m", "filesim"]
METRICS = [
    ("write_MBps", "sequential write", "MB/s"),
    ("read_MBps", "sequential read", "MB/s"),
    ("create_ops", "create", "ops/s"),
    ("list_entries_per_s", "list", "entries/s"),
    ("remove_ops", "remove", "ops/s"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_driver(label: str, port: int, export: str, args: argparse.Namespace, pid: int) -> Any:
    cmd = [
        "bash", str(SHARED_BENCH / "nfs-bench.sh"), "127.0.0.1", str(port), "0", export, "4.1",
        "--client", "nfs-rs", "--python", sys.executable, "--label", label, "--runs",
        str(args.runs), "--size-mib", str(args.size_mib), "--files", str(args.files),
        "--server-pid", str(pid), "--idle-wait", "5",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    sys.stderr.write(out.stderr[-4000:])
    for line in out.stdout.splitlines():
        if line.startswith("NFSBENCH_JSON "):
            result = json.loads(line.split(" ", 1)[1])
            for error in result.get("errors", []):
                print(f"{label}: {error}", file=sys.stderr)
            return result
    raise RuntimeError(f"{label}: no result from nfs-bench.sh:\n{out.stdout}\n{out.stderr}")


def bench_filesim(workdir: Path, args: argparse.Namespace) -> Any:
    root = workdir / "filesim"
    config = workdir / "bench.yaml"
    config.write_text("servers:\n  - {name: bench, role: input, fsid: 1, storage: direct}\n")
    port = free_port()
    subprocess.run([*FILESIM, "up", "--detach", "--config", str(config), "--root", str(root),
                    "--base-port", str(port)], check=True, capture_output=True)  # fmt: skip
    try:
        runtime = json.loads((root / ".filesim" / "runtime.json").read_text())
        time.sleep(0.5)
        return run_driver("filesim", port, "/data", args, runtime["pid"])
    finally:
        subprocess.run([*FILESIM, "down", "--root", str(root)], capture_output=True, check=False)


def bench_ganesha(workdir: Path, args: argparse.Namespace) -> Any:
    if shutil.which("ganesha.nfsd") is None:
        print("NFS-Ganesha is not installed: no reference row", file=sys.stderr)
        return None
    export = workdir / "ganesha-export"
    export.mkdir()
    port = free_port()
    start = SHARED_BENCH / "start-ganesha.sh"
    pid = subprocess.run(
        ["bash", str(start), "--export", str(export), "--nfs-port", str(port), "--protocols",
         "4", "--pseudo", "/export", "--state-dir", str(workdir / "ganesha-state")],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    try:
        return run_driver("ganesha", port, "/export", args, int(pid))
    finally:
        subprocess.run(["bash", str(start), "--stop", pid], capture_output=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where exports live (tmpfs by default, to see server overhead)",
    )  # fmt: skip
    parser.add_argument("--skip-ganesha", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="filesim-bench4-", dir=args.dir))
    try:
        ours = bench_filesim(workdir, args)
        ref = None if args.skip_ganesha else bench_ganesha(workdir, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"NFSv4.1 through nfs-rs, {args.size_mib} MiB, {args.files} files, {args.runs} runs")
    print(f"{'metric':28} {'filesim':>12} {'ganesha':>12} {'ratio':>7}")
    ratios: dict[str, float | None] = {}
    for key, name, unit in METRICS:
        a = ours["nfs"][key]["median"] or 0.0
        b = ref["nfs"][key]["median"] if ref else None
        ratios[key] = round(a / b, 2) if b else None
        print(f"{name + ' (' + unit + ')':28} {a:12,.0f} {b or 0:12,.0f} {ratios[key] or 0:7.2f}")
    line = {
        "size_mib": args.size_mib, "files": args.files, "runs": args.runs,
        "filesim": {k: ours["nfs"][k] for k, _, _ in METRICS},
        "ganesha": {k: ref["nfs"][k] for k, _, _ in METRICS} if ref else None,
        "ratios": ratios,
    }  # fmt: skip
    print("FILESIM_NFS4_BENCH " + json.dumps(line))


if __name__ == "__main__":
    main()
