"""A minimal blocking NFSv4.1 client: a session, then paths read, written, listed, removed.

Enough for `filesim verify` to check a server over v4 as a v4.1 mount would use it: EXCHANGE_ID,
CREATE_SESSION and RECLAIM_COMPLETE, then one COMPOUND (after SEQUENCE) per call. Paths are
given from the pseudo-filesystem root, like a mount source ("/data/sub").
"""

from __future__ import annotations

import contextlib
import os
import struct

from filesim.nfs.v4.const import (
    ACCESS_WRITE,
    DENY_NONE,
    Claim,
    CreateMode,
    Ftype4,
    Op,
    OpenType,
    Stable,
    Status,
)
from filesim.nfsclient.rpc import NfsClientError, RpcConnection
from filesim.oncrpc.const import AuthFlavor
from filesim.oncrpc.message import Credentials
from filesim.oncrpc.programs import NFS_PROGRAM
from filesim.oncrpc.xdr import Packer, Unpacker

CHUNK = 1 << 20
_ROOT = Credentials(AuthFlavor.AUTH_SYS, 0, 0, (), "filesim-verify")


class Nfs4Error(NfsClientError):
    """A COMPOUND failed: `status` of operation `op` on `path`."""

    def __init__(self, status: int, op: int, path: str) -> None:
        name = Status(status).name if status in Status._value2member_map_ else str(status)
        opname = Op(op).name if op in Op._value2member_map_ else str(op)
        super().__init__(f"NFS4ERR_{name} from {opname} on {path or '/'}")
        self.status = status
        self.op = op


class Nfs4Client:
    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self._rpc = RpcConnection(host, port, timeout, cred=_ROOT)
        self._session = b""
        self._seq = 0
        owner = f"filesim-verify-{os.getpid()}-{os.urandom(4).hex()}".encode()
        try:
            self._connect(owner)
        except BaseException:
            self._rpc.close()
            raise

    def close(self) -> None:
        if self._session:
            with contextlib.suppress(NfsClientError):
                self._compound([(Op.DESTROY_SESSION, self._session)], "", sequence=False)
        self._rpc.close()

    def __enter__(self) -> Nfs4Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- session -----------------------------------------------------------------------------

    def _connect(self, owner: str | bytes) -> None:
        p = Packer()
        p.fixed_opaque(os.urandom(8))
        p.opaque(owner if isinstance(owner, bytes) else owner.encode())
        p.uint32(0)  # flags
        p.uint32(0)  # SP4_NONE
        p.uint32(0)  # no implementation id
        u = self._compound([(Op.EXCHANGE_ID, bytes(p.buf))], "", sequence=False)
        clientid, seq = u.uint64(), u.uint32()
        channel = struct.pack(">7I", 0, CHUNK + 4096, CHUNK + 4096, 4096, 16, 1, 0)
        args = struct.pack(">QII", clientid, seq, 0) + channel + channel + struct.pack(">II", 0, 0)
        u = self._compound([(Op.CREATE_SESSION, args)], "", sequence=False)
        self._session = bytes(u.fixed_opaque(16))
        self._compound([(Op.RECLAIM_COMPLETE, struct.pack(">I", 0))], "")

    def _compound(self, ops: list[tuple[int, bytes]], path: str, sequence: bool = True) -> Unpacker:
        """Run `ops` (after SEQUENCE); an Unpacker at the result of the last operation."""
        p = Packer()
        p.opaque(b"filesim")
        p.uint32(1)
        p.uint32(len(ops) + sequence)
        if sequence:
            self._seq += 1
            p.uint32(Op.SEQUENCE)
            p.fixed_opaque(self._session)
            p.raw(struct.pack(">IIII", self._seq, 0, 0, 0))
        for op, args in ops:
            p.uint32(op)
            p.raw(args)
        u = self._rpc.call(NFS_PROGRAM, 4, 1, bytes(p.buf))
        status = u.uint32()
        u.opaque()
        count = u.uint32()
        for i in range(count):
            op, op_status = u.uint32(), u.uint32()
            if op_status:
                raise Nfs4Error(op_status, op, path)
            if i < count - 1:
                _skip(op, u)
        if status:
            raise Nfs4Error(status, ops[-1][0] if ops else 0, path)
        return u

    # -- paths -------------------------------------------------------------------------------

    @staticmethod
    def _walk(path: str) -> list[tuple[int, bytes]]:
        ops: list[tuple[int, bytes]] = [(Op.PUTROOTFH, b"")]
        for part in (p for p in path.split("/") if p):
            ops.append((Op.LOOKUP, _name(part)))
        return ops

    def listdir(self, path: str) -> list[str]:
        names: list[str] = []
        cookie, verifier = 0, bytes(8)
        while True:
            args = struct.pack(">Q8sII", cookie, verifier, 8192, 32768) + struct.pack(">I", 0)
            u = self._compound([*self._walk(path), (Op.READDIR, args)], path)
            verifier = bytes(u.fixed_opaque(8))
            while u.bool():
                cookie = u.uint64()
                names.append(u.string())
                _skip_fattr(u)
            if u.bool():
                return names

    def read_file(self, path: str) -> bytes:
        out = bytearray()
        while True:
            args = bytes(16) + struct.pack(">QI", len(out), CHUNK)  # anonymous stateid
            u = self._compound([*self._walk(path), (Op.READ, args)], path)
            eof = u.bool()
            out += u.opaque()
            if eof:
                return bytes(out)

    def write_file(self, path: str, data: bytes) -> None:
        directory, _, name = path.rstrip("/").rpartition("/")
        p = Packer()
        p.raw(struct.pack(">III", 0, ACCESS_WRITE, DENY_NONE))
        p.uint64(0)
        p.opaque(b"filesim-verify")
        p.raw(struct.pack(">II", OpenType.CREATE, CreateMode.UNCHECKED))
        p.raw(struct.pack(">IIIQ", 1, 1 << 4, 8, 0))  # createattrs: size 0 (truncate)
        p.uint32(Claim.NULL)
        p.opaque(name.encode())
        ops = [*self._walk(directory), (Op.OPEN, bytes(p.buf))]
        u = self._compound(ops, path)
        stateid = bytes(u.fixed_opaque(16))
        handle = self._fh(path)
        for offset in range(0, max(len(data), 1), CHUNK):
            chunk = data[offset : offset + CHUNK]
            w = Packer()
            w.raw(stateid + struct.pack(">QI", offset, Stable.FILE_SYNC))
            w.opaque(chunk)
            self._compound([(Op.PUTFH, _opaque(handle)), (Op.WRITE, bytes(w.buf))], path)
        close = struct.pack(">I", 0) + stateid
        self._compound([(Op.PUTFH, _opaque(handle)), (Op.CLOSE, close)], path)

    def _fh(self, path: str) -> bytes:
        return bytes(self._compound([*self._walk(path), (Op.GETFH, b"")], path).opaque())

    def mkdir(self, path: str) -> None:
        directory, _, name = path.rstrip("/").rpartition("/")
        args = struct.pack(">I", Ftype4.DIR) + _name(name) + struct.pack(">II", 0, 0)
        self._compound([*self._walk(directory), (Op.CREATE, args)], path)

    def remove(self, path: str) -> None:
        directory, _, name = path.rstrip("/").rpartition("/")
        self._compound([*self._walk(directory), (Op.REMOVE, _name(name))], path)


def _name(value: str) -> bytes:
    p = Packer()
    p.string(value)
    return bytes(p.buf)


def _opaque(value: bytes) -> bytes:
    p = Packer()
    p.opaque(value)
    return bytes(p.buf)


def _skip_fattr(u: Unpacker) -> None:
    for _ in range(u.uint32()):
        u.uint32()
    u.opaque()


def _skip(op: int, u: Unpacker) -> None:
    """Step over the result of an operation that is not the last one of a COMPOUND."""
    if op == Op.SEQUENCE:
        u.fixed_opaque(16)
        for _ in range(5):
            u.uint32()
    elif op == Op.GETFH:
        u.opaque()
    elif op not in (Op.PUTROOTFH, Op.PUTFH, Op.LOOKUP):
        raise NfsClientError(f"cannot read past the result of operation {op}")
