"""Checks that need only NFS (and a peek at other servers): reachable, read-only, isolation,
subdirectories."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from filesim.nfs.const import CreateMode
from filesim.nfsclient.client import NfsClientError, NfsStatusError
from filesim.oncrpc.programs import MOUNT_PROGRAM, NFS_PROGRAM, NfsStat
from filesim.verify.check import Passed
from filesim.verify.results import CheckFailed, NotApplicable
from filesim.verify.session import Session
from filesim.verify.target import ServerTarget


def reachable(session: Session, server: ServerTarget) -> Passed:
    """NULL on NFS, MOUNT and PORTMAP, a portmapper that knows NFS and MOUNT, and MNT."""
    if server.name in session.unreachable:
        raise CheckFailed(f"{server.name} is unreachable: {session.unreachable[server.name]}")
    start = time.monotonic()
    try:
        client, root = session.nfs(server)
        client.null()
        client.mount_null()
        client.portmap_null()
        missing = [p for p in (NFS_PROGRAM, MOUNT_PROGRAM) if client.getport(p, 3) == 0]
        client.getattr(root)
    except NfsClientError as exc:
        session.unreachable[server.name] = str(exc)
        raise CheckFailed(f"{server.name} at {server.address} is unreachable: {exc}") from None
    if missing:
        raise CheckFailed(f"the portmapper of {server.name} does not list program(s) {missing}")
    return Passed(f"NULL x3, MNT {server.export}", time.monotonic() - start)


def readonly_backup(session: Session, server: ServerTarget) -> Passed:
    """Every NFS write to a backup is refused with NFS3ERR_ROFS."""
    if not server.expects_readonly:
        raise NotApplicable("writable by design")
    client, root = session.nfs(server)
    name = session.track(server, session.probe_name("readonly"))
    start = time.monotonic()
    refused: list[str] = []
    attempts: list[tuple[str, Callable[[], bytes]]] = [
        ("CREATE", lambda: client.create(root, name, CreateMode.GUARDED)),
        ("MKDIR", lambda: client.mkdir(root, name + "-dir")),
    ]
    for op, attempt in attempts:
        try:
            attempt()
        except NfsStatusError as exc:
            if exc.status != NfsStat.ROFS:
                raise CheckFailed(
                    f"{op} refused with NFS3ERR_{exc.status.name}, not ROFS"
                ) from None
            refused.append(op)
        else:
            session.track(server, name + "-dir")
            raise CheckFailed(
                f"{server.name} accepted an NFS {op} ({server.export}/{name}); "
                "a backup must refuse writes with NFS3ERR_ROFS (export it readonly: true)"
            )
    return Passed(f"{' and '.join(refused)} refused (ROFS)", time.monotonic() - start)


def isolation(session: Session, server: ServerTarget) -> Passed:
    """A file on this server shows up on no other server, over NFS or in its folder."""
    others = [s for s in session.target.servers if s.name != server.name]
    name = session.track(server, session.probe_name(f"isolation-{server.name}"))
    data = f"isolation probe of {server.name}\n".encode()
    start = time.monotonic()
    _plant(session, server, name, data)
    leaks = [where for other in others for where in _sightings(session, other, name)]
    if leaks:
        raise CheckFailed(f"a file written to {server.name} is visible on {', '.join(leaks)}")
    return Passed(f"not visible on {len(others)} other server(s)", time.monotonic() - start)


def _plant(session: Session, server: ServerTarget, name: str, data: bytes) -> None:
    """Put `data` on the server where a user would, and wait until both sides have it."""
    if not server.expects_readonly:
        client, root = session.nfs(server)
        client.write_file(root, name, data)
        if server.live_export_to_folder:
            session.wait_for(
                lambda: session.folder_read(server, name) == data,
                session.limits.nfs_to_folder_s,
                f"probe written over NFS did not reach the folder of {server.name}",
            )
    elif server.live_folder_to_export:
        session.folder_write(server, name, data)
        session.wait_for(
            lambda: session.nfs_read(server, name) == data,
            session.limits.folder_to_nfs_s,
            f"probe dropped in the folder of {server.name} did not reach NFS",
        )
    else:
        raise NotApplicable("read-only over NFS and no live folder sync to plant a probe")


def _sightings(session: Session, other: ServerTarget, name: str) -> list[str]:
    seen = []
    if other.folder is not None and os.path.lexists(other.folder / name):
        seen.append(f"{other.name} (folder {other.folder})")
    if other.name not in session.unreachable:
        try:
            if name in session.nfs_names(other):
                seen.append(f"{other.name} (NFS {other.export})")
        except (NfsClientError, CheckFailed):
            pass  # its own `reachable` row reports that
    return seen


def subdirectories(session: Session, server: ServerTarget) -> Passed:
    """A subdirectory is mountable, and one created over NFS appears in the folder."""
    dirname = session.track(server, session.probe_name("subdir"))
    data = b"subdirectory probe\n"
    start = time.monotonic()
    if not server.expects_readonly:
        client, root = session.nfs(server)
        client.write_file(client.mkdir(root, dirname), "probe.txt", data)
    elif server.live_folder_to_export:
        (session.folder(server) / dirname).mkdir()
        session.folder_write(server, f"{dirname}/probe.txt", data)
        session.wait_for(
            lambda: session.nfs_read(server, f"{dirname}/probe.txt") == data,
            session.limits.folder_to_nfs_s,
            "directory dropped in the folder did not reach NFS",
        )
    else:
        raise NotApplicable("read-only over NFS and no live folder sync to make a directory")
    client, _ = session.nfs(server)
    sub_export = f"{server.export.rstrip('/')}/{dirname}"
    try:
        sub_root = client.mnt(sub_export)
        if client.read_all(client.walk(sub_root, "probe.txt")) != data:
            raise CheckFailed(f"{sub_export}/probe.txt read through the subdirectory mount differs")
    except NfsClientError as exc:
        raise CheckFailed(f"cannot mount the subdirectory {sub_export}: {exc}") from None
    if server.live_export_to_folder and not server.expects_readonly:
        latency = session.wait_for(
            lambda: session.folder_read(server, f"{dirname}/probe.txt") == data,
            session.limits.nfs_to_folder_s,
            f"directory made over NFS did not appear in the folder of {server.name}",
        )
        return Passed(f"MNT {sub_export}; in folder", latency)
    return Passed(f"MNT {sub_export}", time.monotonic() - start)
