"""A small blocking NFSv3 client: PORTMAP v2, MOUNT v3 and NFS v3 over TCP, AUTH_SYS.

Built for `filesim verify` and for tests that need real NFS I/O without a kernel client. One
call at a time over one connection (a second one for MOUNT when a server, like NFS-Ganesha,
serves it on its own port). Every NFS error raises `NfsStatusError`, which carries the status,
the operation and the path, e.g. `NFS REMOVE /data/a.txt: NFS3ERR_ROFS`.

    with NfsClient("127.0.0.1", 2049) as nfs:
        root = nfs.mnt("/data")
        fh = nfs.write_file(root, "hello.txt", b"hi")
        assert nfs.read_all(fh) == b"hi"
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from types import TracebackType

from filesim.nfs.const import CreateMode, StableHow
from filesim.nfs.mount import ExportEntry, decode_exports, decode_mountres3_ok
from filesim.nfs.types import (
    EntryPlus3,
    Fattr,
    FsInfo,
    WriteResult,
    decode_dirlistplus3,
    decode_fattr3,
    decode_fh3,
    decode_post_op_attr,
    decode_post_op_fh3,
    decode_read3_data,
    decode_wcc_data,
)
from filesim.nfs.vfs import SetAttrs
from filesim.nfsclient import codec
from filesim.nfsclient.rpc import (
    NfsClientError,
    NfsConnectionError,
    RpcConnection,
    RpcError,
    RpcTimeout,
)
from filesim.oncrpc.const import AuthFlavor
from filesim.oncrpc.message import Credentials
from filesim.oncrpc.programs import (
    IPPROTO_TCP,
    MOUNT_PROGRAM,
    MOUNT_VERSION,
    NFS_PROGRAM,
    NFS_VERSION,
    PORTMAP_PROGRAM,
    PORTMAP_VERSION,
    MountProc,
    MountStat,
    NfsProc,
    NfsStat,
    PortmapProc,
)
from filesim.oncrpc.xdr import Unpacker

__all__ = [
    "EntryPlus3",
    "ExportEntry",
    "Fattr",
    "FsInfo",
    "MountError",
    "NfsClient",
    "NfsClientError",
    "NfsConnectionError",
    "NfsStatusError",
    "RpcError",
    "RpcTimeout",
    "WriteResult",
]

CHUNK = 256 << 10
"""Bytes per READ/WRITE call; every server we talk to takes at least this much."""


class NfsStatusError(NfsClientError):
    """An NFS procedure answered with a status other than NFS3_OK."""

    def __init__(self, status: NfsStat, op: str, path: str) -> None:
        super().__init__(f"NFS {op} {path}: NFS3ERR_{status.name}")
        self.status, self.op, self.path = status, op, path


class MountError(NfsClientError):
    """MNT refused to hand out a handle for an export path."""

    def __init__(self, status: MountStat, path: str, address: str) -> None:
        super().__init__(f"MOUNT {path} on {address}: MNT3ERR_{status.name}")
        self.status, self.path = status, path


def _nfs_status(value: int) -> NfsStat:
    try:
        return NfsStat(value)
    except ValueError:
        return NfsStat.SERVERFAULT


def _skip_wcc_data(u: Unpacker) -> None:
    decode_wcc_data(u)


class NfsClient:
    """A blocking NFSv3 client bound to one server (NFS, MOUNT and PORTMAP on `port`)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        mount_port: int | None = None,
        timeout: float = 10.0,
        uid: int = 0,
        gid: int = 0,
    ) -> None:
        self.host, self.port = host, port
        self.timeout = timeout
        self.cred = Credentials(AuthFlavor.AUTH_SYS, uid, gid, (gid,), socket.gethostname()[:64])
        self._rpc = RpcConnection(host, port, timeout, self.cred)
        self._mount_rpc = self._rpc
        if mount_port is not None and mount_port != port:
            self._mount_rpc = RpcConnection(host, mount_port, timeout, self.cred)
        self._paths: dict[bytes, str] = {}
        """Handle -> path, learnt from MNT/LOOKUP/CREATE, so error messages name paths."""

    def __enter__(self) -> NfsClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._rpc.close()
        if self._mount_rpc is not self._rpc:
            self._mount_rpc.close()

    # ------------------------------------------------------------------ PORTMAP v2
    def portmap_null(self) -> None:
        self._rpc.call(PORTMAP_PROGRAM, PORTMAP_VERSION, PortmapProc.NULL)

    def getport(self, prog: int, vers: int, prot: int = IPPROTO_TCP) -> int:
        """The port the portmapper reports for a program (0: not registered)."""
        args = codec.getport_args(prog, vers, prot)
        return self._rpc.call(PORTMAP_PROGRAM, PORTMAP_VERSION, PortmapProc.GETPORT, args).uint32()

    # ------------------------------------------------------------------ MOUNT v3
    def _mount_call(self, proc: int, args: bytes = b"") -> Unpacker:
        return self._mount_rpc.call(MOUNT_PROGRAM, MOUNT_VERSION, proc, args)

    def mount_null(self) -> None:
        self._mount_call(MountProc.NULL)

    def mnt(self, path: str) -> bytes:
        """The root handle of the export (or exported subdirectory) `path`."""
        u = self._mount_call(MountProc.MNT, codec.dirpath_args(path))
        status = u.uint32()
        if status != MountStat.OK:
            known = status in MountStat._value2member_map_
            error = MountStat(status) if known else MountStat.SERVERFAULT
            raise MountError(error, path, self._mount_rpc.address)
        fh, _ = decode_mountres3_ok(u)
        self._paths[fh] = path
        return fh

    def umnt(self, path: str) -> None:
        self._mount_call(MountProc.UMNT, codec.dirpath_args(path))

    def exports(self) -> list[ExportEntry]:
        return decode_exports(self._mount_call(MountProc.EXPORT))

    # ------------------------------------------------------------------ NFS v3
    def _path(self, fh: bytes, name: str | None = None) -> str:
        base = self._paths.get(fh, f"<fh {fh.hex()[:16]}>")
        return base if name is None else f"{base.rstrip('/')}/{name}"

    def _learn(self, fh: bytes | None, dir_fh: bytes, name: str) -> None:
        if fh is not None and name not in (".", ".."):
            self._paths[fh] = self._path(dir_fh, name)

    def _nfs(
        self,
        proc: NfsProc,
        args: bytes,
        path: str,
        head: Callable[[Unpacker], object] | None = None,
    ) -> Unpacker:
        """Call `proc`; `head` decodes what failure and success bodies both start with (their
        attributes). Raises NfsStatusError, naming `path`, unless the status is NFS3_OK."""
        u = self._rpc.call(NFS_PROGRAM, NFS_VERSION, proc, args)
        status = _nfs_status(u.uint32())
        if head is not None:
            head(u)
        if status != NfsStat.OK:
            raise NfsStatusError(status, proc.name, path)
        return u

    def null(self) -> None:
        self._rpc.call(NFS_PROGRAM, NFS_VERSION, NfsProc.NULL)

    def getattr(self, fh: bytes) -> Fattr:
        u = self._nfs(NfsProc.GETATTR, codec.fh_args(fh), self._path(fh))
        return decode_fattr3(u)

    def lookup(self, dir_fh: bytes, name: str) -> tuple[bytes, Fattr | None]:
        u = self._nfs(NfsProc.LOOKUP, codec.diropargs(dir_fh, name), self._path(dir_fh, name))
        fh = decode_fh3(u)
        attrs = decode_post_op_attr(u)
        self._learn(fh, dir_fh, name)
        return fh, attrs

    def walk(self, root_fh: bytes, path: str) -> bytes:
        """The handle of `path` (slash-separated, relative to `root_fh`), one LOOKUP a part."""
        fh = root_fh
        for part in path.split("/"):
            if part:
                fh, _ = self.lookup(fh, part)
        return fh

    def access(self, fh: bytes, mask: int) -> int:
        args = codec.access_args(fh, mask)
        u = self._nfs(NfsProc.ACCESS, args, self._path(fh), decode_post_op_attr)
        return u.uint32()

    def read(self, fh: bytes, offset: int, count: int) -> tuple[bytes, bool]:
        """Up to `count` bytes at `offset`, and whether the end of the file was reached."""
        args = codec.read_args(fh, offset, count)
        u = self._nfs(NfsProc.READ, args, self._path(fh), decode_post_op_attr)
        return decode_read3_data(u)

    def write(
        self, fh: bytes, offset: int, data: bytes, stable: StableHow = StableHow.FILE_SYNC
    ) -> WriteResult:
        args = codec.write_args(fh, offset, data, stable)
        u = self._nfs(NfsProc.WRITE, args, self._path(fh), _skip_wcc_data)
        return WriteResult.decode(u)

    def create(
        self,
        dir_fh: bytes,
        name: str,
        mode: CreateMode = CreateMode.UNCHECKED,
        perm: int = 0o644,
    ) -> bytes:
        """Create a regular file: UNCHECKED truncates an existing one, GUARDED fails with EXIST."""
        attrs = SetAttrs(mode=perm, size=0 if mode is CreateMode.UNCHECKED else None)
        args = codec.create_args(dir_fh, name, mode, attrs)
        return self._created(NfsProc.CREATE, args, dir_fh, name)

    def mkdir(self, dir_fh: bytes, name: str, perm: int = 0o755) -> bytes:
        args = codec.mkdir_args(dir_fh, name, SetAttrs(mode=perm))
        return self._created(NfsProc.MKDIR, args, dir_fh, name)

    def _created(self, proc: NfsProc, args: bytes, dir_fh: bytes, name: str) -> bytes:
        u = self._nfs(proc, args, self._path(dir_fh, name))
        fh = decode_post_op_fh3(u)
        if fh is None:  # allowed by RFC 1813; a LOOKUP gets the handle
            fh, _ = self.lookup(dir_fh, name)
        self._learn(fh, dir_fh, name)
        return fh

    def remove(self, dir_fh: bytes, name: str) -> None:
        self._nfs(NfsProc.REMOVE, codec.diropargs(dir_fh, name), self._path(dir_fh, name))

    def rmdir(self, dir_fh: bytes, name: str) -> None:
        self._nfs(NfsProc.RMDIR, codec.diropargs(dir_fh, name), self._path(dir_fh, name))

    def rename(self, from_dir: bytes, from_name: str, to_dir: bytes, to_name: str) -> None:
        args = codec.rename_args(from_dir, from_name, to_dir, to_name)
        what = f"{self._path(from_dir, from_name)} -> {self._path(to_dir, to_name)}"
        self._nfs(NfsProc.RENAME, args, what)

    def readdirplus(
        self, dir_fh: bytes, dircount: int = 8192, maxcount: int = 32768
    ) -> list[EntryPlus3]:
        """Every entry of a directory except `.` and `..`, paging with cookies until eof."""
        entries: list[EntryPlus3] = []
        cookie, verifier = 0, bytes(8)
        while True:
            page, verifier, eof = self._readdirplus_page(
                dir_fh, cookie, verifier, dircount, maxcount
            )
            entries.extend(e for e in page if e.name not in (".", ".."))
            if eof or not page:
                return entries
            cookie = page[-1].cookie

    def _readdirplus_page(
        self, dir_fh: bytes, cookie: int, verifier: bytes, dircount: int, maxcount: int
    ) -> tuple[list[EntryPlus3], bytes, bool]:
        args = codec.readdirplus_args(dir_fh, cookie, verifier, dircount, maxcount)
        u = self._nfs(NfsProc.READDIRPLUS, args, self._path(dir_fh), decode_post_op_attr)
        verifier = bytes(u.fixed_opaque(8))
        page, eof = decode_dirlistplus3(u)
        for entry in page:
            self._learn(entry.fh, dir_fh, entry.name)
        return page, verifier, eof

    def commit(self, fh: bytes, offset: int = 0, count: int = 0) -> bytes:
        """Flush unstable writes; returns the write verifier."""
        args = codec.commit_args(fh, offset, count)
        u = self._nfs(NfsProc.COMMIT, args, self._path(fh), _skip_wcc_data)
        return bytes(u.fixed_opaque(8))

    def fsinfo(self, fh: bytes) -> FsInfo:
        u = self._nfs(NfsProc.FSINFO, codec.fh_args(fh), self._path(fh), decode_post_op_attr)
        return FsInfo.decode(u)

    # ------------------------------------------------------------------ whole files
    def read_all(self, fh: bytes) -> bytes:
        """The whole content of a file, READ by READ until eof."""
        parts: list[bytes] = []
        offset = 0
        while True:
            data, eof = self.read(fh, offset, CHUNK)
            parts.append(data)
            offset += len(data)
            if eof or not data:
                return b"".join(parts)

    def write_all(self, fh: bytes, data: bytes, stable: StableHow = StableHow.UNSTABLE) -> None:
        """Write `data` from offset 0, then COMMIT unless every write was FILE_SYNC."""
        offset = 0
        synced = True
        while offset < len(data):
            result = self.write(fh, offset, data[offset : offset + CHUNK], stable)
            if result.count == 0:
                raise NfsStatusError(NfsStat.IO, "WRITE (no progress)", self._path(fh))
            synced = synced and result.committed == StableHow.FILE_SYNC
            offset += result.count
        if not synced:
            self.commit(fh)

    def write_file(
        self,
        dir_fh: bytes,
        name: str,
        data: bytes,
        mode: CreateMode = CreateMode.GUARDED,
    ) -> bytes:
        """Create `name` in `dir_fh` (GUARDED by default: never overwrite), write and commit."""
        fh = self.create(dir_fh, name, mode)
        self.write_all(fh, data)
        return fh

    def listdir(self, dir_fh: bytes) -> list[str]:
        return sorted(e.name for e in self.readdirplus(dir_fh))
