"""Benchmarks of the synchroniser (not tests): prints one JSON line per measurement.

  python bench/sync_latency.py [--files 200] [--only latency,burst,initial,idle]

latency   close of a file (<= 1 MiB) on one side -> rename into place on the other, both
          directions (export side: the NFS server's notifications, with and without COMMIT)
burst     1,000 files of 4 KiB, end to end
initial   initial sync of 10,000 files (100 MiB) vs `rsync -a` of the same tree
idle      CPU used by 7 agents watching 10,000 files each, while nothing changes
trees     initial sync of 5,000 files (and a rescan with nothing to do) on each tree backend:
          directory fds (Linux, macOS) against the lstat-checked path walk (Windows)

Targets (issue 3): p50 <= 150 ms, p99 <= 500 ms; burst <= 3 s; initial no slower than rsync;
idle ~ 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filesim.sync.agent import SyncAgent
from filesim.topology.model import Server, SyncPolicy


def server(name: str = "nas-bench", **policy: Any) -> Server:
    return Server(name=name, role="input", fsid=1, sync=SyncPolicy(**policy))


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def pct(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


class Arrivals:
    """Polls for expected paths from a thread and notes when each appears (1 ms period)."""

    def __init__(self) -> None:
        self.pending: dict[Path, float] = {}
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def expect(self, path: Path, closed_at: float) -> None:
        with self.lock:
            self.pending[path] = closed_at

    def _run(self) -> None:
        while not self.stop.is_set():
            now = time.perf_counter()
            with self.lock:
                arrived = [p for p in self.pending if os.path.exists(p)]
                for p in arrived:
                    self.latencies.append(now - self.pending.pop(p))
            time.sleep(0.001)

    async def drain(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self.stop.set()


async def started(agent: SyncAgent) -> asyncio.Task[None]:
    task = asyncio.create_task(agent.run())
    await agent.wait_ready(timeout=600)  # the initial sync is over, the watchers are live
    return task


async def stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def dirs(tmp: Path) -> tuple[Path, Path, Path]:
    folder, store = tmp / "folder", tmp / "store"
    folder.mkdir()
    store.mkdir()
    return folder, store, tmp / "archive.db"


async def latency(tmp: Path, count: int) -> None:
    rng = random.Random(1)
    for direction, commit in (("folder->export", False), ("export->folder", True),
                              ("export->folder", False)):  # fmt: skip
        run = tmp / f"lat-{direction}-{commit}"
        run.mkdir()
        folder, store, db = dirs(run)
        agent = SyncAgent(server(), folder, store, db)
        task = await started(agent)
        src, dst = (folder, store) if direction == "folder->export" else (store, folder)
        arrivals = Arrivals()
        for i in range(count):
            name = f"f{i:04d}.bin"
            data = rng.randbytes(rng.randint(1, 1 << 20))
            with open(src / name, "wb") as fh:
                fh.write(data)
                if src == store:
                    agent.notify_export_change(name, "create")
                    agent.notify_export_change(name, "write")
            closed = time.perf_counter()
            arrivals.expect(dst / name, closed)
            if src == store and commit:
                agent.notify_export_change(name, "commit")
            await asyncio.sleep(0.025)
        await arrivals.drain()
        await stopped(task)
        agent.close()
        lat = [x * 1000 for x in arrivals.latencies]
        how = "with COMMIT" if commit else ("settle only" if src == store else "inotify + settle")
        emit(bench="latency", direction=direction, how=how, files=len(lat), lost=count - len(lat),
             p50_ms=round(pct(lat, 0.5), 1), p99_ms=round(pct(lat, 0.99), 1),
             max_ms=round(max(lat), 1), settle_ms=agent.policy.settle_ms)  # fmt: skip


async def burst(tmp: Path, count: int = 1000) -> None:
    for direction in ("folder->export", "export->folder"):
        run = tmp / f"burst-{direction}"
        run.mkdir()
        folder, store, db = dirs(run)
        agent = SyncAgent(server(), folder, store, db)
        task = await started(agent)
        src, dst = (folder, store) if direction == "folder->export" else (store, folder)
        block = os.urandom(4096)
        start = time.perf_counter()
        for i in range(count):
            (src / f"b{i:04d}.dat").write_bytes(block)
            if src == store:
                agent.notify_export_change(f"b{i:04d}.dat", "commit")
        written = time.perf_counter()
        while len(os.listdir(dst)) < count:
            await asyncio.sleep(0.005)
        end = time.perf_counter()
        await stopped(task)
        agent.close()
        emit(bench="burst", direction=direction, files=count, size=4096,
             write_s=round(written - start, 3), end_to_end_s=round(end - start, 3))  # fmt: skip


def make_tree(root: Path, files: int, size: int) -> None:
    rng = random.Random(2)
    per_dir = 100
    for i in range(files):
        d = root / f"d{i // per_dir:03d}"
        if i % per_dir == 0:
            d.mkdir(parents=True)
        (d / f"f{i:05d}.bin").write_bytes(rng.randbytes(size))


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def quiet() -> None:
    """Flush dirty pages and let the disk settle first: otherwise whoever runs second pays for
    the other's writeback (and, on a `discard` mount, for the discards of deleted trees)."""
    os.sync()
    time.sleep(2)


async def initial(tmp: Path, files: int = 10_000, size: int = 10 * 1024) -> None:
    """Side by side, alternating who goes first; nothing is deleted until the end."""
    src = tmp / "tree"
    make_tree(src, files, size)
    for attempt in range(4):
        results: dict[str, float] = {}
        run = tmp / f"initial-{attempt}"
        run.mkdir()
        order = ["rsync", "agent", "cli"] if attempt % 2 == 0 else ["agent", "cli", "rsync"]
        for who in order:
            quiet()
            if who == "rsync":
                results["rsync_s"] = timed(lambda r=run: subprocess.run(
                    ["rsync", "-a", f"{src}/", f"{r}/rsync/"], check=True))  # fmt: skip
                results["sync_after_rsync_s"] = timed(os.sync)
            elif who == "agent":
                agent = SyncAgent(server(), src, run / "store", run / "archive.db")
                start = time.perf_counter()
                await agent.run_once()
                results["agent_s"] = time.perf_counter() - start
                results["actions"] = agent.status().actions
                agent.close()
            else:
                config = run / "t.yaml"
                config.write_text(
                    f"servers:\n  - {{name: nas-bench, role: input, fsid: 1, folder: {src}}}\n"
                )
                results["cli_s"] = timed(lambda r=run, c=config: subprocess.run(
                    [sys.executable, "-m", "filesim", "sync", "nas-bench", "--once", "--root",
                     str(r / "cli"), "--config", str(c)], check=True,
                    capture_output=True))  # fmt: skip
        emit(bench="initial", files=files, mib=round(files * size / 2**20), attempt=attempt,
             first=order[0], **{k: round(v, 2) for k, v in results.items()})  # fmt: skip


async def trees(tmp: Path, files: int = 5_000, size: int = 4096) -> None:
    """The same work on sync.backend fd and path, alternating who goes first."""
    src = tmp / "trees-src"
    make_tree(src, files, size)
    for attempt in range(2):
        for backend in ("fd", "path") if attempt % 2 == 0 else ("path", "fd"):
            run = tmp / f"trees-{backend}-{attempt}"
            quiet()
            agent = SyncAgent(server(backend=backend), src, run / "store", run / "archive.db")
            start = time.perf_counter()
            await agent.run_once()
            copied = time.perf_counter() - start
            start = time.perf_counter()
            await agent.run_once()  # a full rescan of both sides: nothing to do
            rescan = time.perf_counter() - start
            actions = agent.status().actions
            agent.close()
            emit(bench="trees", backend=backend, attempt=attempt, files=files, actions=actions,
                 initial_s=round(copied, 2), rescan_s=round(rescan, 3))  # fmt: skip


async def idle(tmp: Path, agents: int = 7, files: int = 10_000, seconds: float = 20) -> None:
    running = []
    for n in range(agents):
        run = tmp / f"idle-{n}"
        run.mkdir()
        folder, store, db = dirs(run)
        make_tree(folder, files, 64)
        shutil.rmtree(folder)
        make_tree(folder, files, 64)
        agent = SyncAgent(server(f"nas-{n}"), folder, store, db)
        running.append((agent, await started(agent)))
    await asyncio.sleep(1)
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter()
    await asyncio.sleep(seconds)
    after = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - wall
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # The one periodic cost: a full rescan of both sides every rescan_interval_s (60 s).
    before = resource.getrusage(resource.RUSAGE_SELF)
    for agent, _ in running:
        agent.notify_folder_change(None)
        await agent.flush(timeout=60)
    after = resource.getrusage(resource.RUSAGE_SELF)
    rescan = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) / agents
    interval = running[0][0].policy.rescan_interval_s
    for agent, task in running:
        await stopped(task)
        agent.close()
    emit(bench="idle", agents=agents, files_each=files, seconds=round(wall, 1),
         cpu_s=round(cpu, 3), cpu_percent=round(100 * cpu / wall, 2),
         rescan_cpu_s_per_agent=round(rescan, 3),
         average_cpu_percent_with_rescans=round(100 * (cpu / wall + agents * rescan / interval), 2),
         )  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200, help="files per latency direction")
    parser.add_argument("--only", default="latency,burst,initial,idle")
    args = parser.parse_args()
    which = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="filesim-bench-", dir=os.environ.get("BENCH_DIR")) as t:
        tmp = Path(t)
        if "latency" in which:
            await latency(tmp, args.files)
        if "burst" in which:
            await burst(tmp)
        if "initial" in which:
            await initial(tmp)
        if "idle" in which:
            await idle(tmp)
        if "trees" in which:
            await trees(tmp)


if __name__ == "__main__":
    asyncio.run(main())
