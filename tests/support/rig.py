"""A sans-IO rig for NFS procedure tests: calls go straight into the Dispatcher, no socket."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from filesim.nfs.dispatch import Dispatcher
from filesim.nfs.export import Export, ExportConfig
from filesim.nfs.faults import FaultyVfs, ServerFaults
from filesim.nfs.localfs import LocalVfs
from filesim.nfs.notify import NotifyingVfs
from filesim.nfs.ownership import MetaStore, OwnershipVfs
from filesim.nfs.types import (
    EntryPlus3,
    decode_dirlistplus3,
    decode_fattr3,
    decode_post_op_attr,
    encode_sattr3,
)
from filesim.nfs.vfs import SetAttrs, Vfs
from filesim.oncrpc.const import AcceptStat, AuthFlavor
from filesim.oncrpc.message import Credentials, encode_call
from filesim.oncrpc.programs import (
    MOUNT_PROGRAM,
    MOUNT_VERSION,
    NFS_PROGRAM,
    NFS_VERSION,
    MountProc,
    NfsProc,
    NfsStat,
)
from filesim.oncrpc.xdr import Packer, Unpacker
from filesim.topology.layout import is_temp_name
from tests.support.backend import store

_xids = itertools.count(1)
ROOT = Credentials(AuthFlavor.AUTH_SYS, 0, 0, (), "test")


def user(uid: int, gid: int | None = None, gids: tuple[int, ...] = ()) -> Credentials:
    return Credentials(AuthFlavor.AUTH_SYS, uid, uid if gid is None else gid, gids, "test")


class Reply:
    """A decoded accepted reply: `accept` stat, and for NFS calls the status and results."""

    def __init__(self, data: bytes, nfs: bool) -> None:
        u = Unpacker(data)
        self.xid = u.uint32()
        assert u.uint32() == 1, "not a reply"
        self.reply_stat = u.uint32()
        if self.reply_stat != 0:
            self.accept = -1
            self.reject = u.uint32()
            self.u = u
            self.status = None
            return
        u.uint32()
        u.opaque()
        self.accept = u.uint32()
        self.u = u
        self.status: NfsStat | None = None
        if nfs and self.accept == AcceptStat.SUCCESS and u.remaining():
            self.status = NfsStat(u.uint32())


@dataclass
class Rig:
    root: Path
    export: Export
    dispatcher: Dispatcher
    faults: ServerFaults
    client: str = "127.0.0.1"
    changes: list[tuple[str, str, str | None]] = field(default_factory=list)

    def raw(self, prog: int, vers: int, proc: int, args: bytes, cred: Credentials = ROOT) -> bytes:
        record = encode_call(next(_xids), prog, vers, proc, args, cred)
        parts = self.dispatcher.dispatch(record, self.client)
        assert parts is not None
        return b"".join(parts)

    def nfs(self, proc: NfsProc, args: Packer | bytes = b"", cred: Credentials = ROOT) -> Reply:
        data = args.getvalue() if isinstance(args, Packer) else args
        return Reply(self.raw(NFS_PROGRAM, NFS_VERSION, proc, data, cred), nfs=True)

    def ok(self, proc: NfsProc, args: Packer | bytes = b"", cred: Credentials = ROOT) -> Unpacker:
        reply = self.nfs(proc, args, cred)
        assert reply.accept == AcceptStat.SUCCESS, f"accept stat {reply.accept}"
        assert reply.status == NfsStat.OK, f"{proc.name} failed: {reply.status!r}"
        return reply.u

    def fails(self, proc: NfsProc, args: Packer | bytes, cred: Credentials = ROOT) -> NfsStat:
        reply = self.nfs(proc, args, cred)
        assert reply.accept == AcceptStat.SUCCESS
        assert reply.status is not None and reply.status != NfsStat.OK, f"{proc.name} succeeded"
        return reply.status

    def mount(self, path: str = "/data") -> bytes:
        p = Packer()
        p.string(path)
        u = Unpacker(self.raw(MOUNT_PROGRAM, MOUNT_VERSION, MountProc.MNT, p.getvalue()))
        u.uint32(), u.uint32(), u.uint32(), u.uint32(), u.opaque()
        assert u.uint32() == AcceptStat.SUCCESS
        status = u.uint32()
        assert status == 0, f"MNT {path} failed with {status}"
        return bytes(u.opaque())

    # -- argument builders ------------------------------------------------------------------

    @staticmethod
    def fh(handle: bytes) -> Packer:
        p = Packer()
        p.opaque(handle)
        return p

    @staticmethod
    def dirop(handle: bytes, name: str) -> Packer:
        p = Packer()
        p.opaque(handle)
        p.string(name)
        return p

    # -- common operations ------------------------------------------------------------------

    def lookup(self, dir_fh: bytes, name: str, cred: Credentials = ROOT) -> bytes:
        u = self.ok(NfsProc.LOOKUP, self.dirop(dir_fh, name), cred)
        return bytes(u.opaque())

    def readdirplus(
        self, dir_fh: bytes, cookie: int = 0, verifier: bytes = bytes(8), count: int = 65536
    ) -> tuple[list[EntryPlus3], bool, bytes]:
        """One READDIRPLUS page: (entries, eof, cookie verifier)."""
        p = self.fh(dir_fh)
        p.uint64(cookie)
        p.fixed_opaque(verifier)
        p.uint32(4096)
        p.uint32(count)
        u = self.ok(NfsProc.READDIRPLUS, p)
        decode_post_op_attr(u)
        verifier = bytes(u.fixed_opaque(8))
        entries, eof = decode_dirlistplus3(u)
        return entries, eof, verifier

    def getattr(self, handle: bytes):  # type: ignore[no-untyped-def]
        return decode_fattr3(self.ok(NfsProc.GETATTR, self.fh(handle)))

    def create(
        self, dir_fh: bytes, name: str, mode: int = 0o644, cred: Credentials = ROOT
    ) -> bytes:
        p = self.dirop(dir_fh, name)
        p.uint32(0)  # UNCHECKED
        sattr(p, mode=mode)
        u = self.ok(NfsProc.CREATE, p, cred)
        assert u.bool()
        return bytes(u.opaque())

    def mkdir(self, dir_fh: bytes, name: str, mode: int = 0o755) -> bytes:
        p = self.dirop(dir_fh, name)
        sattr(p, mode=mode)
        u = self.ok(NfsProc.MKDIR, p)
        assert u.bool()
        return bytes(u.opaque())

    def write(self, handle: bytes, offset: int, data: bytes, stable: int = 0) -> Unpacker:
        p = self.fh(handle)
        p.uint64(offset)
        p.uint32(len(data))
        p.uint32(stable)
        p.opaque(data)
        return self.ok(NfsProc.WRITE, p)

    def read(self, handle: bytes, offset: int, count: int) -> tuple[bytes, bool]:
        p = self.fh(handle)
        p.uint64(offset)
        p.uint32(count)
        u = self.ok(NfsProc.READ, p)
        decode_post_op_attr(u)
        n, eof = u.uint32(), u.bool()
        data = bytes(u.opaque())
        assert len(data) == n
        return data, eof


def sattr(p: Packer, mode: int | None = None, size: int | None = None,
          uid: int | None = None, mtime: tuple[int, int] | None = None,
          gid: int | None = None) -> None:  # fmt: skip
    mtime_ns = None if mtime is None else mtime[0] * 10**9 + mtime[1]
    p.raw(encode_sattr3(SetAttrs(mode=mode, uid=uid, gid=gid, size=size, mtime_ns=mtime_ns)))


def make_rig(root: Path, owners: Path | None = None, **options: object) -> Rig:
    """A rig on `root`; with `owners` (the side file), storage as an unprivileged server has
    it (`OwnershipVfs`), whoever runs the test."""
    root.mkdir(parents=True, exist_ok=True)
    config = ExportConfig(name="test", **options)  # type: ignore[arg-type]
    rig_changes: list[tuple[str, str, str | None]] = []
    base = store(root, hidden=is_temp_name)
    xattrs = base if isinstance(base, LocalVfs) else None
    inner: Vfs = base if owners is None else OwnershipVfs(base, MetaStore(xattrs, owners))
    storage = FaultyVfs(inner)  # composed as runtime.build does
    vfs = NotifyingVfs(storage, lambda kind, path, dest: rig_changes.append((kind, path, dest)))
    export = Export(config, vfs, b"k" * 32)
    return Rig(root, export, Dispatcher(export, 2049), ServerFaults(storage), changes=rig_changes)
