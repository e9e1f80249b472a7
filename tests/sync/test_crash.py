"""kill -9 of `filesim sync NAME` at random moments of a burst of copies, restart, repeat:
afterwards both sides are equal, nothing is lost or duplicated, no temp file is left."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from filesim.topology import Layout, load_topology

from .conftest import files, temps

TOPOLOGY = """
servers:
  - {name: nas-crash, role: input, fsid: 1, sync: {settle_ms: 0}}
"""


def count(root: Path) -> int:
    """Names under root, temp files included (cheap enough to poll)."""
    return sum(len(names) for _, _, names in os.walk(root))


def sync_cmd(root: Path, config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "filesim", "sync", "nas-crash", "--root", str(root),
            "--config", str(config), *extra]  # fmt: skip


@pytest.mark.integration
@pytest.mark.slow
def test_sigkill_at_random_points_then_restart_converges(tmp_path: Path) -> None:
    seed = int(os.environ.get("CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    config = tmp_path / "topology.yaml"
    config.write_text(TOPOLOGY)
    root = tmp_path / "root"
    server = load_topology(config).server("nas-crash")
    layout = Layout(root)
    folder, store = layout.folder(server), layout.store(server)
    folder.mkdir(parents=True)
    store.mkdir(parents=True)
    want: dict[str, bytes] = {}
    killed_with_work_left = 0
    for rnd in range(5):
        for i in range(rng.randint(150, 250)):  # the burst, mostly into the folder
            side = folder if rng.random() < 0.8 else store
            name = f"r{rnd}/f{i}.bin" if side is folder else f"from-nfs/r{rnd}-{i}.bin"
            data = rng.randbytes(rng.randint(1, 96 * 1024))
            (side / name).parent.mkdir(parents=True, exist_ok=True)
            (side / name).write_bytes(data)
            want[name] = data
        for name in rng.sample(sorted(n for n in want if n.startswith("r")), k=10):
            if rnd and rng.random() < 0.5:
                (folder / name).unlink()
                del want[name]
            else:
                (folder / name).write_bytes(b"edited " + name.encode())
                want[name] = b"edited " + name.encode()
        proc = subprocess.Popen(sync_cmd(root, config), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        # Kill once the copying is under way: after a random number of files have landed,
        # or at a random moment if it finishes first.
        target = count(store) + rng.randint(1, 120)
        deadline = time.monotonic() + rng.uniform(0.5, 3.0)
        while count(store) < target and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.02))
        proc.kill()
        proc.wait()
        killed_with_work_left += files(folder) != files(store)
    done = subprocess.run(sync_cmd(root, config, "--once"), capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    context = f"CRASH_SEED={seed}"
    assert files(folder) == want, context
    assert files(store) == want, context
    assert temps(folder) == temps(store) == [], context
    # Not a proof that every kill landed mid-copy, but most must have.
    assert killed_with_work_left >= 3, f"too few kills interrupted work ({context})"
