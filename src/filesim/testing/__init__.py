"""filesim in your own tests: a NAS topology started in-process, with a sync barrier and faults.

A pytest plugin (registered through the `pytest11` entry point, so installing filesim is
enough) provides the `nas_topology` fixture:

    import subprocess
    import pytest

    @pytest.mark.nas_topology(servers=["nas-input-1", "nas-output-1"])
    def test_consumes_input(nas_topology):
        nas = nas_topology.server("nas-input-1")
        (nas.folder / "order.csv").write_text("id,qty\\n1,2\\n")   # the tester drops a file
        nas_topology.wait_visible("nas-input-1", "order.csv", side="nfs")
        subprocess.run(["nfs-cat", nas.url("/order.csv")], check=True)
        with nas_topology.error("nas-output-1", "NOSPC", procedures=["WRITE"]):
            ...  # the service under test must cope with a full disk

The topology runs on its own event loop in a background thread, every server on a free port
(bound as port 0, never probed first), under a temporary root; `start_topology` gives the same
object outside pytest. `server.py` holds what a test knows of one server, `topology.py` the
running topology.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from filesim.testing.server import NasServer
from filesim.testing.topology import NasTopology, TopologyTimeout, start_topology


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "nas_topology(config=None, profile=None, servers=None, http=True, processes=None): "
        "options of the `nas_topology` fixture (filesim.testing)",
    )


@pytest.fixture
def nas_topology(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NasTopology]:
    """A filesim topology running for this test (options: @pytest.mark.nas_topology(...) or
    indirect parametrisation with a dict)."""
    options: dict[str, Any] = {}
    marker = request.node.get_closest_marker("nas_topology")
    if marker is not None:
        options.update(marker.kwargs)
    options.update(getattr(request, "param", None) or {})
    with start_topology(tmp_path_factory.mktemp("nas"), **options) as topology:
        yield topology


__all__ = [
    "NasServer",
    "NasTopology",
    "TopologyTimeout",
    "nas_topology",
    "start_topology",
]
