"""Persistence: files written before a restart are still there afterwards, through both sides,
and handles obtained before the restart still work."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from filesim.nfsclient.client import NfsClientError, NfsStatusError
from filesim.verify.check import Passed
from filesim.verify.results import CheckFailed, NotApplicable
from filesim.verify.session import Session
from filesim.verify.target import ServerTarget


@dataclass(frozen=True)
class Planted:
    name: str
    data: bytes
    root_fh: bytes
    file_fh: bytes | None
    """The probe's handle from before the restart, when it was visible over NFS then."""
    in_folder: bool
    """Whether the folder must still have it afterwards."""


def before_restart(session: Session, server: ServerTarget) -> Planted:
    """Plant a probe where the server's policy keeps it across a restart."""
    name = session.track(server, session.probe_name("persist"))
    data = f"persistence probe {session.token}\n".encode() + os.urandom(1001)
    client, root = session.nfs(server)
    if not server.expects_readonly and (server.direct or server.live_export_to_folder):
        written = client.write_file(root, name, data)
        if not server.direct:
            _wait_folder(session, server, name, data)
        return Planted(name, data, root, written, True)
    if not (server.direct or server.direction.folder_to_export):
        raise NotApplicable("no side keeps a file across a restart for this policy")
    if server.expects_readonly and not server.mirror_deletes:
        raise NotApplicable(
            "a probe could not be removed again (read-only, deletions not mirrored)"
        )
    session.folder_write(server, name, data)
    fh: bytes | None = None
    if server.live_folder_to_export:
        session.wait_for(
            lambda: session.nfs_read(server, name) == data,
            session.limits.folder_to_nfs_s,
            "probe dropped in the folder did not reach NFS before the restart",
        )
        fh = client.walk(root, name)
    return Planted(name, data, root, fh, True)


def after_restart(session: Session, server: ServerTarget, planted: Planted) -> Passed:
    """The probe is still there over NFS and in the folder, and the old handles still work."""
    start = time.monotonic()
    client, _ = session.nfs(server)
    latency = session.wait_for(
        lambda: session.nfs_read(server, planted.name) == planted.data,
        session.limits.folder_to_nfs_s,
        f"{planted.name} written before the restart is not readable over NFS after it",
    )
    try:
        client.getattr(planted.root_fh)
        if planted.file_fh is not None and client.read_all(planted.file_fh) != planted.data:
            raise CheckFailed("the old handle of the probe reads different bytes after the restart")
    except NfsStatusError as exc:
        raise CheckFailed(f"a handle from before the restart no longer works: {exc}") from None
    except NfsClientError as exc:
        raise CheckFailed(f"{server.name} is unreachable after the restart: {exc}") from None
    if planted.in_folder and session.folder_read(server, planted.name) != planted.data:
        raise CheckFailed(f"{planted.name} is missing from the folder after the restart")
    handles = "old handles work" if planted.file_fh else "old root handle works"
    return Passed(f"still there on both sides, {handles}", max(latency, time.monotonic() - start))


def _wait_folder(session: Session, server: ServerTarget, name: str, data: bytes) -> None:
    session.wait_for(
        lambda: session.folder_read(server, name) == data,
        session.limits.nfs_to_folder_s,
        "probe written over NFS did not reach the folder before the restart",
    )
