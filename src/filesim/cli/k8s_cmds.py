"""`filesim k8s render`, `filesim k8s values` and `filesim ping` (the chart's readiness probe)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml

from filesim.cli.app import app, console, err_console
from filesim.k8s import K8sError, helm_values, render, to_yaml, write_dir
from filesim.k8s.render import parse_mount_options
from filesim.k8s.servers import NODE_PORT_BASE
from filesim.nfsclient.ping import ping
from filesim.topology.profiles import PROFILES

k8s_app = typer.Typer(
    name="k8s",
    help="Kubernetes: PV/PVC manifests and Helm values for a topology.",
    no_args_is_help=True,
)
app.add_typer(k8s_app, name="k8s")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Topology file (YAML); default: the built-in topology."),
]
ProfileOption = Annotated[
    str | None,
    typer.Option("--profile", help=f"Sync profile, overriding the file's: {', '.join(PROFILES)}."),
]


def _parse_service_ips(items: list[str]) -> dict[str, str]:
    result = {}
    for item in items:
        name, sep, ip = item.partition("=")
        if not sep or not name or not ip:
            raise K8sError(f"--service-ip {item!r}: expected NAME=IP, like nas-input-1=10.96.0.12")
        result[name] = ip
    return result


@k8s_app.command("render")
def render_cmd(
    config: ConfigOption = None,
    profile: ProfileOption = None,
    namespace: Annotated[str, typer.Option(help="Namespace of the claims and ConfigMap.")] = (
        "default"
    ),
    release: Annotated[str, typer.Option(help="Helm release name of the chart install.")] = (
        "filesim"
    ),
    node_ip: Annotated[
        str | None,
        typer.Option(
            "--node-ip",
            help="A node's IP: PVs mount IP:NodePort (the default style; any node will do).",
        ),
    ] = None,
    service_ip: Annotated[
        list[str] | None,
        typer.Option(
            "--service-ip",
            help="NAME=CLUSTER_IP: this server's PV mounts its Service's ClusterIP:port. "
            "Repeatable; overrides --node-ip for that server.",
        ),
    ] = None,
    capacity: Annotated[str, typer.Option(help="Capacity written on each PV and PVC.")] = "10Gi",
    node_port_base: Annotated[
        int, typer.Option(help="The chart's service.nodePortBase.")
    ] = NODE_PORT_BASE,
    example: Annotated[
        bool, typer.Option("--example/--no-example", help="Add an example Deployment.")
    ] = True,
    nfs_version: Annotated[
        str,
        typer.Option(
            "--nfs-version", help="NFS version in the PVs' mountOptions: 3, 4.0, 4.1 or 4.2."
        ),
    ] = "3",
    mount_options: Annotated[
        str | None,
        typer.Option(
            "--mount-options",
            help="The PVs' mountOptions exactly, e.g. production's \"nfsvers=3,tcp,hard,intr\" "
            "(needs --service-ip for each server: its Service serves 2049 and 111).",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write one file per object into this directory."),
    ] = None,
) -> None:
    """Write PersistentVolume + PersistentVolumeClaim per enabled server, a ConfigMap of
    endpoints, and an example Deployment that mounts them all, for a topology installed with
    the Helm chart.

    The PVs need an address the kubelet can reach from the node itself: it resolves names with
    the node's resolver, which usually does not know cluster DNS (*.svc.cluster.local), and such
    mounts hang. So give an IP: --node-ip (port = the server's NodePort; stable across Service
    re-creation) or --service-ip NAME=IP per server (its ClusterIP and Service port).

    With --mount-options "nfsvers=3,tcp,hard,intr" (any list) the PVs carry exactly those
    options, as in production: only their `server:` differs from a production PV.
    """
    from filesim.topology.load import load_topology

    topology = load_topology(config, profile)
    objects = render(
        topology,
        namespace=namespace,
        release=release,
        node_ip=node_ip,
        service_ips=_parse_service_ips(service_ip or []),
        capacity=capacity,
        node_port_base=node_port_base,
        example=example,
        nfs_version=nfs_version,
        mount_options=None if mount_options is None else parse_mount_options(mount_options),
    )
    if output is None:
        sys.stdout.write(to_yaml(objects))
        return
    for path in write_dir(objects, output):
        console.print(str(path), highlight=False, soft_wrap=True)


@k8s_app.command("values")
def values_cmd(config: ConfigOption = None, profile: ProfileOption = None) -> None:
    """Print Helm values (profile and servers) for a topology file:

    filesim k8s values -c topo.yaml > topo-values.yaml; helm install NAME CHART -f topo-values.yaml
    """
    from filesim.topology.load import load_topology

    values, notes = helm_values(load_topology(config, profile))
    for note in notes:
        err_console.print(f"note: {note}", highlight=False, soft_wrap=True)
    sys.stdout.write(yaml.safe_dump(values, sort_keys=False))


@k8s_app.command("schema")
def schema_cmd(
    write: Annotated[
        Path | None,
        typer.Option("--write", help="Write the generated files into this chart directory."),
    ] = None,
    check: Annotated[
        Path | None,
        typer.Option("--check", help="Fail when this chart's generated files are out of date."),
    ] = None,
) -> None:
    """The Helm chart's files generated from the topology model: values.schema.json and
    templates/_topology.tpl. Without options, print the schema.

    After a change to the topology model: filesim k8s schema --write deploy/helm/filesim
    """
    from filesim.k8s import chart  # the topology's pydantic models: only when it runs

    if write is not None:
        for path in chart.write_files(write):
            console.print(str(path), highlight=False, soft_wrap=True)
    if check is not None:
        stale = chart.stale_files(check)
        if stale:
            raise K8sError(
                f"{', '.join(stale)} in {check} differ from the topology model; "
                f"run `{chart.GENERATE}`"
            )
        console.print(f"{check}: generated files are up to date", highlight=False)
    if write is None and check is None:
        sys.stdout.write(chart.chart_files()[chart.SCHEMA_FILE])


@app.command("ping")
def ping_cmd(
    host: Annotated[str, typer.Option(help="Server address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Server port (NFS and MOUNT share it).")] = 2049,
    timeout: Annotated[float, typer.Option(help="Seconds for the whole check.")] = 3.0,
) -> None:
    """Exit 0 if the server at HOST:PORT answers an RPC NULL call to NFS v3 and MOUNT v3.

    The readiness probe of the Helm chart.
    """
    result = ping(host, port, timeout)
    times = ", ".join(f"{what} {ms:.1f} ms" for what, ms in result.rtt_ms.items())
    console.print(f"{host}:{port} answers ({times})", highlight=False)
