"""`filesim ping`: is a server up? An ONC RPC NULL call to NFS v3 and to MOUNT v3.

A TCP connect alone says nothing about whether the server answers RPCs; a NULL call through
both programs does, and costs the server nothing. The readiness probe of the chart runs it, over
one `RpcConnection` (AUTH_NONE) with one deadline for both calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from filesim.errors import FilesimError
from filesim.nfsclient.rpc import NfsConnectionError, RpcConnection, RpcError, RpcTimeout
from filesim.oncrpc.programs import MOUNT_PROGRAM, MOUNT_VERSION, NFS_PROGRAM, NFS_VERSION

NULL_PROC = 0
PROGRAMS: tuple[tuple[str, int, int], ...] = (
    ("NFS", NFS_PROGRAM, NFS_VERSION),
    ("MOUNT", MOUNT_PROGRAM, MOUNT_VERSION),
)


class PingError(FilesimError):
    """The server did not answer as an NFS server should."""


@dataclass(frozen=True)
class PingResult:
    rtt_ms: dict[str, float]


def ping(host: str, port: int, timeout: float = 3.0) -> PingResult:
    """NULL-call NFS v3 and MOUNT v3 at host:port over one TCP connection, within `timeout` s."""
    deadline = time.monotonic() + timeout
    try:
        conn = RpcConnection(host, port, timeout)
    except NfsConnectionError as exc:
        raise PingError(str(exc)) from None
    rtts: dict[str, float] = {}
    try:
        for what, prog, vers in PROGRAMS:
            start = time.monotonic()
            try:
                conn.call(prog, vers, NULL_PROC, timeout=max(deadline - start, 0.001))
            except RpcTimeout:
                raise PingError(f"{what}: no reply from {host}:{port} in {timeout:g} s") from None
            except RpcError as exc:
                raise PingError(f"{what}: {exc.reason}") from None
            except NfsConnectionError as exc:
                raise PingError(f"{what}: {exc}") from None
            rtts[what] = (time.monotonic() - start) * 1000
    finally:
        conn.close()
    return PingResult(rtts)
