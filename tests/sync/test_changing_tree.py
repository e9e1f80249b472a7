"""A tree that clients change while a cycle looks at it.

A partial cycle looks its paths up one by one. Whatever a client does between two lookups, the
cycle plans only from a tree the side could have held (no entry without its parent directory),
and it never makes a directory its plan did not: a directory made on the way has no archive
record, and the next plan takes it for a new one — bringing back a directory a client removed.
CI saw both: an `rm -r` over NFS undone by `sync.mkdir export`, and a directory renamed away by
a kernel client made again at its old name.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filesim.sync import cycle
from filesim.sync.actions import MakeDir
from filesim.sync.agent import SyncAgent
from filesim.sync.state import Entry, Kind, ancestors, rooted
from filesim.sync.tree import Tree

from .conftest import Rig, write

_names = st.sampled_from(["a", "b", "c"])
_paths = st.lists(_names, min_size=1, max_size=4).map("/".join)
_entries = st.sampled_from([Entry(Kind.DIR), Entry(Kind.FILE, 1), Entry(Kind.SYMLINK, 1)])


@given(st.dictionaries(_paths, _entries, max_size=30))
def test_rooted_keeps_exactly_the_entries_under_directories(snapshot: dict[str, Entry]) -> None:
    kept = rooted(snapshot)
    for path, found in snapshot.items():
        whole = all(a in snapshot and snapshot[a].kind is Kind.DIR for a in ancestors(path))
        assert (path in kept) == whole, path
        if whole:
            assert kept[path] == found


def _looking(
    monkeypatch: pytest.MonkeyPatch, store: Path, at: str, change: Callable[[], None]
) -> list[str]:
    """The client makes `change` in the store just before the cycle looks up `at` there.
    Returns the store paths the cycle looked up, in order."""
    real = cycle.entry
    looked: list[str] = []

    def entry(tree: Tree, rel: str) -> Entry | None:
        if tree.root == store:
            if rel == at and at not in looked:
                change()
            looked.append(rel)
        return real(tree, rel)

    monkeypatch.setattr(cycle, "entry", entry)
    return looked


def _cycle(agent: SyncAgent, *paths: str) -> cycle.CycleResult:
    """One partial cycle for `paths`, as the agent runs it for marked paths."""
    return agent._sync.cycles.run(list(paths), frozenset(), frozenset(paths), False)


def _made(result: cycle.CycleResult) -> list[str]:
    return [f"{a.side}:{a.path}" for a in result.plan.work if isinstance(a, MakeDir)]


async def test_a_tree_removed_while_a_cycle_looks_stays_removed(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client removes d0/d1/d2/f.txt, then (while the cycle for it looks) d2 and d1."""
    write(rig.store, "d0/d1/d2/f.txt", "f")
    agent = rig.agent()
    await agent.run_once()
    assert (rig.folder / "d0/d1/d2/f.txt").read_text() == "f"
    (rig.store / "d0/d1/d2/f.txt").unlink()
    looked = _looking(monkeypatch, rig.store, "d0/d1",
                      lambda: shutil.rmtree(rig.store / "d0/d1"))  # fmt: skip
    first = _cycle(agent, "d0/d1/d2/f.txt", "d0/d1/d2")
    assert looked.index("d0/d1") < looked.index("d0/d1/d2"), "a directory before its entries"
    second = _cycle(agent, "d0/d1")  # the marks of the two later removals
    assert _made(first) == [] and _made(second) == []
    assert not (rig.store / "d0/d1").exists(), "a removed directory came back"
    assert not (rig.folder / "d0/d1").exists()
    assert (rig.folder / "d0").is_dir() and (rig.store / "d0").is_dir()


async def test_a_tree_made_while_a_cycle_looks_waits_for_its_own_cycle(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cycle finds `a` absent; then a client makes a/one/f.txt; then the cycle looks up
    a/one and the file. It plans nothing from the half-seen tree; the next cycle (marked by
    the client's events) makes both directories, recorded, and copies the file."""
    agent = rig.agent()
    await agent.run_once()
    _looking(monkeypatch, rig.store, "a/one", lambda: write(rig.store, "a/one/f.txt", "f"))
    first = _cycle(agent, "a/one/f.txt")
    assert not first.plan.work and not first.outcomes
    assert not (rig.folder / "a").exists()
    monkeypatch.undo()
    second = _cycle(agent, "a", "a/one", "a/one/f.txt")
    assert _made(second) == ["folder:a", "folder:a/one"]
    assert (rig.folder / "a/one/f.txt").read_text() == "f"
    records = agent._sync.archive.records
    assert all(records[p].folder is not None for p in ("a", "a/one", "a/one/f.txt"))
