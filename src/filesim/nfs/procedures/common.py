"""What the NFSv3 procedures share: reading handles and names, permissions, OS errors."""

from __future__ import annotations

import stat
from collections.abc import Callable

from filesim.nfs import policy
from filesim.nfs.access import Caller, permits
from filesim.nfs.attrs import Attrs
from filesim.nfs.const import NAME_MAX, NFS3_FHSIZE
from filesim.nfs.export import Export
from filesim.nfs.registry import Result
from filesim.nfs.types import encode_post_op_attr, encode_post_op_fh3, encode_wcc_data
from filesim.nfs.vfs import NfsError, SetAttrs, join, parent_of, status_of
from filesim.oncrpc.programs import NfsStat
from filesim.oncrpc.xdr import Unpacker

MAX_IO = 1 << 20
"""rtmax and wtmax: the largest READ and WRITE."""


def read_node(x: Export, u: Unpacker) -> tuple[str, Attrs]:
    """Read a handle: (path, lstat) of the node it names."""
    handle = u.opaque(NFS3_FHSIZE)
    return x.index.resolve(x.codec.decode(handle))


def read_dir(x: Export, u: Unpacker) -> tuple[str, Attrs]:
    """Read a handle that must name a directory."""
    path, st = read_node(x, u)
    if not stat.S_ISDIR(st.st_mode):
        raise NfsError(NfsStat.NOTDIR)
    return path, st


def read_name(u: Unpacker) -> str:
    """Read a filename3: one path component."""
    raw = u.opaque(NAME_MAX + 1)
    if len(raw) > NAME_MAX:
        raise NfsError(NfsStat.NAMETOOLONG)
    value = str(raw, "utf-8", "surrogateescape")
    if not value or "/" in value or "\0" in value:
        raise NfsError(NfsStat.INVAL if not value else NfsStat.ACCES, f"bad name {value!r}")
    return value


def read_new_name(u: Unpacker) -> str:
    """Read the name of a node to create."""
    value = read_name(u)
    if value in (".", ".."):
        raise NfsError(NfsStat.EXIST)
    return value


def entry_path(dir_path: str, entry: str) -> str:
    """The path of `entry` in `dir_path`, "." and ".." included."""
    if entry == ".":
        return dir_path
    if entry == "..":
        return parent_of(dir_path) if dir_path else ""
    return join(dir_path, entry)


def require(st: Attrs, caller: Caller, want: int, owner_override: bool = False) -> None:
    if permits(st, caller, want):
        return
    if owner_override and st.st_uid == caller.uid:
        return
    raise NfsError(NfsStat.ACCES)


def require_file(st: Attrs) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise NfsError(NfsStat.ISDIR)
    if not stat.S_ISREG(st.st_mode):
        raise NfsError(NfsStat.INVAL)


def stat_or_none(x: Export, path: str) -> Attrs | None:
    try:
        return x.vfs.stat(path)
    except OSError:
        return None


def owner(dir_st: Attrs, caller: Caller, attrs: SetAttrs) -> tuple[int, int]:
    """Owner and group of a node `caller` creates in the directory `dir_st` (policy rules)."""
    return policy.new_owner(dir_st, caller, attrs.uid, attrs.gid)


def new_mode(dir_st: Attrs, caller: Caller, mode: int, who: tuple[int, int], is_dir: bool) -> int:
    """The permission bits of a node `caller` creates in `dir_st` for owner `who`."""
    return policy.new_mode(dir_st, caller, mode, who[1], is_dir)


def os_call(call: Callable[[], object]) -> None:
    """Run a storage call, its OSError turned into the matching NFS status."""
    try:
        call()
    except OSError as exc:
        raise NfsError(status_of(exc), str(exc)) from None


def created(x: Export, dir_path: str, dir_before: Attrs, path: str) -> Result:
    """post_op_fh3 + post_op_attr of the new node, then wcc_data of its directory."""
    st = x.vfs.stat(path)
    handle = x.handle_for(st, path)
    return [
        encode_post_op_fh3(handle) + encode_post_op_attr(st, x.fsid)
        + encode_wcc_data(dir_before, stat_or_none(x, dir_path), x.fsid)
    ]  # fmt: skip
