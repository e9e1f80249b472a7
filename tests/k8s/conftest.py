"""Fixtures of the Kubernetes tests (helpers in k8s_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Helm, Running, find_helm, in_ci, start_topology, stop


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = find_helm()
    if binary is None:
        message = "helm not found: set FILESIM_HELM or put helm on PATH (.ci/run installs it)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return Helm(binary, tmp_path_factory.mktemp("helm-values"))


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    """A small topology up locally: a read-write input and a read-only backup."""
    servers = [
        {"name": "nas-input-1", "role": "input", "fsid": 1},
        {"name": "nas-backup", "role": "backup", "fsid": 4, "export": {"readonly": True}},
    ]
    topo = start_topology(tmp_path, servers)
    try:
        yield topo
    finally:
        stop(topo.proc)
