"""Random operations on both sides, run through the real engine on temp dirs, converge to
the state the archive semantics predict.

The model is written independently of the engine: per path, a side changed if its (content,
mtime) differs from the last agreed state; one change is applied to the other side; two
changes are a conflict — a deletion loses to a modification, otherwise the later write wins
the name and the other is kept in a conflict file on both sides.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filesim.sync.agent import SyncAgent

from .conftest import files, make_server, temps

PATHS = ["a", "b.txt", "d/x", "d/y.txt"]
T0 = 1_700_000_000
Version = tuple[bytes, int]  # content, mtime (s)

op = st.tuples(
    st.sampled_from(["folder", "export"]),
    st.sampled_from(["write", "write", "delete", "rename"]),
    st.sampled_from(PATHS),
    st.sampled_from(PATHS),
)
rounds = st.lists(
    st.tuples(st.lists(op, max_size=5), st.sampled_from(["full", "events"])),
    min_size=1,
    max_size=5,
)


class Model:
    def __init__(self) -> None:
        self.agreed: dict[str, Version] = {}
        self.sides: dict[str, dict[str, Version]] = {"folder": {}, "export": {}}
        self.conflict_copies: Counter[bytes] = Counter()

    def sync(self) -> None:
        f, e = self.sides["folder"], self.sides["export"]
        for path in set(self.agreed) | set(f) | set(e):
            a, x, y = self.agreed.get(path), f.get(path), e.get(path)
            if x == y or y == a:
                result = x
            elif x == a:
                result = y
            elif x is None or y is None:
                result = x or y
            else:
                winner, loser = (x, y) if x[1] >= y[1] else (y, x)
                self.conflict_copies[loser[0]] += 1
                result = winner
            for side in (f, e):
                if result is None:
                    side.pop(path, None)
                else:
                    side[path] = result
            if result is None:
                self.agreed.pop(path, None)
            else:
                self.agreed[path] = result


def apply_op(
    roots: dict[str, Path], model: Model, o: tuple[str, str, str, str], n: int
) -> set[str]:
    side, kind, path, dest = o
    root, mine = roots[side], model.sides[side]
    if kind == "write":
        data, mtime = f"v{n}".encode() * (n % 3 + 1), T0 + n
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
        os.utime(root / path, (mtime, mtime))
        mine[path] = (data, mtime)
        return {path}
    if path not in mine:
        return set()
    if kind == "delete":
        (root / path).unlink()
        del mine[path]
        return {path}
    if dest in mine or dest == path:
        return set()
    (root / dest).parent.mkdir(parents=True, exist_ok=True)
    os.rename(root / path, root / dest)
    mine[dest] = mine.pop(path)
    return {path, dest}


def split(tree: dict[str, bytes]) -> tuple[dict[str, bytes], Counter[bytes]]:
    plain = {p: v for p, v in tree.items() if ".conflict-" not in p}
    return plain, Counter(v for p, v in tree.items() if ".conflict-" in p)


async def run_scenario(tmp: Path, plan: list[tuple[list[tuple[str, str, str, str]], str]]) -> None:
    roots = {"folder": tmp / "folder", "export": tmp / "export"}
    for root in roots.values():
        root.mkdir()
    # The guard is tested elsewhere; here a side may well lose all of its few files.
    agent = SyncAgent(make_server(settle_ms=0), roots["folder"], roots["export"],
                      tmp / "a.db", guard_min_files=10**9)  # fmt: skip
    model, counter = Model(), itertools.count()
    try:
        await agent.run_once()
        for ops, mode in plan:
            touched: dict[str, set[str]] = {"folder": set(), "export": set()}
            for o in ops:
                touched[o[0]] |= apply_op(roots, model, o, next(counter))
            if mode == "full":
                await agent.run_once()
            else:
                for path in touched["folder"]:
                    agent.notify_folder_change(path)
                for path in touched["export"]:
                    agent.notify_export_change(path, "commit")
                await agent.flush(timeout=20)
            model.sync()
            for side, root in roots.items():
                plain, copies = split(files(root))
                want = {p: v[0] for p, v in model.sides[side].items()}
                assert plain == want, f"{side} after {mode} sync of {ops}"
                assert copies == model.conflict_copies, f"{side}: conflict copies"
                for path, (_, mtime) in model.sides[side].items():
                    assert os.stat(root / path).st_mtime == mtime
            assert temps(roots["folder"]) == temps(roots["export"]) == []
    finally:
        agent.close()


@pytest.mark.slow
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds)
def test_random_operations_converge_to_the_model(
    plan: list[tuple[list[tuple[str, str, str, str]], str]],
) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="filesim-prop-"))
    try:
        asyncio.run(run_scenario(tmp, plan))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
