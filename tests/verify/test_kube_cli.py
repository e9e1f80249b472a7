"""`filesim verify --kube-context` end to end: kubectl answers from recorded JSON (a stand-in
`kubectl` on PATH), while the NFS checks reach real servers through the "NodePorts" — here a
local seed topology whose ports the recorded Services point at."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.topology import FILESIM, by_name, detached
from tests.verify.harness import probes_left, results
from tests.verify.kube_fakes import load

pytestmark = pytest.mark.slow

FAKE_KUBECTL = """\
#!{python}
import json, sys
from pathlib import Path
here = Path({here!r})
with open(here / "calls.jsonl", "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
if "get" not in args:
    sys.exit("unexpected kubectl call: " + " ".join(args))
kind = args[args.index("get") + 1]
sys.stdout.write((here / (kind + ".json")).read_text())
"""


def fake_kubectl(tmp: Path, ports: dict[str, int]) -> Path:
    """A `kubectl` serving the seed recording, with each Service's NodePort set to `ports`."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    services = load("services", "seed")
    for svc in services["items"]:
        name = svc["metadata"]["labels"]["app.kubernetes.io/component"]
        svc["spec"]["ports"][0]["nodePort"] = ports[name]
    docs = {"pods": load("pods", "seed"), "services": services,
            "configmaps": load("configmaps", "seed"), "nodes": {"items": []}}  # fmt: skip
    for kind, doc in docs.items():
        (bin_dir / f"{kind}.json").write_text(json.dumps(doc))
    script = bin_dir / "kubectl"
    script.write_text(FAKE_KUBECTL.format(python=sys.executable, here=str(bin_dir)))
    script.chmod(0o755)
    return bin_dir


@pytest.mark.integration
def test_kubernetes_mode_checks_pods_and_reaches_servers_by_node_port(tmp_path: Path) -> None:
    root = tmp_path / "sim"
    with detached(root, "--profile", "seed") as status:
        ports = {name: s["port"] for name, s in by_name(status).items()}
        bin_dir = fake_kubectl(tmp_path, ports)
        done = subprocess.run(
            [*FILESIM, "verify", "--kube-context", "kind-filesim", "--namespace", "filesim",
             "--node-ip", "127.0.0.1", "--data-dir", str(root), "--json",
             "--only", "reachable,sync-agents,nfs-to-folder,readonly-backup,isolation"],
            capture_output=True, text=True, timeout=600,
            env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        )  # fmt: skip
        assert not probes_left(root)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    by = results(doc)
    assert doc["target"] == "Kubernetes kind-filesim/filesim via 127.0.0.1"
    assert all(by["reachable", s]["status"] == "pass" for s in ports)
    assert all(by["sync-agents", s]["status"] == "pass" for s in ports)
    assert by["nfs-to-folder", "nas-output-2"]["latency_ms"] is not None
    assert by["readonly-backup", "nas-backup"]["status"] == "pass"
    calls = [json.loads(line) for line in (bin_dir / "calls.jsonl").read_text().splitlines()]
    assert calls and all(c[:2] == ["--context", "kind-filesim"] for c in calls)


def test_kubernetes_options_need_a_context(tmp_path: Path) -> None:
    done = subprocess.run(
        [*FILESIM, "verify", "--root", str(tmp_path), "--node-ip", "10.0.0.1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "apply to Kubernetes (--kube-context) only" in done.stderr
