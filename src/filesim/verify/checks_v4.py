"""The NFSv4 check: what a `vers=4.1` mount does, on every server."""

from __future__ import annotations

import time

from filesim.nfs.v4.const import Status
from filesim.nfsclient.rpc import NfsClientError
from filesim.nfsclient.v4 import Nfs4Client, Nfs4Error
from filesim.verify.check import Passed
from filesim.verify.results import CheckFailed
from filesim.verify.session import Session
from filesim.verify.target import ServerTarget


def nfsv4(session: Session, server: ServerTarget) -> Passed:
    """Over NFSv4.1: the pseudo-root shows the export; a probe written over v4 reads back over
    v4 and v3 (and reaches the folder when synced); a backup refuses it with NFS4ERR_ROFS."""
    if server.name in session.unreachable:
        raise CheckFailed(f"not checked: {server.name} is unreachable")
    start = time.monotonic()
    export = server.export.rstrip("/")
    try:
        with Nfs4Client(server.host, server.port, session.limits.nfs_timeout_s) as client:
            top = export.strip("/").split("/")[0]
            if top and top not in client.listdir("/"):
                raise CheckFailed(f"the NFSv4 pseudo-root of {server.name} does not show {top}")
            name = session.probe_name("nfsv4")
            data = f"NFSv4 probe of {server.name}\n".encode()
            if server.expects_readonly:
                return _refused(client, f"{export}/{name}", server, start)
            session.track(server, name)
            client.write_file(f"{export}/{name}", data)
            if client.read_file(f"{export}/{name}") != data:
                raise CheckFailed(f"{export}/{name} read back over NFSv4 differs")
    except Nfs4Error as exc:
        raise CheckFailed(f"NFSv4 on {server.name}: {exc}") from None
    except NfsClientError as exc:
        raise CheckFailed(f"NFSv4 on {server.name} at {server.address}: {exc}") from None
    if session.nfs_read(server, name) != data:
        raise CheckFailed(f"the NFSv4 probe {name} reads differently over NFSv3")
    if server.live_export_to_folder:
        latency = session.wait_for(
            lambda: session.folder_read(server, name) == data,
            session.limits.nfs_to_folder_s,
            f"file written over NFSv4 did not reach the folder of {server.name}",
        )
        return Passed("v4.1 write/read, v3 read, in folder", latency)
    return Passed("v4.1 write/read, v3 read", time.monotonic() - start)


def _refused(client: Nfs4Client, path: str, server: ServerTarget, start: float) -> Passed:
    try:
        client.write_file(path, b"must be refused\n")
    except Nfs4Error as exc:
        if exc.status != Status.ROFS:
            raise CheckFailed(f"NFSv4 write refused with {exc}, not NFS4ERR_ROFS") from None
        return Passed("v4.1 write refused (ROFS)", time.monotonic() - start)
    raise CheckFailed(f"{server.name} accepted an NFSv4 write to {path}; a backup must refuse it")
