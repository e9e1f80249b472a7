"""Helpers of the Kubernetes tests: a real helm, rendering the chart, validating objects.

helm is found through $FILESIM_HELM, then PATH, then /usr/local/bin/helm (where .ci/run puts
it). Without it the chart tests skip on a developer machine but FAIL under CI=true: a CI run
that silently skipped them would prove nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import yaml
from kubernetes_validate.utils import latest_version  # type: ignore[import-untyped]

from filesim.waiting import WaitTimeout, poll_until

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "filesim"

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest that
# kubernetes-validate bundles.
KUBE_VERSIONS = ("1.29.0", latest_version())


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def find_helm() -> str | None:
    explicit = os.environ.get("FILESIM_HELM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    found = shutil.which("helm")
    if found:
        return found
    fallback = "/usr/local/bin/helm"
    return fallback if os.access(fallback, os.X_OK) else None


class HelmFailed(Exception):
    def __init__(self, stderr: str) -> None:
        super().__init__(stderr)
        self.stderr = stderr


@dataclass
class Helm:
    binary: str
    workdir: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args], capture_output=True, text=True, timeout=60, check=False
        )

    def values_file(self, values: dict[str, Any] | str) -> Path:
        text = values if isinstance(values, str) else yaml.safe_dump(values)
        path = self.workdir / f"values-{len(list(self.workdir.iterdir()))}.yaml"
        path.write_text(text)
        return path

    def template(
        self,
        *values: Path | dict[str, Any] | str,
        release: str = "t",
        namespace: str = "sim",
        kube_version: str = "1.29.0",
    ) -> list[dict[str, Any]]:
        """`helm template` of the chart; the rendered objects. Raises HelmFailed."""
        args = ["template", release, str(CHART), "--namespace", namespace]
        args += ["--kube-version", kube_version]
        for v in values:
            args += ["-f", str(v if isinstance(v, Path) else self.values_file(v))]
        proc = self.run(*args)
        if proc.returncode != 0:
            raise HelmFailed(proc.stderr)
        return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]

    def template_error(self, *values: Path | dict[str, Any] | str) -> str:
        try:
            self.template(*values)
        except HelmFailed as exc:
            return exc.stderr
        raise AssertionError("helm template accepted values it should have rejected")


def validate_all(objects: Sequence[dict[str, Any]]) -> None:
    """Every object is valid, strictly, for every Kubernetes version we support."""
    assert objects, "nothing rendered"
    for version in KUBE_VERSIONS:
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = "/".join(str(p) for p in exc.path)
                raise AssertionError(
                    f"{obj['kind']}/{obj['metadata']['name']} invalid for Kubernetes {version} "
                    f"at {where}: {exc.message}"
                ) from None


def of_kind(objects: Sequence[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def init_names(deployment: dict[str, Any]) -> list[str]:
    return [c["name"] for c in pod_spec(deployment).get("initContainers", [])]


# --- a running topology (`filesim up`), for `filesim ping` and the kernel mount test ----------


FILESIM = [sys.executable, "-c", "from filesim.cli import main; main()"]


@dataclass
class Running:
    root: Path
    config: Path
    ports: dict[str, int]
    proc: subprocess.Popen[bytes]


def start_topology(tmp: Path, servers: list[dict[str, Any]]) -> Running:
    """`filesim up` in a subprocess for `servers`, each on a free port (bound as port 0); waits
    until every server answers `ping`, or fails with the command's output."""
    from filesim.nfsclient.ping import PingError, ping

    config = tmp / "topology.yaml"
    config.write_text(json.dumps({"servers": servers}))
    root = tmp / "root"
    root.mkdir()
    log = (tmp / "up.log").open("wb")
    proc = subprocess.Popen(
        [*FILESIM, "up", "--config", str(config), "--root", str(root), "--base-port", "0",
         "--http-port", "0"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    runtime = root / ".filesim" / "runtime.json"

    def answering() -> dict[str, int] | None:
        if proc.poll() is not None:
            output = (tmp / "up.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"filesim up exited with {proc.returncode}:\n{output}")
        if not runtime.exists():
            return None
        ports = {s["name"]: s["port"] for s in json.loads(runtime.read_text())["servers"]}
        try:
            for port in ports.values():
                ping("127.0.0.1", port, timeout=1.0)
        except PingError:
            return None
        return ports

    try:
        ports = poll_until(answering, 30, interval=0.2, what="every server to answer ping")
    except WaitTimeout:
        stop(proc)
        output = (tmp / "up.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"servers not answering after 30 s:\n{output}") from None
    return Running(root, config, ports, proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
