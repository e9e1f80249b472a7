"""OS clutter (Finder, Explorer, Office lock files) stays where it was made, both ways, by
default; the list is the topology's `sync.ignore`."""

from __future__ import annotations

from filesim.sync.ignore import ignoring

from .conftest import Rig, files, make_server, write

CLUTTER = [".DS_Store", "docs/._report.docx", "Thumbs.db", "docs/thumbs.db", "desktop.ini",
           "docs/~$report.docx", ".~lock.sheet.ods#"]  # fmt: skip


async def test_clutter_is_not_synced_either_way(rig: Rig) -> None:
    for name in CLUTTER:
        write(rig.folder, name, "clutter")
    write(rig.folder, "docs/report.docx", "the report")
    write(rig.store, "from-nfs/.DS_Store", "clutter")
    write(rig.store, "from-nfs/data.csv", "a,b")
    await rig.agent().run_once()
    assert set(files(rig.store)) == {"docs/report.docx", "from-nfs/.DS_Store", "from-nfs/data.csv"}
    assert set(files(rig.folder)) == {*CLUTTER, "docs/report.docx", "from-nfs/data.csv"}


async def test_an_empty_ignore_list_syncs_everything(rig: Rig) -> None:
    write(rig.folder, ".DS_Store", "kept on purpose")
    await rig.agent(make_server(settle_ms=0, ignore=[])).run_once()
    assert files(rig.store) == {".DS_Store": b"kept on purpose"}


def test_patterns_match_names_whatever_their_case() -> None:
    ignored = ignoring(["Thumbs.db", "~$*"])
    assert ignored("THUMBS.DB") and ignored("~$Budget.xlsx")
    assert not ignored("Thumbs.db.bak") and not ignored("a~$b")
    assert not ignoring([])("anything")
