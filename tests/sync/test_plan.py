"""reconcile() on its own: examples, then hypothesis over random archives and side changes.

An in-memory executor applies a plan to the snapshots; the properties are that every step's
preconditions hold, that the result is a fixpoint, that both sides end up equal where the policy
says they must, that no new change is ever lost, and that a one-way policy never writes to its
source.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filesim.sync.actions import Conflict
from filesim.sync.loop import only_adds
from filesim.sync.plan import (
    Copy,
    Delete,
    MakeDir,
    Plan,
    Remember,
    Rename,
    conflict_name,
    reconcile,
)
from filesim.sync.state import Entry, Kind, Record, Side, ancestors, is_under, other
from filesim.topology.model import Direction, SyncPolicy

_ino = itertools.count(1000)


def f(version: int, mtime: int | None = None, ino: int | None = None) -> Entry:
    return Entry(Kind.FILE, version, mtime if mtime is not None else version * 10**9, 0o644,
                 ino if ino is not None else next(_ino))  # fmt: skip


def d(ino: int | None = None) -> Entry:
    return Entry(Kind.DIR, mode=0o755, ino=ino if ino is not None else next(_ino))


BOTH = SyncPolicy()
F2E = SyncPolicy(direction=Direction.FOLDER_TO_EXPORT)
E2F = SyncPolicy(direction=Direction.EXPORT_TO_FOLDER, mirror_deletes=False)


def synced(**paths: Entry) -> tuple[dict[str, Record], dict[str, Entry], dict[str, Entry]]:
    """An archive and two sides that agree on `paths` (keys use __ for /)."""
    archive, folder, export = {}, {}, {}
    for key, entry in paths.items():
        path = key.replace("__", "/")
        other_entry = replace(entry, ino=next(_ino))
        folder[path], export[path] = entry, other_entry
        archive[path] = Record(entry, other_entry)
    return archive, folder, export


def kinds(plan: Plan) -> list[str]:
    return [type(a).__name__ for a in plan.work]


# --- examples --------------------------------------------------------------------------------


def test_nothing_changed_means_nothing_to_do() -> None:
    archive, folder, export = synced(a=f(1), sub=d(), sub__b=f(2))
    assert reconcile(archive, folder, export, BOTH) == Plan()


def test_a_new_folder_file_is_copied_and_its_echo_is_not() -> None:
    archive, folder, export = synced()
    folder["new.txt"] = f(1)
    plan = reconcile(archive, folder, export, BOTH)
    [copy] = plan.work
    assert isinstance(copy, Copy) and copy.src == "folder" and copy.replaces is None
    # What the executor records after the copy is the new agreed state: nothing left to do.
    export["new.txt"] = replace(folder["new.txt"], ino=next(_ino))
    archive["new.txt"] = Record(folder["new.txt"], export["new.txt"])
    assert reconcile(archive, folder, export, BOTH).work == []


def test_edit_on_export_flows_back_and_replaces_the_synced_copy() -> None:
    archive, folder, export = synced(a=f(1))
    export["a"] = f(2)
    [copy] = reconcile(archive, folder, export, BOTH).work
    assert isinstance(copy, Copy) and copy.src == "export" and copy.replaces == folder["a"]


def test_deletion_is_mirrored_only_when_the_policy_says_so() -> None:
    archive, folder, export = synced(a=f(1), b=f(2), c=f(3), x=f(4))
    del folder["x"]
    [delete] = reconcile(archive, folder, export, BOTH).work
    assert delete == Delete("export", "x", export["x"])
    plan = reconcile(archive, folder, export, BOTH.model_copy(update={"mirror_deletes": False}))
    assert plan.work == []
    assert plan.actions == [Remember("x", Record(None, export["x"]))]


def test_both_changed_newer_wins_and_the_loser_is_kept() -> None:
    archive, folder, export = synced(doc__r=f(1))
    folder["doc/r"] = f(2, mtime=5 * 10**9)
    export["doc/r"] = f(3, mtime=9 * 10**9)
    plan = reconcile(archive, folder, export, BOTH)
    [conflict] = plan.conflicts
    assert conflict.winner == "export" and conflict.loser == "folder"
    assert conflict.kept_as == "doc/r.conflict-folder-19700101T000005Z"
    aside, copy = plan.work
    assert aside == Rename("folder", "doc/r", conflict.kept_as, folder["doc/r"], aside=True)
    assert isinstance(copy, Copy) and copy.src == "export" and copy.replaces is None


def test_modification_beats_deletion() -> None:
    archive, folder, export = synced(a=f(1))
    del folder["a"]
    export["a"] = f(2)
    plan = reconcile(archive, folder, export, BOTH)
    [copy] = plan.work
    assert isinstance(copy, Copy) and copy.src == "export"
    assert plan.conflicts[0].kept_as is None


def test_conflict_names_keep_the_extension_and_never_collide() -> None:
    name = conflict_name("a/report.final.txt", "export", 0, set())
    assert name == "a/report.final.conflict-export-19700101T000000Z.txt"
    assert conflict_name("a/report.final.txt", "export", 0, {name}).endswith("Z-2.txt")
    assert conflict_name(".profile", "folder", 0, set()).startswith(".profile.conflict-folder-")


def test_rename_is_recognised_by_inode() -> None:
    archive, folder, export = synced(old=f(1), keep1=f(2), keep2=f(3))
    folder["new"] = folder.pop("old")
    [rename] = reconcile(archive, folder, export, BOTH).work
    assert rename == Rename("export", "old", "new", export["old"])


def test_directory_rename_moves_the_subtree_in_one_action() -> None:
    archive, folder, export = synced(a=d(), a__x=f(1), a__y=f(2), z=f(3))
    for path in ["a", "a/x", "a/y"]:
        folder["b" + path[1:]] = folder.pop(path)
    [rename] = reconcile(archive, folder, export, BOTH).work
    assert rename == Rename("export", "a", "b", export["a"])


def test_renamed_and_edited_is_delete_plus_copy() -> None:
    archive, folder, export = synced(old=f(1), k=f(2), l=f(3))
    old = folder.pop("old")
    folder["new"] = replace(old, size=7)
    assert sorted(kinds(reconcile(archive, folder, export, BOTH))) == ["Copy", "Delete"]


def test_one_way_never_touches_the_source() -> None:
    archive, folder, export = synced(a=f(1))
    export["a"] = f(2)  # an edit on the target of folder -> export: restored, edit kept aside
    plan = reconcile(archive, folder, export, F2E)
    aside, copy = plan.work
    assert isinstance(aside, Rename) and aside.side == "export" and aside.aside
    assert isinstance(copy, Copy) and copy.src == "folder"


def test_seed_output_keeps_tester_files_and_never_deletes() -> None:
    archive, folder, export = synced(out=f(1), o2=f(2), o3=f(3))
    folder["dropped-by-tester"] = f(5)
    del export["out"]
    assert reconcile(archive, folder, export, E2F).work == []


def test_mass_deletion_halts_with_a_reason() -> None:
    archive, _folder, export = synced(a=f(1), b=f(2), sub=d(), sub__c=f(3))
    empty: dict[str, Entry] = {}
    plan = reconcile(archive, empty, export, BOTH)
    assert plan.halt is not None and "folder lost all 3 files" in plan.halt
    assert plan.steps == ()
    assert reconcile(archive, empty, export, BOTH, guard=False).work  # resume: go ahead


def test_mass_deletion_guard_ignores_small_trees_and_reported_removals() -> None:
    archive, folder, export = synced(a=f(1), b=f(2), c=f(3))
    assert reconcile(archive, folder, {}, BOTH, trusted={"a", "b", "c"}).halt is None
    small_archive, _small_folder, small_export = synced(a=f(1))
    assert reconcile(small_archive, {}, small_export, BOTH).halt is None
    assert (
        reconcile(archive, {}, export, BOTH.model_copy(update={"mirror_deletes": False})).halt
        is None
    )


def test_direction_none_does_nothing() -> None:
    archive, folder, export = synced()
    folder["a"] = f(1)
    assert reconcile(archive, folder, export, SyncPolicy(direction=Direction.NONE)) == Plan()


# --- an in-memory executor -------------------------------------------------------------------


class Failed(AssertionError):
    pass


def apply(plan: Plan, archive: dict[str, Record], snaps: dict[Side, dict[str, Entry]]) -> None:
    for step in plan.steps:
        for action in step:
            _apply(action, archive, snaps)


def _expect(snap: dict[str, Entry], path: str, entry: Entry | None) -> None:
    now = snap.get(path)
    if not (now is None and entry is None) and not (now is not None and now.unchanged(entry)):
        raise Failed(f"precondition failed at {path}: {now} != {entry}")


def _parents(snap: dict[str, Entry], path: str) -> None:
    for a in ancestors(path):
        if a not in snap:
            snap[a] = d()
        elif snap[a].kind is not Kind.DIR:
            raise Failed(f"parent {a} of {path} is not a directory")


def _apply(a: object, archive: dict[str, Record], snaps: dict[Side, dict[str, Entry]]) -> None:
    if isinstance(a, Remember):
        if a.record is None:
            archive.pop(a.path, None)
        else:
            archive[a.path] = a.record
    elif isinstance(a, Copy):
        dst = snaps[a.dst]
        _expect(snaps[a.src], a.path, a.entry)
        _expect(dst, a.path, a.replaces)
        _parents(dst, a.path)
        dst[a.path] = replace(a.entry, ino=next(_ino))
        archive[a.path] = Record.of(a.src, a.entry, dst[a.path])
    elif isinstance(a, MakeDir):
        snap = snaps[a.side]
        _parents(snap, a.path)
        if a.path in snap and snap[a.path].kind is not Kind.DIR:
            raise Failed(f"mkdir over a file at {a.path}")
        snap.setdefault(a.path, replace(a.source, ino=next(_ino)))
        archive[a.path] = Record.of(a.side, snap[a.path], a.source)
    elif isinstance(a, Delete):
        snap = snaps[a.side]
        _expect(snap, a.path, a.entry)
        if any(p.startswith(a.path + "/") for p in snap):
            raise Failed(f"rmdir of a non-empty {a.path}")
        del snap[a.path]
        archive.pop(a.path, None)
    elif isinstance(a, Rename):
        snap = snaps[a.side]
        _expect(snap, a.src, a.entry)
        if a.dst in snap:
            raise Failed(f"rename onto existing {a.dst}")
        _parents(snap, a.dst)
        for p in [p for p in snap if is_under(p, a.src)]:
            snap[a.dst + p[len(a.src) :]] = snap.pop(p)
        if not a.aside:
            for p in [p for p in archive if is_under(p, a.src)]:
                archive[a.dst + p[len(a.src) :]] = archive.pop(p)


def run_to_fixpoint(
    archive: dict[str, Record], snaps: dict[Side, dict[str, Entry]], policy: SyncPolicy
) -> int:
    """Plan and apply until a plan has no work; return how many plans had work."""
    for rounds in range(6):
        plan = reconcile(archive, snaps["folder"], snaps["export"], policy, guard=False)
        if not plan.work:
            apply(plan, archive, snaps)  # Remember-only: archive bookkeeping
            return rounds
        apply(plan, archive, snaps)
    raise AssertionError("no fixpoint after 6 rounds")


# --- random scenarios ------------------------------------------------------------------------

FILES = ["a", "b.txt", "d/x", "d/y.txt", "e/f/g"]
_mtime = itertools.count(10**18, 10**9)


def _with_dirs(files: dict[str, Entry]) -> dict[str, Entry]:
    out = dict(files)
    for path in files:
        for a in ancestors(path):
            out.setdefault(a, d())
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, Record], dict[Side, dict[str, Entry]]]:
    base = {
        p: f(draw(st.integers(1, 3)), next(_mtime)) for p in draw(st.sets(st.sampled_from(FILES)))
    }
    base = _with_dirs(base)
    snaps: dict[Side, dict[str, Entry]] = {}
    archive_sides: dict[Side, dict[str, Entry]] = {}
    for side in ("folder", "export"):
        mine = {p: replace(e, ino=next(_ino)) for p, e in base.items()}
        archive_sides[side] = dict(mine)
        files_now = {p: e for p, e in mine.items() if e.kind is Kind.FILE}
        for path in FILES:
            op = draw(st.sampled_from(["keep", "keep", "edit", "delete", "create", "rename"]))
            if (op == "edit" and path in files_now) or (op == "create" and path not in files_now):
                files_now[path] = f(draw(st.integers(1, 9)), next(_mtime))
            elif op == "delete":
                files_now.pop(path, None)
            elif op == "rename" and path in files_now:
                free = [p for p in FILES if p not in files_now and not p.startswith(path + "/")]
                if free:
                    files_now[draw(st.sampled_from(free))] = files_now.pop(path)
        dirs_kept = {p: e for p, e in mine.items() if e.kind is Kind.DIR}
        # A directory survives if something is still in it, or (sometimes) when empty.
        kept = {p: e for p, e in dirs_kept.items() if draw(st.booleans())}
        snaps[side] = _with_dirs(kept | files_now)
    archive = {p: Record(archive_sides["folder"][p], archive_sides["export"][p]) for p in base}
    return archive, snaps


def _files(snap: dict[str, Entry]) -> dict[str, tuple[int, int]]:
    return {p: (e.size, e.mtime_ns) for p, e in snap.items() if e.kind is Kind.FILE}


POLICIES = [
    BOTH,
    BOTH.model_copy(update={"mirror_deletes": False}),
    F2E,
    F2E.model_copy(update={"mirror_deletes": False}),
    E2F,
    E2F.model_copy(update={"mirror_deletes": True}),
]

fast = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
@fast
@given(scenarios(), st.sampled_from(POLICIES))
def test_plans_apply_cleanly_and_reach_a_fixpoint(
    scenario: tuple[dict[str, Record], dict[Side, dict[str, Entry]]], policy: SyncPolicy
) -> None:
    archive, snaps = scenario
    before = {side: _files(s) for side, s in snaps.items()}
    archived = {(e.size, e.mtime_ns) for r in archive.values() for e in (r.folder, r.export) if e}
    run_to_fixpoint(archive, snaps, policy)
    after = {side: _files(s) for side, s in snaps.items()}
    survivors = set(after["folder"].values()) | set(after["export"].values())

    # Nothing new is ever lost: a version no archive row explains must survive somewhere.
    for side in ("folder", "export"):
        for version in before[side].values():
            if version not in archived:
                assert version in survivors, f"{side} lost {version}"

    if policy.direction is Direction.BOTH and policy.mirror_deletes:
        assert after["folder"] == after["export"]
    if policy.direction is not Direction.BOTH:
        src: Side = "folder" if policy.direction is Direction.FOLDER_TO_EXPORT else "export"
        assert after[src] == before[src], "a one-way sync wrote to its source"
        for path, version in after[src].items():
            assert after[other(src)].get(path) == version, "the target does not follow"


@pytest.mark.slow
@fast
@given(scenarios(), st.sampled_from(POLICIES))
def test_one_way_actions_only_touch_the_target(
    scenario: tuple[dict[str, Record], dict[Side, dict[str, Entry]]], policy: SyncPolicy
) -> None:
    archive, snaps = scenario
    plan = reconcile(archive, snaps["folder"], snaps["export"], policy, guard=False)
    if policy.direction is Direction.BOTH:
        return
    target: Side = "export" if policy.direction is Direction.FOLDER_TO_EXPORT else "folder"
    for a in plan.work:
        side = a.dst if isinstance(a, Copy) else a.side  # type: ignore[union-attr]
        assert side == target, a
        if not policy.mirror_deletes and isinstance(a, Delete):
            assert a.entry.kind is Kind.FILE  # only a file replaced by a directory


@pytest.mark.slow
@fast
@given(scenarios())
def test_unchanged_sides_need_no_work(
    scenario: tuple[dict[str, Record], dict[Side, dict[str, Entry]]],
) -> None:
    archive, _ = scenario
    folder = {p: r.folder for p, r in archive.items() if r.folder}
    export = {p: r.export for p, r in archive.items() if r.export}
    for policy in POLICIES:
        assert reconcile(archive, folder, export, policy).work == []


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: f"{p.direction}-{p.mirror_deletes}")
def test_first_sync_of_two_different_trees(policy: SyncPolicy) -> None:
    folder = _with_dirs({"a": f(1), "d/x": f(2), "same": f(3, mtime=7)})
    export = _with_dirs({"b": f(4), "d/y": f(5), "same": f(3, mtime=7)})
    snaps: dict[Side, dict[str, Entry]] = {"folder": folder, "export": export}
    archive: dict[str, Record] = {}
    run_to_fixpoint(archive, snaps, policy)
    if policy.direction is Direction.BOTH:
        assert set(_files(snaps["folder"])) == {"a", "b", "d/x", "d/y", "same"}
        assert _files(snaps["folder"]) == _files(snaps["export"])
    assert set(archive) >= {"same"}


# --- only_adds: a plan after which converging needs no confirming cycle --------------------------


def test_only_adds_copies_and_directories() -> None:
    f, d = Entry(Kind.FILE, 1, 1, 0o644, 1), Entry(Kind.DIR, 0, 0, 0o755, 2)
    adds = Plan(((MakeDir("export", "d", d),), (Copy("folder", "d/f", f, None),)))
    assert only_adds(adds)
    assert only_adds(Plan(((Remember("x", None),),)))  # archive-only: no disk work
    assert only_adds(Plan(((Copy("folder", "d/f", f, f),),)))  # an update in place
    for step in (
        (Delete("export", "d/f", f),),
        (Rename("folder", "a", "b", f),),
        (Copy("folder", "d/F", f, None, to="d/F.conflict-folder-x"),),
    ):
        assert not only_adds(Plan((step,))), step
    conflict = Conflict("d/f", "folder", "export", "d/f.conflict", "both changed")
    assert not only_adds(Plan(adds.steps, (conflict,)))
