"""Fixtures shared by test folders (imported into their conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from filesim.testing import NasTopology, start_topology

SERVERS = ["nas-input-1", "nas-backup"]

MODES = ["one", "per-server"]
"""The `processes:` modes of a topology: every server in the topology's process, or each
server's NFS side in a worker process of its own (the control plane stays behind)."""

both_modes = pytest.mark.parametrize("topo", MODES, indirect=True)
"""Run a test of the shared topology once per process mode (`topo` gets the mode as param)."""


def _shared(factory: pytest.TempPathFactory, processes: str) -> Iterator[NasTopology]:
    with start_topology(factory.mktemp("rt"), servers=SERVERS, processes=processes) as topology:
        yield topology
        topology.clear_faults()


@pytest.fixture(scope="module")
def topo_one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NasTopology]:
    """The two-server topology (one input, the read-only backup) in the test process."""
    yield from _shared(tmp_path_factory, "one")


@pytest.fixture(scope="module")
def topo_per_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NasTopology]:
    """The same topology with each NFS server in a worker process of its own."""
    yield from _shared(tmp_path_factory, "per-server")


@pytest.fixture
def topo(request: pytest.FixtureRequest) -> Iterator[NasTopology]:
    """A two-server topology (one input, the read-only backup) shared by a test module; in
    one process, or in the mode given by indirect parametrisation (`both_modes`). Each mode's
    topology starts once per module, on its first use."""
    mode = getattr(request, "param", "one")
    if mode not in MODES:
        raise ValueError(f"topo: unknown process mode {mode!r} (known: {', '.join(MODES)})")
    name = "topo_per_server" if mode == "per-server" else "topo_one"
    topology: NasTopology = request.getfixturevalue(name)
    yield topology
    topology.clear_faults()  # a failing test must not leave a fault behind for the next one
