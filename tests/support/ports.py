"""Ports for tests. Our own servers bind port 0 and report the port they got; these helpers
are for what cannot: a port where nothing answers, and an external server (Ganesha) that
must be told its ports."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def refusing_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port that refuses connections for the `with` block: bound, never listening (no
    other process can take it meanwhile)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        yield int(sock.getsockname()[1])


def unused_port(host: str = "127.0.0.1") -> int:
    """A port free a moment ago, for a server that cannot bind port 0 itself; racy by nature,
    so its user must retry when the server then fails to bind it."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
