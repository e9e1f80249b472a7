#!/usr/bin/env python3
"""Many clients at once: seven libnfs clients in parallel (one process each), one per export.

filesim serves the seven servers of the default topology (names and fsids; `storage: direct`
and writable, so every client does the same work and no sync copies compete) in its one
process; NFS-Ganesha serves seven exports in its one daemon. Each client, started together at a
barrier, does a mixed workload over NFSv3:

    create --files empty files, list them, write a --size-mib file (with COMMIT), read it back,
    remove everything

The figure is the wall time from the barrier until the last client is done (lower is better),
with the aggregate metadata ops/s and MB/s over that time. Run alone:

    python3 bench/many_clients.py [--clients 7] [--files 500] [--size-mib 32] [--runs 3]
                                  [--processes [one,per-server,per-core]]

--processes measures filesim in every mode of the topology's `processes` key (or those it
names, comma-separated): `one` (the seven servers in the `filesim up` process, one GIL),
`per-server` (each server's NFS side in a worker process, the topology process keeping
events, sync agents and the HTTP API) and `per-core` (the seven servers spread over a worker
process per core).

or as part of bench/all.py. Prints a table and one `FILESIM_MANY_CLIENTS {...}` line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import SHARED_BENCH, Served, start_filesim, start_ganesha

NAMES = ["nas-input-1", "nas-input-2", "nas-input-3", "nas-backup", "nas-output-1",
         "nas-output-2", "nas-output-3"]  # fmt: skip
MiB = 1 << 20


def _client(host: str, port: int, mport: int, export: str, files: int, size: int,
            barrier: Any, out: Any, tag: str) -> None:  # fmt: skip
    sys.path.insert(0, str(SHARED_BENCH))
    from nfs_bench import LibnfsClient

    cl = LibnfsClient(host, port, mport, export, "3", 30.0)
    base = f"many-{tag}"
    try:
        barrier.wait(60)
        start = time.perf_counter()
        cl.mkdir(base)
        names = [f"{base}/f{i:05d}" for i in range(files)]
        for name in names:
            cl.create_empty(name)
        listed = len(cl.listdir_names(base))
        cl.write_file(f"{base}/big.bin", size, 1 * MiB)
        _, read = cl.read_file(f"{base}/big.bin", 1 * MiB)
        for name in [*names, f"{base}/big.bin"]:
            cl.unlink(name)
        cl.rmdir(base)
        out.put({"tag": tag, "start": start, "end": time.perf_counter(), "listed": listed,
                 "read": read})  # fmt: skip
    except Exception as exc:  # reported by the parent: a failed client voids the run
        out.put({"tag": tag, "error": f"{type(exc).__name__}: {exc}"})
    finally:
        cl.close()


def one_run(served: Served, clients: int, files: int, size_mib: int, run: int) -> dict[str, Any]:
    """One run of `clients` clients in parallel; their wall time and aggregate rates."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(clients)
    out: Any = ctx.Queue()
    procs = [
        ctx.Process(target=_client, args=("127.0.0.1", served.ports[i], served.mount_ports[i],
                                          served.v3_paths[i], files, size_mib * MiB, barrier, out,
                                          f"{run}-{i}"))
        for i in range(clients)
    ]  # fmt: skip
    before = {pid: _cpu_s(pid) for pid in served.pids()}
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    cpu = {pid: _cpu_s(pid) - was for pid, was in before.items()}
    for p in procs:
        p.join(30)
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise RuntimeError(f"{served.label}: {errors[0]}")
    if any(r["listed"] != files or r["read"] != size_mib * MiB for r in results):
        raise RuntimeError(f"{served.label}: a client listed or read the wrong amount: {results}")
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    meta_ops = clients * (2 * files + 1)  # creates, removes, one listing each
    return {
        "wall_s": wall,
        "meta_ops_per_s": meta_ops / wall,
        "MBps": clients * 2 * size_mib * MiB / wall / 1e6,  # written and read back
        "cpu_s": sum(cpu.values()),
        "main_cpu_s": cpu[served.pid],
    }


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` so far, all its threads (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


MODES = {"one": "filesim", "per-server": "filesim-per-server", "per-core": "filesim-per-core"}
"""The topology's `processes` modes, and the label of filesim run in each."""


def compare(
    workdir: Path, clients: int, files: int, size_mib: int, runs: int,
    modes: Sequence[str] = ("one",), storage: str = "direct",
) -> dict[str, Any]:  # fmt: skip
    """filesim (in each of `modes`) and Ganesha started once, measured in turn (A B C C B A
    ...), medians of `runs`."""
    started: list[Served] = []
    try:
        for mode in modes:
            started.append(start_filesim(workdir / mode, NAMES[:clients], mode, storage))
        ref = start_ganesha(workdir / "g", exports=clients, protocols="3")
        if ref is not None:
            started.append(ref)
        figures: dict[str, list[dict[str, Any]]] = {s.label: [] for s in started}
        for run in range(runs):
            for served in started if run % 2 == 0 else started[::-1]:
                figures[served.label].append(one_run(served, clients, files, size_mib, run))
    finally:
        for served in started:
            served.stop()
    return {label: _medians(rows) for label, rows in figures.items()}


def _medians(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {k: round(statistics.median(r[k] for r in rows), 3) for k in rows[0]} | {
        "wall_s_all": [round(r["wall_s"], 3) for r in rows]
    }


ROWS = (("wall_s", "wall time (s)", False), ("meta_ops_per_s", "metadata ops/s", True),
        ("MBps", "bulk MB/s", True))  # fmt: skip


def print_table(result: dict[str, Any], clients: int) -> dict[str, dict[str, float | None]]:
    """A column per filesim run and Ganesha, then the ratio of each filesim run to Ganesha
    (> 1: filesim faster); those ratios, by filesim label."""
    ref = result.get("ganesha")
    ours = [label for label in result if label != "ganesha"]
    title = f"many clients ({clients} in parallel, v3)"
    heads = [*ours, *(["ganesha"] if ref else [])]
    print(f"{title:40}" + "".join(f" {short(h):>10}" for h in heads)
          + "".join(f" {'ratio ' + short(h):>16}" for h in ours if ref))  # fmt: skip
    ratios: dict[str, dict[str, float | None]] = {label: {} for label in ours}
    for key, name, higher in ROWS:
        cells = "".join(f" {result[h][key]:10,.2f}" for h in heads)
        for label in ours:
            a, b = result[label][key], ref[key] if ref else None
            ratios[label][key] = None if not b else round((a / b) if higher else (b / a), 2)
        cells += "".join(f" {ratios[h][key] or 0:16.2f}" for h in ours if ref)
        print(f"  {name:38}{cells}")
    cpu = "".join(f" {result[h]['cpu_s']:10,.2f}" for h in heads)
    print(f"  {'server CPU, all its processes (s)':38}{cpu}")
    for label in ours:
        if label != "filesim":  # per-server: the topology's process and the workers
            main = f"{result[label]['main_cpu_s']:.2f} s"
            print(f"  ({short(label)}: {main} of that in the topology's process)")
    print("  (ratio > 1: filesim faster)")
    return ratios


def short(label: str) -> str:
    """Column heads: `filesim-per-server` is `per-server`, plain `filesim` is `one`."""
    return "one" if label == "filesim" else label.removeprefix("filesim-")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=7, choices=range(1, 8))
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--size-mib", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--processes",
        nargs="?",
        const=",".join(MODES),
        default="one",
        help="filesim in these modes of the topology's `processes` key, comma-separated (alone: "
        "all three): one (every server in the `filesim up` process), per-server (each server "
        "in a worker process), per-core (the servers spread over a worker process per core)",
    )
    parser.add_argument(
        "--storage",
        choices=("direct", "mirror"),
        default="direct",
        help="direct: each export serves its folder (NFS alone); mirror: as the default "
        "topology runs, each server's sync agent also copies what clients write into its "
        "folder and removes what they remove (work Ganesha does not do: compare filesim's "
        "modes with each other there)",
    )
    parser.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="filesim-many-", dir=args.dir))
    try:
        modes = args.processes.split(",")
        unknown = [m for m in modes if m not in MODES]
        if unknown:
            parser.error(f"--processes: unknown mode {unknown[0]!r} (known: {', '.join(MODES)})")
        result = compare(
            workdir, args.clients, args.files, args.size_mib, args.runs, modes, args.storage
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ratios = print_table(result, args.clients)
    line = {"clients": args.clients, "files": args.files, "size_mib": args.size_mib,
            "runs": args.runs, "storage": args.storage, **result, "ratios": ratios}  # fmt: skip
    print("FILESIM_MANY_CLIENTS " + json.dumps(line))


if __name__ == "__main__":
    main()
