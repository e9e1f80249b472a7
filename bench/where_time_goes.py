#!/usr/bin/env python3
"""Where a metadata call's time goes: syscalls per client operation (strace -c -f) for filesim
and NFS-Ganesha, and a sampling profile of filesim (py-spy) over the same workload.

    python3 bench/where_time_goes.py [--files 2000] [--no-profile] [--top 25]
                                     [--processes one|per-core|per-server]

The workload (one libnfs client over NFSv3): create --files empty files, list them, remove
them. With `--processes per-core` or `per-server` (the same with its one server) filesim
serves from a worker process and its topology process writes the events and feeds the sync
agent: both are traced and profiled, apart.
strace and py-spy slow the servers down: read counts and shares, not times. Needs strace,
py-spy (`pip install py-spy`) and root (both attach to a running process).
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import SHARED_BENCH, Served, start_filesim, start_ganesha

Row = tuple[str, float, float]


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


def parts(served: Served) -> dict[str, int]:
    """The processes of `served` to trace, by role: the worker serving the export and the
    topology process when filesim runs servers in workers, else the one server process."""
    if served.nfs_pid(0) == served.pid:
        return {served.label: served.pid}
    return {f"{served.label} worker": served.nfs_pid(0), f"{served.label} topology": served.pid}


def syscalls(served: Served, files: int, out: Path) -> dict[str, dict[str, float]]:
    """Syscalls per client operation of each process of the server, by name (strace -c -f)."""
    roles = parts(served)
    tracers = {role: attach(["strace", "-c", "-f", "-q", "-o", str(out.with_suffix(f".{pid}")),
                             "-p", str(pid)]) for role, pid in roles.items()}  # fmt: skip
    ops = workload(served, files)
    counts = {}
    for role, tracer in tracers.items():
        tracer.send_signal(signal.SIGINT)
        tracer.wait(30)
        counts[role] = _per_op(out.with_suffix(f".{roles[role]}").read_text(), ops)
    return counts


def _per_op(text: str, ops: int) -> dict[str, float]:
    per_op: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            per_op[parts[-1]] = int(parts[3]) / ops
    return dict(sorted(per_op.items(), key=lambda kv: -kv[1]))


def profile(served: Served, files: int, out: Path, top: int) -> dict[str, list[Row]]:
    """(function, self %, inclusive %) of the `top` functions by self time (py-spy raw), for
    each process of the server, sampled over the same workload."""
    roles = parts(served)
    spies = {role: attach(["py-spy", "record", "-p", str(pid), "-r", "500", "-f", "raw",
                           "-o", str(out.with_suffix(f".{pid}")), "--nonblocking"])
             for role, pid in roles.items()}  # fmt: skip
    workload(served, files)
    for spy in spies.values():
        spy.send_signal(signal.SIGINT)
    for spy in spies.values():
        spy.wait(60)
    return {role: _top(out.with_suffix(f".{pid}"), top) for role, pid in roles.items()}


def _top(raw: Path, top: int) -> list[Row]:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines() if raw.exists() else []:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():  # py-spy may leave a cut last line when stopped
            continue
        frames = stack.split(";")
        n = int(count)
        total += n
        own[_short(frames[-1])] += n
        for frame in {_short(f) for f in frames}:
            inclusive[frame] += n
    rows = [(f, 100 * n / total, 100 * inclusive[f] / total) for f, n in own.most_common(top)]
    return [("(busy samples)", float(total), float(total)), *rows]


def _short(frame: str) -> str:
    """'fn (path/to/module.py:12)' -> 'fn (module.py)'."""
    name, _, where = frame.partition(" (")
    return f"{name} ({Path(where.split(':')[0]).name})" if where else name


def measure(served: Served, args: argparse.Namespace, workdir: Path, result: Any) -> None:
    """Syscalls of `served`, then (filesim) its profile; printed and put into `result`."""
    for role, counts in syscalls(served, args.files, workdir / f"{served.label}.strace").items():
        result[role] = {k: round(v, 2) for k, v in counts.items()}
        print(f"{role}: {sum(counts.values()):.1f} syscalls per operation: "
              + ", ".join(f"{k} {v:.2f}" for k, v in list(counts.items())[:8]))  # fmt: skip
    if served.label.startswith("filesim") and not args.no_profile:
        for role, rows in profile(served, args.files, workdir / "py-spy.txt", args.top).items():
            (_, samples, _), rows = rows[0], rows[1:]
            title = f"{role} profile (py-spy, 500 Hz, {samples:.0f} busy samples):"
            print(f"{title:60} {'self':>6} {'incl':>6}")
            for name, own, incl in rows:
                print(f"  {name[:60]:60} {own:5.1f}% {incl:5.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument(
        "--processes",
        choices=("one", "per-core", "per-server"),
        default="one",
        help="filesim's servers in its one process or in worker processes",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="filesim-where-", dir="/dev/shm"))
    result: dict[str, object] = {}
    try:
        starters = {
            "filesim": lambda d: start_filesim(d, ["bench"], args.processes),
            "ganesha": lambda d: start_ganesha(d, protocols="3"),
        }
        for label, start in starters.items():
            served = start(workdir / label)
            if served is None:
                continue
            try:
                measure(served, args, workdir, result)
            finally:
                served.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("FILESIM_SYSCALLS " + json.dumps(result))


if __name__ == "__main__":
    main()
