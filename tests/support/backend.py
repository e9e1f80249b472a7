"""Which file backend the NFS test rigs build (`fd`: LocalVfs, `path`: PathVfs).

tests/nfs/conftest.py runs every NFS test that builds a rig once per backend, so the portable
backend passes the same procedure, confinement, fault and NFSv4 suites as the fd one.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path

from filesim.nfs.storage import Backend, open_store
from filesim.nfs.vfs import Vfs

BACKEND: ContextVar[Backend] = ContextVar("backend", default="fd")


def _visible(name: str) -> bool:
    return False


def store(root: Path, hidden: Callable[[str], bool] = _visible) -> Vfs:
    return open_store(root, BACKEND.get(), hidden=hidden)
