"""What a kubelet needs from `helm template` output, as typed values.

Only what the chart uses (and a little more) is understood; anything else in a pod spec that
would change how the pod runs is refused with a message, rather than silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from podrun.podman import PodsError

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Probe:
    kind: str  # "exec" or "tcp"
    command: tuple[str, ...] = ()
    port: int | str = 0
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    failure_threshold: int = 3
    success_threshold: int = 1


@dataclass(frozen=True)
class Mount:
    volume: str
    path: str
    read_only: bool = False
    sub_path: str = ""


@dataclass(frozen=True)
class Security:
    """A container's effective security context (the pod's, overridden by the container's)."""

    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool = False
    read_only_root: bool = False
    no_new_privileges: bool = False
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resources:
    cpu_limit: float | None = None
    memory_limit: int | None = None
    cpu_request: float | None = None
    memory_request: int | None = None


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str = ""
    ports: tuple[tuple[str, int], ...] = ()
    mounts: tuple[Mount, ...] = ()
    security: Security = Security()
    resources: Resources = Resources()
    readiness: Probe | None = None
    liveness: Probe | None = None
    startup: Probe | None = None
    sidecar: bool = False
    """An init container with restartPolicy Always: started before the main containers and
    kept running beside them."""

    def port_number(self, port: int | str) -> int:
        if isinstance(port, int):
            return port
        for name, number in self.ports:
            if name == port:
                return number
        raise PodsError(f"container {self.name} has no port named {port!r}")


@dataclass(frozen=True)
class Volume:
    name: str
    kind: str  # emptyDir, hostPath, configMap, persistentVolumeClaim
    source: str = ""  # hostPath path, ConfigMap name or claim name
    host_path_type: str = ""
    default_mode: int = 0o644


@dataclass(frozen=True)
class Pod:
    """One Deployment's pod template, with the Service port that reaches it from the node."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    init_containers: tuple[Container, ...]
    containers: tuple[Container, ...]
    volumes: tuple[Volume, ...]
    fs_group: int | None = None
    supplemental_groups: tuple[int, ...] = ()
    node_ports: tuple[tuple[int, int], ...] = ()
    """(nodePort, containerPort) of the Services that select this pod."""
    config_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    grace_seconds: int = 30

    @property
    def server(self) -> str:
        return self.labels.get("app.kubernetes.io/component", self.name)

    @property
    def release(self) -> str:
        return self.labels.get("app.kubernetes.io/instance", "")


_MEMORY = re.compile(r"^([0-9.]+)([KMGTPE]i?|[kmgtpe]|)$")
_FACTORS = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
_FACTORS |= {f"{p}i": 1024 ** (i + 1) for i, p in enumerate("KMGTPE")}


def memory_bytes(quantity: str | int) -> int:
    match = _MEMORY.match(str(quantity))
    if not match or match.group(2) not in _FACTORS:
        raise PodsError(f"memory quantity {quantity!r} not understood (like 512Mi)")
    return int(float(match.group(1)) * _FACTORS[match.group(2)])


def cpu_cores(quantity: str | int | float) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _probe(spec: Obj | None) -> Probe | None:
    if not spec:
        return None
    if "exec" in spec:
        kind, command, port = "exec", tuple(spec["exec"]["command"]), 0
    elif "tcpSocket" in spec:
        kind, command, port = "tcp", (), spec["tcpSocket"]["port"]
    else:
        raise PodsError(f"probe {dict(spec)} not supported (exec and tcpSocket are)")
    return Probe(
        kind,
        command=command,
        port=port,
        initial_delay=float(spec.get("initialDelaySeconds", 0)),
        period=float(spec.get("periodSeconds", 10)),
        timeout=float(spec.get("timeoutSeconds", 1)),
        failure_threshold=int(spec.get("failureThreshold", 3)),
        success_threshold=int(spec.get("successThreshold", 1)),
    )


def _security(pod: Obj, container: Obj) -> Security:
    merged = {**pod, **(container.get("securityContext") or {})}
    caps = merged.get("capabilities") or {}
    unknown = set(merged) - {
        "runAsUser",
        "runAsGroup",
        "runAsNonRoot",
        "fsGroup",
        "supplementalGroups",
        "readOnlyRootFilesystem",
        "allowPrivilegeEscalation",
        "capabilities",
        "privileged",
        "fsGroupChangePolicy",
        "seccompProfile",
    }
    if unknown:
        raise PodsError(f"securityContext fields not supported: {', '.join(sorted(unknown))}")
    user, group = merged.get("runAsUser"), merged.get("runAsGroup")
    return Security(
        run_as_user=None if user is None else int(user),
        run_as_group=None if group is None else int(group),
        run_as_non_root=bool(merged.get("runAsNonRoot", False)),
        read_only_root=bool(merged.get("readOnlyRootFilesystem", False)),
        no_new_privileges=merged.get("allowPrivilegeEscalation") is False,
        privileged=bool(merged.get("privileged", False)),
        cap_add=tuple(caps.get("add") or ()),
        cap_drop=tuple(caps.get("drop") or ()),
    )


def _resources(spec: Obj | None) -> Resources:
    spec = spec or {}
    limits, requests = spec.get("limits") or {}, spec.get("requests") or {}
    return Resources(
        cpu_limit=cpu_cores(limits["cpu"]) if "cpu" in limits else None,
        memory_limit=memory_bytes(limits["memory"]) if "memory" in limits else None,
        cpu_request=cpu_cores(requests["cpu"]) if "cpu" in requests else None,
        memory_request=memory_bytes(requests["memory"]) if "memory" in requests else None,
    )


def _container(spec: Obj, pod_security: Obj, init: bool) -> Container:
    name = spec["name"]
    restart = spec.get("restartPolicy")
    if restart not in (None, "Always") or (restart and not init):
        raise PodsError(f"container {name}: restartPolicy {restart!r} not supported")
    for key in ("envFrom", "lifecycle", "volumeDevices"):
        if key in spec:
            raise PodsError(f"container {name}: {key} not supported")
    env = []
    for item in spec.get("env") or []:
        if "value" not in item:
            raise PodsError(f"container {name}: env {item['name']} without a value")
        env.append((item["name"], str(item["value"])))
    mounts = tuple(
        Mount(m["name"], m["mountPath"], bool(m.get("readOnly", False)), m.get("subPath", ""))
        for m in spec.get("volumeMounts") or []
    )
    return Container(
        name=name,
        image=spec["image"],
        command=tuple(spec.get("command") or ()),
        args=tuple(str(a) for a in spec.get("args") or ()),
        env=tuple(env),
        working_dir=spec.get("workingDir", ""),
        ports=tuple((p.get("name", ""), int(p["containerPort"])) for p in spec.get("ports") or []),
        mounts=mounts,
        security=_security(pod_security, spec),
        resources=_resources(spec.get("resources")),
        readiness=_probe(spec.get("readinessProbe")),
        liveness=_probe(spec.get("livenessProbe")),
        startup=_probe(spec.get("startupProbe")),
        sidecar=init and restart == "Always",
    )


def _volume(spec: Obj) -> Volume:
    name = spec["name"]
    if "emptyDir" in spec:
        if (spec["emptyDir"] or {}).get("medium"):
            raise PodsError(f"volume {name}: emptyDir medium not supported")
        return Volume(name, "emptyDir")
    if "hostPath" in spec:
        host = spec["hostPath"]
        return Volume(name, "hostPath", host["path"], host_path_type=host.get("type", ""))
    if "configMap" in spec:
        source = spec["configMap"]
        if source.get("items"):
            raise PodsError(f"volume {name}: configMap items not supported")
        mode = int(source.get("defaultMode", 0o644))
        return Volume(name, "configMap", source["name"], default_mode=mode)
    if "persistentVolumeClaim" in spec:
        return Volume(name, "persistentVolumeClaim", spec["persistentVolumeClaim"]["claimName"])
    raise PodsError(f"volume {name}: only emptyDir, hostPath, configMap and claims are supported")


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _node_ports(
    services: Iterable[Obj], labels: Mapping[str, str], main: Container
) -> list[tuple[int, int]]:
    """(host port, containerPort) to publish: what a node offers of the Services, TCP only (the
    chart's UDP and 111 twins are for clients inside a cluster). A NodePort Service publishes
    its numbered nodePorts (Kubernetes would pick random ones for the rest); a ClusterIP one its
    port. One host port per container port: the first the Service lists."""
    found: list[tuple[int, int]] = []
    for service in services:
        spec = service["spec"]
        if not _selects(spec.get("selector") or {}, labels):
            continue
        for port in spec.get("ports") or []:
            if port.get("protocol", "TCP") != "TCP":
                continue
            node_port = port.get("nodePort")
            if node_port is None and spec.get("type") in ("NodePort", "LoadBalancer"):
                continue
            target = main.port_number(port.get("targetPort", port["port"]))
            if all(target != published for _, published in found):
                found.append((int(node_port or port["port"]), target))
    return found


def pods(documents: Iterable[Obj]) -> list[Pod]:
    """Every Deployment of a rendered chart as a Pod, in the order rendered."""
    docs = [d for d in documents if d]
    config_maps = {
        d["metadata"]["name"]: dict(d.get("data") or {}) for d in docs if d["kind"] == "ConfigMap"
    }
    services = [d for d in docs if d["kind"] == "Service"]
    result = []
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        template = deployment["spec"]["template"]
        spec, labels = template["spec"], dict(template["metadata"].get("labels") or {})
        pod_security = dict(spec.get("securityContext") or {})
        fs_group = pod_security.get("fsGroup")
        init = tuple(_container(c, pod_security, True) for c in spec.get("initContainers") or [])
        main = tuple(_container(c, pod_security, False) for c in spec["containers"])
        result.append(
            Pod(
                name=deployment["metadata"]["name"],
                namespace=deployment["metadata"].get("namespace", "default"),
                labels=labels,
                init_containers=init,
                containers=main,
                volumes=tuple(_volume(v) for v in spec.get("volumes") or []),
                fs_group=None if fs_group is None else int(fs_group),
                supplemental_groups=tuple(
                    int(g) for g in pod_security.get("supplementalGroups", [])
                ),
                node_ports=tuple(_node_ports(services, labels, main[0])),
                config_maps=config_maps,
                grace_seconds=int(spec.get("terminationGracePeriodSeconds", 30)),
            )
        )
    if not result:
        raise PodsError("no Deployment in the manifest: is it `helm template` output of the chart?")
    return result


def load(text: str) -> list[Pod]:
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise PodsError(f"the manifest is not YAML: {exc}") from None
    return pods(d for d in documents if isinstance(d, dict))


def select(all_pods: list[Pod], names: Iterable[str]) -> list[Pod]:
    """The pods of the given servers (or Deployment names); all when none are given."""
    wanted = list(names)
    if not wanted:
        return all_pods
    by_name = {p.server: p for p in all_pods} | {p.name: p for p in all_pods}
    missing = [n for n in wanted if n not in by_name]
    if missing:
        known = ", ".join(p.server for p in all_pods)
        raise PodsError(f"no enabled server {', '.join(missing)} in the chart (enabled: {known})")
    return [by_name[n] for n in wanted]
