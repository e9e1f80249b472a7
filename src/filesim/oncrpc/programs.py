"""The RPC programs filesim speaks: program and version numbers, procedures and statuses.

PORTMAP v2 and RPCBIND v3/v4 (RFC 1833), MOUNT v1/v3 and NFS v3 (RFC 1813), NLM v4 and NSM v1
(X/Open XNFS, the NFSv3 lock manager and status monitor). One enum per procedure set and status
set: the server, the client, the metrics and the fault model (`topology.faults`) all name
procedures and errors through these.
"""

from __future__ import annotations

from enum import IntEnum

PORTMAP_PROGRAM = 100000
PORTMAP_VERSION = 2
RPCBIND_VERSIONS = (2, 3, 4)
"""PORTMAP v2 and its successors RPCBIND v3 and v4: one program number."""
NFS_PROGRAM = 100003
NFS_VERSION = 3
NFS_VERSIONS = (3, 4)
MOUNT_PROGRAM = 100005
MOUNT_VERSION = 3
MOUNT_VERSIONS = (1, 3)
"""MOUNT v1 is what Windows' client and `showmount` may ask; its procedures are v3's."""
NLM_PROGRAM = 100021
NLM_VERSION = 4
NLM_VERSIONS = (4,)
"""NLM v1 and v3 are NFSv2's (32-bit ranges): not served."""
NSM_PROGRAM = 100024
NSM_VERSION = 1

IPPROTO_TCP = 6
IPPROTO_UDP = 17


class PortmapProc(IntEnum):
    NULL = 0
    SET = 1
    UNSET = 2
    GETPORT = 3
    DUMP = 4
    CALLIT = 5


class RpcbProc(IntEnum):
    """RPCBIND v3/v4 procedures (v2's GETPORT has GETADDR's number, 3)."""

    NULL = 0
    SET = 1
    UNSET = 2
    GETADDR = 3
    DUMP = 4
    CALLIT = 5
    GETTIME = 6
    UADDR2TADDR = 7
    TADDR2UADDR = 8
    GETVERSADDR = 9
    INDIRECT = 10
    GETADDRLIST = 11
    GETSTAT = 12


class NlmProc(IntEnum):
    NULL = 0
    TEST = 1
    LOCK = 2
    CANCEL = 3
    UNLOCK = 4
    GRANTED = 5
    TEST_MSG = 6
    LOCK_MSG = 7
    CANCEL_MSG = 8
    UNLOCK_MSG = 9
    GRANTED_MSG = 10
    TEST_RES = 11
    LOCK_RES = 12
    CANCEL_RES = 13
    UNLOCK_RES = 14
    GRANTED_RES = 15
    SHARE = 20
    UNSHARE = 21
    NM_LOCK = 22
    FREE_ALL = 23


class NlmStat(IntEnum):
    """nlm4_stats."""

    GRANTED = 0
    DENIED = 1
    DENIED_NOLOCKS = 2
    BLOCKED = 3
    DENIED_GRACE_PERIOD = 4
    DEADLCK = 5
    ROFS = 6
    STALE_FH = 7
    FBIG = 8
    FAILED = 9


class NsmProc(IntEnum):
    NULL = 0
    STAT = 1
    MON = 2
    UNMON = 3
    UNMON_ALL = 4
    SIMU_CRASH = 5
    NOTIFY = 6


class NsmResult(IntEnum):
    SUCCESS = 0
    FAILURE = 1


class MountProc(IntEnum):
    NULL = 0
    MNT = 1
    DUMP = 2
    UMNT = 3
    UMNTALL = 4
    EXPORT = 5


class MountStat(IntEnum):
    OK = 0
    PERM = 1
    NOENT = 2
    IO = 5
    ACCES = 13
    NOTDIR = 20
    INVAL = 22
    NAMETOOLONG = 63
    NOTSUPP = 10004
    SERVERFAULT = 10006


class NfsProc(IntEnum):
    NULL = 0
    GETATTR = 1
    SETATTR = 2
    LOOKUP = 3
    ACCESS = 4
    READLINK = 5
    READ = 6
    WRITE = 7
    CREATE = 8
    MKDIR = 9
    SYMLINK = 10
    MKNOD = 11
    REMOVE = 12
    RMDIR = 13
    RENAME = 14
    LINK = 15
    READDIR = 16
    READDIRPLUS = 17
    FSSTAT = 18
    FSINFO = 19
    PATHCONF = 20
    COMMIT = 21


class NfsStat(IntEnum):
    OK = 0
    PERM = 1
    NOENT = 2
    IO = 5
    NXIO = 6
    ACCES = 13
    EXIST = 17
    XDEV = 18
    NODEV = 19
    NOTDIR = 20
    ISDIR = 21
    INVAL = 22
    FBIG = 27
    NOSPC = 28
    ROFS = 30
    MLINK = 31
    NAMETOOLONG = 63
    NOTEMPTY = 66
    DQUOT = 69
    STALE = 70
    REMOTE = 71
    BADHANDLE = 10001
    NOT_SYNC = 10002
    BAD_COOKIE = 10003
    NOTSUPP = 10004
    TOOSMALL = 10005
    SERVERFAULT = 10006
    BADTYPE = 10007
    JUKEBOX = 10008
