"""`filesim --help`, `status`, `fault ...` and `down` must not load the runtime they do not run:
the NFS server, the sync engine and the web stack doubled the start of every command (1.45 s
against 0.7 s on the 2-CPU CI machine). Nor the pydantic models of the topology and of the
runtime document, a fifth of what was left (`filesim.lazy`)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = [
    "filesim.runtime.runner",
    "filesim.runtime.http",
    "filesim.nfs.server",
    "filesim.sync.agent",
    "filesim.verify.runner",
    "starlette",
    "uvicorn",
    "prometheus_client",
    "pydantic",
    "filesim.topology.model",
    "filesim.runtime.model",
]


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_the_command_line_loads_no_runtime_until_a_command_runs_it() -> None:
    loaded = _loaded_after("import filesim.cli")
    assert "filesim.cli.topology_cmds" in loaded  # the commands are registered
    assert sorted(loaded & set(HEAVY)) == []


def test_the_commands_that_run_a_topology_still_find_it() -> None:
    # What `up` and `serve` import when they run: the same names the lazy imports use.
    loaded = _loaded_after(
        "from filesim.runtime.main import run_topology\n"
        "from filesim.runtime.runner import TopologyRunner\n"
        "from filesim.runtime import daemon\n"
        "from filesim.runtime.control import API_TIMEOUT, stop_via_api\n"
        "from filesim.runtime.api_client import ApiClient, ApiError\n"
        "from filesim.cli.pv_snippet import pv_renderer"
    )
    assert {"filesim.runtime.runner", "filesim.nfs.server"} <= loaded


def test_a_lazy_name_is_loaded_when_used_and_an_unknown_one_is_refused() -> None:
    loaded = _loaded_after(
        "import filesim.topology as t\n"
        "assert t.Topology.__name__ == 'Topology' and t.load_topology.__name__ == 'load_topology'\n"
        "try:\n"
        "    t.nothing_like_this\n"
        "except AttributeError as exc:\n"
        "    assert 'nothing_like_this' in str(exc)\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')"
    )
    assert {"filesim.topology.model", "filesim.topology.load"} <= loaded
