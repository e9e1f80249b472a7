"""Which tree backend the synchroniser walks with: chosen at start by what the platform can do,
or by the `sync.backend` setting (so the path backend also runs, and is tested, on Linux)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Literal

from filesim.sync.fdtree import FdTree
from filesim.sync.pathtree import PathTree
from filesim.sync.tree import Tree

Backend = Literal["auto", "fd", "path"]


def fd_usable() -> bool:
    """Whether this platform has what the fd tree needs (asked at start, never at import:
    Windows has no `dir_fd` calls and no O_DIRECTORY/O_NOFOLLOW)."""
    needs = (os.open, os.stat, os.mkdir, os.unlink, os.rmdir, os.rename, os.readlink)
    return (
        all(fn in os.supports_dir_fd for fn in needs)
        and os.scandir in os.supports_fd
        and hasattr(os, "O_DIRECTORY")
        and hasattr(os, "O_NOFOLLOW")
    )


def chosen(backend: Backend) -> Literal["fd", "path"]:
    """The tree `backend` names on this platform ("auto": fd where it is usable)."""
    if backend == "auto":
        return "fd" if fd_usable() else "path"
    if backend == "fd" and not fd_usable():
        raise OSError(
            errno.ENOTSUP,
            "sync.backend fd needs directory fds, which this platform lacks: "
            "use sync.backend auto or path",
        )
    return backend


def open_tree(root: Path | str, backend: Backend = "auto") -> Tree:
    """The tree of `root` with the backend `backend` chooses."""
    if chosen(backend) == "fd":
        return FdTree(root)
    return PathTree(root)
