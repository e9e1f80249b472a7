"""Checks of the synchroniser as a user sees it: files crossing between folder and NFS within the
limits, consumed inputs staying gone, no sync loops, and agents running per the policy."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from filesim.sync.status import SyncStatus
from filesim.verify.check import Passed
from filesim.verify.results import CheckFailed, NotApplicable
from filesim.verify.session import Session
from filesim.verify.target import ServerTarget
from filesim.waiting import WaitTimeout, poll_until


def _probe_bytes(session: Session, label: str) -> bytes:
    # Random content and an odd size: a stale or truncated copy can never compare equal.
    return f"{label} {session.token}\n".encode() + os.urandom(3001)


def folder_to_nfs(session: Session, server: ServerTarget) -> Passed:
    """A file created in the folder is readable over NFS, same bytes, within the limit."""
    if not server.live_folder_to_export:
        when = "at start only" if server.direction.folder_to_export else "never"
        raise NotApplicable(f"policy: {_policy(server)} (folder changes reach NFS {when})")
    name = session.track(server, session.probe_name("to-nfs"))
    data = _probe_bytes(session, "folder-to-nfs")
    session.nfs(server)  # connect first, so only the sync is timed
    session.folder_write(server, name, data)
    latency = session.wait_for(
        lambda: session.nfs_read(server, name) == data,
        session.limits.folder_to_nfs_s,
        f"{name} created in {server.folder} was not readable over NFS with the same bytes",
    )
    return Passed("same bytes over NFS", latency)


def nfs_to_folder(session: Session, server: ServerTarget) -> Passed:
    """A file written over NFS appears complete in the folder within the limit."""
    if server.expects_readonly:
        raise NotApplicable("read-only over NFS")
    if not server.live_export_to_folder:
        raise NotApplicable(f"policy: {_policy(server)}")
    name = session.track(server, session.probe_name("to-folder"))
    data = _probe_bytes(session, "nfs-to-folder")
    client, root = session.nfs(server)
    client.write_file(root, name, data)
    latency = session.wait_for(
        lambda: session.folder_read(server, name) == data,
        session.limits.nfs_to_folder_s,
        f"{name} written over NFS did not appear complete in {server.folder}",
    )
    return Passed("complete in the folder", latency)


def consumed_input(session: Session, server: ServerTarget) -> Passed:
    """A file the system consumes (deletes over NFS) leaves the folder, and stays gone."""
    if server.expects_readonly:
        raise NotApplicable("read-only over NFS")
    if not (server.live_folder_to_export and server.live_deletes_to_folder):
        raise NotApplicable(
            f"policy: {_policy(server)} (deletions over NFS do not reach the folder)"
        )
    name = session.track(server, session.probe_name("consumed"))
    data = _probe_bytes(session, "consumed")
    client, root = session.nfs(server)
    session.folder_write(server, name, data)
    session.wait_for(
        lambda: session.nfs_read(server, name) == data,
        session.limits.folder_to_nfs_s,
        f"{name} dropped in the folder did not reach NFS",
    )
    client.remove(root, name)

    def gone() -> bool:
        return session.folder_read(server, name) is None and session.nfs_read(server, name) is None

    latency = session.wait_for(
        gone, session.limits.nfs_to_folder_s, f"{name} deleted over NFS is still in the folder"
    )
    session.stays(
        gone,
        session.limits.stays_gone_s,
        f"{name} deleted over NFS came back (resurrected by the sync)",
    )
    return Passed(
        f"gone from the folder, still gone after {session.limits.stays_gone_s:g} s", latency
    )


def no_loops(session: Session, server: ServerTarget) -> Passed:
    """After N write cycles on both sides, the sync counted one action per change, no echoes."""
    if not server.has_agent or not server.continuous:
        raise NotApplicable("no continuous sync agent")
    if server.expects_readonly and not server.live_folder_to_export:
        raise NotApplicable("read-only over NFS and no live folder sync")
    if session.target.sync_status is None:
        return _no_loops_without_counters(session, server)
    before = _settled_counters(session, server)
    start = time.monotonic()
    changes = sum(_write_cycle(session, server, cycle) for cycle in range(CYCLES))
    after = _settled_counters(session, server)
    elapsed = time.monotonic() - start
    echoes = after.echoes - before.echoes
    actions = after.actions - before.actions
    if echoes:
        raise CheckFailed(
            f"{echoes} echo(es) after {changes} changes: the sync is looping", elapsed
        )
    if actions != changes:
        why = "echoes: the sync is looping" if actions > changes else "changes were missed"
        raise CheckFailed(f"{actions} sync actions for {changes} real changes ({why})", elapsed)
    return Passed(f"{changes} changes, {actions} actions, no echoes", elapsed)


CYCLES = 3


@dataclass(frozen=True)
class _Counters:
    actions: int
    echoes: int


def _settled_counters(session: Session, server: ServerTarget) -> _Counters:
    """The counters once they stop moving for `quiet_s` (the status file lags by up to 1 s)."""
    quiet = session.limits.quiet_s
    last = _counters(session, server)
    still_since = time.monotonic()

    def settled() -> bool:
        nonlocal last, still_since
        current = _counters(session, server)
        if current != last:
            last, still_since = current, time.monotonic()
        return time.monotonic() - still_since >= quiet

    try:
        poll_until(settled, quiet * 5, interval=0.2, what="the sync counters to settle")
    except WaitTimeout:
        raise CheckFailed(
            f"the sync counters of {server.name} never settle "
            f"({last}): the sync keeps acting on its own, a loop"
        ) from None
    return last


def _no_loops_without_counters(session: Session, server: ServerTarget) -> Passed:
    """Where no counters are exposed: the probes settle, unchanged, with no conflict copies."""
    start = time.monotonic()
    names: list[str] = []
    for cycle in range(CYCLES):
        _write_cycle(session, server, cycle, names)
    folder = session.folder(server)
    stamps = {n: (folder / n).stat().st_mtime_ns for n in names}
    time.sleep(session.limits.quiet_s)
    rewritten = [n for n in names if (folder / n).stat().st_mtime_ns != stamps[n]]
    conflicts = [n for n in os.listdir(folder) if session.token in n and ".conflict-" in n]
    conflicts += [n for n in session.nfs_names(server) if session.token in n and ".conflict-" in n]
    if rewritten or conflicts:
        raise CheckFailed(
            f"the sync kept acting after the writes: rewrote {rewritten}, conflicts {conflicts}"
        )
    elapsed = time.monotonic() - start
    return Passed(f"{len(names)} changes settled, no rewrites (no counters here)", elapsed)


def _write_cycle(
    session: Session, server: ServerTarget, cycle: int, names: list[str] | None = None
) -> int:
    """Write once on each live side and wait for it to cross; return the changes made."""
    changes = 0
    names = [] if names is None else names
    if server.live_folder_to_export:
        name = session.track(server, session.probe_name(f"loop-folder-{cycle}"))
        data = _probe_bytes(session, f"loop folder {cycle}")
        session.folder_write(server, name, data)
        session.wait_for(
            lambda: session.nfs_read(server, name) == data,
            session.limits.folder_to_nfs_s,
            f"loop probe {name} did not reach NFS",
        )
        names.append(name)
        changes += 1
    if server.live_export_to_folder and not server.expects_readonly:
        name = session.track(server, session.probe_name(f"loop-nfs-{cycle}"))
        data = _probe_bytes(session, f"loop nfs {cycle}")
        client, root = session.nfs(server)
        client.write_file(root, name, data)
        session.wait_for(
            lambda: session.folder_read(server, name) == data,
            session.limits.nfs_to_folder_s,
            f"loop probe {name} did not reach the folder",
        )
        names.append(name)
        changes += 1
    return changes


def _counters(session: Session, server: ServerTarget) -> _Counters:
    assert session.target.sync_status is not None
    status = session.target.sync_status().get(server.name)
    if status is None:
        raise CheckFailed(f"{server.name} reports no sync agent status")
    if status.halted:
        raise CheckFailed(f"the sync agent of {server.name} is halted: {status.halted}")
    return _Counters(status.actions, status.echoes)


def sync_agents(session: Session, server: ServerTarget) -> Passed:
    """The server's sync agents run exactly as its policy asks (and none is halted)."""
    problems = session.target.agent_problems(server)
    if problems:
        raise CheckFailed("; ".join(problems))
    return Passed(_agent_summary(server))


def _agent_summary(server: ServerTarget) -> str:
    if not server.has_agent:
        return "no agent (as expected)"
    return f"{_policy(server)}: as expected"


def _policy(server: ServerTarget) -> str:
    if server.direct:
        return "direct (no sync)"
    when = "continuous" if server.continuous else ("at start only" if server.initial else "never")
    return f"{server.direction.value}, {when}"


def status_problems(server: ServerTarget, status: SyncStatus | None) -> list[str]:
    """Compare a local agent's status with the server's policy (shared by local targets)."""
    if not server.has_agent:
        return (
            [] if status is None else [f"{server.name} runs a sync agent but its policy has none"]
        )
    if status is None:
        return [f"{server.name} has no sync agent but its policy is {_policy(server)}"]
    problems = []
    if status.halted:
        problems.append(f"the sync agent of {server.name} is halted: {status.halted}")
    if status.state == "failing":
        problems.append(f"the sync agent of {server.name} is failing: {status.reason}")
    if status.direction != server.direction.value:
        problems.append(
            f"{server.name} syncs {status.direction}, its policy says {server.direction.value}"
        )
    if status.continuous != server.continuous:
        want = "continuously" if server.continuous else "at start only"
        problems.append(f"the sync agent of {server.name} should run {want}")
    elif server.continuous and status.state == "stopped":
        problems.append(f"the sync agent of {server.name} has stopped: {status.reason}")
    elif server.continuous and status.ready and not status.running:
        problems.append(
            f"the sync agent of {server.name} has stopped: its policy is {_policy(server)}"
        )
    return problems
