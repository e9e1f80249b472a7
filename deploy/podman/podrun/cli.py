"""pods.py: try the Helm chart without a cluster, every server a podman pod.

pods.py build                           base image (mmdebstrap, cached) + the filesim image
pods.py up [SERVER...] --folders DIR    render the chart, run its pods, wait until ready
pods.py status | logs SERVER [-c C] | down [SERVER...]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from podrun import base, helm, image, kubelet, manifest, podman
from podrun.podman import LABEL, PodsError


def default_state_dir() -> Path:
    explicit = os.environ.get("FILESIM_PODS_STATE")
    if explicit:
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/var/lib/filesim-pods")
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "filesim-pods"


def _pairs(items: Sequence[str], what: str) -> list[tuple[str, str]]:
    result = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise PodsError(f"{what} {item!r}: expected NAME=VALUE")
        result.append((key, value))
    return result


def cmd_build(args: argparse.Namespace) -> None:
    spec = base.spec_for(args.mirror or None)
    found = base.ensure_base(spec, refresh=args.refresh)
    print(f"base {found.image}: {found.how} in {found.seconds:.1f} s ({found.tarball})")
    if args.base_only:
        return
    built = image.build(found.image, args.tag)
    size = built.size_bytes / 1e6
    print(f"image {built.image}: built in {built.seconds:.1f} s, {size:.0f} MB")


def _manifest(args: argparse.Namespace) -> str:
    if args.manifest == "-":
        return sys.stdin.read()
    if args.manifest:
        return Path(args.manifest).read_text()
    return helm.template(
        release=args.release, namespace=args.namespace, values=args.values, sets=args.set
    )


def cmd_up(args: argparse.Namespace) -> None:
    pods = manifest.select(manifest.load(_manifest(args)), args.servers)
    host_paths = {
        node: Path(host).resolve() for node, host in _pairs(args.host_path, "--host-path")
    }
    if args.folders:
        for pod in pods:
            for volume in pod.volumes:
                if volume.kind == "hostPath":
                    host_paths.setdefault(volume.source, Path(args.folders).resolve())
    ports = {name: int(port) for name, port in _pairs(args.port, "--port")}
    state = args.state_dir
    failed = False
    for pod in pods:
        started = kubelet.start(
            pod, state, host_paths=host_paths, ports=ports, ready_timeout=args.timeout
        )
        where = ", ".join(f"127.0.0.1:{h}" for h in started.published.values())
        status = "ready" if started.ready else "NOT READY"
        print(
            f"{started.server}: pod {started.pod} {status} at {where} "
            f"in {started.seconds:.1f} s ({started.detail})"
        )
        failed = failed or not started.ready
    if failed:
        raise PodsError("some pods are not ready: see `pods.py logs SERVER`")


def _pods_named(state: Path, servers: Sequence[str]) -> list[str]:
    mine = kubelet.pods_of(state)
    if not servers:
        return mine
    result = []
    for server in servers:
        named = podman.labelled("pod", f"{LABEL}.server={server}")
        matches = [p for p in named if p in mine] or ([server] if server in mine else [])
        if not matches:
            raise PodsError(f"no pod of {server} runs from {state}")
        result += matches
    return result


def cmd_down(args: argparse.Namespace) -> None:
    for name in _pods_named(args.state_dir, args.servers):
        kubelet.delete(args.state_dir, name, args.grace)
        print(f"deleted pod {name}")


def cmd_status(args: argparse.Namespace) -> None:
    names = _pods_named(args.state_dir, [])
    if not names:
        print(f"no pods run from {args.state_dir}")
    for name in names:
        record = kubelet.load_record(args.state_dir, name)
        outcome = kubelet.probe_now(args.state_dir, name)
        ports = ", ".join(f"127.0.0.1:{p}" for p in (record.get("published") or {}).values())
        status = "ready" if outcome.ok else "not ready"
        print(f"{record.get('server', name)}: pod {name} {status} at {ports} ({outcome.detail})")
        for container, state in kubelet.containers_of(name):
            print(f"  {container}: {state}")


def cmd_logs(args: argparse.Namespace) -> None:
    (pod,) = _pods_named(args.state_dir, [args.server])[:1]
    container = kubelet.container_name(pod, args.container)
    proc = podman.run(["logs", container], check=False)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="pods.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    top.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir(),
        help="where pods' volumes live (default: %(default)s)",
    )
    sub = top.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="build the base image (cached) and the filesim image")
    build.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="'deb URI SUITE COMP'",
        help="apt source line for mmdebstrap (default: apt's own sources)",
    )
    build.add_argument("--refresh", action="store_true", help="rebuild the base, ignore the cache")
    build.add_argument("--base-only", action="store_true", help="only the base image")
    build.add_argument("--tag", help="image tag (default: the chart's, localhost/filesim:VERSION)")
    build.set_defaults(func=cmd_build)

    up = sub.add_parser("up", help="run the chart's servers as pods and wait until ready")
    up.add_argument("servers", nargs="*", metavar="SERVER", help="only these (default: all)")
    up.add_argument(
        "--manifest",
        "-f",
        help="`helm template` output (file, or - for stdin); "
        "default: render deploy/helm/filesim with helm",
    )
    up.add_argument("--values", action="append", type=Path, default=[], help="helm -f")
    up.add_argument("--set", action="append", default=[], help="helm --set")
    up.add_argument("--release", default="filesim")
    up.add_argument("--namespace", default="default")
    up.add_argument("--folders", help="host folder standing for the chart's hostPath root")
    up.add_argument("--host-path", action="append", default=[], metavar="NODE_PATH=HOST_DIR")
    up.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="SERVER=HOST_PORT",
        help="publish on this port instead of the server's NodePort",
    )
    up.add_argument("--timeout", type=float, default=120, help="seconds to wait for readiness")
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="delete pods (all of this state directory by default)")
    down.add_argument("servers", nargs="*", metavar="SERVER")
    down.add_argument("--grace", type=int, help="seconds before SIGKILL (default: the pod's)")
    down.set_defaults(func=cmd_down)

    status = sub.add_parser("status", help="pods, their containers, the readiness probe now")
    status.set_defaults(func=cmd_status)

    logs = sub.add_parser("logs", help="a container's output (kubectl logs POD -c CONTAINER)")
    logs.add_argument("server")
    logs.add_argument("-c", "--container", default="nfs-server")
    logs.set_defaults(func=cmd_logs)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except PodsError as exc:
        print(f"pods.py: {exc}", file=sys.stderr)
        return 1
    return 0
