"""ONC RPC record marking and call/reply headers (RFC 5531), without sockets."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filesim.nfs.const import AuthFlavor, AuthStat
from filesim.nfs.rpc import (
    CallRejected,
    Credentials,
    NotACall,
    RecordError,
    RecordReader,
    encode_call,
    frame,
    parse_call,
)


def test_single_fragment_record() -> None:
    reader = RecordReader(max_record=1024)
    assert reader.feed(frame(b"hello")) == [b"hello"]


def test_multi_fragment_record_is_joined() -> None:
    reader = RecordReader(max_record=1024)
    data = frame(b"abcdefghij", fragment_size=3)
    assert data.count(b"\0\0\0\x03") == 3  # three non-final fragments of 3 bytes
    assert reader.feed(data) == [b"abcdefghij"]


def test_records_split_across_reads_and_several_in_one_read() -> None:
    reader = RecordReader(max_record=1024)
    stream = frame(b"one") + frame(b"two", fragment_size=2) + frame(b"three")
    got: list[bytes] = []
    for i in range(len(stream)):
        got += reader.feed(stream[i : i + 1])
    assert got == [b"one", b"two", b"three"]
    assert RecordReader(max_record=1024).feed(stream) == [b"one", b"two", b"three"]


def test_oversized_record_is_refused_before_it_is_buffered() -> None:
    reader = RecordReader(max_record=1000)
    with pytest.raises(RecordError, match="exceeds"):
        reader.feed(struct.pack(">I", 0x80000000 | 5000))
    fragments = RecordReader(max_record=1000)
    with pytest.raises(RecordError):
        fragments.feed(frame(b"x" * 1500, fragment_size=600))


@given(st.lists(st.binary(min_size=0, max_size=300), max_size=20), st.integers(1, 64))
def test_any_stream_of_records_reassembles(records: list[bytes], chunk: int) -> None:
    stream = b"".join(frame(r, fragment_size=max(1, len(r) // 3 or 1)) for r in records)
    reader = RecordReader(max_record=4096, min_free=512)
    got: list[bytes] = []
    for i in range(0, len(stream), chunk):
        got += reader.feed(stream[i : i + chunk])
    assert got == records


def test_parse_call_with_auth_sys() -> None:
    cred = Credentials(AuthFlavor.AUTH_SYS, 1000, 100, (4, 5), "host")
    call = parse_call(encode_call(7, 100003, 3, 1, b"\0\0\0\x01", cred))
    assert (call.xid, call.prog, call.vers, call.proc) == (7, 100003, 3, 1)
    assert (call.cred.uid, call.cred.gid, call.cred.gids, call.cred.machine) == (
        1000, 100, (4, 5), "host",
    )  # fmt: skip
    assert call.args.uint32() == 1


def test_rpc_version_mismatch_is_denied() -> None:
    msg = bytearray(encode_call(9, 100003, 3, 0))
    msg[8:12] = struct.pack(">I", 3)
    with pytest.raises(CallRejected) as info:
        parse_call(bytes(msg))
    assert struct.unpack(">IIIIII", info.value.reply) == (9, 1, 1, 0, 2, 2)


def test_unknown_auth_flavor_gets_auth_error() -> None:
    msg = bytearray(encode_call(9, 100003, 3, 0))
    msg[24:28] = struct.pack(">I", 6)  # RPCSEC_GSS
    with pytest.raises(CallRejected) as info:
        parse_call(bytes(msg))
    assert struct.unpack(">IIIII", info.value.reply) == (9, 1, 1, 1, AuthStat.AUTH_BADCRED)


def test_malformed_auth_sys_body_gets_auth_error() -> None:
    cred = Credentials(AuthFlavor.AUTH_SYS, 1, 1, tuple(range(17)), "h")  # 17 > 16 gids
    with pytest.raises(CallRejected):
        parse_call(encode_call(1, 100003, 3, 0, b"", cred))


def test_header_too_short_or_not_a_call() -> None:
    with pytest.raises(RecordError):
        parse_call(b"\0\0\0")
    with pytest.raises(NotACall):
        parse_call(struct.pack(">II", 5, 1) + b"\0" * 16)
    with pytest.raises(RecordError):
        parse_call(struct.pack(">II", 5, 7))
