"""The arguments of each call our client makes, encoded; no I/O.

The structures inside them (handles, names, sattr3) and every result structure are those of
`filesim.nfs.types`, shared with the server, so `client.py` stays about the conversation.
"""

from __future__ import annotations

from filesim.nfs.const import CreateMode, StableHow
from filesim.nfs.types import encode_diropargs3, encode_fh3, encode_sattr3
from filesim.nfs.vfs import SetAttrs
from filesim.oncrpc.programs import IPPROTO_TCP
from filesim.oncrpc.xdr import Packer


def getport_args(prog: int, vers: int, prot: int = IPPROTO_TCP) -> bytes:
    p = Packer()
    for value in (prog, vers, prot, 0):
        p.uint32(value)
    return bytes(p.buf)


def dirpath_args(path: str) -> bytes:
    """MNT and UMNT: the export path."""
    p = Packer()
    p.string(path)
    return bytes(p.buf)


def fh_args(fh: bytes) -> bytes:
    """GETATTR, FSINFO, FSSTAT, PATHCONF, READLINK: just the handle."""
    return encode_fh3(fh)


def diropargs(dir_fh: bytes, name: str) -> bytes:
    """LOOKUP, REMOVE, RMDIR."""
    return encode_diropargs3(dir_fh, name)


def access_args(fh: bytes, mask: int) -> bytes:
    p = Packer()
    p.opaque(fh)
    p.uint32(mask)
    return bytes(p.buf)


def read_args(fh: bytes, offset: int, count: int) -> bytes:
    p = Packer()
    p.opaque(fh)
    p.uint64(offset)
    p.uint32(count)
    return bytes(p.buf)


def write_args(fh: bytes, offset: int, data: bytes, stable: StableHow) -> bytes:
    p = Packer()
    p.opaque(fh)
    p.uint64(offset)
    p.uint32(len(data))
    p.uint32(stable)
    p.opaque(data)
    return bytes(p.buf)


def create_args(dir_fh: bytes, name: str, mode: CreateMode, attrs: SetAttrs) -> bytes:
    """CREATE, UNCHECKED or GUARDED (EXCLUSIVE carries a verifier instead of attributes)."""
    if mode is CreateMode.EXCLUSIVE:
        raise ValueError("EXCLUSIVE create is not supported by this client")
    p = Packer()
    p.raw(encode_diropargs3(dir_fh, name))
    p.uint32(mode)
    p.raw(encode_sattr3(attrs))
    return bytes(p.buf)


def mkdir_args(dir_fh: bytes, name: str, attrs: SetAttrs) -> bytes:
    return encode_diropargs3(dir_fh, name) + encode_sattr3(attrs)


def rename_args(from_dir: bytes, from_name: str, to_dir: bytes, to_name: str) -> bytes:
    return encode_diropargs3(from_dir, from_name) + encode_diropargs3(to_dir, to_name)


def readdirplus_args(
    dir_fh: bytes, cookie: int, verifier: bytes, dircount: int, maxcount: int
) -> bytes:
    p = Packer()
    p.opaque(dir_fh)
    p.uint64(cookie)
    p.fixed_opaque(verifier)
    p.uint32(dircount)
    p.uint32(maxcount)
    return bytes(p.buf)


def commit_args(fh: bytes, offset: int, count: int) -> bytes:
    return read_args(fh, offset, count)  # the same shape: handle, offset, count
