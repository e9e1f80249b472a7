"""Choosing the file backend of an export by what the platform can do, at start.

`fd` is `LocalVfs` (directory fds and *at calls: the tighter confinement), `path` is
`PathVfs` (plain paths, every component lstat-checked: Windows, or by choice), `auto` the
first of them this platform supports. Nothing here is decided at import time. A root whose
names ignore case (probed at start) gets `CaseExactVfs` around its backend.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from filesim.nfs import localfs
from filesim.nfs.caseexact import CaseExactVfs
from filesim.nfs.localfs import LocalVfs
from filesim.nfs.pathfs import PathVfs
from filesim.nfs.vfs import Vfs
from filesim.topology.layout import case_insensitive

Backend = Literal["auto", "fd", "path"]
BACKENDS: tuple[Backend, ...] = ("auto", "fd", "path")


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
    root: Path, backend: Backend = "auto", hidden: Callable[[str], bool] = _visible
) -> Vfs:
    """The storage of an export rooted at `root`; exact names where the root ignores case."""
    store: Vfs = (
        LocalVfs(root, hidden=hidden) if chosen(backend) == "fd" else PathVfs(root, hidden=hidden)
    )
    if case_insensitive(root):
        store = CaseExactVfs(store)
    return store
