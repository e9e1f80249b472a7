"""XDR (RFC 4506) encoding and decoding, with no I/O.

`Unpacker` reads from a `memoryview` without copying variable-length opaque data, so a WRITE
payload reaches `pwrite` straight from the receive buffer. `Packer` appends to a `bytearray`.
"""

from __future__ import annotations

import builtins
import struct

_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")
_2U32 = struct.Struct(">II")

_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")


class XdrError(ValueError):
    """Input that is not valid XDR for the expected type (truncated, too long, bad value)."""


class Unpacker:
    __slots__ = ("_data", "_end", "_pos")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int = 0) -> None:
        self._data = data if isinstance(data, memoryview) else memoryview(data)
        self._pos = pos
        self._end = len(self._data)

    @property
    def position(self) -> int:
        return self._pos

    def remaining(self) -> int:
        return self._end - self._pos

    def done(self) -> None:
        """Raise unless every byte was consumed."""
        if self._pos != self._end:
            raise XdrError(f"{self._end - self._pos} unexpected trailing bytes")

    def _take(self, n: int) -> int:
        pos = self._pos
        if n < 0 or pos + n > self._end:
            raise XdrError("truncated XDR data")
        self._pos = pos + n
        return pos

    def uint32(self) -> int:
        pos = self._take(4)
        return _U32.unpack_from(self._data, pos)[0]  # type: ignore[no-any-return]

    def int32(self) -> int:
        pos = self._take(4)
        return _I32.unpack_from(self._data, pos)[0]  # type: ignore[no-any-return]

    def uint64(self) -> int:
        pos = self._take(8)
        return _U64.unpack_from(self._data, pos)[0]  # type: ignore[no-any-return]

    def int64(self) -> int:
        pos = self._take(8)
        return _I64.unpack_from(self._data, pos)[0]  # type: ignore[no-any-return]

    def bool(self) -> bool:
        value = self.uint32()
        if value > 1:
            raise XdrError(f"bad boolean {value}")
        return value == 1

    def enum(self, allowed: range | frozenset[int] | None = None) -> int:
        value = self.int32()
        if allowed is not None and value not in allowed:
            raise XdrError(f"bad enum value {value}")
        return value

    def fixed_opaque(self, n: int) -> memoryview:
        pos = self._take(n + (-n & 3))
        return self._data[pos : pos + n]

    def opaque(self, max_len: int | None = None) -> memoryview:
        n = self.uint32()
        if max_len is not None and n > max_len:
            raise XdrError(f"opaque of {n} bytes exceeds the limit of {max_len}")
        return self.fixed_opaque(n)

    def string(self, max_len: int | None = None) -> str:
        raw = self.opaque(max_len)
        try:
            return str(raw, "utf-8", "surrogateescape")
        except UnicodeDecodeError as exc:  # pragma: no cover - surrogateescape never fails
            raise XdrError("bad string") from exc

    def optional(self) -> builtins.bool:
        """Read the discriminant of an XDR optional (`*T`)."""
        return self.bool()


class Packer:
    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def uint32(self, value: int) -> None:
        self.buf += _U32.pack(value)

    def int32(self, value: int) -> None:
        self.buf += _I32.pack(value)

    def uint64(self, value: int) -> None:
        self.buf += _U64.pack(value)

    def int64(self, value: int) -> None:
        self.buf += _I64.pack(value)

    def two_uint32(self, a: int, b: int) -> None:
        self.buf += _2U32.pack(a, b)

    def bool(self, value: bool) -> None:
        self.buf += _U32.pack(1 if value else 0)

    def fixed_opaque(self, data: bytes | bytearray | memoryview) -> None:
        self.buf += data
        self.buf += _PAD[len(data) & 3]

    def opaque(self, data: bytes | bytearray | memoryview) -> None:
        self.buf += _U32.pack(len(data))
        self.buf += data
        self.buf += _PAD[len(data) & 3]

    def string(self, value: str) -> None:
        self.opaque(value.encode("utf-8", "surrogateescape"))

    def raw(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes that are already XDR-encoded."""
        self.buf += data

    def getvalue(self) -> bytes:
        return bytes(self.buf)


def padding(n: int) -> bytes:
    return _PAD[n & 3]
