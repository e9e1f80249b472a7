"""The shared two-server topology of the runtime tests (tests/support/fixtures.py)."""

from tests.support.fixtures import no_faults_left, topo, topo_one, topo_per_server

__all__ = ["no_faults_left", "topo", "topo_one", "topo_per_server"]
