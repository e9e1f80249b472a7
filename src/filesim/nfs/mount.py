"""MOUNT v3 (RFC 1813, appendix I): its wire structures (encode and decode side by side, the
client decodes with them too) and the server's NULL, MNT, DUMP, UMNT, UMNTALL, EXPORT.

MOUNT v1 (what `showmount` and some clients ask first) has the same procedures and structures
except MNT, which hands out NFSv2 handles: NFSv2 is not served, so a v1 MNT is refused."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from filesim.nfs.const import MNTPATHLEN
from filesim.nfs.export import Export
from filesim.nfs.types import decode_fh3
from filesim.nfs.vfs import status_of
from filesim.oncrpc.const import AuthFlavor
from filesim.oncrpc.programs import MOUNT_VERSION, MountProc, MountStat
from filesim.oncrpc.xdr import Packer, Unpacker


def encode_mountres3_ok(handle: bytes, flavors: Iterable[int]) -> bytes:
    """mountres3 after MNT3_OK: the root handle and the auth flavors the server takes."""
    p = Packer()
    p.opaque(handle)
    flavors = list(flavors)
    p.uint32(len(flavors))
    for flavor in flavors:
        p.uint32(flavor)
    return bytes(p.buf)


def decode_mountres3_ok(u: Unpacker) -> tuple[bytes, list[int]]:
    handle = decode_fh3(u)
    return handle, [u.uint32() for _ in range(u.uint32())]


@dataclass(frozen=True, slots=True)
class ExportEntry:
    """One entry of the MOUNT EXPORT list (exportnode)."""

    path: str
    groups: tuple[str, ...]


def encode_exports(exports: Iterable[ExportEntry]) -> bytes:
    p = Packer()
    for export in exports:
        p.bool(True)
        p.string(export.path)
        for group in export.groups:
            p.bool(True)
            p.string(group)
        p.bool(False)
    p.bool(False)
    return bytes(p.buf)


def decode_exports(u: Unpacker) -> list[ExportEntry]:
    exports: list[ExportEntry] = []
    while u.bool():
        path = u.string()
        groups: list[str] = []
        while u.bool():
            groups.append(u.string())
        exports.append(ExportEntry(path, tuple(groups)))
    return exports


def encode_mountlist(mounts: Iterable[tuple[str, str]]) -> bytes:
    """The MOUNT DUMP list: (client host, mounted directory) pairs."""
    p = Packer()
    for host, directory in mounts:
        p.bool(True)
        p.string(host)
        p.string(directory)
    p.bool(False)
    return bytes(p.buf)


# -- the server's procedures -----------------------------------------------------------------

_FLAVORS = (AuthFlavor.AUTH_SYS, AuthFlavor.AUTH_NONE)

MountProcedure = Callable[[Export, str, Unpacker], bytes]


def _relative(export: Export, dirpath: str) -> str | None:
    """The export-relative path of a MNT path, or None when it is not under the export."""
    root = export.config.path
    parts = [p for p in dirpath.split("/") if p]
    root_parts = [p for p in root.split("/") if p]
    if parts[: len(root_parts)] != root_parts:
        return None
    rest = parts[len(root_parts) :]
    if any(p in (".", "..") for p in rest):
        return None
    return "/".join(rest)


def null(export: Export, client: str, u: Unpacker) -> bytes:
    return b""


def mnt(export: Export, client: str, u: Unpacker) -> bytes:
    dirpath = u.string(MNTPATHLEN)
    p = Packer()
    if not export.allows(client):
        p.uint32(MountStat.ACCES)
        return bytes(p.buf)
    path = _relative(export, dirpath)
    if path is None:
        p.uint32(MountStat.NOENT)
        return bytes(p.buf)
    try:
        st = export.vfs.stat(path)
    except OSError as exc:
        p.uint32(_mount_status(status_of(exc)))
        return bytes(p.buf)
    if not stat.S_ISDIR(st.st_mode):
        p.uint32(MountStat.NOTDIR)
        return bytes(p.buf)
    export.mounts.add((client, dirpath))
    p.uint32(MountStat.OK)
    p.raw(encode_mountres3_ok(export.handle_for(st, path), _FLAVORS))
    return bytes(p.buf)


def _mount_status(status: int) -> int:
    try:
        return MountStat(status)
    except ValueError:
        return MountStat.IO


def dump(export: Export, client: str, u: Unpacker) -> bytes:
    return encode_mountlist(sorted(export.mounts))


def umnt(export: Export, client: str, u: Unpacker) -> bytes:
    dirpath = u.string(MNTPATHLEN)
    export.mounts.discard((client, dirpath))
    return b""


def umntall(export: Export, client: str, u: Unpacker) -> bytes:
    export.mounts = {m for m in export.mounts if m[0] != client}
    return b""


def export_list(export: Export, client: str, u: Unpacker) -> bytes:
    config = export.config
    return encode_exports([ExportEntry(config.path, tuple(str(n) for n in config.networks))])


PROCEDURES: dict[int, MountProcedure] = {
    MountProc.NULL: null,
    MountProc.MNT: mnt,
    MountProc.DUMP: dump,
    MountProc.UMNT: umnt,
    MountProc.UMNTALL: umntall,
    MountProc.EXPORT: export_list,
}


def mnt_v1(export: Export, client: str, u: Unpacker) -> bytes:
    """fhstatus: an NFSv2 handle, which no NFSv2 server here could use: EACCES."""
    u.string(MNTPATHLEN)
    p = Packer()
    p.uint32(MountStat.ACCES)
    return bytes(p.buf)


def procedure(vers: int, proc: int) -> MountProcedure | None:
    """The procedure `proc` of MOUNT version `vers` (1 or 3), None when there is none."""
    if vers != MOUNT_VERSION and proc == MountProc.MNT:
        return mnt_v1
    return PROCEDURES.get(proc)
