"""What a server's pod should look like, compared with what `kubectl get pods -o json` says.

Pure functions over the decoded JSON, so they are tested on recorded output without a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from filesim.verify.target import ServerTarget

COMPONENT = "app.kubernetes.io/component"
MAIN = "nfs-server"
INIT_SYNC = "sync-windows-data"
SIDECAR = "sync-to-windows"

Pod = Mapping[str, Any]


def pods_of(server: str, pods: Sequence[Pod]) -> list[Pod]:
    return [p for p in pods if p.get("metadata", {}).get("labels", {}).get(COMPONENT) == server]


def is_ready(pod: Pod) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def current_pod(server: str, pods: Sequence[Pod]) -> Pod | None:
    """The pod serving `server`: a ready one if any, else one not being deleted."""
    mine = pods_of(server, pods)
    live = [p for p in mine if not p.get("metadata", {}).get("deletionTimestamp")]
    ready = [p for p in live if is_ready(p)]
    candidates = ready or live or mine
    return candidates[0] if candidates else None


def _state(status: Mapping[str, Any] | None) -> str:
    """'running', 'terminated (exit N)', 'waiting (Reason)' or 'unknown'."""
    state = (status or {}).get("state", {})
    if "running" in state:
        return "running"
    if "terminated" in state:
        return f"terminated (exit {state['terminated'].get('exitCode')})"
    if "waiting" in state:
        return f"waiting ({state['waiting'].get('reason', '')})"
    return "unknown"


def pod_problems(server: ServerTarget, pods: Sequence[Pod]) -> list[str]:
    """Everything about the pod of `server` that differs from what its sync policy asks for."""
    pod = current_pod(server.name, pods)
    if pod is None:
        return [f"no pod for {server.name} (label {COMPONENT}={server.name})"]
    name = pod["metadata"].get("name", "?")
    spec_init = {c["name"]: c for c in pod.get("spec", {}).get("initContainers", [])}
    status = pod.get("status", {})
    init_status = {s["name"]: s for s in status.get("initContainerStatuses", [])}
    main_status = {s["name"]: s for s in status.get("containerStatuses", [])}
    problems = []
    if _state(main_status.get(MAIN)) != "running":
        problems.append(f"container {MAIN} of pod {name} is {_state(main_status.get(MAIN))}")
    problems += _init_problems(server, name, spec_init, init_status)
    problems += _sidecar_problems(server, name, spec_init, init_status)
    return problems


def _init_problems(
    server: ServerTarget, pod: str, spec: Mapping[str, Any], status: Mapping[str, Any]
) -> list[str]:
    wanted = server.has_agent and server.initial
    if wanted and INIT_SYNC not in spec:
        return [f"pod {pod} has no init container {INIT_SYNC} (start-up sync of {server.name})"]
    if not wanted and INIT_SYNC in spec:
        return [f"pod {pod} has an init container {INIT_SYNC} but {server.name} syncs nothing"]
    state = _state(status.get(INIT_SYNC)) if INIT_SYNC in spec else "terminated (exit 0)"
    if state != "terminated (exit 0)":
        return [f"init container {INIT_SYNC} of pod {pod} is {state}, not completed"]
    return []


def _sidecar_problems(
    server: ServerTarget, pod: str, spec: Mapping[str, Any], status: Mapping[str, Any]
) -> list[str]:
    wanted = server.has_agent and server.continuous
    container = spec.get(SIDECAR)
    if container is not None and container.get("restartPolicy") != "Always":
        return [f"{SIDECAR} in pod {pod} is a plain init container, not a native sidecar"]
    policy = f"{server.direction.value}, {'continuous' if server.continuous else 'at start only'}"
    if wanted and container is None:
        return [f"pod {pod} has no sidecar {SIDECAR}, but {server.name} syncs {policy}"]
    if not wanted and container is not None:
        return [f"pod {pod} has a sidecar {SIDECAR}, but {server.name} needs none ({policy})"]
    if wanted and _state(status.get(SIDECAR)) != "running":
        return [f"sidecar {SIDECAR} of pod {pod} is {_state(status.get(SIDECAR))}"]
    return []
