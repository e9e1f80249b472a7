"""A READ reply's data still in its file: sent from the page cache (sendfile(2)) where the
connection can, read into memory where it cannot.

A large READ read into memory is copied three times in the server: file to a bytes object,
that object into the transport's buffer when the socket is full, the buffer into the socket.
sendfile hands the socket the file's pages instead.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence

SENDS_FILES = hasattr(os, "sendfile") and hasattr(os, "pread")
"""Whether this system has what FileData needs (Windows has neither)."""
STREAM_FROM = 64 * 1024
"""The smallest READ sent from its file: below it, a read into memory costs less than the
extra open file and system calls."""


def streamed(count: int, offset: int, size: int) -> int:
    """How many bytes a READ of `count` at `offset` of a file of `size` bytes sends from the
    file; 0 when it reads them into memory (too few, or no sendfile here)."""
    length = min(count, size - offset)
    return length if SENDS_FILES and length >= STREAM_FROM else 0


class ShortRead(OSError):
    """The file shrank between the READ's stat and the sending of its data: the reply's
    length is already promised, so the connection is closed and the client retries."""

    def __init__(self, wanted: int, got: int) -> None:
        super().__init__(errno.EIO, f"the file shrank under a READ: {got} of {wanted} bytes")


class FileData:
    """`count` bytes at `offset` of the open file `fd`, which this object closes."""

    __slots__ = ("count", "fd", "offset")

    def __init__(self, fd: int, offset: int, count: int) -> None:
        self.fd = fd
        self.offset = offset
        self.count = count

    def __len__(self) -> int:
        return self.count

    def send(self, socket_fd: int) -> int:
        """Send what the non-blocking socket takes now, from the file's pages; the bytes
        sent. Fewer than `count` when the socket is full or the file has shrunk."""
        sent = 0
        while sent < self.count:
            try:
                n = os.sendfile(socket_fd, self.fd, self.offset + sent, self.count - sent)
            except BlockingIOError:
                break
            if n == 0:  # the file ends early: read() says so
                break
            sent += n
        return sent

    def read(self, skip: int = 0) -> bytes:
        """The bytes after the first `skip`; ShortRead when the file no longer has them."""
        wanted = self.count - skip
        data = os.pread(self.fd, wanted, self.offset + skip)
        if len(data) != wanted:
            raise ShortRead(wanted, len(data))
        return data

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


Part = bytes | FileData
"""One buffer of a reply."""


def materialized(parts: Sequence[Part]) -> list[bytes]:
    """`parts` with their file data read into memory (and the files closed)."""
    out: list[bytes] = []
    try:
        for part in parts:
            out.append(part.read() if isinstance(part, FileData) else part)
    finally:
        close_all(parts)
    return out


def close_all(parts: Sequence[Part]) -> None:
    for part in parts:
        if isinstance(part, FileData):
            part.close()
