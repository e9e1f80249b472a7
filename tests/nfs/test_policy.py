"""The permission policy (nfs/policy.py), one rule per test, each with its POSIX reference
(XSH = POSIX.1-2017 System Interfaces) or the Linux behaviour where POSIX leaves a choice."""

from __future__ import annotations

import stat
from dataclasses import dataclass

import pytest

from filesim.nfs import policy
from filesim.nfs.access import Caller
from filesim.nfs.vfs import NfsError, SetAttrs
from filesim.oncrpc.programs import NfsStat

ROOT = Caller(0, 0)
ALICE = Caller(1000, 1000, (1000, 50))
BOB = Caller(1001, 1001)
SQUASHED_ROOT = Caller(65534, 65534)  # what root_squash makes of uid 0


@dataclass(frozen=True)
class N:
    st_mode: int
    st_uid: int = 1000
    st_gid: int = 1000


def _status(call: object) -> NfsStat | None:
    try:
        call()  # type: ignore[operator]
    except NfsError as exc:
        return exc.status
    return None


FILE = N(stat.S_IFREG | 0o644)
DIR = N(stat.S_IFDIR | 0o777, 0, 0)


# XSH chown: "Changing the user ID is restricted to processes with appropriate privileges."
def test_only_root_changes_the_owner() -> None:
    assert _status(lambda: policy.check_chown(FILE, ROOT, 5, 5)) is None
    assert _status(lambda: policy.check_chown(FILE, ALICE, 1001, None)) == NfsStat.PERM
    assert _status(lambda: policy.check_chown(FILE, BOB, 1001, None)) == NfsStat.PERM


# pjdfstest chown/07: a non-owner restating the current owner or group still gets EPERM.
def test_a_non_owner_may_not_restate_owner_or_group() -> None:
    assert _status(lambda: policy.check_chown(FILE, BOB, 1000, 1000)) == NfsStat.PERM
    assert _status(lambda: policy.check_chown(FILE, BOB, None, 1000)) == NfsStat.PERM
    assert _status(lambda: policy.check_chown(FILE, ALICE, 1000, 1000)) is None


# XSH chown, _POSIX_CHOWN_RESTRICTED: the owner may set the group to one of its own groups.
def test_owner_changes_group_to_its_own_groups_only() -> None:
    assert _status(lambda: policy.check_chown(FILE, ALICE, None, 50)) is None
    assert _status(lambda: policy.check_chown(FILE, ALICE, None, 51)) == NfsStat.PERM


# root_squash: a squashed root is an ordinary (anonymous) caller for every rule.
def test_squashed_root_has_no_privilege() -> None:
    assert _status(lambda: policy.check_chown(FILE, SQUASHED_ROOT, 0, 0)) == NfsStat.PERM
    assert _status(lambda: policy.check_device(SQUASHED_ROOT)) == NfsStat.PERM


# XSH chown: S_ISUID and S_ISGID of a regular file are cleared (for root: implementation-
# defined; Linux clears them on non-directories); on other nodes with an execute bit they may
# be, and are for unprivileged callers (pjdfstest chown/00, as Ganesha); S_ISGID stays without
# group execute (mandatory locking).
def test_chown_clears_setuid_and_setgid() -> None:
    assert policy.mode_after_chown(N(stat.S_IFREG | 0o6755), ROOT, 5, None) == 0o755
    assert policy.mode_after_chown(N(stat.S_IFREG | 0o6745), ROOT, None, 5) == 0o2745
    assert policy.mode_after_chown(N(stat.S_IFDIR | 0o6755), ROOT, 5, 5) is None
    assert policy.mode_after_chown(N(stat.S_IFDIR | 0o6555), ALICE, None, 50) == 0o555
    assert policy.mode_after_chown(N(stat.S_IFREG | 0o6755), ALICE, None, None) is None
    allowed = policy.settable(N(stat.S_IFREG | 0o6555), ALICE, SetAttrs(uid=1000, gid=50))
    assert allowed.mode == 0o555


# XSH chmod: only the owner (or root) changes the mode: EPERM.
def test_only_owner_changes_mode() -> None:
    assert _status(lambda: policy.check_chmod(FILE, BOB, 0o777)) == NfsStat.PERM
    assert policy.check_chmod(FILE, ALICE, 0o777) == 0o777
    assert policy.check_chmod(FILE, ROOT, 0o7777) == 0o7777


# XSH chmod: S_ISGID asked by a caller outside the file's group is cleared, not refused.
def test_chmod_drops_setgid_outside_the_group() -> None:
    theirs = N(stat.S_IFREG | 0o644, 1000, 77)
    assert policy.check_chmod(theirs, ALICE, 0o2755) == 0o755
    assert policy.check_chmod(FILE, ALICE, 0o2755) == 0o2755


# XSH utimensat: explicit times by the owner or root only (EPERM); "now" also with write
# permission (EACCES without it).
@pytest.mark.parametrize(
    ("node", "caller", "times", "expected"),
    [
        (FILE, BOB, (5, 5), NfsStat.PERM),
        (FILE, ALICE, (5, 5), None),
        (FILE, ROOT, (5, 5), None),
        (FILE, BOB, (policy.NOW, policy.NOW), NfsStat.ACCES),
        (N(stat.S_IFREG | 0o666), BOB, (policy.NOW, policy.NOW), None),
        (N(stat.S_IFREG | 0o444), ALICE, (policy.NOW, policy.NOW), None),
        (N(stat.S_IFREG | 0o666), BOB, (policy.NOW, 5), NfsStat.PERM),
    ],
)
def test_utimes_rules(
    node: N, caller: Caller, times: tuple[int, int], expected: NfsStat | None
) -> None:
    assert _status(lambda: policy.check_times(node, caller, *times)) == expected


# XSH write: writing may clear S_ISUID/S_ISGID; Linux does for an unprivileged writer
# (pjdfstest chmod/12), keeps S_ISGID without group execute.
def test_write_by_unprivileged_caller_clears_setuid() -> None:
    assert policy.mode_after_write(N(stat.S_IFREG | 0o4777), BOB) == 0o777
    assert policy.mode_after_write(N(stat.S_IFREG | 0o6777), ALICE) == 0o777
    assert policy.mode_after_write(N(stat.S_IFREG | 0o2777), BOB) == 0o777
    assert policy.mode_after_write(N(stat.S_IFREG | 0o2747), BOB) is None
    assert policy.mode_after_write(N(stat.S_IFREG | 0o4777), ROOT) is None
    assert policy.mode_after_write(N(stat.S_IFREG | 0o755), BOB) is None


# XSH unlink/rmdir/rename: write and search permission on the directory (EACCES); in a
# sticky directory only the owner of the directory or of the entry (EPERM on Linux).
def test_sticky_directory_protects_others_entries() -> None:
    sticky = N(stat.S_IFDIR | 0o1777, 0, 0)
    bobs = N(stat.S_IFREG | 0o644, 1001, 1001)
    assert _status(lambda: policy.check_delete(sticky, bobs, ALICE)) == NfsStat.PERM
    assert _status(lambda: policy.check_delete(sticky, bobs, BOB)) is None
    assert _status(lambda: policy.check_delete(sticky, bobs, ROOT)) is None
    assert _status(lambda: policy.check_delete(DIR, bobs, ALICE)) is None
    closed = N(stat.S_IFDIR | 0o755, 0, 0)
    assert _status(lambda: policy.check_delete(closed, bobs, BOB)) == NfsStat.ACCES
    own_sticky = N(stat.S_IFDIR | 0o1777, 1000, 0)
    assert _status(lambda: policy.check_delete(own_sticky, bobs, ALICE)) is None


# XSH rename: source and target are removed from sticky directories under the same rule;
# a directory moved to another parent must be writable itself (its ".." changes): EACCES.
def test_rename_rules() -> None:
    sticky = N(stat.S_IFDIR | 0o1777, 0, 0)
    bobs = N(stat.S_IFREG | 0o644, 1001, 1001)
    alices = N(stat.S_IFREG | 0o644, 1000, 1000)
    assert _status(lambda: policy.check_rename(sticky, bobs, DIR, None, ALICE, False)) == (
        NfsStat.PERM
    )
    assert _status(lambda: policy.check_rename(DIR, alices, sticky, bobs, ALICE, False)) == (
        NfsStat.PERM
    )
    subdir = N(stat.S_IFDIR | 0o700, 1001, 1001)
    assert _status(lambda: policy.check_rename(DIR, subdir, DIR, None, ALICE, False)) == (
        NfsStat.ACCES
    )
    assert _status(lambda: policy.check_rename(DIR, subdir, DIR, None, ALICE, True)) is None


# XSH mknod: anything but a FIFO needs appropriate privileges (EPERM).
def test_devices_need_root() -> None:
    assert _status(lambda: policy.check_device(ROOT)) is None
    assert _status(lambda: policy.check_device(ALICE)) == NfsStat.PERM


# XSH open/mkdir: the group of a new node is the caller's, or the directory's when that is
# set-group-ID (Linux); a new directory there is set-group-ID too.
def test_new_nodes_in_setgid_directories() -> None:
    plain = N(stat.S_IFDIR | 0o777, 0, 77)
    setgid = N(stat.S_IFDIR | 0o2777, 0, 77)
    assert policy.new_owner(plain, ALICE, None, None) == (1000, 1000)
    assert policy.new_owner(setgid, ALICE, None, None) == (1000, 77)
    assert policy.new_mode(setgid, ALICE, 0o755, 77, True) == 0o2755
    assert policy.new_mode(setgid, ALICE, 0o2755, 77, False) == 0o755
    assert policy.new_mode(setgid, ROOT, 0o2755, 77, False) == 0o2755
    assert _status(lambda: policy.new_owner(plain, ALICE, 0, None)) == NfsStat.PERM
