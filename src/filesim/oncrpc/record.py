"""Record marking (RFC 5531 section 11): RPC messages on a byte stream, with no I/O.

`RecordReader` owns a receive buffer that a socket reads into (`get_buffer` / `advance`) and
hands back complete records as memoryviews into that buffer, so a large WRITE is never copied.
`frame` and `record_mark` go the other way.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator

_U32 = struct.Struct(">I")
_MAPPED = 256 << 10
"""Buffers this large are mapped on their own: freed, they go back to the kernel at once (the
heap would keep them, and the server tunes malloc to keep freed blocks in the heap)."""

LAST_FRAGMENT = 0x80000000


class RecordError(Exception):
    """The byte stream cannot be trusted any further; the connection must be closed."""


class RecordReader:
    """Reassembles RPC records from a TCP stream.

    Records are yielded as memoryviews into the reader's own buffer; each is valid only until
    the next `get_buffer` call, so a consumer that keeps one longer must copy it.
    """

    def __init__(
        self, max_record: int = 4 << 20, min_free: int = 256 << 10, buffer_size: int = 0,
        initial: int = 16 << 10,
    ) -> None:  # fmt: skip
        """`initial` bytes are allocated at first; the buffer grows per record up to
        `buffer_size` (at least one whole record plus `min_free`) and `shrink` gives it back."""
        self.max_record = max_record
        self._min_free = min_free
        # A buffer several records deep is compacted (its partial record moved to the front)
        # only every few records, so bulk WRITE data is rarely copied.
        self._max_size = max(buffer_size, max_record + min_free + 8)
        self._initial = min(initial, self._max_size)
        self._buf: bytearray | mmap.mmap = bytearray(0)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self._need = 4
        """Bytes from `_start` that the record being received needs in the buffer."""
        self._partial: bytearray | None = None

    @property
    def allocated(self) -> int:
        """Bytes held by the receive buffer now."""
        return len(self._buf)

    @property
    def idle(self) -> bool:
        """Nothing received and not yet handed out as a record."""
        return self._start == self._end and self._partial is None

    def get_buffer(self) -> memoryview:
        """The free tail of the buffer for the next read; compacts or grows it when needed."""
        size = len(self._buf)
        if size - self._end < min(self._min_free, max(size // 4, 512)):
            self._make_room()
        return self._view[self._end :]

    def _make_room(self) -> None:
        pending = self._end - self._start
        size = len(self._buf)
        wanted = max(self._need, pending + min(self._min_free, max(size // 4, 512)))
        if wanted > size or (size and pending > size // 2):
            # grow: at least the record being received, doubling so large records stream
            size = max(wanted, min(2 * size, self._max_size), self._initial)
        self._replace(size, pending)

    def _replace(self, size: int, pending: int) -> None:
        if size == len(self._buf):
            self._buf[0:pending] = self._view[self._start : self._end]
        else:
            buf = mmap.mmap(-1, size) if size >= _MAPPED else bytearray(size)
            buf[0:pending] = self._view[self._start : self._end]
            # records handed out earlier keep the old buffer alive until they are dropped
            self._buf, self._view = buf, memoryview(buf)
        self._start, self._end = 0, pending

    def shrink(self) -> None:
        """Give back a buffer grown for large records, when nothing is pending in it."""
        if self.idle and len(self._buf) > self._initial:
            self._start = self._end = 0
            self._buf = bytearray(0)
            self._view = memoryview(self._buf)
            self._need = 4

    def advance(self, nbytes: int) -> None:
        """Record that `nbytes` were read into the buffer from `get_buffer`."""
        self._end += nbytes

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Push `data` and return the records it completes, as bytes (for tests and clients)."""
        out: list[bytes] = []
        view = memoryview(data)
        while view:
            buf = self.get_buffer()
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            self.advance(n)
            view = view[n:]
            out.extend(bytes(r) for r in self.records())
        return out

    def records(self) -> Iterator[memoryview]:
        """Yield every complete record in the buffer."""
        while (record := self.next_record()) is not None:
            yield record

    def next_record(self) -> memoryview | None:
        """The next complete record in the buffer, or None (a plain call: a server takes one
        record per read, where a generator cost more than finding the record)."""
        while True:
            available = self._end - self._start
            if available < 4:
                self._need = 4
                if available == 0:
                    self._start = self._end = 0
                return None
            header = _U32.unpack_from(self._buf, self._start)[0]
            length = header & 0x7FFFFFFF
            already = len(self._partial) if self._partial is not None else 0
            if length + already > self.max_record:
                raise RecordError(
                    f"record of {length + already} bytes exceeds the limit of {self.max_record}"
                )
            if available < 4 + length:
                self._need = 4 + length
                return None
            begin = self._start + 4
            self._start = begin + length
            fragment = self._view[begin : begin + length]
            if header & LAST_FRAGMENT:
                if self._partial is None:
                    return fragment
                self._partial += fragment
                whole, self._partial = self._partial, None
                return memoryview(whole)
            if self._partial is None:
                self._partial = bytearray()
            self._partial += fragment


def record_mark(length: int) -> bytes:
    """The 4-byte record mark of a single-fragment record of `length` bytes."""
    return _U32.pack(LAST_FRAGMENT | length)


def read_mark(mark: bytes | bytearray | memoryview) -> tuple[int, bool]:
    """(fragment length, whether it is the last fragment) of a 4-byte record mark."""
    header: int = _U32.unpack_from(mark)[0]
    return header & ~LAST_FRAGMENT, bool(header & LAST_FRAGMENT)


def frame(payload: bytes | bytearray | memoryview, fragment_size: int | None = None) -> bytes:
    """Encode `payload` as one record, split into fragments of at most `fragment_size`."""
    if fragment_size is None or len(payload) <= fragment_size:
        return record_mark(len(payload)) + bytes(payload)
    parts = []
    view = memoryview(payload)
    while view:
        chunk, view = view[:fragment_size], view[fragment_size:]
        flag = LAST_FRAGMENT if not view else 0
        parts.append(_U32.pack(flag | len(chunk)))
        parts.append(bytes(chunk))
    return b"".join(parts)
