#!/usr/bin/env python3
"""Before/after a change: filesim from two source trees, side by side, in turn.

    python3 bench/before_after.py --before ../main/src [--after src] [--files 1000] [--runs 6]
                                  [--only nfs,nfs4,io,sync] [--io-mib 256] [--same-cpu N]

nfs   one server from each tree (`filesim up`, direct storage), both running, started afresh
      for each run in the order of that run; one libnfs client per server, the two measured
      in turn (before, after, after, before, ...): create,
      list (--lists times), remove of --files files; ops/s and the server's CPU time per
      create or remove (user + system of its process: far less sensitive to a busy machine
      than wall time), and apart from it the listings' CPU per entry listed
nfs4  the same over NFSv4.1 with nfs-rs (--v4-files files), then a write of --v4-mib MiB in
      1 MiB WRITEs and its read: MiB/s and the server's CPU seconds for each
io    the same servers over v3 (libnfs): a write of --io-mib MiB in 8 MiB calls (1 MiB WRITEs,
      eight in flight), then its read the same way: MiB/s and the server's CPU seconds
sync  the initial sync of --sync-files files of 10 KiB (a fresh process per run and tree, the
      runs alternated): wall and CPU seconds

`--same-cpu N` runs everything on CPU N: both servers, the clients and the sync agents. Both
sides run faster, and past the first pairs the wall-time pairs spread less (see
bench/README.md, "Where client and server run").

Prints medians, after/before ratios and the pairs, then one `FILESIM_BEFORE_AFTER {...}` line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from servers import SAME_CPU_HELP, SHARED_BENCH, Served, same_cpu, start_filesim  # noqa: E402

SYNC_ONE = """
import asyncio, json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {here!r})
from sync_latency import server
from filesim.sync.agent import SyncAgent
start, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
agent = SyncAgent(server(), Path({tree!r}), Path({out!r}) / "s", Path({out!r}) / "a.db")
asyncio.run(agent.run_once())
agent.close()
end = resource.getrusage(resource.RUSAGE_SELF)
cpu = end.ru_utime - start.ru_utime + end.ru_stime - start.ru_stime
print(json.dumps({{"wall_s": time.perf_counter() - t, "cpu_s": cpu}}))
"""


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def nfs_run(client: Any, served: Served, files: int, tag: str, lists: int = 1) -> dict[str, float]:
    top = f"ab-{tag}"
    client.mkdir(top)
    cpu0, t0 = cpu_s(served.pid), time.perf_counter()
    for i in range(files):
        client.create_empty(f"{top}/f{i:06d}")
    t1, list_cpu0 = time.perf_counter(), cpu_s(served.pid)
    listed = sum(len(client.listdir_names(top)) for _ in range(lists))
    t2, list_cpu = time.perf_counter(), cpu_s(served.pid) - list_cpu0
    listed //= lists
    for i in range(files):
        client.unlink(f"{top}/f{i:06d}")
    t3 = time.perf_counter()
    client.rmdir(top)
    if listed != files:
        raise RuntimeError(f"listed {listed} of {files} files")
    return {
        "create_ops": files / (t1 - t0),
        "list_entries_per_s": listed * lists / (t2 - t1),
        # CPU time is counted in clock ticks (10 ms): --lists 20 makes it a fine figure
        "list_server_cpu_us_per_entry": list_cpu * 1e6 / (listed * lists),
        "remove_ops": files / (t3 - t2),
        "server_cpu_us_per_op": (cpu_s(served.pid) - cpu0 - list_cpu) * 1e6 / (2 * files),
    }


def bulk_run(client: Any, served: Served, name: str, mib: int, block: int) -> dict[str, float]:
    """Write `mib` MiB to `name` in calls of `block` bytes, read it back, remove it: MiB/s and
    the server's CPU seconds for each."""
    cpu0 = cpu_s(served.pid)
    seconds, _ = client.write_file(name, mib << 20, block)
    cpu1 = cpu_s(served.pid)
    read_s, nread = client.read_file(name, 8 << 20)
    if nread != mib << 20:
        raise RuntimeError(f"read {nread} of {mib} MiB")
    client.unlink(name)
    return {"write_MiBps": mib / seconds, "write_server_cpu_s": cpu1 - cpu0,
            "read_MiBps": mib / read_s, "read_server_cpu_s": cpu_s(served.pid) - cpu1}  # fmt: skip


def v4_run(client: Any, served: Served, args: argparse.Namespace, tag: str) -> dict[str, float]:
    row = nfs_run(client, served, args.v4_files, tag, args.lists)
    return row | bulk_run(client, served, f"w-{tag}", args.v4_mib, 1 << 20)


def io_run(client: Any, served: Served, args: argparse.Namespace, tag: str) -> dict[str, float]:
    return bulk_run(client, served, f"io-{tag}", args.io_mib, 8 << 20)


def nfs_phase(
    workdir: Path, trees: dict[str, str], args: argparse.Namespace, v4: bool = False,
    io: bool = False,
) -> Any:  # fmt: skip
    sys.path.insert(0, str(SHARED_BENCH))
    from nfs_bench import LibnfsClient, NfsRsClient

    kind, version = (NfsRsClient, "4") if v4 else (LibnfsClient, "3")
    rows: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
    for run in range(args.runs):
        # Fresh servers for each run, started in the order they are measured in: a server
        # process can run 5-15 % faster or slower than another of the same code for its whole
        # life, and kept for every run it would make all the pairs lean one way.
        order = list(trees) if run % 2 == 0 else list(trees)[::-1]
        served: dict[str, Served] = {}
        try:
            for label in order:
                os.environ["PYTHONPATH"] = trees[label]  # the `filesim up` child runs this tree
                served[label] = start_filesim(workdir / f"{label}-{run}", ["bench"])
            clients = {k: kind("127.0.0.1", s.ports[0], s.ports[0], "/data", version, 30.0)
                       for k, s in served.items()}  # fmt: skip
            for label in order:
                if io:
                    rows[label].append(io_run(clients[label], served[label], args, str(run)))
                elif v4:
                    rows[label].append(v4_run(clients[label], served[label], args, str(run)))
                else:
                    rows[label].append(nfs_run(clients[label], served[label], args.files,
                                               str(run), args.lists))  # fmt: skip
            for client in clients.values():
                client.close()
        finally:
            for s in served.values():
                s.stop()
    return rows


def nfs4_phase(workdir: Path, trees: dict[str, str], args: argparse.Namespace) -> Any:
    return nfs_phase(workdir, trees, args, v4=True)


def io_phase(workdir: Path, trees: dict[str, str], args: argparse.Namespace) -> Any:
    return nfs_phase(workdir, trees, args, io=True)


def sync_phase(workdir: Path, trees: dict[str, str], args: argparse.Namespace) -> Any:
    from sync_latency import make_tree

    tree = workdir / "tree"
    make_tree(tree, args.sync_files, 10 * 1024)
    rows: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
    for run in range(args.runs):
        for label in list(trees) if run % 2 == 0 else list(trees)[::-1]:
            out = workdir / f"{label}-{run}"
            out.mkdir()
            os.sync()
            code = SYNC_ONE.format(here=str(HERE), tree=str(tree), out=str(out))
            env = dict(os.environ, PYTHONPATH=trees[label])
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  env=env, check=True)  # fmt: skip
            rows[label].append(json.loads(done.stdout.strip().splitlines()[-1]))
            shutil.rmtree(out)
    return rows


def summary(rows: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in rows["before"][0]:
        before = statistics.median(r[key] for r in rows["before"])
        after = statistics.median(r[key] for r in rows["after"])
        pairs = [round(a[key] / b[key], 2) if b[key] else None
                 for a, b in zip(rows["after"], rows["before"], strict=True)]  # fmt: skip
        ratio = round(after / before, 2) if before else None  # (CPU under a clock tick: 0)
        out[key] = {"before": round(before, 2), "after": round(after, 2), "ratio": ratio,
                    "pairs": pairs}  # fmt: skip
        print(f"  {key:28} {before:12,.2f} {after:12,.2f} {ratio!s:>6}  pairs {pairs}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", required=True, help="the src/ directory of the old tree")
    parser.add_argument("--after", default=str(HERE.parent / "src"))
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--v4-files", type=int, default=300)
    parser.add_argument("--v4-mib", type=int, default=64)
    parser.add_argument("--io-mib", type=int, default=256)
    parser.add_argument("--sync-files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--lists", type=int, default=1, help="listings of the directory per run")
    parser.add_argument("--only", default="nfs,sync")
    parser.add_argument("--same-cpu", type=int, metavar="N", help=SAME_CPU_HELP)
    args = parser.parse_args()
    if args.same_cpu is not None:
        same_cpu(args.same_cpu)
    trees = {"before": str(Path(args.before).resolve()), "after": str(Path(args.after).resolve())}
    result: dict[str, Any] = {"load_before": os.getloadavg(), "same_cpu": args.same_cpu}
    workdir = Path(tempfile.mkdtemp(prefix="filesim-ab-", dir="/dev/shm"))
    try:
        phases = (("nfs", nfs_phase), ("nfs4", nfs4_phase), ("io", io_phase), ("sync", sync_phase))
        for phase, run in phases:
            if phase in args.only.split(","):
                print(f"{phase}: {'before':>36} {'after':>12} {'ratio':>6}")
                result[phase] = summary(run(workdir / phase, trees, args))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["load_after"] = os.getloadavg()
    print("FILESIM_BEFORE_AFTER " + json.dumps(result))


if __name__ == "__main__":
    main()
