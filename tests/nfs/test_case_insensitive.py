"""An export root on a case-insensitive filesystem (NTFS, lowntfs-3g ignore_case): a name
exists only as the directory lists it, so no call reaches another file through a case
variant of its name (issue 13: what macOS's and Windows' default filesystems do today)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from filesim.nfs.caseexact import CaseExactVfs
from filesim.oncrpc.programs import NfsProc, NfsStat
from filesim.topology.layout import case_insensitive as probe
from tests.support.ntfs import NtfsImage, ntfs_ignore_case
from tests.support.rig import Rig, make_rig, sattr


@pytest.fixture
def ntfs(tmp_path: Path) -> Iterator[NtfsImage]:
    with ntfs_ignore_case(tmp_path) as image:
        yield image


@pytest.fixture
def rig(ntfs: NtfsImage) -> Iterator[Rig]:
    export = ntfs.mountpoint / "export"
    export.mkdir()
    (export / "Report.txt").write_bytes(b"quarterly figures")
    rig = make_rig(export)
    yield rig
    rig.export.vfs.close()


def _report(rig: Rig) -> bytes:
    return (rig.root / "report.txt").read_bytes()


def test_the_probe_finds_ntfs_insensitive_and_ext4_not(ntfs: NtfsImage, tmp_path: Path) -> None:
    assert probe(ntfs.mountpoint) and not probe(tmp_path)
    assert list(ntfs.mountpoint.iterdir()) == []  # the probe file is gone


def test_the_store_gets_exact_names(rig: Rig) -> None:
    layers = [rig.export.vfs]
    while hasattr(layers[-1], "inner"):
        layers.append(layers[-1].inner)
    assert any(isinstance(layer, CaseExactVfs) for layer in layers), layers


def test_create_of_a_case_variant_answers_exist_and_keeps_the_file(rig: Rig) -> None:
    root = rig.mount("/data")
    for how in (0, 1):  # UNCHECKED (truncated the file before), GUARDED
        p = rig.dirop(root, "REPORT.TXT")
        p.uint32(how)
        sattr(p, mode=0o644, size=0)
        assert rig.fails(NfsProc.CREATE, p) == NfsStat.EXIST
    assert _report(rig) == b"quarterly figures"


def test_lookup_and_remove_of_a_case_variant_answer_noent(rig: Rig) -> None:
    root = rig.mount("/data")
    assert rig.fails(NfsProc.LOOKUP, rig.dirop(root, "REPORT.TXT")) == NfsStat.NOENT
    assert rig.fails(NfsProc.REMOVE, rig.dirop(root, "Report.TXT")) == NfsStat.NOENT
    assert _report(rig) == b"quarterly figures"
    rig.lookup(root, "report.txt")  # the name as listed


def test_rename_onto_a_case_variant_of_another_file_answers_exist(rig: Rig) -> None:
    root = rig.mount("/data")
    rig.create(root, "draft.txt")
    p = rig.dirop(root, "draft.txt")
    p.raw(rig.dirop(root, "REPORT.TXT").getvalue())
    assert rig.fails(NfsProc.RENAME, p) == NfsStat.EXIST
    assert _report(rig) == b"quarterly figures"
    assert sorted(p.name for p in rig.root.iterdir()) == ["draft.txt", "report.txt"]


def test_a_case_only_rename_changes_the_name_on_disk(rig: Rig, ntfs: NtfsImage) -> None:
    root = rig.mount("/data")
    p = rig.dirop(root, "report.txt")
    p.raw(rig.dirop(root, "REPORT.TXT").getvalue())
    rig.ok(NfsProc.RENAME, p)
    rig.export.vfs.close()
    assert ntfs.names_on_disk("export") == ["REPORT.TXT"]
    assert (ntfs.mountpoint / "export" / "report.txt").read_bytes() == b"quarterly figures"
