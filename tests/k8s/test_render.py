"""`filesim k8s render` and `filesim k8s values`: valid objects that agree with the chart."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from filesim.cli import app
from filesim.k8s import K8sError, render
from filesim.topology import default_topology, parse_topology

from .harness import FILESIM, Helm, of_kind, validate_all

PRESET = default_topology()
NODE_IP = "192.0.2.10"  # TEST-NET-1: only ever written into manifests, never contacted


def pvs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """PersistentVolumes by server name."""
    return {
        o["metadata"]["labels"]["app.kubernetes.io/component"]: o
        for o in objects
        if o["kind"] == "PersistentVolume"
    }


def option(pv: dict[str, Any], name: str) -> str:
    options: list[str] = pv["spec"]["mountOptions"]
    (value,) = [o.split("=", 1)[1] for o in options if o.startswith(name + "=")]
    return value


def test_render_is_valid_kubernetes() -> None:
    objects = render(PRESET, node_ip=NODE_IP, namespace="team-a", release="sim")
    validate_all(objects)
    kinds = [o["kind"] for o in objects]
    assert kinds.count("PersistentVolume") == kinds.count("PersistentVolumeClaim") == 7
    assert kinds.count("ConfigMap") == 1 and kinds.count("Deployment") == 1


def test_pv_static_binding_and_mount_options() -> None:
    objects = render(PRESET, node_ip=NODE_IP, namespace="team-a", release="sim")
    claims = of_kind(objects, "PersistentVolumeClaim")
    for name, pv in pvs(objects).items():
        spec = pv["spec"]
        assert spec["storageClassName"] == ""
        port = option(pv, "port")
        assert option(pv, "mountport") == port
        assert set(spec["mountOptions"]) == {
            "vers=3", "proto=tcp", f"port={port}", f"mountport={port}", "mountproto=tcp",
            "nolock",
        }  # fmt: skip
        assert spec["nfs"]["server"] == NODE_IP and spec["nfs"]["path"] == "/data"
        claim = claims[spec["claimRef"]["name"]]
        assert spec["claimRef"]["namespace"] == claim["metadata"]["namespace"] == "team-a"
        assert claim["spec"]["volumeName"] == pv["metadata"]["name"]
        assert claim["spec"]["storageClassName"] == ""
        readonly = PRESET.server(name).readonly
        assert spec["nfs"]["readOnly"] is readonly
        assert spec["accessModes"] == claim["spec"]["accessModes"]
        assert spec["accessModes"] == (["ReadOnlyMany"] if readonly else ["ReadWriteMany"])


@pytest.mark.parametrize("version", ["4.0", "4.1", "4.2"])
def test_pvs_for_nfsv4(version: str) -> None:
    objects = render(PRESET, node_ip=NODE_IP, nfs_version=version)
    validate_all(objects)
    for pv in pvs(objects).values():
        port = option(pv, "port")
        assert pv["spec"]["mountOptions"] == [f"vers={version}", "proto=tcp", f"port={port}"]


def test_render_agrees_with_the_chart(helm: Helm) -> None:
    """Node style mounts the chart's NodePorts; service style its Service ports; the endpoint
    ConfigMap names the chart's Services."""
    chart = helm.template(release="sim", namespace="team-a")
    services = {
        s["metadata"]["labels"]["app.kubernetes.io/component"]: s
        for s in of_kind(chart, "Service").values()
    }
    by_node = pvs(render(PRESET, node_ip=NODE_IP, namespace="team-a", release="sim"))
    service_ips = {name: f"10.96.0.{i + 10}" for i, name in enumerate(services)}
    by_service = render(PRESET, service_ips=service_ips, namespace="team-a", release="sim")
    assert set(by_node) == set(services)
    for name, service in services.items():
        ports = {p["name"]: p for p in service["spec"]["ports"]}
        port = ports["nfs"]
        assert option(by_node[name], "port") == str(port["nodePort"])
        assert option(pvs(by_service)[name], "port") == str(port["port"])
        assert pvs(by_service)[name]["spec"]["nfs"]["server"] == service_ips[name]
    (config_map,) = of_kind(by_service, "ConfigMap").values()
    records = yaml.safe_load(config_map["data"]["endpoints.yaml"])["servers"]
    for record in records:
        service = services[record["name"]]
        assert record["service"] == f"{service['metadata']['name']}.team-a.svc.cluster.local"
        assert record["servicePort"] == service["spec"]["ports"][0]["port"]
        assert record["nodePort"] == service["spec"]["ports"][0]["nodePort"]
    assert config_map["data"]["NAS_INPUT_1_HOST"] == service_ips["nas-input-1"]


PRODUCTION = ["nfsvers=3", "tcp", "hard", "intr"]


@pytest.mark.parametrize(
    "options",
    [PRODUCTION, ["vers=4.1", "hard"], ["nfsvers=3", "proto=tcp", "timeo=600", "retrans=2"]],
)
def test_production_mount_options_are_carried_exactly(options: list[str]) -> None:
    """`--mount-options`: the PVs say exactly what production's say; only `server:` differs."""
    service_ips = {s.name: f"10.96.100.{11 + i}" for i, s in enumerate(PRESET.servers)}
    objects = render(PRESET, service_ips=service_ips, mount_options=options, example=False)
    validate_all(objects)
    for name, pv in pvs(objects).items():
        assert pv["spec"]["mountOptions"] == options
        assert pv["spec"]["nfs"]["server"] == service_ips[name]
    (config_map,) = of_kind(objects, "ConfigMap").values()
    assert config_map["data"]["NAS_INPUT_1_MOUNT_OPTIONS"] == ",".join(options)


PRODUCTION_PV = """
apiVersion: v1
kind: PersistentVolume
metadata: {name: my-app-file-sim-nas-input-1}
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteMany]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  mountOptions: [nfsvers=3, tcp, hard, intr]
  nfs: {server: nas-input-1.prod.example, path: /data, readOnly: false}
  claimRef: {namespace: my-app, name: file-sim-nas-input-1-nfs}
"""


def test_production_pv_differs_from_the_simulator_pv_only_in_its_server() -> None:
    """docs/kubernetes.md's side-by-side, checked: a production PV (as a team would write it)
    and the one filesim renders for the same claim differ in `nfs.server` alone."""
    production = yaml.safe_load(PRODUCTION_PV)
    objects = render(
        PRESET, namespace="my-app", release="file-sim", capacity="10Gi",
        service_ips={s.name: f"10.96.100.{11 + i}" for i, s in enumerate(PRESET.servers)},
        mount_options=["nfsvers=3", "tcp", "hard", "intr"],
    )  # fmt: skip
    simulated = pvs(objects)["nas-input-1"]
    del simulated["metadata"]["labels"]  # filesim's own labels, for kubectl get -l
    assert simulated["spec"]["nfs"].pop("server") == "10.96.100.11"
    production["spec"]["nfs"].pop("server")
    assert simulated == production


def test_production_options_need_the_service_address() -> None:
    """Without port=, options reach 2049 and 111: a NodePort cannot serve that."""
    with pytest.raises(K8sError, match=re.escape("give --service-ip NAME=CLUSTER_IP for")):
        render(PRESET, node_ip=NODE_IP, mount_options=PRODUCTION)
    objects = render(PRESET, node_ip=NODE_IP, mount_options=["vers=3", "port=32150"])
    assert pvs(objects)["nas-backup"]["spec"]["mountOptions"] == ["vers=3", "port=32150"]


def test_example_deployment_mounts_every_claim() -> None:
    objects = render(PRESET, node_ip=NODE_IP)
    (example,) = of_kind(objects, "Deployment").values()
    spec = example["spec"]["template"]["spec"]
    claims = {v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"]}
    assert claims == set(of_kind(objects, "PersistentVolumeClaim"))
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert set(mounts) == {f"/mnt/{s.name}" for s in PRESET.servers}
    assert mounts["/mnt/nas-backup"]["readOnly"] is True
    assert mounts["/mnt/nas-input-1"]["readOnly"] is False
    assert not any(
        o["kind"] == "Deployment" for o in render(PRESET, node_ip=NODE_IP, example=False)
    )


def test_disabled_servers_get_no_volume() -> None:
    topology = parse_topology(
        """
        servers:
          - {name: a, role: input, fsid: 1}
          - {name: b, role: output, fsid: 2, enabled: false}
          - {name: c, role: output, fsid: 3, node_port: 30001}
        """
    )
    objects = render(topology, node_ip=NODE_IP)
    validate_all(objects)
    assert set(pvs(objects)) == {"a", "c"}
    assert option(pvs(objects)["a"], "port") == "32150"
    assert option(pvs(objects)["c"], "port") == "30001"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give --node-ip NODE_IP"),
        ({"node_ip": "filesim-nas-input-1.default.svc.cluster.local"}, "cluster DNS name"),
        ({"node_ip": "nas.svc"}, "cluster DNS name"),
        ({"node_ip": "a..b"}, "neither an IP address nor a host name"),
        ({"service_ips": {"nas-nope": "10.0.0.1"}}, "--service-ip names nas-nope"),
        ({"node_ip": NODE_IP, "namespace": "Team_A"}, "--namespace 'Team_A' is not a DNS label"),
        ({"node_ip": NODE_IP, "capacity": "lots"}, "--capacity 'lots'"),
        ({"node_ip": NODE_IP, "nfs_version": "4"}, "--nfs-version '4'"),
    ],
)
def test_render_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(K8sError, match=re.escape(message)):
        render(PRESET, **kwargs)


def test_node_name_is_allowed() -> None:
    pv = pvs(render(PRESET, node_ip="node-1.lab.example"))["nas-input-1"]
    assert pv["spec"]["nfs"]["server"] == "node-1.lab.example"


# --- the commands ------------------------------------------------------------------------------


runner = CliRunner()


def test_render_command_stdout_and_directory(tmp_path: Path) -> None:
    args = ["k8s", "render", "--node-ip", NODE_IP, "--namespace", "qa", "--release", "r1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    objects = [d for d in yaml.safe_load_all(result.stdout) if d]
    validate_all(objects)
    assert objects == render(PRESET, node_ip=NODE_IP, namespace="qa", release="r1")

    out = tmp_path / "manifests"
    result = runner.invoke(
        app, [*args, "--output", str(out), "--service-ip", "nas-backup=10.96.1.1"]
    )
    assert result.exit_code == 0, result.output
    files = sorted(out.iterdir())
    assert len(files) == len(objects)
    loaded = [yaml.safe_load(f.read_text()) for f in files]
    validate_all(loaded)
    backup = pvs(loaded)["nas-backup"]
    assert backup["spec"]["nfs"]["server"] == "10.96.1.1"
    assert option(backup, "port") == "2049"


def test_render_command_with_config_and_profile(tmp_path: Path) -> None:
    config = tmp_path / "t.yaml"
    config.write_text("servers:\n  - {name: only, role: output, fsid: 9, export: {path: /out}}\n")
    result = runner.invoke(app, ["k8s", "render", "-c", str(config), "--node-ip", NODE_IP])
    assert result.exit_code == 0, result.output
    objects = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert pvs(objects)["only"]["spec"]["nfs"]["path"] == "/out"


def test_render_command_errors_are_one_line() -> None:
    proc = subprocess.run(
        [*FILESIM, "k8s", "render", "--node-ip", "x.default.svc.cluster.local"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: --node-ip")
    assert "cluster DNS name" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run(
        [*FILESIM, "k8s", "render", "--service-ip", "nas-input-1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1 and "expected NAME=IP" in proc.stderr


def test_values_command(tmp_path: Path) -> None:
    config = tmp_path / "t.yaml"
    config.write_text(
        "profile: seed\nservers:\n"
        "  - {name: a, role: output, fsid: 1, host: 0.0.0.0, folder: /home/t/out}\n"
        "  - {name: b, role: input, fsid: 2, folder: rel/in}\n"
    )
    result = runner.invoke(app, ["k8s", "values", "-c", str(config)])
    assert result.exit_code == 0, result.output
    values = yaml.safe_load(result.stdout)
    assert values["profile"] == "seed"
    a, b = values["servers"]
    assert "host" not in a and "folder" not in a
    assert b["folder"] == "rel/in"
    assert a["sync"]["direction"] == "export-to-folder"  # resolved from the seed profile
    assert "a: absolute folder /home/t/out dropped" in result.stderr


def test_render_command_mount_options() -> None:
    ips = [f"--service-ip={s.name}=10.96.100.{11 + i}" for i, s in enumerate(PRESET.servers)]
    result = runner.invoke(
        app, ["k8s", "render", *ips, "--mount-options", "nfsvers=3,tcp,hard,intr"]
    )
    assert result.exit_code == 0, result.output
    objects = [d for d in yaml.safe_load_all(result.stdout) if d]
    validate_all(objects)
    assert {tuple(pv["spec"]["mountOptions"]) for pv in pvs(objects).values()} == {
        tuple(PRODUCTION)
    }
    for bad in ("", "nfsvers=3,,hard", "nfsvers=3, hard x"):
        result = runner.invoke(app, ["k8s", "render", *ips, "--mount-options", bad])
        assert isinstance(result.exception, K8sError) and "--mount-options" in str(result.exception)
