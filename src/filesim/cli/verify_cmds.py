"""`filesim verify`: the acceptance checks against a running topology, local or on Kubernetes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from filesim.cli.app import app, console, err_console
from filesim.verify.names import CHECK_NAMES

if TYPE_CHECKING:
    from filesim.verify.results import CheckResult
    from filesim.verify.target import Target

_CHECKS_HELP = ", ".join(CHECK_NAMES)


def _names(values: list[str] | None) -> list[str] | None:
    """Accept both repeated options and comma-separated lists."""
    if not values:
        return None
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


@app.command()
def verify(
    root: Annotated[
        Path, typer.Option("--root", "-r", help="Local topology: the --root of `filesim up`.")
    ] = Path("simulator-data"),
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="Its state dir.")] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Topology file: which servers and policies to check."),
    ] = None,
    kube_context: Annotated[
        str | None,
        typer.Option("--kube-context", help="Check a Kubernetes deployment in this context."),
    ] = None,
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Kubernetes namespace.")] = (
        "default"
    ),
    node_ip: Annotated[
        str | None,
        typer.Option("--node-ip", help="Kubernetes: node address for the NodePorts."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Kubernetes: this machine's view of the host folders."),
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", help="Kubernetes: the profile deployed.")
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help=f"Run only these checks: {_CHECKS_HELP}.")
    ] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="Skip these checks.")] = None,
    servers: Annotated[
        list[str] | None, typer.Option("--servers", help="Check only these servers.")
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Run the persistence check (restarts everything).")
    ] = False,
    folder_to_nfs_limit: Annotated[
        float, typer.Option("--folder-to-nfs-limit", help="Seconds allowed folder -> NFS.")
    ] = 30.0,
    nfs_to_folder_limit: Annotated[
        float, typer.Option("--nfs-to-folder-limit", help="Seconds allowed NFS -> folder.")
    ] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write a JUnit XML report here.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Explain n/a cells.")] = False,
) -> None:
    """Check a running topology with real NFS I/O and print PASS/FAIL per check and server.

    Exits 0 only when every applicable check passes. Probe files are named
    `.filesim-verify-*` and removed afterwards; nothing else is touched.
    """
    # The checks and their NFS client load here, not with every other command.
    from filesim.verify import report as reports
    from filesim.verify.results import Status
    from filesim.verify.runner import run_checks, select_checks
    from filesim.verify.session import Limits
    from filesim.verify.target import VerifyError

    checks = select_checks(_names(only), _names(skip))
    if kube_context is not None:
        from filesim.verify.kube import kube_target

        target: Target = kube_target(
            kube_context, namespace, node_ip=node_ip, data_dir=data_dir,
            config=config, profile=profile,
        )  # fmt: skip
    else:
        if node_ip or data_dir:
            raise VerifyError("--node-ip and --data-dir apply to Kubernetes (--kube-context) only")
        from filesim.verify.local import local_target

        target = local_target(root, state_dir, config)
    chosen = target.select(_names(servers))
    limits = Limits(folder_to_nfs_s=folder_to_nfs_limit, nfs_to_folder_s=nfs_to_folder_limit)

    def progress(result: CheckResult) -> None:
        if not as_json and result.status is not Status.SKIP:
            word = result.status.value.upper()
            err_console.print(
                f"  {word} {result.check} {result.server} "
                f"{reports.format_latency(result.latency_s)}",
                style="dim", highlight=False,
            )  # fmt: skip

    report = run_checks(target, checks, chosen, limits, restart, progress)
    if junit is not None:
        reports.write_junit(report, junit)
    if as_json:
        print(reports.to_json(report))
    else:
        reports.print_report(report, console, show_skipped=verbose)
    raise typer.Exit(0 if report.ok else 1)
