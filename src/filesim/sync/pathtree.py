"""The tree backend of platforms without directory descriptors (Windows): plain OS paths,
confined by checking. A directory is acquired by `lstat`ing every component from the root: a
symlink, or a Windows junction or mount point (a name-surrogate reparse point), where a
directory is expected is refused, never followed. Before each operation in a directory, other
than a metadata read, the walk is repeated and must arrive at the very directory (device and
inode) that was acquired: a directory renamed away or swapped for a link since is refused, not
entered.

The checks are as good as path resolution allows: a directory swapped for a symlink between
the check and the call is followed for that one call (the fd tree has no such window), so the
fd tree stays the choice wherever the platform offers it (`backend.chosen`).

On Windows a file with the read-only attribute can be neither replaced nor deleted; the
synchroniser owns both trees' contents, so it clears the attribute and tries again (the new
file keeps the mode the plan gave it: only the one being replaced or removed is touched).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from filesim import nodemeta
from filesim.sync.tree import Dir, Moved, Refused, Tree, check_name
from filesim.topology.filesystems import is_link

_OPEN_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
_OPEN_FLAGS |= getattr(os, "O_CLOEXEC", 0)


def _directory(full: str, name: str) -> os.stat_result:
    """The lstat of the directory at `full`; Refused when it is a link or not a directory."""
    try:
        st = os.lstat(full)
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(errno.ENOENT, "no such directory", name) from None
    if is_link(st):
        raise Refused(errno.ELOOP, "a symlink where a directory is expected", name)
    if not stat.S_ISDIR(st.st_mode):
        raise Refused(errno.ENOTDIR, "not a directory where a directory is expected", name)
    return st


def clearing_readonly(target: str, op: Callable[[], None]) -> None:
    """Run `op` (a replace or removal of `target`); if it is refused because `target` lacks
    the owner write bit (Windows' read-only attribute), set the bit and run it once more. If it
    still fails, the attribute is put back: a failed action changes nothing."""
    try:
        op()
        return
    except PermissionError:
        try:
            st = os.lstat(target)
        except OSError:
            st = None
        if st is None or is_link(st) or st.st_mode & stat.S_IWRITE:
            raise  # not the read-only attribute (a sharing violation, an ACL): as it was
    mode = stat.S_IMODE(st.st_mode)
    os.chmod(target, mode | stat.S_IWRITE)
    try:
        op()
    except BaseException:
        with contextlib.suppress(OSError):
            os.chmod(target, mode)
        raise


class PathDir(Dir):
    """A directory of a `PathTree`: its root-relative path, OS path and identity."""

    def __init__(self, tree: PathTree, rel: str, full: str, st: os.stat_result) -> None:
        self.tree, self.rel, self.full = tree, rel, full
        self.dev, self.ino, self.users = st.st_dev, st.st_ino, 0

    def _at(self, name: str) -> str:
        check_name(name)
        return os.path.join(self.full, name)

    def _verify(self) -> None:
        """Walk to this directory again: Moved unless it is still where it was acquired."""
        if not self.tree.still_at(self.rel, self):
            raise Moved(errno.ESTALE, "the directory moved while being synced", self.rel)

    def _checked(self, name: str) -> str:
        """The OS path of `name`, once this directory proved to be still where it was."""
        self._verify()
        return self._at(name)

    def lstat(self, name: str) -> os.stat_result:
        return os.lstat(self._at(name))

    def readlink(self, name: str) -> str:
        return os.readlink(self._at(name))

    def open(self, name: str, flags: int, mode: int = 0o777) -> int:
        full = self._checked(name)
        if not flags & os.O_EXCL and is_link(os.lstat(full)):
            # No O_NOFOLLOW on Windows: look first (O_EXCL never follows a final link).
            raise OSError(errno.ELOOP, "a symlink, not a file", name)
        return os.open(full, flags | _OPEN_FLAGS, mode)

    def child(self, name: str) -> PathDir:
        full = self._checked(name)
        rel = f"{self.rel}/{name}" if self.rel else name
        return PathDir(self.tree, rel, full, _directory(full, name))

    def dup(self) -> PathDir:
        return PathDir(self.tree, self.rel, self.full, os.lstat(self.full))

    def scandir(self) -> AbstractContextManager[Iterator[os.DirEntry[str]]]:
        self._verify()
        return os.scandir(self.full)

    def entry_stat(self, item: os.DirEntry[str]) -> os.stat_result:
        st = item.stat(follow_symlinks=False)
        if st.st_ino == 0:  # Windows lists no file ids: ask the file itself
            st = os.lstat(self._at(item.name))
        return st

    def mkdir(self, name: str, mode: int) -> None:
        os.mkdir(self._checked(name), mode)

    def chmod_dir(self, name: str, mode: int) -> None:
        full = self._checked(name)
        _directory(full, name)
        os.chmod(full, mode)

    def chmod(self, name: str, mode: int) -> None:
        os.chmod(self._checked(name), mode)

    def utime(self, name: str, ns: tuple[int, int]) -> None:
        os.utime(self._checked(name), ns=ns)

    def unlink(self, name: str) -> None:
        full = self._checked(name)
        clearing_readonly(full, lambda: os.unlink(full))

    def rmdir(self, name: str) -> None:
        full = self._checked(name)
        clearing_readonly(full, lambda: os.rmdir(full))

    def rmtree(self, name: str) -> None:
        shutil.rmtree(self._checked(name))  # refuses a top-level link itself

    def rename(self, name: str, dst: Dir, dst_name: str) -> None:
        assert isinstance(dst, PathDir), "a Dir of another tree backend"
        src, target = self._checked(name), dst._checked(dst_name)
        # os.replace: Windows' os.rename refuses an existing target, POSIX's does not.
        clearing_readonly(target, lambda: os.replace(src, target))

    def rename_new(self, name: str, dst_name: str) -> bool:
        return False  # no portable rename that refuses a target: the caller looks first

    def symlink(self, target: str, name: str) -> None:
        os.symlink(target, self._checked(name))

    def utime_link(self, name: str, ns: tuple[int, int]) -> None:
        if os.utime in os.supports_follow_symlinks:
            os.utime(self._at(name), ns=ns, follow_symlinks=False)

    def placeholder(self, name: str) -> bool:
        if not hasattr(os, "getxattr"):
            return False
        try:
            meta = nodemeta.decode(
                os.getxattr(self._at(name), nodemeta.XATTR, follow_symlinks=False)
            )
        except OSError:  # no such attribute (the common case), or none on this filesystem
            return False
        return meta is not None and meta.placeholder

    def close(self) -> None:
        return None


class PathTree(Tree):
    """The directory `root`, walked by path with every component lstat-checked."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        # The root may be a symlink (macOS /tmp): it is configuration, not content.
        self._base = os.path.realpath(self.root)

    @property
    def exists(self) -> bool:
        return os.path.isdir(self._base)

    def close(self) -> None:
        return None

    def acquire(self, path: str, make_root: bool = False) -> PathDir:
        d = self._walk(path, make_root)
        d.users += 1
        return d

    def release(self, d: Dir) -> None:
        d.users -= 1

    def _walk(self, path: str, make_root: bool = False) -> PathDir:
        if make_root:
            os.makedirs(self._base, exist_ok=True)
        full = self._base
        try:
            st = os.stat(full)
        except (FileNotFoundError, NotADirectoryError):
            raise FileNotFoundError(errno.ENOENT, "no such directory", str(self.root)) from None
        for part in path.split("/") if path else ():
            check_name(part)
            full = os.path.join(full, part)
            st = _directory(full, part)
        return PathDir(self, path, full, st)

    def still_at(self, path: str, d: Dir) -> bool:
        try:
            now = self._walk(path)
        except OSError:
            return False
        return (now.dev, now.ino) == (d.dev, d.ino)
