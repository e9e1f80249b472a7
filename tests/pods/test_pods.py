"""The chart's pods, run by podman as a kubelet runs them, mounted by the real Linux NFS client.

The image is built from the local mmdebstrap base; the chart is rendered by helm in both
profiles and its Deployments run unchanged (deploy/podman/podrun). The host folder stands for
a default `minikube mount`: owned by 1000:1000. Each pod publishes its Service's NodePort on
127.0.0.1, and the PVs of `filesim k8s render --node-ip 127.0.0.1` mount it from a kclient
guest (which reaches the host's loopback as 10.0.2.2) with exactly their mount options.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from podrun import helm, kubelet, manifest, podman

from filesim.k8s import render
from filesim.topology import parse_topology
from filesim.waiting import poll_until
from tests.support.kclient import checks, kclient_path

from .conftest import PodRunner, chown_tree, elapsed_since, free_node_ports

pytestmark = [pytest.mark.pods, pytest.mark.kernel, pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
SEED_VALUES = REPO / "deploy" / "helm" / "filesim" / "values-seed.yaml"
SERVERS = ("nas-input-1", "nas-backup", "nas-output-1")

# Runs in the guest. Mount each export with its PV's options (and `ro` where the PV is
# readOnly, as the kubelet adds); the backup a second time without `ro`, so its refusal is
# the server's and not the client's.
GUEST = """\
set -e
mkdir -p /m/in /m/out /m/bak /m/bakrw
mount.nfs "10.0.2.2:$EXPORT" /m/in -o "$IN_OPTS"
mount.nfs "10.0.2.2:$EXPORT" /m/out -o "$OUT_OPTS"
mount.nfs "10.0.2.2:$EXPORT" /m/bak -o "$BAK_OPTS"
mount.nfs "10.0.2.2:$EXPORT" /m/bakrw -o "$BAK_RW_OPTS"
if [ "$PHASE" = first ]; then
  echo "written over NFS" > /m/out/from-nfs.txt
  sync
fi
echo "CHECK out $(cat /m/out/from-nfs.txt)"
echo "CHECK seeded $(cat /m/in/seeded.txt)"
echo "CHECK dropped $(cat /m/in/dropped.txt)"
echo "CHECK backup $(cat /m/bak/backup.txt)"
if echo nope > /m/bak/nope 2>/dev/null; then echo "CHECK bak-ro accepted"; else echo "CHECK bak-ro refused"; fi
if (echo nope > /m/bakrw/nope) 2>/tmp/err; then echo "CHECK bak-rw accepted"; else echo "CHECK bak-rw refused $(cat /tmp/err)"; fi
"""


def rendered(tmp: Path, release: str, node_port_base: int, *values: Path) -> str:
    """`helm template` of the chart with these values, probing readiness every second."""
    overrides = tmp / f"values-{release}.yaml"
    overrides.write_text(
        yaml.safe_dump(
            {
                "service": {"nodePortBase": node_port_base},
                "readinessProbe": {"initialDelaySeconds": 0, "periodSeconds": 1},
            }
        )
    )
    return helm.template(release=release, namespace="sim", values=[*values, overrides])


def pvs(manifest_text: str, node_port_base: int) -> dict[str, dict[str, Any]]:
    """The PVs `filesim k8s render --node-ip 127.0.0.1` makes for the rendered topology."""
    docs = [d for d in yaml.safe_load_all(manifest_text) if d]
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
    topology = parse_topology(config_map["data"]["topology.yaml"], source="chart ConfigMap")
    objects = render(topology, node_ip="127.0.0.1", node_port_base=node_port_base, example=False)
    return {
        o["metadata"]["labels"]["app.kubernetes.io/component"]: o
        for o in objects
        if o["kind"] == "PersistentVolume"
    }


def kubelet_options(pv: dict[str, Any]) -> str:
    options = list(pv["spec"]["mountOptions"])
    if pv["spec"]["nfs"]["readOnly"]:
        options.append("ro")
    return ",".join(options)


def guest_run(tmp: Path, pv: dict[str, dict[str, Any]], phase: str) -> dict[str, str]:
    script = tmp / "guest.sh"
    script.write_text(GUEST)
    env = {
        "EXPORT": pv["nas-input-1"]["spec"]["nfs"]["path"],
        "IN_OPTS": kubelet_options(pv["nas-input-1"]),
        "OUT_OPTS": kubelet_options(pv["nas-output-1"]),
        "BAK_OPTS": kubelet_options(pv["nas-backup"]),
        "BAK_RW_OPTS": ",".join(pv["nas-backup"]["spec"]["mountOptions"]),
        "PHASE": phase,
    }
    command = ["bash", str(kclient_path()), "run", "--no-mount", "--server", "127.0.0.1"]
    command += ["--port", option(pv["nas-input-1"], "port"), "--export", env["EXPORT"]]
    command += ["--vers", "3", "--timeout", "180"]
    for name, value in env.items():
        command += ["--env", f"{name}={value}"]
    proc = subprocess.run(
        [*command, "--", str(script)], capture_output=True, text=True, timeout=240, check=False
    )
    assert proc.returncode == 0, f"kclient exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return checks(proc.stdout)


def option(pv: dict[str, Any], name: str) -> str:
    (value,) = [o.split("=", 1)[1] for o in pv["spec"]["mountOptions"] if o.startswith(name + "=")]
    return str(value)


def nfs_cat(port: int, path: str) -> bytes | None:
    """The file over NFS with libnfs (another real client), or None while it is not there."""
    url = f"nfs://127.0.0.1/data/{path}?version=3&nfsport={port}&mountport={port}"
    proc = subprocess.run(["nfs-cat", url], capture_output=True, timeout=30, check=False)
    return proc.stdout if proc.returncode == 0 else None


def container_logs(name: str) -> str:
    proc = podman.run(["logs", name], check=False)
    return proc.stdout + proc.stderr


def test_chart_pods_serve_the_folders_through_their_pvs(
    pods: PodRunner, folders: Path, tmp_path: Path
) -> None:
    begin = time.monotonic()
    release = f"p{int(time.time() * 1000) % 10**8}"
    base = free_node_ports(7)
    text = rendered(tmp_path, release, base)
    chart_pods = manifest.select(manifest.load(text), SERVERS)
    pv = pvs(text, base)

    # What the testers had in their folders before the pods started.
    for name, file, content in (
        ("nas-input-1", "seeded.txt", "from the input folder\n"),
        ("nas-backup", "backup.txt", "from the backup folder\n"),
    ):
        (folders / name).mkdir()
        (folders / name / file).write_text(content)
    chown_tree(folders)

    started = {p.server: pods.start(p, folders) for p in chart_pods}
    port = {name: s.host_port() for name, s in started.items()}
    assert port["nas-input-1"] == int(option(pv["nas-input-1"], "port")) == base

    # Dropped into the input's host folder while the pod runs; another client sees it first,
    # so the guest's lookup finds it at once (no negative-lookup caching to wait out).
    (folders / "nas-input-1" / "dropped.txt").write_text("dropped on the host\n")
    chown_tree(folders / "nas-input-1")
    poll_until(
        lambda: nfs_cat(port["nas-input-1"], "dropped.txt"),
        20,
        interval=0.3,
        what="dropped.txt exported by nas-input-1",
    )

    found = guest_run(tmp_path, pv, "first")
    assert found["out"] == "written over NFS"
    assert found["seeded"] == "from the input folder"
    assert found["dropped"] == "dropped on the host"
    assert found["backup"] == "from the backup folder"
    assert found["bak-ro"] == "refused"
    assert found["bak-rw"].startswith("refused"), found["bak-rw"]
    assert "Read-only file system" in found["bak-rw"], found["bak-rw"]

    # The output pod's sidecar copies the file into the host folder.
    written = folders / "nas-output-1" / "from-nfs.txt"
    poll_until(written.exists, 20, interval=0.2, what=f"{written} synced by the sidecar")
    assert written.read_text() == "written over NFS\n"
    assert not (folders / "nas-backup" / "nope").exists()

    # The sidecar says what it does, on stdout, where `kubectl logs -c sync-to-windows` reads.
    sidecar = kubelet.container_name(started["nas-output-1"].pod, "sync-to-windows")
    logs = container_logs(sidecar).splitlines()
    assert logs[0] == (
        "filesim sync nas-output-1 (output), direction both, "
        "watcher events (local folder), rescan every 60 s"
    ), logs
    batch = re.compile(r"\[\d\d:\d\d:\d\d\] nas-output-1: 1 file to folder in \d+ ms")
    assert any(batch.fullmatch(line) for line in logs), logs

    # Delete the pods (emptyDirs go with them) and recreate them from the same manifest: the
    # init container brings the files back from the host folders.
    for name in ("nas-input-1", "nas-output-1"):
        pods.delete(started[name].pod)
    for pod in chart_pods:
        if pod.server != "nas-backup":
            pods.start(pod, folders)
    again = guest_run(tmp_path, pv, "second")
    assert again["out"] == "written over NFS"
    assert again["seeded"] == "from the input folder"
    assert again["dropped"] == "dropped on the host"
    print(f"\npods test (default profile) in {elapsed_since(begin)}")


def test_seed_profile_pods_have_the_sidecar_on_output_servers_only(
    pods: PodRunner, folders: Path, tmp_path: Path
) -> None:
    release = f"s{int(time.time() * 1000) % 10**8}"
    base = free_node_ports(7)
    text = rendered(tmp_path, release, base, SEED_VALUES)
    every = manifest.load(text)
    assert len(every) == 7
    for pod in every:
        init = [c.name for c in pod.init_containers]
        sidecars = [c.name for c in pod.init_containers if c.sidecar]
        assert init[0] == "sync-windows-data"
        expected = ["sync-to-windows"] if pod.labels["simulator.nas-role"] == "output" else []
        assert sidecars == expected, pod.name

    (folders / "nas-input-1").mkdir()
    (folders / "nas-input-1" / "seeded.txt").write_text("seed\n")
    chown_tree(folders)
    chosen = manifest.select(every, ["nas-input-1", "nas-output-1"])
    started = {p.server: pods.start(p, folders) for p in chosen}
    running = {s: dict(kubelet.containers_of(started[s].pod)) for s in started}
    prefix = {s: started[s].pod + "-" for s in started}
    states = {s: {k.removeprefix(prefix[s]): v for k, v in running[s].items()} for s in running}
    assert states["nas-input-1"] == {"sync-windows-data": "exited", "nfs-server": "running"}
    assert states["nas-output-1"] == {
        "sync-windows-data": "exited",
        "sync-to-windows": "running",
        "nfs-server": "running",
    }
    # Seeded at start: the input's file is exported although no sidecar runs.
    assert nfs_cat(started["nas-input-1"].host_port(), "seeded.txt") == b"seed\n"
