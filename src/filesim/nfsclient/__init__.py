"""Our own ONC RPC / NFSv3 client: `filesim verify`, the readiness probe, the pytest fixture
and the CLI talk to servers through it (ours, or any other NAS)."""
