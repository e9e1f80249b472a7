#!/usr/bin/env python3
"""How long `filesim` commands take from the shell, and `filesim up --detach` to serve.

    python3 bench/cli_latency.py [--runs 5] [--before ../main/src] [--modes one,per-core]

Starts the default topology in the background (`filesim up --detach`), then times `filesim
--help`, `filesim status` and `filesim fault list` against it, each a fresh process as a user
runs them, and `filesim up --detach` until it serves, then `down`, in each `--modes` mode.
With `--before SRC` the same commands run from that source tree too, alternated with this one
(each tree imported through PYTHONPATH). Medians and minimums of --runs; one
`FILESIM_CLI_LATENCY {...}` line. A benchmark, not a test.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import free_port

REPO = Path(__file__).resolve().parents[1]


def _timed(tree: str, args: list[str], check: bool = True) -> float:
    """Seconds `filesim ARGS` took, run from the source tree `tree`."""
    env = dict(os.environ, PYTHONPATH=tree)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "filesim", *args], env=env, check=check,
                   capture_output=True, timeout=120)  # fmt: skip
    return time.perf_counter() - started


def _commands(root: Path) -> dict[str, list[str]]:
    where = ["--root", str(root)]
    return {
        "--help": ["--help"], "status": ["status", *where], "fault list": ["fault", "list", *where]
    }  # fmt: skip


def measure(trees: dict[str, str], modes: list[str], runs: int, work: Path) -> dict[str, dict]:
    times: dict[str, dict[str, list[float]]] = {label: {} for label in trees}
    running = work / "running"
    port = free_port(7)
    here = str(REPO / "src")
    _timed(here, ["up", "--detach", "--root", str(running), "--base-port", str(port),
                  "--http-port", "0"])  # fmt: skip
    try:
        for run in range(runs):
            order = list(trees.items()) if run % 2 == 0 else list(trees.items())[::-1]
            for label, tree in order:
                for name, args in _commands(running).items():
                    times[label].setdefault(name, []).append(_timed(tree, args))
                for mode in modes:
                    root = work / f"up-{label}-{mode}-{run}"
                    up = ["up", "--detach", "--processes", mode, "--root", str(root),
                          "--base-port", str(free_port(7)), "--http-port", "0"]  # fmt: skip
                    times[label].setdefault(f"up --detach ({mode})", []).append(_timed(tree, up))
                    _timed(tree, ["down", "--root", str(root)])
    finally:
        _timed(here, ["down", "--root", str(running)], check=False)
    return {
        label: {name: {"median_s": round(statistics.median(v), 3), "min_s": round(min(v), 3)}
                for name, v in by_name.items()}
        for label, by_name in times.items()
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", help="another tree's src/ to time beside this one")
    parser.add_argument("--modes", default="one,per-core", help="`processes` modes for `up`")
    args = parser.parse_args()
    trees = {"this tree": str(REPO / "src")}
    if args.before:
        trees = {"before": str(Path(args.before).resolve()), **trees}
    work = Path(tempfile.mkdtemp(prefix="filesim-cli-latency-", dir="/dev/shm"))
    try:
        result = measure(trees, [m for m in args.modes.split(",") if m], args.runs, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    labels = list(result)
    print(f"{'command':28}" + "".join(f"{label:>22}" for label in labels))
    for name in result[labels[0]]:
        cells = [f"{result[lb][name]['median_s']:.2f} s (min {result[lb][name]['min_s']:.2f})"
                 for lb in labels]  # fmt: skip
        print(f"{name:28}" + "".join(f"{c:>22}" for c in cells))
    print(f"(medians of {args.runs} runs; load average now {os.getloadavg()[0]:.1f})")
    print("FILESIM_CLI_LATENCY " + json.dumps({"runs": args.runs, "result": result}))


if __name__ == "__main__":
    main()
