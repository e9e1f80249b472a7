"""XDR encoding and decoding (RFC 4506)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filesim.oncrpc.xdr import Packer, Unpacker, XdrError


def test_integers_are_big_endian_and_four_byte_aligned() -> None:
    p = Packer()
    p.uint32(1)
    p.int32(-2)
    p.uint64(3)
    p.int64(-4)
    p.bool(True)
    assert p.getvalue() == (
        b"\0\0\0\x01" + b"\xff\xff\xff\xfe" + b"\0" * 7 + b"\x03" + b"\xff" * 7 + b"\xfc"
        + b"\0\0\0\x01"
    )  # fmt: skip
    u = Unpacker(p.getvalue())
    assert (u.uint32(), u.int32(), u.uint64(), u.int64(), u.bool()) == (1, -2, 3, -4, True)
    u.done()


def test_opaque_and_string_are_padded() -> None:
    p = Packer()
    p.opaque(b"abcde")
    p.string("hé")
    data = p.getvalue()
    assert data == b"\0\0\0\x05abcde\0\0\0" + b"\0\0\0\x03h\xc3\xa9\0"
    u = Unpacker(data)
    assert bytes(u.opaque()) == b"abcde"
    assert u.string() == "hé"
    u.done()


def test_truncated_input_raises() -> None:
    with pytest.raises(XdrError):
        Unpacker(b"\0\0\0").uint32()
    with pytest.raises(XdrError):
        Unpacker(b"\0\0\0\x08abc").opaque()


def test_declared_length_over_the_limit_raises_before_reading() -> None:
    with pytest.raises(XdrError, match="exceeds"):
        Unpacker(b"\xff\xff\xff\xff").opaque(max_len=1024)


def test_bad_boolean_and_trailing_bytes() -> None:
    with pytest.raises(XdrError):
        Unpacker(b"\0\0\0\x02").bool()
    with pytest.raises(XdrError, match="trailing"):
        Unpacker(b"\0\0\0\0\0").done()


def test_opaque_is_a_view_not_a_copy() -> None:
    buf = bytearray(b"\0\0\0\x04data")
    view = Unpacker(memoryview(buf)).opaque()
    buf[4] = ord("D")
    assert bytes(view) == b"Data"


@given(st.lists(st.one_of(st.binary(max_size=50), st.integers(0, 2**32 - 1))))
def test_roundtrip(values: list[bytes | int]) -> None:
    p = Packer()
    for v in values:
        p.opaque(v) if isinstance(v, bytes) else p.uint32(v)
    assert len(p.buf) % 4 == 0
    u = Unpacker(p.getvalue())
    assert [bytes(u.opaque()) if isinstance(v, bytes) else u.uint32() for v in values] == values
    u.done()
