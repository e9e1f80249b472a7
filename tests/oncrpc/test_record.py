"""ONC RPC record marking (RFC 5531 section 11), without sockets."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filesim.oncrpc.record import RecordError, RecordReader, frame, read_mark, record_mark


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


def test_record_mark_reads_back() -> None:
    assert read_mark(record_mark(1234)) == (1234, True)
    assert read_mark(struct.pack(">I", 99)) == (99, False)


def test_buffer_starts_small_grows_per_record_and_shrinks_back() -> None:
    reader = RecordReader(max_record=2 << 20, min_free=1 << 20, buffer_size=8 << 20)
    assert reader.allocated == 0  # nothing until the first read
    assert reader.feed(frame(b"small")) == [b"small"]
    assert reader.allocated <= 16 << 10
    big = b"b" * (1 << 20)
    assert reader.feed(frame(big)) == [big]
    assert reader.allocated > 1 << 20
    reader.shrink()
    assert reader.allocated == 0
    assert reader.feed(frame(b"again")) == [b"again"]


def test_shrink_keeps_a_partial_record() -> None:
    reader = RecordReader(max_record=2 << 20, min_free=1 << 20)
    stream = frame(b"x" * 100_000)
    assert reader.feed(stream[:50_000]) == []
    reader.shrink()  # not idle: the partial record stays
    assert reader.feed(stream[50_000:]) == [b"x" * 100_000]
