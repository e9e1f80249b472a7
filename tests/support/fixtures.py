"""Fixtures shared by test folders (imported into their conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from filesim.testing import NasTopology, start_topology

SERVERS = ["nas-input-1", "nas-backup"]


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NasTopology]:
    """A two-server topology (one input, the read-only backup) shared by a test module."""
    with start_topology(tmp_path_factory.mktemp("rt"), servers=SERVERS) as topology:
        yield topology
        topology.clear_faults()


@pytest.fixture(autouse=True)
def no_faults_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failing test must not leave a fault behind for the next one."""
    yield
    if "topo" in request.fixturenames:
        request.getfixturevalue("topo").clear_faults()
