"""Which file backend the NFS test rigs build (`fd`: LocalVfs, `path`: PathVfs), and whether
with file ids of filesim's own (`FILEIDS`: the table a FAT or exFAT root gets).

tests/nfs/conftest.py runs every NFS test that builds a rig once per backend and once on the
id table, so the portable backend and the table pass the same procedure, confinement, fault
and NFSv4 suites as the fd backend with native ids.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path

from filesim.nfs.storage import Backend, FileIds, open_store
from filesim.nfs.vfs import Vfs

BACKEND: ContextVar[Backend] = ContextVar("backend", default="fd")
FILEIDS: ContextVar[FileIds] = ContextVar("fileids", default="auto")


def _visible(name: str) -> bool:
    return False


def store(root: Path, hidden: Callable[[str], bool] = _visible) -> Vfs:
    """The storage of a rig on `root`; the id table, if any, next to it (kept across rigs on
    the same root, as the state directory keeps it across restarts)."""
    table = root.with_name(f".{root.name}.fileids")
    return open_store(root, BACKEND.get(), hidden=hidden, fileids=FILEIDS.get(), table_file=table)


def expected_fileid(vfs: object, path: str, native: int) -> int:
    """The NFS file id of `path` in a rig's storage `vfs`: its native number, or the id the
    table gave it where the rig has one."""
    from filesim.nfs.fileids import FileIdVfs

    layer: object | None = vfs
    while layer is not None:
        if isinstance(layer, FileIdVfs):
            fid = layer.table.lookup(path)
            assert fid is not None, f"{path!r} has no id"
            return fid
        layer = getattr(layer, "inner", None)
    return native
