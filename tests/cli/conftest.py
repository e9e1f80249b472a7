"""The shared two-server topology of the CLI tests (tests/support/fixtures.py)."""

from tests.support.fixtures import topo, topo_one, topo_per_server

__all__ = ["topo", "topo_one", "topo_per_server"]
