"""The NFSv3 and MOUNT wire structures: what the server encodes, the client decodes back."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from filesim.nfs.attrs import Attrs, make_rdev
from filesim.nfs.const import Ftype
from filesim.nfs.mount import (
    ExportEntry,
    decode_exports,
    decode_mountres3_ok,
    encode_exports,
    encode_mountres3_ok,
)
from filesim.nfs.types import (
    EntryPlus3,
    FsInfo,
    WriteResult,
    decode_dirlistplus3,
    decode_post_op_attr,
    decode_post_op_fh3,
    decode_read3_data,
    decode_sattr3,
    decode_wcc_data,
    encode_entry3,
    encode_entryplus3,
    encode_post_op_attr,
    encode_post_op_fh3,
    encode_read3_head,
    encode_sattr3,
    encode_wcc_data,
)
from filesim.nfs.vfs import SetAttrs
from filesim.oncrpc.xdr import Packer, Unpacker, padding


def test_attributes_of_a_real_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"12345")
    st = os.lstat(path)
    u = Unpacker(encode_post_op_attr(Attrs.of(st), 9) + encode_post_op_attr(None, 9))
    attrs = decode_post_op_attr(u)
    assert attrs is not None and decode_post_op_attr(u) is None
    u.done()
    assert (attrs.type, attrs.size, attrs.fsid, attrs.fileid) == (Ftype.REG, 5, 9, st.st_ino)
    assert attrs.mode == st.st_mode & 0o7777 and abs(attrs.mtime - st.st_mtime) < 1e-6


def test_wcc_data_round_trips(tmp_path: Path) -> None:
    st = os.lstat(tmp_path)
    attrs = Attrs.of(st)  # what the server encodes: filesim's own value, not an os.stat_result
    u = Unpacker(encode_wcc_data(attrs, attrs, 1) + encode_wcc_data(None, None, 1))
    full, empty = decode_wcc_data(u), decode_wcc_data(u)
    u.done()
    assert full.before is not None and full.after is not None
    assert full.before.size == st.st_size and full.after.type is Ftype.DIR
    assert empty.before is None and empty.after is None


_U32 = st.integers(0, 0xFFFFFFFF)
_TIME = st.none() | st.just(-1) | st.integers(0, 0xFFFFFFFF).map(lambda s: s * 10**9 + 7)


@given(st.none() | _U32, st.none() | _U32, st.none() | _U32,
       st.none() | st.integers(0, 2**64 - 1), _TIME, _TIME)  # fmt: skip
def test_sattr3_round_trips(mode, uid, gid, size, atime, mtime) -> None:  # type: ignore[no-untyped-def]
    attrs = SetAttrs(mode, uid, gid, size, atime, mtime)
    u = Unpacker(encode_sattr3(attrs))
    assert decode_sattr3(u) == attrs
    u.done()


def test_handles_and_entries_round_trip() -> None:
    handle = b"h" * 33
    p = Packer()
    p.raw(encode_post_op_fh3(handle) + encode_post_op_fh3(None))
    for cookie, name in enumerate(["a", "bé", "long-name.txt"], 1):
        p.raw(encode_entry3(100 + cookie, name, cookie))
        p.raw(encode_post_op_attr(None, 1) + encode_post_op_fh3(handle))
    p.bool(False)
    p.bool(True)
    u = Unpacker(p.getvalue())
    assert decode_post_op_fh3(u) == handle and decode_post_op_fh3(u) is None
    entries, eof = decode_dirlistplus3(u)
    u.done()
    assert eof and entries == [
        EntryPlus3("a", 101, 1, None, handle),
        EntryPlus3("bé", 102, 2, None, handle),
        EntryPlus3("long-name.txt", 103, 3, None, handle),
    ]


def test_results_round_trip() -> None:
    info = FsInfo(1 << 20, 1 << 20, 4096, 1 << 20, 1 << 20, 4096, 65536, 2**63 - 1, 1, 0x1B)
    write = WriteResult(4096, 2, b"verifier")
    data = b"abcde"
    u = Unpacker(info.encode() + write.encode() + encode_read3_head(5, True) + data + padding(5))
    assert FsInfo.decode(u) == info and WriteResult.decode(u) == write
    assert decode_read3_data(u) == (data, True)
    u.done()


def test_mount_structures_round_trip() -> None:
    exports = [ExportEntry("/data", ("10.0.0.0/8", "::/0")), ExportEntry("/other", ())]
    u = Unpacker(encode_exports(exports) + encode_mountres3_ok(b"fh", [1, 0]))
    assert decode_exports(u) == exports
    assert decode_mountres3_ok(u) == (b"fh", [1, 0])
    u.done()


_U32 = st.integers(0, 2**32 - 1)
_NS = st.integers(-(2**62), 2**62)  # times before 1970 too


@given(
    name=st.text(min_size=1, max_size=255).filter(lambda n: "/" not in n),
    cookie=st.integers(0, 2**64 - 1),
    kind=st.sampled_from([0o100000, 0o040000, 0o120000, 0o020000, 0o060000, 0o010000, 0o140000]),
    perms=st.integers(0, 0o7777),
    nlink=st.integers(0, 2**40),
    ids=st.tuples(st.integers(0, 2**40), st.integers(0, 2**40)),
    size=st.integers(0, 2**63 - 1),
    rdev=st.tuples(st.integers(0, 4095), st.integers(0, 2**20 - 1)),
    ino=st.integers(0, 2**64 - 1),
    times=st.tuples(_NS, _NS, _NS),
    handle=st.binary(min_size=1, max_size=64),
)
def test_one_pack_entryplus3_is_entry3_attrs_and_handle(  # type: ignore[no-untyped-def]
    name, cookie, kind, perms, nlink, ids, size, rdev, ino, times, handle
) -> None:
    attrs = Attrs(
        kind | perms, ino, 7, nlink, ids[0], ids[1], size, size // 512, make_rdev(*rdev), *times
    )
    raw = name.encode("utf-8", "surrogateescape")
    expected = (
        encode_entry3(ino, name, cookie)
        + encode_post_op_attr(attrs, 9)
        + encode_post_op_fh3(handle)
    )
    assert encode_entryplus3(raw, cookie, attrs, 9, handle) == expected
