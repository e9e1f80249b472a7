"""File offsets a client may send against what the host takes: shared by the file backends."""

from __future__ import annotations

MAX_OFFSET = (1 << 63) - 1
"""The largest file offset the kernel takes (off_t); clients send 64-bit unsigned ones."""


def within(offset: int, length: int, code: int) -> None:
    """Raise `code` (EFBIG, EINVAL, ENXIO) when the range passes the largest file offset:
    the os calls would raise OverflowError, which is no answer for a client."""
    if offset + length > MAX_OFFSET:
        raise OSError(code, f"offset {offset} + {length} is beyond the largest file size")
