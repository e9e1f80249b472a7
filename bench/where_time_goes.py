#!/usr/bin/env python3
"""Where a metadata call's time goes: syscalls per client operation (strace -c -f) for filesim
and NFS-Ganesha, and a sampling profile of filesim (py-spy) over the same workload.

    python3 bench/where_time_goes.py [--files 2000] [--no-profile] [--top 25]

The workload (one libnfs client over NFSv3): create --files empty files, list them, remove
them. strace and py-spy slow the servers down: read counts and shares, not times. Needs
strace, py-spy (`pip install py-spy`) and root (both attach to a running process).
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import SHARED_BENCH, Served, start_filesim, start_ganesha


def workload(served: Served, files: int) -> int:
    """Run the create/list/remove workload in a child process; the client operations done."""
    code = f"""
import sys; sys.path.insert(0, {str(SHARED_BENCH)!r})
from nfs_bench import LibnfsClient
cl = LibnfsClient('127.0.0.1', {served.ports[0]}, {served.mount_ports[0]},
                  {served.v3_paths[0]!r}, '3', 30.0)
cl.mkdir('w')
for i in range({files}): cl.create_empty(f'w/f{{i}}')
assert len(cl.listdir_names('w')) == {files}
for i in range({files}): cl.unlink(f'w/f{{i}}')
cl.rmdir('w'); cl.close()
"""
    subprocess.run([sys.executable, "-c", code], check=True)
    return 2 * files


def attach(cmd: list[str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # both tools need a moment to attach to every thread
    return proc


def syscalls(served: Served, files: int, out: Path) -> dict[str, float]:
    """Syscalls of the server per client operation, by name (strace -c -f)."""
    tracer = attach(["strace", "-c", "-f", "-q", "-o", str(out), "-p", str(served.pid)])
    ops = workload(served, files)
    tracer.send_signal(signal.SIGINT)
    tracer.wait(30)
    per_op: dict[str, float] = {}
    for line in out.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            per_op[parts[-1]] = int(parts[3]) / ops
    return dict(sorted(per_op.items(), key=lambda kv: -kv[1]))


def profile(served: Served, files: int, out: Path, top: int) -> list[tuple[str, float, float]]:
    """(function, self %, inclusive %) of the `top` functions by self time (py-spy raw)."""
    spy = attach(["py-spy", "record", "-p", str(served.pid), "-r", "500", "-f", "raw",
                  "-o", str(out), "--nonblocking"])  # fmt: skip
    workload(served, files)
    spy.send_signal(signal.SIGINT)
    spy.wait(60)
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        total += n
        own[_short(frames[-1])] += n
        for frame in {_short(f) for f in frames}:
            inclusive[frame] += n
    return [(f, 100 * n / total, 100 * inclusive[f] / total) for f, n in own.most_common(top)]


def _short(frame: str) -> str:
    """'fn (path/to/module.py:12)' -> 'fn (module.py)'."""
    name, _, where = frame.partition(" (")
    return f"{name} ({Path(where.split(':')[0]).name})" if where else name


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="filesim-where-", dir="/dev/shm"))
    result: dict[str, object] = {}
    try:
        starters = {
            "filesim": lambda d: start_filesim(d, ["bench"]),
            "ganesha": lambda d: start_ganesha(d, protocols="3"),
        }
        for label, start in starters.items():
            served = start(workdir / label)
            if served is None:
                continue
            try:
                counts = syscalls(served, args.files, workdir / f"{served.label}.strace")
                result[served.label] = {k: round(v, 2) for k, v in counts.items()}
                print(f"{served.label}: {sum(counts.values()):.1f} syscalls per operation: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in list(counts.items())[:8]))  # fmt: skip
                if served.label == "filesim" and not args.no_profile:
                    rows = profile(served, args.files, workdir / "py-spy.txt", args.top)
                    title = "filesim profile (py-spy, 500 Hz, busy samples only):"
                    print(f"{title} {'self':>6} {'incl':>6}")
                    for name, own, incl in rows:
                        print(f"  {name[:60]:60} {own:5.1f}% {incl:5.1f}%")
            finally:
                served.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("FILESIM_SYSCALLS " + json.dumps(result))


if __name__ == "__main__":
    main()
