"""libnfs's own client through ctypes, for checks that need the exact NFS status it saw.

`nfs-cat`/`nfs-cp` print only "Failed to ..."; libnfs's error string names the NFS3ERR_*
status the server answered, which is what a fault test has to see.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass

import pytest


def _library() -> ctypes.CDLL:
    name = ctypes.util.find_library("nfs") or "libnfs.so.13"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        if os.environ.get("CI"):
            raise
        pytest.skip("libnfs is not installed (apt-get install libnfs-utils)")
    lib.nfs_init_context.restype = ctypes.c_void_p
    lib.nfs_destroy_context.argtypes = [ctypes.c_void_p]
    lib.nfs_get_error.restype = ctypes.c_char_p
    lib.nfs_get_error.argtypes = [ctypes.c_void_p]
    lib.nfs_parse_url_full.restype = ctypes.c_void_p
    lib.nfs_parse_url_full.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.nfs_destroy_url.argtypes = [ctypes.c_void_p]
    lib.nfs_mount.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    for fn in ("nfs_mkdir", "nfs_unlink", "nfs_rmdir"):
        getattr(lib, fn).argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.nfs_stat64.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    for fn in ("nfs_symlink", "nfs_rename"):
        getattr(lib, fn).argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    lib.nfs_truncate.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint64]
    lib.nfs_creat.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p)
    ]  # fmt: skip
    lib.nfs_close.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    return lib


Path = str | bytes
"""A path on the export: bytes as they are (any byte string a name can hold), or str."""


def _raw(path: Path) -> bytes:
    return path if isinstance(path, bytes) else path.encode("utf-8", "surrogateescape")


@dataclass
class Result:
    rc: int
    error: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


class Libnfs:
    """One mounted libnfs context on 127.0.0.1:port (NFS and MOUNT on the same port)."""

    def __init__(self, port: int, export: str = "/data") -> None:
        self._lib = _library()
        self._nfs = self._lib.nfs_init_context()
        # Parsing a URL is how the port options reach the context in every libnfs version.
        url = self._lib.nfs_parse_url_full(
            self._nfs,
            f"nfs://127.0.0.1{export}/?version=3&nfsport={port}&mountport={port}".encode(),
        )
        if url:
            self._lib.nfs_destroy_url(url)
        mounted = self._call(self._lib.nfs_mount, b"127.0.0.1", export.encode())
        if not mounted.ok:
            self.close()
            raise AssertionError(f"libnfs could not mount {export} on port {port}: {mounted.error}")

    def _call(self, fn: ctypes._NamedFuncPointer, *args: object) -> Result:
        rc = fn(self._nfs, *args)
        error = self._lib.nfs_get_error(self._nfs) if rc else None
        return Result(rc, (error or b"").decode(errors="replace"))

    def mkdir(self, path: Path) -> Result:
        return self._call(self._lib.nfs_mkdir, _raw(path))

    def rmdir(self, path: Path) -> Result:
        return self._call(self._lib.nfs_rmdir, _raw(path))

    def unlink(self, path: Path) -> Result:
        return self._call(self._lib.nfs_unlink, _raw(path))

    def stat(self, path: Path) -> Result:
        buf = ctypes.create_string_buffer(256)  # struct nfs_stat_64 is 136 bytes
        return self._call(self._lib.nfs_stat64, _raw(path), buf)

    def symlink(self, target: Path, path: Path) -> Result:
        """SYMLINK `path` with the link text `target`."""
        return self._call(self._lib.nfs_symlink, _raw(target), _raw(path))

    def rename(self, old: Path, new: Path) -> Result:
        return self._call(self._lib.nfs_rename, _raw(old), _raw(new))

    def truncate(self, path: Path, size: int) -> Result:
        """SETATTR size=`size`."""
        return self._call(self._lib.nfs_truncate, _raw(path), size)

    def create(self, path: Path, mode: int = 0o644) -> Result:
        """CREATE an empty file (and close it: libnfs sends nothing more)."""
        fh = ctypes.c_void_p()
        created = self._call(self._lib.nfs_creat, _raw(path), mode, ctypes.byref(fh))
        if created.ok:
            self._lib.nfs_close(self._nfs, fh)
        return created

    def close(self) -> None:
        if self._nfs:
            self._lib.nfs_destroy_context(self._nfs)
            self._nfs = None

    def __enter__(self) -> Libnfs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
