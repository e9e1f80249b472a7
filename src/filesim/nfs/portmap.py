"""A PORTMAP v2 responder (RFC 1833): NULL, GETPORT and DUMP for the programs on our port."""

from __future__ import annotations

from collections.abc import Callable

from filesim.oncrpc.programs import (
    IPPROTO_TCP,
    MOUNT_PROGRAM,
    MOUNT_VERSION,
    NFS_PROGRAM,
    NFS_VERSION,
    PORTMAP_PROGRAM,
    PORTMAP_VERSION,
    PortmapProc,
)
from filesim.oncrpc.xdr import Packer, Unpacker

PortmapProcedure = Callable[[int, Unpacker], bytes]

SERVED = (
    (PORTMAP_PROGRAM, PORTMAP_VERSION),
    (NFS_PROGRAM, NFS_VERSION),
    (MOUNT_PROGRAM, MOUNT_VERSION),
)


def null(port: int, u: Unpacker) -> bytes:
    return b""


def getport(port: int, u: Unpacker) -> bytes:
    prog, vers, prot, _ = u.uint32(), u.uint32(), u.uint32(), u.uint32()
    p = Packer()
    p.uint32(port if (prog, vers) in SERVED and prot == IPPROTO_TCP else 0)
    return bytes(p.buf)


def dump(port: int, u: Unpacker) -> bytes:
    p = Packer()
    for prog, vers in SERVED:
        p.bool(True)
        p.uint32(prog)
        p.uint32(vers)
        p.uint32(IPPROTO_TCP)
        p.uint32(port)
    p.bool(False)
    return bytes(p.buf)


PROCEDURES: dict[int, PortmapProcedure] = {
    PortmapProc.NULL: null,
    PortmapProc.GETPORT: getport,
    PortmapProc.DUMP: dump,
}
