"""Directory listings: READDIR, READDIRPLUS, paged with cookies over one snapshot."""

from __future__ import annotations

from filesim.nfs.access import Caller, R
from filesim.nfs.attrs import Attrs
from filesim.nfs.const import NFS3_COOKIEVERFSIZE
from filesim.nfs.export import Export
from filesim.nfs.procedures.common import MAX_IO, entry_path, read_dir, require
from filesim.nfs.registry import Result, procedure
from filesim.nfs.types import (
    FALSE,
    TRUE,
    encode_entry3,
    encode_entryplus3,
    encode_post_op_attr,
    entryplus3_head_size,
)
from filesim.nfs.vfs import NfsError
from filesim.oncrpc.programs import NfsProc, NfsStat
from filesim.oncrpc.xdr import Unpacker

_END = 8  # the end of the entry list and eof: two booleans


def _listing_args(x: Export, caller: Caller, u: Unpacker) -> tuple[str, Attrs, int, bytes]:
    dir_path, dir_st = read_dir(x, u)
    cookie = u.uint64()
    verifier = bytes(u.fixed_opaque(NFS3_COOKIEVERFSIZE))
    require(dir_st, caller, R)
    return dir_path, dir_st, cookie, verifier


@procedure(NfsProc.READDIR)
def readdir(x: Export, caller: Caller, u: Unpacker) -> Result:
    dir_path, dir_st, cookie, verifier = _listing_args(x, caller, u)
    count = u.uint32()
    entries, verifier = x.listings.listing(x.vfs, dir_path, dir_st.st_ino, cookie, verifier)
    parts = [encode_post_op_attr(dir_st, x.fsid), verifier]
    budget = count - len(parts[0]) - len(verifier) - _END
    index = cookie
    while index < len(entries):
        entry = entries[index]
        encoded = encode_entry3(entry.ino, entry.name, index + 1)
        if len(encoded) > budget:
            if index == cookie:
                raise NfsError(NfsStat.TOOSMALL)
            break
        budget -= len(encoded)
        parts.append(encoded)
        index += 1
    parts.append(FALSE)
    parts.append(TRUE if index >= len(entries) else FALSE)
    return [b"".join(parts)]


@procedure(NfsProc.READDIRPLUS)
def readdirplus(x: Export, caller: Caller, u: Unpacker) -> Result:
    dir_path, dir_st, cookie, verifier = _listing_args(x, caller, u)
    dircount, maxcount = u.uint32(), u.uint32()
    entries, verifier = x.listings.listing(x.vfs, dir_path, dir_st.st_ino, cookie, verifier)
    parts = [encode_post_op_attr(dir_st, x.fsid), verifier]
    budget = min(maxcount, MAX_IO) - len(parts[0]) - len(verifier) - _END
    dir_budget = dircount or budget
    # Bound once for the page: each runs for every entry.
    fsid, stat, node, encode_handle = x.fsid, x.vfs.stat, x.index.node, x.codec.encode
    prefix = dir_path + "/" if dir_path else ""
    index = cookie
    while index < len(entries):
        name = entries[index].name
        path = prefix + name if index > 1 else entry_path(dir_path, name)  # 0, 1: "." and ".."
        raw = name.encode("utf-8", "surrogateescape")
        try:
            st = stat(path)
        except OSError:  # gone since the listing: the entry without attributes or handle
            encoded = encode_entry3(entries[index].ino, name, index + 1) + FALSE + FALSE
        else:
            encoded = encode_entryplus3(raw, index + 1, st, fsid, encode_handle(node(st, path)))
        head = entryplus3_head_size(len(raw))
        if len(encoded) > budget or head > dir_budget:
            if index == cookie:
                raise NfsError(NfsStat.TOOSMALL)
            break
        budget -= len(encoded)
        dir_budget -= head
        parts.append(encoded)
        index += 1
    parts.append(FALSE)
    parts.append(TRUE if index >= len(entries) else FALSE)
    return [b"".join(parts)]
