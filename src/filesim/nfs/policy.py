"""Who may change what about a node: the POSIX permission rules, decided in one place.

Pure functions over the mode, uid and gid of nodes (anything with `st_mode`, `st_uid`, `st_gid`)
and the `Caller` (already squashed: a squashed root is no root here). They raise `NfsError`
(PERM or ACCES, the errno a local filesystem gives) or return the mode a change leaves. Both
NFS versions call them, so NFSv3 and NFSv4 cannot disagree. References are to POSIX.1-2017
(XSH) and, where POSIX leaves a choice, to what Linux does (a kernel NFS server's behaviour).
"""

from __future__ import annotations

import dataclasses
import stat

from filesim.nfs.access import Caller, Owned, W, X, permits
from filesim.nfs.vfs import NfsError, SetAttrs
from filesim.oncrpc.programs import NfsStat

NOW = -1
"""A time in `SetAttrs` meaning "the server's current time"."""


def in_group(caller: Caller, gid: int) -> bool:
    return gid == caller.gid or gid in caller.gids


def _deny(status: NfsStat, why: str) -> NfsError:
    return NfsError(status, why)


def check_chown(node: Owned, caller: Caller, uid: int | None, gid: int | None) -> None:
    """XSH chown (with _POSIX_CHOWN_RESTRICTED, as Linux): only root changes the owner; the
    owner may set the group to one of its own groups; a non-owner may not even restate them."""
    if caller.is_root:
        return
    owner = node.st_uid == caller.uid
    if uid is not None and not (owner and uid == node.st_uid):
        raise _deny(NfsStat.PERM, "only root may change the owner of a file")
    if gid is not None and not (owner and (gid == node.st_gid or in_group(caller, gid))):
        raise _deny(NfsStat.PERM, "only the owner may change the group, to one of its groups")


def mode_after_chown(node: Owned, caller: Caller, uid: int | None, gid: int | None) -> int | None:
    """XSH chown: a successful chown clears S_ISUID and S_ISGID of a regular file (root: as
    the implementation likes), and may clear them on other nodes with an execute bit. Like
    Linux for root (every non-directory), like FreeBSD and Ganesha for others (a directory
    too); S_ISGID stays without group execute, where it means mandatory locking. None when
    the mode stays."""
    if uid is None and gid is None:
        return None
    if stat.S_ISDIR(node.st_mode) and (caller.is_root or not node.st_mode & 0o111):
        return None
    return _without_privs(node.st_mode)


def settable(node: Owned, caller: Caller, attrs: SetAttrs) -> SetAttrs:
    """The SETATTR rules together: raises when any change is refused, else returns the
    attributes to apply, the mode adjusted (S_ISGID dropped, privileges killed by a chown)."""
    check_chown(node, caller, attrs.uid, attrs.gid)
    mode = attrs.mode
    if mode is not None:
        mode = check_chmod(node, caller, mode, attrs.gid)
    check_times(node, caller, attrs.atime_ns, attrs.mtime_ns)
    if attrs.size is not None:
        check_truncate(node, caller)
    if mode_after_chown(node, caller, attrs.uid, attrs.gid) is not None:
        base = stat.S_IFMT(node.st_mode) | (stat.S_IMODE(node.st_mode) if mode is None else mode)
        mode = _without_privs(base)
        mode = stat.S_IMODE(base) if mode is None else mode
    return attrs if mode == attrs.mode else dataclasses.replace(attrs, mode=mode)


def _without_privs(mode: int) -> int | None:
    kept = mode & ~stat.S_ISUID
    if mode & stat.S_IXGRP:
        kept &= ~stat.S_ISGID
    return stat.S_IMODE(kept) if kept != mode else None


def check_chmod(node: Owned, caller: Caller, mode: int, gid: int | None = None) -> int:
    """XSH chmod: only the owner or root changes the mode (EPERM); S_ISGID asked by a caller
    outside the file's group (`gid` when the same call changes it) is cleared, not refused."""
    if caller.is_root:
        return mode
    if node.st_uid != caller.uid:
        raise _deny(NfsStat.PERM, "only the owner may change the mode of a file")
    if mode & stat.S_ISGID and not in_group(caller, node.st_gid if gid is None else gid):
        return mode & ~stat.S_ISGID
    return mode


def check_times(node: Owned, caller: Caller, atime_ns: int | None, mtime_ns: int | None) -> None:
    """XSH utimensat: any time may be set by the owner or root (else EPERM); the current time
    also by a caller with write permission (else EACCES)."""
    if caller.is_root or node.st_uid == caller.uid:
        return
    times = [t for t in (atime_ns, mtime_ns) if t is not None]
    if any(t != NOW for t in times):
        raise _deny(NfsStat.PERM, "only the owner may set a file's times to a given value")
    if times and not permits(node, caller, W):
        raise _deny(NfsStat.ACCES, "setting a file's times to now needs write permission")


def check_truncate(node: Owned, caller: Caller) -> None:
    """XSH truncate: write permission, with the owner override every NFS server grants so that
    open(O_CREAT|O_TRUNC) of a file created read-only by its owner works (the client has
    already checked the caller's permission locally, as truncate(2) does)."""
    if node.st_uid != caller.uid and not permits(node, caller, W):
        raise _deny(NfsStat.ACCES, "truncating a file needs write permission")


def mode_after_write(node: Owned, caller: Caller) -> int | None:
    """XSH write: writing a regular file may clear S_ISUID and S_ISGID; Linux clears them
    when the writer is not privileged (owner or not). None when the mode stays."""
    if caller.is_root or not stat.S_ISREG(node.st_mode):
        return None
    if not node.st_mode & (stat.S_ISUID | stat.S_ISGID):
        return None
    return _without_privs(node.st_mode)


def check_device(caller: Caller) -> None:
    """XSH mknod: creating a node other than a FIFO (a block or character device) needs
    appropriate privileges (EPERM)."""
    if not caller.is_root:
        raise _deny(NfsStat.PERM, "only root may create device nodes")


def _sticky_owner(directory: Owned, victim: Owned, caller: Caller) -> bool:
    return caller.is_root or caller.uid in (directory.st_uid, victim.st_uid)


def check_delete(directory: Owned, victim: Owned, caller: Caller) -> None:
    """XSH unlink/rmdir/rename: removing an entry needs write and search permission on its
    directory (EACCES); in a sticky (S_ISVTX) directory the caller must also own the directory
    or the entry (EPERM, as Linux answers)."""
    if not permits(directory, caller, W | X):
        raise _deny(NfsStat.ACCES, "removing an entry needs write permission on its directory")
    if directory.st_mode & stat.S_ISVTX and not _sticky_owner(directory, victim, caller):
        raise _deny(NfsStat.PERM, "in a sticky directory only owners may remove an entry")


def check_rename(
    src_dir: Owned, src: Owned, dst_dir: Owned, dst: Owned | None, caller: Caller,
    same_dir: bool,
) -> None:  # fmt: skip
    """XSH rename: the source is removed from its directory and the target (if any) from its
    own (`check_delete` for both); the target directory must be writable; a directory moved
    to another parent must itself be writable, its ".." entry changes (EACCES)."""
    check_delete(src_dir, src, caller)
    if not permits(dst_dir, caller, W | X):
        raise _deny(NfsStat.ACCES, "renaming into a directory needs write permission on it")
    if dst is not None:
        check_delete(dst_dir, dst, caller)
    if stat.S_ISDIR(src.st_mode) and not same_dir and not permits(src, caller, W):
        raise _deny(NfsStat.ACCES, "moving a directory elsewhere needs write permission on it")


def new_owner(
    directory: Owned, caller: Caller, uid: int | None, gid: int | None
) -> tuple[int, int]:
    """XSH open/mkdir: a new node belongs to the caller, its group is the caller's or (Linux,
    System V) the directory's when the directory is set-group-ID. An owner or group the client
    asks for is a chown of the caller's own new node (`check_chown` rules)."""
    own_gid = directory.st_gid if directory.st_mode & stat.S_ISGID else caller.gid
    node = _Node(0, caller.uid, own_gid)
    check_chown(node, caller, uid, gid)
    return (caller.uid if uid is None else uid), (own_gid if gid is None else gid)


def new_mode(directory: Owned, caller: Caller, mode: int, gid: int, is_dir: bool) -> int:
    """The permission bits of a new node: a directory created in a set-group-ID directory is
    set-group-ID too (Linux); a non-directory keeps S_ISGID only for a member of its group."""
    if is_dir and directory.st_mode & stat.S_ISGID:
        return mode | stat.S_ISGID
    if not is_dir and mode & stat.S_ISGID and not caller.is_root and not in_group(caller, gid):
        return mode & ~stat.S_ISGID
    return mode


class _Node:
    __slots__ = ("st_gid", "st_mode", "st_uid")

    def __init__(self, mode: int, uid: int, gid: int) -> None:
        self.st_mode, self.st_uid, self.st_gid = mode, uid, gid
