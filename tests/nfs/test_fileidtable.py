"""The id table behind allocated file ids: rows, their log, restarts, bounds."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from filesim.nfs.fileidtable import ROOT, FileIdTable

BOTH_BACKENDS = False  # no rig here


def _tree(table: FileIdTable) -> dict[str, int]:
    return {p: fid for fid in table.rows if (p := table.path_of(fid)) is not None}


def test_paths_and_ids_survive_a_restart(tmp_path: Path) -> None:
    log = tmp_path / "ids.log"
    table = FileIdTable(log)
    d = table.add(ROOT, "dir", 2, 0, 0)
    f = table.add(d, "f.txt", 8, 0, 7)
    table.flush()
    table.close()
    again = FileIdTable(log)
    assert again.lookup("dir/f.txt") == f and again.path_of(f) == "dir/f.txt"
    assert again.rows[f].birth == 7 and again.rows[d].kind == 2


def test_a_renamed_directory_moves_its_subtree_with_one_row(tmp_path: Path) -> None:
    table = FileIdTable(tmp_path / "ids.log")
    d = table.add(ROOT, "a", 2, 0, 0)
    f = table.add(d, "deep", 8, 0, 0)
    other = table.add(ROOT, "b", 2, 0, 0)
    table.move(d, other, "moved")
    assert table.path_of(f) == "b/moved/deep"
    assert table.lookup("a/deep") is None and table.lookup("b/moved/deep") == f
    table.flush()
    table.close()
    assert FileIdTable(tmp_path / "ids.log").path_of(f) == "b/moved/deep"


def test_ids_are_never_given_out_twice_even_after_a_restart(tmp_path: Path) -> None:
    """A handle of a removed file must never name a later one: the counter outlives rows."""
    log = tmp_path / "ids.log"
    table = FileIdTable(log)
    gone = table.add(ROOT, "x", 8, 0, 0)
    table.drop(gone)
    table.flush()
    table.close()
    again = FileIdTable(log)  # compacts: the dropped row's line is gone, the counter is not
    assert again.add(ROOT, "y", 8, 0, 0) > gone


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    log = tmp_path / "ids.log"
    table = FileIdTable(log)
    kept = table.add(ROOT, "kept", 8, 0, 0)
    table.flush()
    table.close()
    with open(log, "a") as f:
        f.write("a 99 1 8 0 0 6869")  # cut off mid-line by a crash: no newline, name torn
        f.write("\na 100 1 8")
    again = FileIdTable(log)
    assert again.lookup("kept") == kept and 100 not in again.rows


def test_rows_cut_off_from_the_root_are_dropped_at_the_next_start(tmp_path: Path) -> None:
    log = tmp_path / "ids.log"
    table = FileIdTable(log)
    d = table.add(ROOT, "d", 2, 0, 0)
    for i in range(50):
        table.add(d, f"f{i}", 8, 0, 0)
    table.drop(d)  # an RMDIR of a directory whose files went behind the server's back
    table.flush()
    table.close()
    again = FileIdTable(log)
    assert set(again.rows) == {ROOT}
    assert len(log.read_text().splitlines()) == 1  # the counter only


def test_the_log_is_compacted_as_it_grows(tmp_path: Path) -> None:
    log = tmp_path / "ids.log"
    table = FileIdTable(log)
    fid = table.add(ROOT, "busy", 8, 0, 0)
    for i in range(20_000):  # one file renamed back and forth: 20,000 lines for one row
        table.move(fid, ROOT, f"busy{i % 2}")
        table.flush()
    assert len(log.read_text().splitlines()) < 10_000
    table.close()
    assert FileIdTable(log).path_of(fid) == "busy1"


names = st.text(st.characters(blacklist_characters="/\x00"), min_size=1, max_size=12)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "move", "drop"]), names, names), max_size=40))
def test_the_log_replays_to_the_same_table(tmp_path_factory: object, ops: list) -> None:  # type: ignore[type-arg]
    """Whatever sequence of changes, a restart sees the same paths and ids; names are any
    string, those that are not UTF-8 (surrogate escapes) included."""
    log = tmp_path_factory.mktemp("ids") / "ids.log"  # type: ignore[attr-defined]
    table = FileIdTable(log)
    for op, a, b in ops:
        if op == "add":
            table.add(table.lookup(a) or ROOT, b, 2, 0, 0)
        elif op == "move" and (fid := table.lookup(a)) not in (None, ROOT):
            table.move(fid, ROOT, b)
        elif op == "drop" and (fid := table.lookup(a)) is not None:
            table.drop(fid)
    table.add(ROOT, "bad-\udcff-name", 8, 0, 0)
    table.flush()
    expected = _tree(table)
    table.close()
    assert _tree(FileIdTable(log)) == expected


def test_names_with_any_lone_surrogate_survive_a_restart(tmp_path: Path) -> None:
    """Windows hands out an NTFS name's unpaired UTF-16 halves as they are: '\ud800' has no
    bytes a surrogate escape stands for, yet the table keeps it, beside escapes and pairs."""
    log = tmp_path / "ids.log"
    table = FileIdTable(log)
    names = ["\ud800", "a\udbff\udcff", "\udcff", "\ud83d\ude00", "plain", "\ud800\udc80x"]
    ids = {name: table.add(ROOT, name, 8, 0, 0) for name in names}
    table.move(ids["plain"], ROOT, "moved-\udfff")
    table.flush()
    table.close()
    again = FileIdTable(log)
    assert {n: again.lookup(n) for n in names if n != "plain"} == {
        n: i for n, i in ids.items() if n != "plain"
    }
    assert again.lookup("moved-\udfff") == ids["plain"]


def test_a_log_written_before_wide_names_reads_the_same(tmp_path: Path) -> None:
    """Logs of earlier versions hold every name as the bare hex of its bytes."""
    log = tmp_path / "ids.log"
    name = "caf\u00e9-\udcff"  # a UTF-8 name with one byte that is not UTF-8
    raw = name.encode("utf-8", "surrogateescape").hex()
    log.write_text(f"c 10\na 7 1 8 0 0 {raw}\n")
    assert FileIdTable(log).lookup(name) == 7
