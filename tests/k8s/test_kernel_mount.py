"""The PV mount options of `filesim k8s render` mount with the real Linux NFS client.

kclient boots Debian's kernel under QEMU (about 6 s under emulation here) against a local
`filesim up`. The guest runs mount.nfs with exactly the PV's mountOptions, and `ro` where the
PV is readOnly (what the kubelet adds); only the address differs: the PV says 127.0.0.1, the
guest reaches the host's loopback as 10.0.2.2.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from filesim.k8s import render
from filesim.topology import Layout, load_topology
from tests.support.kclient import kclient_path

from .harness import Running

pytestmark = [pytest.mark.kernel, pytest.mark.integration]

GUEST_SCRIPT = """\
set -e
mkdir -p /m/rw /m/ro
mount.nfs "10.0.2.2:$RW_PATH" /m/rw -o "$RW_OPTS"
mount.nfs "10.0.2.2:$RO_PATH" /m/ro -o "$RO_OPTS"
grep -E ' /m/(rw|ro) nfs ' /proc/mounts
echo "written through the PV's options" > /m/rw/from-kernel.txt
cat /m/rw/from-kernel.txt
if echo nope > /m/ro/nope 2>/dev/null; then echo "read-only mount took a write"; exit 3; fi
echo read-only-refused
"""


def find_kclient() -> str:
    return str(kclient_path())


def kubelet_options(pv: dict[str, Any]) -> str:
    """The -o the kubelet passes to mount for this PV."""
    options = list(pv["spec"]["mountOptions"])
    if pv["spec"]["nfs"]["readOnly"]:
        options.append("ro")
    return ",".join(options)


def test_pv_mount_options_mount_with_the_kernel_client(running: Running, tmp_path: Path) -> None:
    kclient = find_kclient()
    topology = load_topology(running.config)
    servers = [s.model_copy(update={"port": running.ports[s.name]}) for s in topology.servers]
    topology = topology.model_copy(update={"servers": servers})
    # Each Service "ClusterIP" is the host's loopback, the service port the local server's port.
    objects = render(topology, service_ips={s.name: "127.0.0.1" for s in topology.servers})
    pvs = {
        o["metadata"]["labels"]["app.kubernetes.io/component"]: o
        for o in objects
        if o["kind"] == "PersistentVolume"
    }
    rw, ro = pvs["nas-input-1"], pvs["nas-backup"]
    assert rw["spec"]["nfs"]["server"] == ro["spec"]["nfs"]["server"] == "127.0.0.1"
    assert f"port={running.ports['nas-input-1']}" in rw["spec"]["mountOptions"]
    env = {
        "RW_OPTS": kubelet_options(rw),
        "RO_OPTS": kubelet_options(ro),
        "RW_PATH": rw["spec"]["nfs"]["path"],
        "RO_PATH": ro["spec"]["nfs"]["path"],
    }
    script = tmp_path / "guest.sh"
    script.write_text(GUEST_SCRIPT)
    port = str(running.ports["nas-input-1"])
    command = ["bash", kclient, "run", "--no-mount", "--server", "127.0.0.1", "--port", port]
    command += ["--export", "/data", "--vers", "3", "--timeout", "180"]
    for name, value in env.items():
        command += ["--env", f"{name}={value}"]
    proc = subprocess.run(
        [*command, "--", str(script)], capture_output=True, text=True, timeout=240, check=False
    )
    assert proc.returncode == 0, f"kclient exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "written through the PV's options" in proc.stdout
    assert "read-only-refused" in proc.stdout
    mounted = [line for line in proc.stdout.splitlines() if " nfs " in line]
    assert any("/m/ro" in line and "ro," in line for line in mounted), proc.stdout
    store = Layout(running.root).store(topology.server("nas-input-1"))
    assert (store / "from-kernel.txt").read_text() == "written through the PV's options\n"
