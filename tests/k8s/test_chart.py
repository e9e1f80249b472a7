"""The Helm chart, rendered by a real helm: valid objects, the pod shape per sync policy, and
the same topology as filesim itself resolves."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from filesim.k8s import NFS_PORT, NODE_PORT_BASE, helm_values, placements
from filesim.topology import (
    Topology,
    default_topology,
    dump_topology,
    parse_topology,
)

from .harness import CHART, Helm, init_names, of_kind, pod_spec, validate_all

pytestmark = pytest.mark.slow

PRESET = default_topology()
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
SEED_VALUES = CHART / "values-seed.yaml"

# A topology that exercises every way a server's pod can differ; valid both as a topology file
# and as chart values.
CUSTOM = """
profile: seed
servers:
  - {name: in-a, role: input, fsid: 10, node_port: 31000, sync: {continuous: true}}
  - {name: out-direct, role: output, fsid: 11, storage: direct}
  - {name: out-quiet, role: output, fsid: 12, sync: {direction: none}}
  - name: bk
    role: backup
    fsid: 13
    port: 3049
    export: {readonly: true, allowed_clients: [10.0.0.0/8], root_squash: true}
  - {name: spare, role: input, fsid: 14, enabled: false}
  - {name: out-late, role: output, fsid: 15, sync: {initial: false, settle_ms: 500}}
  - {name: sub, role: input, fsid: 16, folder: shared/sub, sync: {rescan_interval_s: 2.5}}
"""


@pytest.fixture(scope="module")
def default_render(helm: Helm) -> list[dict[str, Any]]:
    return helm.template()


@pytest.fixture(scope="module")
def seed_render(helm: Helm) -> list[dict[str, Any]]:
    return helm.template(SEED_VALUES)


@pytest.fixture(scope="module")
def custom_render(helm: Helm) -> list[dict[str, Any]]:
    return helm.template(CUSTOM)


def chart_topology(objects: list[dict[str, Any]]) -> tuple[Topology, dict[str, Any]]:
    """The topology the chart mounts into every pod: parsed by filesim, and as raw data."""
    (config_map,) = of_kind(objects, "ConfigMap").values()
    text = config_map["data"]["topology.yaml"]
    return parse_topology(text, source="chart ConfigMap"), yaml.safe_load(text)


def with_node_ports(topology: Topology) -> Topology:
    """`topology` with every server's NodePort as the chart and `k8s render` assign them."""
    servers = [p.server.model_copy(update={"node_port": p.node_port}) for p in placements(topology)]
    return topology.model_copy(update={"servers": servers})


# --- lint and validity --------------------------------------------------------------------


@pytest.mark.parametrize("values", [[], ["values-seed.yaml"]], ids=["default", "seed"])
def test_lint_strict(helm: Helm, values: list[str]) -> None:
    args = ["lint", "--strict", str(CHART)]
    for v in values:
        args += ["-f", str(CHART / v)]
    proc = helm.run(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_lint_strict_custom(helm: Helm) -> None:
    proc = helm.run("lint", "--strict", str(CHART), "-f", str(helm.values_file(CUSTOM)))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("which", ["default_render", "seed_render", "custom_render"])
def test_every_object_is_valid_kubernetes(which: str, request: pytest.FixtureRequest) -> None:
    validate_all(request.getfixturevalue(which))


def test_persistence_renders_valid_claims(helm: Helm) -> None:
    objects = helm.template({"persistence": {"enabled": True, "storageClass": "fast"}})
    validate_all(objects)
    claims = of_kind(objects, "PersistentVolumeClaim")
    assert len(claims) == len(PRESET.enabled)
    for deployment in of_kind(objects, "Deployment").values():
        (state,) = [v for v in pod_spec(deployment)["volumes"] if v["name"] == "state"]
        assert state["persistentVolumeClaim"]["claimName"] in claims
    assert {c["spec"]["storageClassName"] for c in claims.values()} == {"fast"}


def test_kube_version_constraint(helm: Helm) -> None:
    with pytest.raises(Exception, match="kubeVersion"):
        helm.template(kube_version="1.28.9")


# --- shape ----------------------------------------------------------------------------------


def test_default_has_a_deployment_and_service_per_server(
    default_render: list[dict[str, Any]],
) -> None:
    deployments = of_kind(default_render, "Deployment")
    services = of_kind(default_render, "Service")
    names = [s.name for s in PRESET.servers]
    assert len(names) == 7
    assert sorted(deployments) == sorted(f"t-{n}" for n in names)
    assert sorted(services) == sorted(f"t-{n}" for n in names)


def test_labels(default_render: list[dict[str, Any]]) -> None:
    roles = {s.name: s.role.value for s in PRESET.servers}
    for obj in [
        *of_kind(default_render, "Deployment").values(),
        *of_kind(default_render, "Service").values(),
    ]:
        labels = obj["metadata"]["labels"]
        component = labels["app.kubernetes.io/component"]
        assert labels["app.kubernetes.io/name"] == "filesim"
        assert labels["app.kubernetes.io/instance"] == "t"
        assert labels["app.kubernetes.io/part-of"] == "filesim"
        assert labels["simulator.protocol"] == "nfs"
        assert labels["simulator.nas-role"] == roles[component]
    for deployment in of_kind(default_render, "Deployment").values():
        selector = deployment["spec"]["selector"]["matchLabels"]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items()
        assert pod_labels["simulator.protocol"] == "nfs"


def test_node_ports_default_and_unique(default_render: list[dict[str, Any]]) -> None:
    services = of_kind(default_render, "Service")
    ports = {
        s["metadata"]["labels"]["app.kubernetes.io/component"]: s["spec"]["ports"]
        for s in services.values()
    }
    node_ports = [p[0]["nodePort"] for p in ports.values()]
    assert sorted(node_ports) == list(range(NODE_PORT_BASE, NODE_PORT_BASE + 7))
    assert len(set(node_ports)) == len(node_ports)
    assert VALUES["service"]["nodePortBase"] == NODE_PORT_BASE
    assert VALUES["nfsPort"] == NFS_PORT
    for p in ports.values():
        assert p[0]["port"] == NFS_PORT and p[0]["targetPort"] == "nfs"


def test_fsids_unique(
    default_render: list[dict[str, Any]], custom_render: list[dict[str, Any]]
) -> None:
    for objects in (default_render, custom_render):
        topology, _ = chart_topology(objects)
        fsids = [s.fsid for s in topology.servers]
        assert len(set(fsids)) == len(fsids)


def containers_by_server(objects: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: init_names(d)
        for d in of_kind(objects, "Deployment").values()
    }


def test_seed_profile_is_the_original_shape(seed_render: list[dict[str, Any]]) -> None:
    """The original: init container sync on every server, the sidecar on outputs only."""
    shape = containers_by_server(seed_render)
    assert len(shape) == 7
    for name, inits in shape.items():
        if name.startswith("nas-output-"):
            assert inits == ["sync-windows-data", "sync-to-windows"], name
        else:
            assert inits == ["sync-windows-data"], name
    for deployment in of_kind(seed_render, "Deployment").values():
        (main,) = pod_spec(deployment)["containers"]
        assert main["name"] == "nfs-server"
    node_ports = sorted(
        s["spec"]["ports"][0]["nodePort"] for s in of_kind(seed_render, "Service").values()
    )
    assert node_ports == list(range(32150, 32157))


def test_default_profile_has_sidecars_on_all_continuous_servers(
    default_render: list[dict[str, Any]],
) -> None:
    shape = containers_by_server(default_render)
    continuous = {s.name for s in PRESET.servers if s.sync.continuous}
    assert continuous == {s.name for s in PRESET.servers}  # the default profile's promise
    assert {n for n, inits in shape.items() if "sync-to-windows" in inits} == continuous


def test_custom_sidecars_exactly_per_policy(custom_render: list[dict[str, Any]]) -> None:
    topology = parse_topology(CUSTOM)
    shape = containers_by_server(custom_render)
    expected = {}
    for p in placements(topology):
        if p.server.enabled:
            expected[p.server.name] = [
                name
                for name, wanted in (
                    ("sync-windows-data", p.init_sync),
                    ("sync-to-windows", p.sidecar),
                )
                if wanted
            ]
    assert shape == expected
    # Spelled out, so that a bug shared by chart and `placements` still shows:
    assert shape["in-a"] == ["sync-windows-data", "sync-to-windows"]
    assert shape["out-direct"] == []  # direct storage: nothing to sync
    assert shape["out-quiet"] == []  # direction none
    assert shape["bk"] == ["sync-windows-data"]  # seed backup: at start only
    assert shape["out-late"] == ["sync-to-windows"]
    assert "spare" not in shape


@pytest.mark.parametrize("which", ["default_render", "seed_render", "custom_render"])
def test_sidecars_restart_always_and_commands(which: str, request: pytest.FixtureRequest) -> None:
    objects = request.getfixturevalue(which)
    topology, _ = chart_topology(objects)
    config = ["--config", "/etc/filesim/topology.yaml", "--root", "/simulator-data"]
    config += ["--state-dir", "/var/lib/filesim"]
    for deployment in of_kind(objects, "Deployment").values():
        name = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        spec = pod_spec(deployment)
        inits = {c["name"]: c for c in spec.get("initContainers", [])}
        if "sync-to-windows" in inits:
            sidecar = inits["sync-to-windows"]
            assert sidecar["restartPolicy"] == "Always"
            assert sidecar["command"] == ["filesim", "sync", name, *config]
        if "sync-windows-data" in inits:
            init = inits["sync-windows-data"]
            assert "restartPolicy" not in init  # runs to completion before the server starts
            assert init["command"] == ["filesim", "sync", name, "--once", *config]
            assert next(iter(inits)) == "sync-windows-data"  # first: before the sidecar
        (main,) = spec["containers"]
        port = main["ports"][0]["containerPort"]
        server = topology.server(name)
        assert port == (server.port or NFS_PORT)
        assert main["command"] == [
            "filesim", "serve", name, *config, "--host", "0.0.0.0", "--port", str(port),
        ]  # fmt: skip
        probe = main["readinessProbe"]["exec"]["command"]
        assert probe == ["filesim", "ping", "--host", "127.0.0.1", "--port", str(port)]
        mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
        assert mounts["/simulator-data"] == "simulator-data"
        assert mounts["/var/lib/filesim"] == "state"
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["simulator-data"]["hostPath"]["path"] == VALUES["hostPath"]["root"]
        assert "emptyDir" in volumes["state"]


def test_disabling_a_server_removes_its_objects(
    helm: Helm, default_render: list[dict[str, Any]]
) -> None:
    servers = [dict(s) for s in VALUES["servers"]]
    servers[4]["enabled"] = False  # nas-output-1
    objects = helm.template({"servers": servers})
    validate_all(objects)
    for kind in ("Deployment", "Service"):
        names = set(of_kind(objects, kind))
        assert names == set(of_kind(default_render, kind)) - {"t-nas-output-1"}
    # The others keep their NodePorts: they are assigned by position in the full list.
    before = {
        n: s["spec"]["ports"][0]["nodePort"] for n, s in of_kind(default_render, "Service").items()
    }
    after = {n: s["spec"]["ports"][0]["nodePort"] for n, s in of_kind(objects, "Service").items()}
    assert after == {n: p for n, p in before.items() if n != "t-nas-output-1"}
    topology, _ = chart_topology(objects)
    assert not topology.server("nas-output-1").enabled


@pytest.mark.parametrize(
    ("service_type", "has_node_port"),
    [("ClusterIP", False), ("NodePort", True), ("LoadBalancer", True)],
)
def test_service_type(helm: Helm, service_type: str, has_node_port: bool) -> None:
    servers = [dict(s) for s in VALUES["servers"]]
    servers[0]["service"] = {"type": service_type}
    services = of_kind(helm.template({"servers": servers}), "Service")
    assert services["t-nas-input-1"]["spec"]["type"] == service_type
    assert ("nodePort" in services["t-nas-input-1"]["spec"]["ports"][0]) is has_node_port
    assert services["t-nas-input-2"]["spec"]["type"] == "NodePort"


def test_service_serves_the_standard_ports_on_a_fixed_cluster_ip(helm: Helm) -> None:
    """Every server's Service offers NFS (2049) and rpcbind (111), TCP and UDP, both to the
    pod's one port; a fixed clusterIP from the values makes it a stable NAS address."""
    servers = [dict(s) for s in VALUES["servers"]]
    servers[0]["service"] = {"clusterIP": "10.96.100.11"}
    objects = helm.template({"servers": servers})
    validate_all(objects)
    services = of_kind(objects, "Service")
    for name, service in services.items():
        ports = {(p["port"], p["protocol"]): p["targetPort"] for p in service["spec"]["ports"]}
        assert ports == {
            (NFS_PORT, "TCP"): "nfs", (NFS_PORT, "UDP"): "nfs-udp",
            (111, "TCP"): "nfs", (111, "UDP"): "nfs-udp",
        }, name  # fmt: skip
        assert service["spec"]["ports"][0]["name"] == "nfs"
    assert services["t-nas-input-1"]["spec"]["clusterIP"] == "10.96.100.11"
    assert "clusterIP" not in services["t-nas-input-2"]["spec"]
    deployment = of_kind(objects, "Deployment")["t-nas-input-1"]
    container_ports = {
        (p["name"], p["containerPort"], p["protocol"])
        for p in pod_spec(deployment)["containers"][0]["ports"]
    }
    assert container_ports == {("nfs", NFS_PORT, "TCP"), ("nfs-udp", NFS_PORT, "UDP")}


# --- the chart resolves the topology exactly as filesim does ----------------------------------


@pytest.mark.parametrize(
    ("which", "expected"),
    [
        ("default_render", lambda: default_topology("default")),
        ("seed_render", lambda: default_topology("seed")),
        ("custom_render", lambda: parse_topology(CUSTOM)),
    ],
    ids=["default", "seed", "custom"],
)
def test_chart_topology_is_filesims(
    which: str, expected: Any, request: pytest.FixtureRequest
) -> None:
    topology, raw = chart_topology(request.getfixturevalue(which))
    assert topology == with_node_ports(expected())
    # Fully resolved: every field filesim would write itself, and nothing else.
    assert raw == yaml.safe_load(dump_topology(topology))


def test_values_command_output_renders_the_same_topology(helm: Helm) -> None:
    custom = parse_topology(CUSTOM)
    values, notes = helm_values(custom)
    assert notes == []
    # The chart's own profile default must not matter: the values carry resolved policies.
    objects = helm.template(
        {**values, "profile": "default" if custom.profile == "seed" else "seed"}
    )
    topology, _ = chart_topology(objects)
    assert topology.servers == with_node_ports(custom).servers


def test_values_yaml_is_the_builtin_topology() -> None:
    assert (
        parse_topology(yaml.safe_dump({"profile": VALUES["profile"], "servers": VALUES["servers"]}))
        == PRESET
    )


# --- values.schema.json ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"role": "archive"},
            "at '/servers/0/role': value must be one of 'input', 'output', 'backup'",
        ),
        ({"fsid": 0}, "at '/servers/0/fsid': minimum: got 0, want 1"),
        ({"name": "NAS_1"}, "at '/servers/0/name': '"),
        ({"node_port": 8080}, "at '/servers/0/node_port': minimum: got 8,080, want 30,000"),
        ({"fsidd": 3}, "additional properties 'fsidd' not allowed"),
        (
            {"sync": {"direction": "sideways"}},
            "at '/servers/0/sync/direction': value must be one of",
        ),
        ({"export": {"path": "data"}}, "at '/servers/0/export/path'"),
        ({"folder": "/abs"}, "at '/servers/0/folder'"),
    ],
)
def test_bad_server_values_fail_with_the_schemas_message(
    helm: Helm, change: dict[str, Any], message: str
) -> None:
    servers = [dict(s) for s in VALUES["servers"]]
    servers[0] = {**servers[0], **change}
    stderr = helm.template_error({"servers": servers})
    assert "values don't meet the specifications of the schema" in stderr
    assert message in stderr, stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"profile": "prod"}, "at '/profile': value must be one of 'default', 'seed'"),
        ({"hostPath": {"root": "relative/dir"}}, "at '/hostPath/root'"),
        ({"servers": []}, "at '/servers': minItems"),
        ({"service": {"type": "ExternalName"}}, "at '/service/type': value must be one of"),
    ],
)
def test_bad_values_fail_with_the_schemas_message(
    helm: Helm, values: dict[str, Any], message: str
) -> None:
    assert message in helm.template_error(values)


@pytest.mark.parametrize("field", ["name", "fsid", "node_port", "port"])
def test_duplicates_fail_naming_both_servers(helm: Helm, field: str) -> None:
    servers = [
        {"name": "a", "role": "input", "fsid": 1, "node_port": 31001, "port": 3001},
        {"name": "b", "role": "input", "fsid": 2, "node_port": 31002, "port": 3002},
    ]
    servers[1][field] = servers[0][field]
    stderr = helm.template_error({"servers": servers})
    assert f"{field} {servers[0][field]} is used by both" in stderr, stderr
    # filesim refuses the same topology with the same words.
    with pytest.raises(Exception, match=f"{field} .* is used by both"):
        Topology.model_validate({"servers": servers})


def test_assigned_node_port_clash_fails(helm: Helm) -> None:
    """An explicit node_port equal to another server's assigned one."""
    servers = [
        {"name": "a", "role": "input", "fsid": 1},
        {"name": "b", "role": "input", "fsid": 2, "node_port": NODE_PORT_BASE},
    ]
    assert 'node_port 32150 is used by both "a" and "b"' in helm.template_error(
        {"servers": servers}
    )


def test_validation_is_strict(default_render: list[dict[str, Any]]) -> None:
    """The validator rejects what the API server would: an unknown field, a wrong type."""
    deployment = copy.deepcopy(of_kind(default_render, "Deployment")["t-nas-input-1"])
    pod_spec(deployment)["initContainers"][0]["restartPolicyy"] = "Always"
    with pytest.raises(AssertionError, match="restartPolicyy"):
        validate_all([deployment])
    deployment = copy.deepcopy(of_kind(default_render, "Deployment")["t-nas-input-1"])
    deployment["spec"]["replicas"] = "one"
    with pytest.raises(AssertionError, match="invalid for Kubernetes"):
        validate_all([deployment])
