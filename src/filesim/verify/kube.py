"""A topology deployed with the Helm chart, reached through kubectl and the servers' NodePorts.

`kubectl` runs through an injectable `KubectlRunner`, so everything here is tested on recorded
JSON. The context is always explicit: verify never falls back to the current context.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from filesim.topology import Server, Topology, default_topology, load_topology, parse_topology
from filesim.topology.load import TopologyError
from filesim.verify.kube_pods import COMPONENT, Pod, current_pod, is_ready, pod_problems
from filesim.verify.target import ServerTarget, Target, VerifyError
from filesim.waiting import WaitTimeout, poll_until

SELECTOR = "simulator.protocol=nfs"
KubectlRunner = Callable[[list[str]], str]
"""Runs `kubectl ARGS` (context and namespace already in ARGS) and returns its stdout."""


def kubectl_runner(args: list[str]) -> str:
    try:
        done = subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise VerifyError("kubectl is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise VerifyError(f"`kubectl {' '.join(args)}` did not finish within 60 s") from None
    if done.returncode != 0:
        raise VerifyError(f"`kubectl {' '.join(args)}` failed: {done.stderr.strip()[-400:]}")
    return done.stdout


class Kube:
    def __init__(self, context: str, namespace: str, run: KubectlRunner = kubectl_runner) -> None:
        if not context:
            raise VerifyError("--kube-context is required for Kubernetes (never the current one)")
        self.context, self.namespace, self._run = context, namespace, run

    def run(self, *args: str, namespaced: bool = True) -> str:
        scope = ["--namespace", self.namespace] if namespaced else []
        return self._run(["--context", self.context, *scope, *args])

    def items(self, kind: str, selector: str | None = None, namespaced: bool = True) -> list[Any]:
        args = ["get", kind, "-o", "json"] + (["-l", selector] if selector else [])
        text = self.run(*args, namespaced=namespaced)
        try:
            return list(json.loads(text).get("items", []))
        except (json.JSONDecodeError, AttributeError):
            raise VerifyError(f"`kubectl get {kind}` did not print a JSON list") from None


def kube_target(
    context: str,
    namespace: str,
    *,
    node_ip: str | None = None,
    data_dir: Path | None = None,
    config: Path | None = None,
    profile: str | None = None,
    run: KubectlRunner = kubectl_runner,
) -> Target:
    kube = Kube(context, namespace, run)
    pods: list[Pod] = kube.items("pods", SELECTOR)
    if not pods:
        raise VerifyError(
            f"no filesim pods (label {SELECTOR}) in namespace {namespace} of context {context}; "
            "install the chart there or pass the right --namespace"
        )
    topology = _topology(kube, config, profile)
    host = node_ip or _node_address(kube)
    services = kube.items("services", SELECTOR)
    target = Target(
        kind="kubernetes",
        profile=topology.profile,
        servers=[],
        sync_status=None,
        agent_problems=lambda server: pod_problems(server, pods),
        restart=lambda: None,
        description=f"Kubernetes {context}/{namespace} via {host}",
    )
    for server in topology.enabled:
        port, problem = _node_port(server.name, services)
        if problem:
            target.unreachable[server.name] = problem
        folder = None
        if data_dir is not None:
            folder = data_dir / (server.folder if server.folder else server.name)
        target.servers.append(_server_target(server, host, port, folder))

    def restart() -> None:
        pods[:] = restart_pods(kube, [s.name for s in target.servers], pods)

    target.restart = restart
    return target


def _server_target(server: Server, host: str, port: int, folder: Path | None) -> ServerTarget:
    return ServerTarget(
        name=server.name,
        role=server.role,
        host=host,
        port=port,
        export=server.export.path,
        folder=folder,
        readonly=server.readonly,
        storage=server.storage,
        direction=server.sync.direction,
        continuous=server.sync.continuous,
        initial=server.sync.initial,
        mirror_deletes=server.sync.mirror_deletes,
    )


def _topology(kube: Kube, config: Path | None, profile: str | None) -> Topology:
    """The topology file given, else the one the chart deployed (its ConfigMap), else built-in."""
    if config is not None:
        return load_topology(config, profile)
    for cm in kube.items("configmaps", "app.kubernetes.io/part-of=filesim"):
        text = cm.get("data", {}).get("topology.yaml")
        if text:
            try:
                return parse_topology(
                    text, source=f"ConfigMap {cm['metadata']['name']}", profile=profile
                )
            except TopologyError as exc:
                raise VerifyError(str(exc)) from None
    return default_topology(profile or "default")


def _node_address(kube: Kube) -> str:
    for node in kube.items("nodes", namespaced=False):
        addresses = {
            a.get("type"): a.get("address") for a in node.get("status", {}).get("addresses", [])
        }
        address = addresses.get("ExternalIP") or addresses.get("InternalIP")
        if address:
            return str(address)
    raise VerifyError("cannot tell the address of a node; pass --node-ip")


def _node_port(name: str, services: Sequence[Any]) -> tuple[int, str]:
    """The NodePort of the server's Service, or 0 and why there is none."""
    for svc in services:
        if svc.get("metadata", {}).get("labels", {}).get(COMPONENT) != name:
            continue
        for port in svc.get("spec", {}).get("ports", []):
            if port.get("name") == "nfs" and port.get("nodePort"):
                return int(port["nodePort"]), ""
        kind = svc.get("spec", {}).get("type", "?")
        return 0, f"Service {svc['metadata']['name']} is {kind} with no NodePort for nfs"
    return 0, f"no Service for {name} (label {COMPONENT}={name})"


def restart_pods(
    kube: Kube, servers: list[str], pods: Sequence[Pod], limit: float = 300.0, poll: float = 2.0
) -> list[Pod]:
    """Delete each server's pod and wait until a new one is ready; return the new pod list."""
    old = {p["metadata"]["uid"] for p in pods}
    for name in servers:
        pod = current_pod(name, pods)
        if pod is not None:
            kube.run("delete", "pod", pod["metadata"]["name"], "--wait=false")
    waiting = list(servers)

    def replaced() -> list[Pod] | None:
        nonlocal waiting
        fresh: list[Pod] = kube.items("pods", SELECTOR)
        waiting = [n for n in servers if not _replaced(n, fresh, old)]
        return None if waiting else fresh

    try:
        return poll_until(replaced, limit, interval=poll, what="the new pods")
    except WaitTimeout:
        raise VerifyError(
            f"pods of {', '.join(waiting)} not ready {limit:g} s after deletion"
        ) from None


def _replaced(server: str, pods: Sequence[Pod], old: set[str]) -> bool:
    pod = current_pod(server, pods)
    return pod is not None and pod["metadata"]["uid"] not in old and is_ready(pod)
