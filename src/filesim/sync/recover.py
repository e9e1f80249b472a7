"""Starting safely: after a crash, and on an export store that is not the one the archive knew.

Both run in the worker thread before the first cycle of an agent (with the temp-file cleanup of
the executor), so the first plan sees an archive that explains the disks.
"""

from __future__ import annotations

import os
from pathlib import Path

from filesim.sync.archive import SyncArchive
from filesim.sync.backend import Backend
from filesim.sync.scan import stat_path
from filesim.sync.state import Record, Side, Update, other

_STORE_XATTR = "user.filesim.store"


def recover_published(
    archive: SyncArchive, folder: Path, store: Path, backend: Backend = "auto"
) -> int:
    """After a crash: a copy that was published but not yet recorded is ours — record it, or
    the next plan would see two unexplained versions (a false conflict) or resurrect a file
    deleted since. Clears the intents; returns how many copies were recorded."""
    roots: dict[Side, Path] = {"folder": folder, "export": store}
    updates: list[Update] = []
    for path, src, entry in archive.intents():
        published = stat_path(roots[other(src)], path, backend)
        if published is not None and entry.same_content(published):
            updates.append((path, Record.of(src, entry, published)))
    archive.apply_batch([], updates)
    return len(updates)


def adopt_store(archive: SyncArchive, store: Path) -> bool:
    """Make sure the archive belongs to this very store directory; True when it did not.

    A store that is not the directory the archive was made with (recreated: a fresh emptyDir
    in Kubernetes, a wiped state directory) makes the archive meaningless, and following it
    would delete from the folder everything the new store lacks. Then the archive is
    forgotten: the next sync merges the two trees as on a first run, losing nothing.
    """
    store.mkdir(parents=True, exist_ok=True)
    ident = store_identity(store)
    known = archive.store_identity()
    is_new = known is not None and known != ident and bool(archive.records)
    if is_new:
        archive.forget()
    archive.set_store_identity(ident)
    return is_new


def store_identity(store: Path) -> str:
    """A name for this very directory: an id kept in an extended attribute (invisible to NFS
    clients and scanners); where there are none, device and inode (which a recreated
    directory may well reuse)."""
    try:
        return os.getxattr(store, _STORE_XATTR).decode()
    except (OSError, AttributeError):
        pass
    ident = os.urandom(8).hex()
    try:
        os.setxattr(store, _STORE_XATTR, ident.encode())
        return ident
    except (OSError, AttributeError):
        st = os.stat(store)
        return f"{st.st_dev}:{st.st_ino}"
