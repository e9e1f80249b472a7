"""Choosing the file backend of an export by what the platform can do, at start.

`fd` is `LocalVfs` (directory fds and *at calls: the tighter confinement), `path` is
`PathVfs` (plain paths, every component lstat-checked: Windows, or by choice), `auto` the
first of them this platform supports. Nothing here is decided at import time. A root whose
file numbers do not last (FAT, exFAT, FUSE, SMB: `filesim.topology.filesystems`) gets file ids
of filesim's own (`FileIdVfs`) with `fileids: auto`, around `CaseExactVfs` where its names
ignore case (probed at start).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from filesim.nfs import localfs
from filesim.nfs.caseexact import CaseExactVfs
from filesim.nfs.fileids import FileIdVfs
from filesim.nfs.localfs import LocalVfs
from filesim.nfs.pathfs import PathVfs
from filesim.nfs.vfs import Vfs
from filesim.topology.filesystems import stable_file_ids
from filesim.topology.layout import case_insensitive

Backend = Literal["auto", "fd", "path"]
BACKENDS: tuple[Backend, ...] = ("auto", "fd", "path")
FileIds = Literal["auto", "native", "table"]


def _visible(name: str) -> bool:
    return False


def chosen(backend: Backend) -> Literal["fd", "path"]:
    """The backend `backend` names on this platform ("auto": fd where it is usable)."""
    if backend == "auto":
        return "fd" if localfs.usable() else "path"
    if backend == "fd" and not localfs.usable():
        raise OSError("the fd storage backend needs directory fds, which this platform lacks: "
                      "use backend auto or path")  # fmt: skip
    return backend


def open_store(
    root: Path, backend: Backend = "auto", hidden: Callable[[str], bool] = _visible,
    fileids: FileIds = "auto", table_file: Path | None = None,
) -> Vfs:  # fmt: skip
    """The storage of an export rooted at `root`: exact names where it ignores case, file ids
    of filesim's own where its numbers do not last (or `fileids: table`; kept in `table_file`).
    """
    store: Vfs = (
        LocalVfs(root, hidden=hidden) if chosen(backend) == "fd" else PathVfs(root, hidden=hidden)
    )
    if case_insensitive(root):
        store = CaseExactVfs(store)
    if fileids != "native":  # (the mount table is read only when the answer matters)
        stable = stable_file_ids(root)
        if fileids == "table" or not stable:
            # Outside the exact-name check: only names that exist as listed get a row.
            store = FileIdVfs(store, table_file, native_stable=stable)
    return store
