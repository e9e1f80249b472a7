"""`filesim fault add|list|clear` against a running topology's HTTP API."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from filesim.testing import NasTopology
from tests.support.api import http
from tests.support.topology import filesim

INPUT = "nas-input-1"


@pytest.mark.integration
def test_fault_commands(topo: NasTopology) -> None:
    root = ["--root", str(topo.root)]
    out = filesim("fault", "add", INPUT, "error", "-e", "DQUOT", "-p", "WRITE,CREATE",
                  "--path", "out/*", "--probability", "0.5", *root).stdout  # fmt: skip
    assert out.startswith("added f") and "error EDQUOT on WRITE,CREATE for out/* (p=0.5)" in out
    before_add = time.time()
    filesim("fault", "add", "nas-backup", "outage", "--mode", "refuse", "--duration", "60", *root)
    after_add = time.time()
    listing = json.loads(filesim("fault", "list", "--json", *root).stdout)
    assert [(f["server"], f["kind"]) for f in listing] == [
        (INPUT, "error"),
        ("nas-backup", "outage"),
    ]
    assert http(topo.http_url + "/readyz")[0] == 503
    outage = listing[1]
    assert before_add <= outage["added"] <= after_add
    assert outage["expires"] == outage["added"] + 60
    before_list = time.time()
    table = filesim("fault", "list", *root).stdout
    after_list = time.time()
    assert "outage refuse for 60 s" in table
    # What is left when the table was made, however slow the machine: 60 s less the time
    # between the fault's start and the listing, rounded.
    shown = re.search(r"in (\d+) s", table)
    assert shown is not None, table
    assert (
        round(outage["expires"] - after_list)
        <= int(shown[1])
        <= round(outage["expires"] - before_list)
    )
    assert "cleared 1 fault" in filesim("fault", "clear", "nas-backup", *root).stdout
    assert http(topo.http_url + "/readyz")[0] == 200
    assert "cleared 1 fault" in filesim("fault", "clear", *root).stdout
    assert filesim("fault", "list", *root).stdout.strip() == "no faults"
    bad = filesim("fault", "add", "nope", "readonly", *root, check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("error: no running server named 'nope'")
    bad = filesim("fault", "add", INPUT, "latency", *root, check=False)
    assert bad.returncode == 1 and "needs delay_ms" in bad.stderr


def test_fault_commands_need_a_running_topology(tmp_path: Path) -> None:
    proc = filesim("fault", "list", "--root", str(tmp_path), check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("error: no topology is running under")
