"""NFSv3-only types and flags (RFC 1813): file types, stable_how, createmode, time_how, ACCESS
and FSINFO bits, size limits. Program numbers, procedures and statuses are in
`filesim.oncrpc.programs`."""

from __future__ import annotations

from enum import IntEnum


class Ftype(IntEnum):
    REG = 1
    DIR = 2
    BLK = 3
    CHR = 4
    LNK = 5
    SOCK = 6
    FIFO = 7


class StableHow(IntEnum):
    UNSTABLE = 0
    DATA_SYNC = 1
    FILE_SYNC = 2


class CreateMode(IntEnum):
    UNCHECKED = 0
    GUARDED = 1
    EXCLUSIVE = 2


class TimeHow(IntEnum):
    DONT_CHANGE = 0
    SET_TO_SERVER_TIME = 1
    SET_TO_CLIENT_TIME = 2


# ACCESS bits
ACCESS_READ = 0x01
ACCESS_LOOKUP = 0x02
ACCESS_MODIFY = 0x04
ACCESS_EXTEND = 0x08
ACCESS_DELETE = 0x10
ACCESS_EXECUTE = 0x20

# FSINFO properties
FSF_LINK = 0x01
FSF_SYMLINK = 0x02
FSF_HOMOGENEOUS = 0x08
FSF_CANSETTIME = 0x10

NFS3_FHSIZE = 64
NFS3_COOKIEVERFSIZE = 8
NFS3_CREATEVERFSIZE = 8
NFS3_WRITEVERFSIZE = 8
MNTPATHLEN = 1024
MNTNAMLEN = 255
NAME_MAX = 255
PATH_MAX = 4096
