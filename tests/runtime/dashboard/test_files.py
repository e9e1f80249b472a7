"""The dashboard's file access is confined like the NFS server: hostile names and symlinks
planted by a tester or a client never lead outside the folder or the store."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from filesim.runtime.dashboard.files import PathError, Tree, split_path

HOSTILE = [b"..", b"../x", b"a/../../etc/passwd", b"a/./b", b"a//b", b"x\0y", b"a" * 256,
           b".filesim-tmp-abc", b"d/.filesim-tmp-x"]  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    root = tmp_path / "folder"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f.txt").write_text("inside")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (root / "link-dir").symlink_to(outside)  # a directory symlink pointing out
    (root / "link-file").symlink_to(outside / "secret.txt")
    (root / "d" / "up").symlink_to("../..")
    return Tree(root)


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_paths_are_refused(raw: bytes) -> None:
    with pytest.raises(PathError) as caught:
        split_path(raw)
    assert caught.value.status in (400, 404)


def test_odd_but_legal_names_are_kept_byte_for_byte() -> None:
    for raw in (b"\xff\xfe.bin", b"a%2Fb", b"new\nline", b"<img src=x>.txt", b"..x", b"x.."):
        assert split_path(raw) == (raw,)
    assert split_path(b"/a/b/") == (b"a", b"b") and split_path(b"") == ()


def test_symlinks_are_never_followed(tree: Tree, tmp_path: Path) -> None:
    assert tree.list((b"link-dir",)) is None  # not a directory here: a symlink
    assert tree.stat((b"link-dir", b"secret.txt")) is None
    for parts in ((b"link-file",), (b"link-dir", b"secret.txt"), (b"d", b"up", b"outside")):
        with pytest.raises(PathError):
            tree.open_file(parts)
    with pytest.raises(PathError):
        tree.upload((b"link-dir", b"planted.txt"))
    with pytest.raises(PathError):
        tree.mkdir((b"link-dir", b"planted"))
    assert sorted(os.listdir(tmp_path / "outside")) == ["secret.txt"]
    # Deleting a symlink deletes the link, never its target.
    assert tree.remove((b"link-file",)) == "symlink"
    assert (tmp_path / "outside" / "secret.txt").read_text() == "secret"
    kinds = {i.name: i.kind for i in tree.list(()) or []}
    assert kinds == {b"d": "dir", b"link-dir": "symlink"}


def test_a_fifo_is_not_downloaded_and_does_not_hang(tree: Tree) -> None:
    os.mkfifo(tree.root / "pipe")
    done = threading.Event()

    def attempt() -> None:
        with pytest.raises(PathError) as caught:
            tree.open_file((b"pipe",))
        assert caught.value.status == 409
        done.set()

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(10)
    assert done.is_set(), "opening a FIFO blocked"


def test_upload_appears_whole_and_leaves_no_temporary_file(tree: Tree) -> None:
    upload = tree.upload((b"d", b"\xffnew.bin"))
    upload.write(b"part one, ")
    assert b"\xffnew.bin" not in os.listdir(os.fsencode(tree.root / "d"))
    assert sorted(i.name for i in tree.list((b"d",)) or []) == [b"f.txt", b"up"]  # temp hidden
    upload.write(b"part two")
    item = upload.finish()
    assert item.size == 18
    assert (tree.root / "d" / os.fsdecode(b"\xffnew.bin")).read_bytes() == b"part one, part two"
    after = sorted(["f.txt", "up", os.fsdecode(b"\xffnew.bin")])
    assert sorted(os.listdir(tree.root / "d")) == after
    aborted = tree.upload((b"d", b"never.bin"))
    aborted.write(b"x")
    aborted.abort()
    assert sorted(os.listdir(tree.root / "d")) == after


def test_remove_and_mkdir(tree: Tree) -> None:
    with pytest.raises(PathError) as caught:
        tree.remove((b"d",))
    assert caught.value.status == 409  # not empty
    tree.mkdir((b"d", b"sub"))
    with pytest.raises(PathError) as caught:
        tree.mkdir((b"d", b"sub"))
    assert caught.value.status == 409
    assert tree.remove((b"d", b"sub")) == "dir"
    with pytest.raises(PathError) as caught:
        tree.remove((b"d", b"gone"))
    assert caught.value.status == 404
    with pytest.raises(PathError):
        tree.remove(())
