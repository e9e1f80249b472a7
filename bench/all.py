#!/usr/bin/env python3
"""Every figure of issue 15 in one command: filesim against NFS-Ganesha and rsync, interleaved.

    python3 bench/all.py [--runs 3] [--size-mib 256] [--files 2000] [--only v3,v4,sync,many]
                         [--processes one|per-core|per-server|both|all]

v3    one filesim server (direct storage) and Ganesha, both started once and measured in turn
      (filesim, Ganesha, Ganesha, filesim, ...) by ../shared/bench/nfs-bench.sh with libnfs:
      write + COMMIT, read, create, list, remove
v4    the same over NFSv4.1 with nfs-rs (smaller by default: nfs-rs is slower than libnfs)
sync  the initial sync of --sync-files files of 10 KiB by a sync agent against `rsync -a` of
      the same tree, in turn (bench/sync_latency.py's tree)
many  seven clients at once, one per server of the default topology (bench/many_clients.py)

filesim runs in each mode of the topology's `processes` key that --processes names, interleaved
with Ganesha in v3, v4 and many: `one`, every server in the `filesim up` process; `per-core`
(`auto`'s choice on 2 or more cores), the servers' NFS sides spread over a worker process per
core (their changes forwarded to the topology process, which writes the events and feeds the
sync agents); `per-server`, a worker process each. `both` (the default) is one and per-core;
`all` adds per-server. With v3 and v4's single server, per-core and per-server are the same.

The client's environment differs from one run to the next (`client_env`), the same for every
server in a run: its size alone moved one server's reads by up to 1.7x (bench/README.md), and
a median over a single environment would keep that bias.

Medians of --runs, ratios filesim/Ganesha (rsync/filesim for the sync: > 1 means filesim is
faster everywhere), the load average before and after, and one `FILESIM_BENCH_ALL {...}` line.
Needs libnfs-utils, nfs-rs, rsync; Ganesha (nfs-ganesha, nfs-ganesha-vfs, rpcbind) and root
for the reference figures. A benchmark, not a test: on a shared machine read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
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
import many_clients  # noqa: E402
from many_clients import MODES  # noqa: E402
from servers import SHARED_BENCH, Served, start_filesim, start_ganesha  # noqa: E402

METRICS = [
    ("write_MBps", "write + COMMIT", "MB/s"),
    ("read_MBps", "read", "MB/s"),
    ("create_ops", "create", "/s"),
    ("list_entries_per_s", "list", "entries/s"),
    ("remove_ops", "remove", "/s"),
]


def client_env(run: int) -> dict[str, str]:
    """The environment of run `run`'s client: one variable whose length differs per run.

    Through libnfs, a per-core filesim server read at 760-1,010 MB/s with all.py's own
    environment, and at 1,450-1,630 MB/s with a 3,000-byte variable added to the client's
    alone. The likely cause: a process's environment lies above its stack, so its size moves
    where the stack falls against page and cache-line boundaries. Steps of 1,361 bytes,
    modulo a page, give each run another offset."""
    return dict(os.environ, FILESIM_BENCH_LAYOUT="x" * (run * 1_361 % 4_096))


def driver(
    served: Served, version: str, args: argparse.Namespace, files: int, size: int, run: int
) -> Any:
    """One nfs-bench.sh run (--runs 1) against the first export of `served`, as run `run`."""
    v4 = version != "3"
    cmd = [
        "bash", str(SHARED_BENCH / "nfs-bench.sh"), "127.0.0.1", str(served.ports[0]),
        str(0 if v4 else served.mount_ports[0]),
        served.v4_paths[0] if v4 else served.v3_paths[0], version,
        "--client", "nfs-rs" if v4 else "libnfs", "--python", sys.executable,
        "--label", served.label, "--runs", "1", "--size-mib", str(size), "--files", str(files),
        "--server-pid", str(served.nfs_pid(0)), "--idle-wait", "0",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False,
                         env=client_env(run))  # fmt: skip
    for line in out.stdout.splitlines():
        if line.startswith("NFSBENCH_JSON "):
            result = json.loads(line.split(" ", 1)[1])
            for error in result.get("errors", []):
                print(f"{served.label} v{version}: {error}", file=sys.stderr)
            return result["nfs"]
    raise RuntimeError(f"{served.label} v{version}: no result:\n{out.stdout}\n{out.stderr[-2000:]}")


def nfs_phase(workdir: Path, version: str, args: argparse.Namespace) -> dict[str, Any]:
    files, size = (args.files, args.size_mib) if version == "3" else (args.v4_files, args.v4_mib)
    servers: list[Served] = []
    try:
        for mode in args.modes:
            servers.append(start_filesim(workdir / f"f{version}-{mode}", ["bench"], mode))
        ref = start_ganesha(workdir / f"g{version}", protocols="3,4")
        if ref is not None:
            servers.append(ref)
        time.sleep(0.5)
        rows: dict[str, list[Any]] = {s.label: [] for s in servers}
        for run in range(args.runs):
            for served in servers if run % 2 == 0 else servers[::-1]:
                rows[served.label].append(driver(served, version, args, files, size, run))
    finally:
        for served in servers:
            served.stop()
    return {
        label: {k: _median(r[k]["median"] for r in runs) for k, _, _ in METRICS}
        for label, runs in rows.items()
    } | {"files": files, "size_mib": size}


def _median(values: Any) -> float | None:
    got = [v for v in values if v is not None]
    return round(statistics.median(got), 1) if got else None


def sync_phase(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Initial sync of a fresh tree into an empty export, against `rsync -a`, in turn."""
    from sync_latency import make_tree, server

    from filesim.sync.agent import SyncAgent

    src = workdir / "tree"
    make_tree(src, args.sync_files, 10 * 1024)
    times: dict[str, list[float]] = {"agent_s": [], "rsync_s": []}
    for run in range(args.runs):
        dest = workdir / f"sync-{run}"
        dest.mkdir()
        for who in ("agent", "rsync") if run % 2 == 0 else ("rsync", "agent"):
            os.sync()
            start = time.perf_counter()
            if who == "rsync":
                subprocess.run(["rsync", "-a", f"{src}/", f"{dest}/rsync/"], check=True)
            else:
                agent = SyncAgent(server(), src, dest / "store", dest / "archive.db")
                asyncio.run(agent.run_once())
                agent.close()
            times[f"{who}_s"].append(time.perf_counter() - start)
        shutil.rmtree(dest)
    return {k: round(statistics.median(v), 3) for k, v in times.items()} | {
        "files": args.sync_files, "all": {k: [round(x, 3) for x in v] for k, v in times.items()}
    }  # fmt: skip


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def report(results: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """Print every table; the ratios to Ganesha of each filesim run (`labels`), by label, and
    the initial sync's ratio to rsync."""
    ratios: dict[str, Any] = {label: {} for label in labels}
    for version in ("3", "4"):
        phase = results.get(f"v{version}")
        if phase is not None:
            _nfs_table(version, phase, labels, ratios)
    if "sync" in results:
        s = results["sync"]
        ratio = round(s["rsync_s"] / s["agent_s"], 2)
        ratios["initial_sync"] = ratio
        print(f"initial sync of {s['files']} files: filesim {s['agent_s']:.2f} s, rsync -a "
              f"{s['rsync_s']:.2f} s, ratio rsync/filesim {ratio:.2f}")  # fmt: skip
    if "many" in results:
        many = many_clients.print_table(results["many"], 7)
        for label, figures in many.items():
            ratios[label].update({f"many_{k}": v for k, v in figures.items()})
    return ratios


def _cell(value: float | None, width: int, spec: str) -> str:
    return f"{'failed':>{width}}" if value is None else f"{value:{width}{spec}}"


def _nfs_table(version: str, phase: dict[str, Any], labels: list[str], ratios: Any) -> None:
    """One column per filesim run and Ganesha, then one ratio column per filesim run."""
    title = f"NFSv{version if version == '3' else '4.1'} ({phase['files']} files, "
    title += f"{phase['size_mib']} MiB)"
    ref = phase.get("ganesha")
    heads = [*labels, *(["ganesha"] if ref else [])]
    print(f"{title:34}" + "".join(f" {many_clients.short(h):>10}" for h in heads)
          + "".join(f" {'ratio ' + many_clients.short(h):>16}" for h in labels if ref))  # fmt: skip
    for key, name, unit in METRICS:
        # A measurement that failed in every run (None) shows as such, not as 0.
        cells = "".join(f" {_cell(phase[h][key], 10, ',.0f')}" for h in heads)
        for label in labels:
            a, b = phase[label][key], ref.get(key) if ref else None
            ratios[label][f"v{version}_{key}"] = round(a / b, 2) if a and b else None
        cells += "".join(f" {_cell(ratios[h][f'v{version}_{key}'], 16, '.2f')}"
                         for h in labels if ref)  # fmt: skip
        print(f"  {name + ' (' + unit + ')':32}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--v4-mib", type=int, default=128)
    parser.add_argument("--v4-files", type=int, default=500)
    parser.add_argument("--sync-files", type=int, default=10_000)
    parser.add_argument("--many-files", type=int, default=500)
    parser.add_argument("--many-mib", type=int, default=32)
    parser.add_argument("--only", default="v3,v4,sync,many")
    parser.add_argument(
        "--processes",
        choices=("one", "per-core", "per-server", "both", "all"),
        default="both",
        help="filesim's `processes` mode(s) to measure beside Ganesha (both: one and per-core, "
        "the default; all: the three)",
    )
    parser.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    args = parser.parse_args()
    which = args.only.split(",")
    args.modes = {"both": ["one", "per-core"], "all": list(MODES)}.get(
        args.processes, [args.processes]
    )
    labels = [MODES[mode] for mode in args.modes]
    results: dict[str, Any] = {"load_before": loadavg()}
    workdir = Path(tempfile.mkdtemp(prefix="filesim-all-", dir=args.dir))
    try:
        for version in ("3", "4"):
            if f"v{version}" in which:
                results[f"v{version}"] = nfs_phase(workdir, version, args)
        if "sync" in which:
            results["sync"] = sync_phase(workdir / "sync", args)
        if "many" in which:
            results["many"] = many_clients.compare(
                workdir / "many", 7, args.many_files, args.many_mib, args.runs, args.modes
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["load_after"] = loadavg()
    results["ratios"] = report(results, labels)
    print(f"load average before {results['load_before']}, after {results['load_after']}")
    print("FILESIM_BENCH_ALL " + json.dumps(results))


if __name__ == "__main__":
    main()
