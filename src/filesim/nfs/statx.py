"""lstat with the birth time: `statx(2)` on Linux, `os.stat` (st_birthtime) elsewhere.

Python 3.11's os.stat has no birth time on Linux, and a file's birth time is what tells a
file apart from the next one that gets its inode number (file handles carry it). statx is
reached through libc; where libc lacks it (old glibc, musl) or the call is refused (ENOSYS
in some sandboxes), os.stat answers and the birth time is unknown (None).
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys
import threading
from collections.abc import Callable

from filesim.nfs.attrs import Attrs

_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_AT_EMPTY_PATH = 0x1000
_STATX_BASIC_AND_BTIME = 0x7FF | 0x800
_STATX_BTIME = 0x800
_BUFSIZE = 256
# struct statx: mask, blksize, attributes, nlink, uid, gid, mode, (pad), ino, size, blocks,
# attributes_mask, atime, btime, ctime, mtime (each sec, nsec, pad), rdev and dev majors/minors.
_STATX = struct.Struct("<IIQIIIH2xQQQQ" + "qIi" * 4 + "IIII")
_NS = 1_000_000_000
_FS_ENCODING = sys.getfilesystemencoding()


def _load() -> Callable[..., int] | None:
    if not hasattr(os, "makedev"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).statx
    except (AttributeError, OSError):
        return None
    # No argtypes: converting through them costs 3.5 of the call's 6 µs (it runs for every
    # stat). Every argument is passed as ctypes does by default, which is what statx takes:
    # int (dirfd, flags, and a mask below 2**31), bytes (char *), the buffer (a pointer).
    fn.restype = ctypes.c_int
    call: Callable[..., int] = fn
    return call


class _Statx(threading.local):
    def __init__(self) -> None:
        self.buf = ctypes.create_string_buffer(_BUFSIZE)


_fn = _load()
_local = _Statx()
_working = _fn is not None


def available() -> bool:
    """Whether `lstat` reports birth times through statx (Linux)."""
    return _working


def lstat(name: str, dir_fd: int | None = None) -> Attrs:
    """lstat of `name` (relative to `dir_fd` when given; "" with a dir_fd: that directory)."""
    global _working
    if _working and _fn is not None:
        buf = _local.buf
        flags = _AT_SYMLINK_NOFOLLOW | (_AT_EMPTY_PATH if not name else 0)
        at = _AT_FDCWD if dir_fd is None else dir_fd
        raw = name.encode(_FS_ENCODING, "surrogateescape")  # os.fsencode, without 2 calls
        if _fn(at, raw, flags, _STATX_BASIC_AND_BTIME, buf) == 0:
            return _attrs(buf)
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EPERM):
            raise OSError(code, os.strerror(code), name)
        _working = False  # a seccomp filter or an old kernel: os.stat from now on
    if not name and dir_fd is not None:
        return Attrs.of(os.fstat(dir_fd))
    return Attrs.of(os.stat(name, dir_fd=dir_fd, follow_symlinks=False))


def _attrs(buf: ctypes.Array[ctypes.c_char]) -> Attrs:
    (mask, _blksize, _attributes, nlink, uid, gid, mode, ino, size, blocks, _amask,
     a_s, a_n, _, b_s, b_n, _, c_s, c_n, _, m_s, m_n, _,
     rdev_major, rdev_minor, dev_major, dev_minor) = _STATX.unpack_from(buf)  # fmt: skip
    birth = b_s * _NS + b_n if mask & _STATX_BTIME and (b_s or b_n) else None
    # Built as a plain tuple (Attrs.__new__ is a Python function), with the device numbers of
    # the last stat kept: every stat of an export has the same st_dev, and most no st_rdev.
    return _new(Attrs, (
        mode, ino, _makedev(dev_major, dev_minor), nlink, uid, gid, size, blocks,
        _makedev(rdev_major, rdev_minor) if rdev_major or rdev_minor else 0,
        a_s * _NS + a_n, m_s * _NS + m_n, c_s * _NS + c_n, birth,
    ))  # fmt: skip


_new = tuple.__new__
_devices: dict[tuple[int, int], int] = {}


def _makedev(major: int, minor: int) -> int:
    dev = _devices.get((major, minor))
    if dev is None:
        if len(_devices) > 256:
            _devices.clear()
        dev = _devices[(major, minor)] = os.makedev(major, minor)
    return dev
