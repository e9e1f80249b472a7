"""Runs the selected checks on the selected servers and collects one result per pair."""

from __future__ import annotations

from collections.abc import Callable

from filesim.nfsclient.client import NfsClientError, NfsConnectionError
from filesim.verify import checks_nfs, checks_restart, checks_sync, checks_v4
from filesim.verify.check import Check, CheckFn, Passed
from filesim.verify.names import CHECK_NAMES, PERSISTENCE
from filesim.verify.results import CheckFailed, CheckResult, NotApplicable, Report, Status
from filesim.verify.session import Limits, Session
from filesim.verify.target import ServerTarget, Target, VerifyError

_FUNCTIONS: dict[str, CheckFn] = {
    "reachable": checks_nfs.reachable,
    "sync-agents": checks_sync.sync_agents,
    "no-loops": checks_sync.no_loops,
    "folder-to-nfs": checks_sync.folder_to_nfs,
    "nfs-to-folder": checks_sync.nfs_to_folder,
    "consumed-input": checks_sync.consumed_input,
    "readonly-backup": checks_nfs.readonly_backup,
    "isolation": checks_nfs.isolation,
    "subdirectories": checks_nfs.subdirectories,
    "nfsv4": checks_v4.nfsv4,
}
CHECKS: list[Check] = [Check(n, _FUNCTIONS[n]) for n in CHECK_NAMES if n != PERSISTENCE]
"""Every check but persistence, in order (a name without a function fails on import)."""

OnResult = Callable[[CheckResult], None]


def select_checks(only: list[str] | None, skip: list[str] | None) -> list[str]:
    for name in [*(only or []), *(skip or [])]:
        if name not in CHECK_NAMES:
            raise VerifyError(f"unknown check {name!r}; checks: {', '.join(CHECK_NAMES)}")
    chosen = only or CHECK_NAMES
    return [n for n in CHECK_NAMES if n in chosen and n not in (skip or [])]


def run_checks(
    target: Target,
    checks: list[str],
    servers: list[ServerTarget],
    limits: Limits | None = None,
    restart: bool = False,
    on_result: OnResult | None = None,
) -> Report:
    session = Session(target, limits or Limits())
    report = Report(target.description or target.kind)

    def record(result: CheckResult) -> None:
        report.results.append(result)
        if on_result is not None:
            on_result(result)

    try:
        for check in CHECKS:
            if check.name in checks:
                for server in servers:
                    record(_run_one(session, check.name, server, check.run))
        if PERSISTENCE in checks:
            for result in _persistence(session, servers, restart):
                record(result)
    finally:
        leftovers = session.cleanup()
    if leftovers:
        record(
            CheckResult("cleanup", "-", Status.FAIL, "probes left behind: " + ", ".join(leftovers))
        )
    return report


def _run_one(session: Session, check: str, server: ServerTarget, body: CheckFn) -> CheckResult:
    try:
        passed = body(session, server)
    except NotApplicable as exc:
        return CheckResult(check, server.name, Status.SKIP, str(exc))
    except CheckFailed as exc:
        return CheckResult(check, server.name, Status.FAIL, str(exc), exc.latency_s)
    except NfsConnectionError as exc:
        session.unreachable.setdefault(server.name, str(exc))
        return CheckResult(check, server.name, Status.FAIL, f"{server.name} is unreachable: {exc}")
    except NfsClientError as exc:
        return CheckResult(check, server.name, Status.FAIL, str(exc))
    except OSError as exc:
        return CheckResult(check, server.name, Status.FAIL, f"{type(exc).__name__}: {exc}")
    return CheckResult(check, server.name, Status.PASS, passed.message, passed.latency_s)


def _persistence(session: Session, servers: list[ServerTarget], restart: bool) -> list[CheckResult]:
    if not restart:
        reason = "needs --restart (restarts the topology)"
        return [CheckResult(PERSISTENCE, s.name, Status.SKIP, reason) for s in servers]
    planted: dict[str, checks_restart.Planted] = {}
    results: dict[str, CheckResult] = {}
    for server in servers:

        def plant(session: Session, s: ServerTarget) -> Passed:
            planted[s.name] = checks_restart.before_restart(session, s)
            return Passed()

        outcome = _run_one(session, PERSISTENCE, server, plant)
        if outcome.status is not Status.PASS:
            results[server.name] = outcome
    session.disconnect()
    try:
        session.target.restart()
    except VerifyError as exc:
        return [
            results.get(s.name)
            or CheckResult(PERSISTENCE, s.name, Status.FAIL, f"restart failed: {exc}")
            for s in servers
        ]
    session.unreachable.clear()
    for server in servers:
        if server.name in planted:
            results[server.name] = _run_one(
                session, PERSISTENCE, server,
                lambda sess, s: checks_restart.after_restart(sess, s, planted[s.name]),
            )  # fmt: skip
    return [results[s.name] for s in servers]
