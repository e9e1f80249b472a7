"""READDIR snapshots are capped in count and in entries (issue 10, item 9): cookie-0 READDIRs
of a large directory, repeated, do not each keep a new copy of it."""

from __future__ import annotations

from pathlib import Path

from filesim.nfs.export import DirListings
from filesim.nfs.localfs import LocalVfs


def test_repeated_cookie_zero_listings_hold_bounded_entries(tmp_path: Path) -> None:
    root = tmp_path / "e"
    (root / "big").mkdir(parents=True)
    for i in range(2000):
        (root / "big" / f"f{i:05}").touch()
    vfs = LocalVfs(root)
    ino = vfs.stat("big").st_ino
    listings = DirListings(max_entries=5000)
    verifiers = []
    for _ in range(80):
        entries, verifier = listings.listing(vfs, "big", ino, 0, b"\0" * 8)
        assert len(entries) == 2002
        verifiers.append(verifier)
    assert listings.entries <= 5000
    # the newest listing pages on from its own snapshot
    again, same = listings.listing(vfs, "big", ino, 100, verifiers[-1])
    assert same == verifiers[-1] and again is entries


def test_one_listing_larger_than_the_cap_is_still_served(tmp_path: Path) -> None:
    root = tmp_path / "e"
    (root / "d").mkdir(parents=True)
    for i in range(50):
        (root / "d" / f"f{i}").touch()
    vfs = LocalVfs(root)
    ino = vfs.stat("d").st_ino
    listings = DirListings(max_entries=10)
    entries, verifier = listings.listing(vfs, "d", ino, 0, b"\0" * 8)
    assert listings.listing(vfs, "d", ino, 20, verifier) == (entries, verifier)
