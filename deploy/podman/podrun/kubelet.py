"""Running a chart's pod with podman the way a kubelet runs it.

In order: the pod (its network namespace) with the Service's port published on
127.0.0.1:NODE_PORT; every init container to completion, in order, except native sidecars
(restartPolicy Always), which are started and left running; then the main containers; then the
readiness probe on its own schedule until the pod is ready. Every container gets the
Deployment's user, groups, read-only root, capabilities and limits, and the pod's own volumes.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from podrun import podman, probes, volumes
from podrun.manifest import Container, Pod, Probe
from podrun.podman import LABEL, PodsError

STATE_FILE = "pod.json"


def container_name(pod_name: str, container: str) -> str:
    return f"{pod_name}-{container}"


@dataclass
class Started:
    pod: str
    server: str
    published: dict[int, int]
    """containerPort -> host port on 127.0.0.1."""
    ready: bool
    detail: str
    seconds: float
    containers: list[str] = field(default_factory=list)

    def host_port(self) -> int:
        return next(iter(self.published.values()))


def _image_user(image: str) -> str:
    info = podman.inspect("image", image)
    if info is None:
        raise PodsError(
            f"image {image} is not in podman's storage (imagePullPolicy is not honoured: "
            "nothing is pulled): build it with `pods.py build`"
        )
    config = info.get("Config") or {}
    return str(config.get("User") or "")


def _check_non_root(container: Container) -> None:
    """runAsNonRoot, as the kubelet checks it before starting the container."""
    sec = container.security
    if not sec.run_as_non_root:
        return
    if sec.run_as_user is not None:
        uid: str = str(sec.run_as_user)
    else:
        uid = _image_user(container.image).split(":")[0] or "0"
    if not uid.isdigit():
        raise PodsError(
            f"container {container.name}: image user {uid!r} is not numeric, so runAsNonRoot "
            "cannot verify it (set runAsUser)"
        )
    if int(uid) == 0:
        raise PodsError(f"container {container.name} would run as root but runAsNonRoot is set")


def run_args(pod: Pod, container: Container, paths: Mapping[str, Path], label: str) -> list[str]:
    """`podman run` options and arguments for one container of `pod` (without `run`)."""
    sec, res = container.security, container.resources
    args = ["--pod", pod.name, "--name", container_name(pod.name, container.name)]
    args += ["--label", f"{LABEL}={label}", "--pull=never"]
    if sec.run_as_user is not None:
        user = str(sec.run_as_user)
        if sec.run_as_group is not None:
            user += f":{sec.run_as_group}"
        args += ["--user", user]
    for group in ([pod.fs_group] if pod.fs_group is not None else []) + list(
        pod.supplemental_groups
    ):
        args += ["--group-add", str(group)]
    if sec.read_only_root:
        # podman mounts tmpfs on /tmp, /run, /var/tmp with --read-only; a kubelet does not.
        args += ["--read-only", "--read-only-tmpfs=false"]
    if sec.no_new_privileges:
        args += ["--security-opt", "no-new-privileges"]
    if sec.privileged:
        args.append("--privileged")
    args += [f"--cap-drop={c.lower()}" for c in sec.cap_drop]
    args += [f"--cap-add={c.lower()}" for c in sec.cap_add]
    if res.memory_limit is not None:
        # No swap for a container, as the kubelet sets it up.
        args += ["--memory", str(res.memory_limit), "--memory-swap", str(res.memory_limit)]
    if res.memory_request is not None:
        args += ["--memory-reservation", str(res.memory_request)]
    if res.cpu_limit is not None:
        args += ["--cpus", f"{res.cpu_limit:g}"]
    if res.cpu_request is not None:
        args += ["--cpu-shares", str(max(2, int(res.cpu_request * 1024)))]
    for name, value in container.env:
        args += ["--env", f"{name}={value}"]
    if container.working_dir:
        args += ["--workdir", container.working_dir]
    for mount in container.mounts:
        source = paths.get(mount.volume)
        if source is None:
            raise PodsError(f"container {container.name} mounts unknown volume {mount.volume}")
        if mount.sub_path:
            source = source / mount.sub_path
            source.mkdir(parents=True, exist_ok=True)
        spec = f"type=bind,src={source},dst={mount.path}"
        args += ["--mount", spec + (",ro=true" if mount.read_only else "")]
    if container.command:
        # command replaces the image's ENTRYPOINT and drops its CMD; args replace CMD.
        args += ["--entrypoint", json.dumps(list(container.command))]
    args.append(container.image)
    args += list(container.args)
    return args


def _logs_tail(name: str, lines: int = 20) -> str:
    proc = podman.run(["logs", "--tail", str(lines), name], check=False)
    return (proc.stdout + proc.stderr).strip()


def _state(name: str) -> dict[str, Any]:
    info = podman.inspect("container", name) or {}
    state = info.get("State") or {}
    return state if isinstance(state, dict) else {}


def _published(pod: Pod, ports: Mapping[str, int]) -> dict[int, int]:
    """containerPort -> host port: the Service's NodePort, unless `ports` names another."""
    result: dict[int, int] = {}
    for node_port, container_port in pod.node_ports:
        result[container_port] = ports.get(pod.server, node_port)
    if not result:
        raise PodsError(f"no Service selects the pod of {pod.server}: nothing to publish")
    return result


def start(
    pod: Pod,
    state: Path,
    *,
    host_paths: Mapping[str, Path],
    ports: Mapping[str, int] | None = None,
    ready_timeout: float = 120,
) -> Started:
    """Create and start `pod`; returns once it is ready (or the timeout passed: then
    `ready` is False and `detail` says why). An init container that fails raises."""
    begin = time.monotonic()
    label = str(state.resolve())
    if podman.inspect("pod", pod.name) is not None:
        raise PodsError(f"pod {pod.name} exists already: `pods.py down {pod.server}` first")
    published = _published(pod, ports or {})
    for container in (*pod.init_containers, *pod.containers):
        _check_non_root(container)
    paths = volumes.prepare(pod, state, host_paths)
    create = ["pod", "create", "--name", pod.name, "--label", f"{LABEL}={label}"]
    create += ["--label", f"{LABEL}.server={pod.server}"]
    create += ["--label", f"{LABEL}.release={pod.release}", "--hostname", pod.name[:63]]
    for container_port, host_port in published.items():
        create += ["--publish", f"127.0.0.1:{host_port}:{container_port}"]
    podman.run(create)
    started: list[str] = []
    for container in pod.init_containers:
        name = container_name(pod.name, container.name)
        if container.sidecar:
            podman.run(
                ["run", "--detach", "--restart=always", *run_args(pod, container, paths, label)]
            )
        else:
            proc = podman.run(["run", *run_args(pod, container, paths, label)], check=False)
            if proc.returncode != 0:
                raise PodsError(
                    f"init container {container.name} of {pod.name} failed "
                    f"(exit {proc.returncode}):\n{_logs_tail(name)}"
                )
        started.append(name)
    main_started = time.monotonic()
    for container in pod.containers:
        podman.run(["run", "--detach", "--restart=always", *run_args(pod, container, paths, label)])
        started.append(container_name(pod.name, container.name))
    _save(state, pod, published)
    ready, detail = True, "no readiness probe"
    deadline = time.monotonic() + ready_timeout
    for container in pod.containers:
        if container.readiness is None:
            continue
        name = container_name(pod.name, container.name)
        outcome = probes.wait_until_ready(
            name,
            container,
            container.readiness,
            published,
            main_started,
            deadline,
            functools.partial(_gone, name),
        )
        ready, detail = ready and outcome.ok, outcome.detail
    return Started(
        pod.name, pod.server, published, ready, detail, time.monotonic() - begin, started
    )


def _gone(name: str) -> str | None:
    state = _state(name)
    if state.get("Running"):
        return None
    return f"container {name} is {state.get('Status', 'gone')}:\n{_logs_tail(name)}"


def _save(state: Path, pod: Pod, published: Mapping[int, int]) -> None:
    main = next((c for c in pod.containers if c.readiness is not None), pod.containers[0])
    record = {
        "server": pod.server,
        "release": pod.release,
        "grace_seconds": pod.grace_seconds,
        "published": {str(k): v for k, v in published.items()},
        "probe_container": main.name,
        "readiness": asdict(main.readiness) if main.readiness else None,
        "ports": [list(p) for p in main.ports],
    }
    path = volumes.pod_dir(state, pod.name) / STATE_FILE
    path.write_text(json.dumps(record, indent=2))


def delete(state: Path, pod_name: str, grace: int | None = None) -> None:
    """`kubectl delete pod`: stop with the grace period, remove, delete its emptyDirs."""
    record = load_record(state, pod_name)
    seconds = grace if grace is not None else int(record.get("grace_seconds", 30))
    if podman.inspect("pod", pod_name) is not None:
        podman.run(["pod", "rm", "--force", "--time", str(seconds), pod_name], timeout=seconds + 60)
    volumes.remove(state, pod_name)


def load_record(state: Path, pod_name: str) -> dict[str, Any]:
    path = volumes.pod_dir(state, pod_name) / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def pods_of(state: Path) -> list[str]:
    """Names of the pods this state directory's runs created."""
    return podman.labelled("pod", f"{LABEL}={state.resolve()}")


def probe_now(state: Path, pod_name: str) -> probes.Outcome:
    """The pod's readiness probe, once."""
    record = load_record(state, pod_name)
    spec = record.get("readiness")
    if not spec:
        return probes.Outcome(True, "no readiness probe")
    probe = Probe(**{**spec, "command": tuple(spec["command"])})
    container = Container(
        name=record["probe_container"],
        image="",
        ports=tuple((str(n), int(p)) for n, p in record.get("ports", [])),
    )
    published = {int(k): int(v) for k, v in record["published"].items()}
    name = container_name(pod_name, container.name)
    if (gone := _gone(name)) is not None:
        return probes.Outcome(False, gone.splitlines()[0])
    return probes.run_once(name, container, probe, published)


def containers_of(pod_name: str) -> list[tuple[str, str]]:
    """(container name, status) of every container of the pod except its infra."""
    info = podman.inspect("pod", pod_name) or {}
    result = []
    for item in info.get("Containers") or []:
        name = str(item.get("Name", ""))
        if name.endswith("-infra"):
            continue
        result.append((name, str(item.get("State", ""))))
    return result
