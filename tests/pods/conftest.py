"""Fixtures of the pod tests: podman, the image built from the local base, a pod runner.

Without podman, helm or mmdebstrap these tests skip on a developer machine and FAIL under
CI=true, where .ci/run installs them: a CI run that skipped them would prove nothing.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy" / "podman"))

from podrun import base, helm, image, kubelet, manifest  # noqa: E402
from podrun.podman import PodsError  # noqa: E402

# What a default `minikube mount` presents as the owner of every file: the VM's docker user.
MINIKUBE_MOUNT_UID = MINIKUBE_MOUNT_GID = 1000


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(tool: str) -> None:
    if shutil.which(tool) is None:
        message = f"{tool} not found (apt-get install podman buildah mmdebstrap runc; .ci/run does)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


def free_node_ports(count: int) -> int:
    """A NodePort base (30000-32767) whose `count` ports are all free on 127.0.0.1."""
    rng = random.Random()
    for _ in range(200):
        first = rng.randrange(30000, 32767 - count)
        socks = []
        try:
            for port in range(first, first + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of free ports in the NodePort range")


def chown_tree(root: Path, uid: int = MINIKUBE_MOUNT_UID, gid: int = MINIKUBE_MOUNT_GID) -> None:
    """Own `root` and everything in it as a default `minikube mount` shows it."""
    os.chown(root, uid, gid)
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(directory, name), uid, gid)


@pytest.fixture(scope="session")
def built_image() -> image.BuiltImage:
    """The chart's image, built from the mmdebstrap base (cached between runs)."""
    for tool in ("podman", "mmdebstrap", "apt-get"):
        require(tool)
    try:
        found = base.ensure_base(base.spec_for())
        built = image.build(found.image)
    except PodsError as exc:
        pytest.fail(str(exc))
    print(
        f"\nbase {found.image} ({found.how}, {found.seconds:.1f} s); "
        f"image {built.image} {built.seconds:.1f} s, {built.size_bytes / 1e6:.0f} MB"
    )
    return built


class PodRunner:
    """Pods started by one test, deleted at its end whatever happens."""

    def __init__(self, state: Path) -> None:
        self.state = state

    def start(self, pod: manifest.Pod, folders: Path) -> kubelet.Started:
        node_root = next(v.source for v in pod.volumes if v.kind == "hostPath")
        started = kubelet.start(pod, self.state, host_paths={node_root: folders}, ready_timeout=90)
        assert started.ready, f"{pod.name} not ready: {started.detail}"
        return started

    def delete(self, pod_name: str) -> None:
        kubelet.delete(self.state, pod_name, grace=10)

    def close(self) -> None:
        for name in kubelet.pods_of(self.state):
            self.delete(name)


@pytest.fixture
def pods(tmp_path: Path, built_image: image.BuiltImage) -> Iterator[PodRunner]:
    try:
        helm.find_helm()
    except PodsError as exc:
        if in_ci():
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    runner = PodRunner(tmp_path / "pods-state")
    try:
        yield runner
    finally:
        runner.close()


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    """The testers' folders (the chart's hostPath root), owned as minikube mount shows them."""
    root = tmp_path / "simulator-data"
    root.mkdir()
    chown_tree(root)
    return root


def elapsed_since(start: float) -> str:
    return f"{time.monotonic() - start:.1f} s"
