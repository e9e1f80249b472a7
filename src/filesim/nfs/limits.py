"""How much one NFS server lets its clients hold: connections, buffered replies, calls waiting
for a thread, idle and stalled connections."""

from __future__ import annotations

from dataclasses import dataclass

MAX_RECORD = (1 << 20) + (64 << 10)  # a 1 MiB WRITE (wtmax) plus its headers


@dataclass(frozen=True)
class ServerLimits:
    """What one server may hold at once; beyond it, clients wait (TCP backpressure)."""

    max_connections: int = 1024
    idle_timeout_s: float = 300.0
    """A connection that sends nothing for this long is closed (clients reconnect at once)."""
    calls_per_connection: int = 16
    """Calls of one connection waiting for a thread or held by a latency fault."""
    calls_total: int = 128
    """The same, for all connections of the server."""
    backlogged_connections: int = 32
    """Connections whose unsent replies are over `write_buffer` (each holds at most that plus
    one reply): with this many, the server reads no new calls until one drains."""
    write_buffer: int = 256 << 10
    write_stall_s: float = 20.0
    """A backlogged connection whose client takes no reply bytes for this long is closed, so
    clients that never read cannot keep the others waiting at `backlogged_connections`."""
    workers: int = 4
    """Threads for the calls that block on the disk (COMMIT, sync WRITE)."""
