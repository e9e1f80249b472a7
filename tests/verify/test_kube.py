"""Kubernetes mode on recorded `kubectl ... -o json` output (rendered from the Helm chart)."""

from __future__ import annotations

from pathlib import Path

import pytest

import filesim.topology
from filesim.verify.kube import kube_target, restart_pods
from filesim.verify.kube_pods import SIDECAR, pod_problems
from filesim.verify.results import Status
from filesim.verify.runner import run_checks
from filesim.verify.target import VerifyError
from tests.verify.kube_fakes import RecordedKubectl

OUTPUTS = ["nas-output-1", "nas-output-2", "nas-output-3"]


def target(kubectl: RecordedKubectl, **kw: object):  # type: ignore[no-untyped-def]
    return kube_target("kind-filesim", "filesim", run=kubectl, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("profile", ["seed", "default"])
def test_chart_pods_match_their_profile(profile: str) -> None:
    kubectl = RecordedKubectl(profile)
    t = target(kubectl, node_ip="192.0.2.7")
    assert t.profile == profile
    assert [s.name for s in t.servers][:1] == ["nas-input-1"] and len(t.servers) == 7
    assert {s.name: t.agent_problems(s) for s in t.servers} == {s.name: [] for s in t.servers}


def test_seed_sidecars_only_on_outputs() -> None:
    kubectl = RecordedKubectl("seed")
    with_sidecar = {
        p["metadata"]["labels"]["app.kubernetes.io/component"]
        for p in kubectl.pods()
        if any(c["name"] == SIDECAR for c in p["spec"].get("initContainers", []))
    }
    assert with_sidecar == set(OUTPUTS)
    t = target(kubectl, node_ip="192.0.2.7")
    report = run_checks(t, ["sync-agents"], t.servers)
    assert (report.passed, report.failed) == (7, 0)


def test_every_kubectl_call_names_the_context_and_namespace() -> None:
    kubectl = RecordedKubectl()
    target(kubectl)
    assert kubectl.calls
    for call in kubectl.calls:
        assert call[:2] == ["--context", "kind-filesim"]
        assert "nodes" in call or call[2:4] == ["--namespace", "filesim"]


def test_no_context_is_refused() -> None:
    with pytest.raises(VerifyError, match="--kube-context is required"):
        kube_target("", "filesim", run=RecordedKubectl())


def test_servers_are_reached_through_their_node_ports() -> None:
    t = target(RecordedKubectl(), node_ip="192.0.2.7", data_dir=Path("/data/sim"))
    ports = {s.name: (s.host, s.port) for s in t.servers}
    assert ports["nas-input-1"] == ("192.0.2.7", 32150)
    assert ports["nas-output-3"] == ("192.0.2.7", 32156)
    assert t.servers[0].folder == Path("/data/sim/nas-input-1")


def test_node_address_comes_from_the_nodes_when_not_given() -> None:
    t = target(RecordedKubectl())
    assert {s.host for s in t.servers} == {"192.0.2.10"}


def test_profile_is_read_from_the_deployed_topology() -> None:
    t = target(RecordedKubectl("seed"), node_ip="192.0.2.7")
    inputs = [s for s in t.servers if s.role == "input"]
    assert inputs and all(not s.continuous for s in inputs)


def test_a_seed_deployment_checked_against_the_default_topology_lacks_input_sidecars() -> None:
    preset = Path(filesim.topology.__file__).parent / "presets" / "default.yaml"
    t = target(RecordedKubectl("seed"), node_ip="192.0.2.7", config=preset)
    problems = t.agent_problems(next(s for s in t.servers if s.name == "nas-input-2"))
    assert len(problems) == 1
    assert "no sidecar sync-to-windows" in problems[0] and "nas-input-2" in problems[0]


def test_unexpected_sidecar_on_an_input_fails() -> None:
    kubectl = RecordedKubectl("seed")
    sidecar = next(
        c for c in kubectl.pod("nas-output-1")["spec"]["initContainers"] if c["name"] == SIDECAR
    )
    kubectl.pod("nas-input-1")["spec"]["initContainers"].append(sidecar)
    t = target(kubectl, node_ip="192.0.2.7")
    report = run_checks(t, ["sync-agents"], t.servers)
    failed = [r for r in report.results if r.status is Status.FAIL]
    assert [r.server for r in failed] == ["nas-input-1"]
    assert "has a sidecar sync-to-windows, but nas-input-1 needs none" in failed[0].message


def test_crashing_sidecar_and_failed_init_sync_are_reported() -> None:
    kubectl = RecordedKubectl("seed")
    statuses = kubectl.pod("nas-output-2")["status"]["initContainerStatuses"]
    for status in statuses:
        if status["name"] == SIDECAR:
            status["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    init = kubectl.pod("nas-backup")["status"]["initContainerStatuses"][0]
    init["state"] = {"terminated": {"exitCode": 3}}
    t = target(kubectl, node_ip="192.0.2.7")
    problems = {s.name: t.agent_problems(s) for s in t.servers}
    assert problems["nas-output-2"] == [
        f"sidecar {SIDECAR} of pod {kubectl.pod('nas-output-2')['metadata']['name']} "
        "is waiting (CrashLoopBackOff)"
    ]
    assert "is terminated (exit 3), not completed" in problems["nas-backup"][0]
    assert sum(bool(p) for p in problems.values()) == 2


def test_missing_pod_and_service_name_the_server() -> None:
    kubectl = RecordedKubectl("seed")
    kubectl.docs["pods"]["items"].remove(kubectl.pod("nas-output-3"))
    services = kubectl.docs["services"]["items"]
    services[:] = [s for s in services if not s["metadata"]["name"].endswith("nas-input-3")]
    t = target(kubectl, node_ip="192.0.2.7")
    output3 = next(s for s in t.servers if s.name == "nas-output-3")
    assert pod_problems(output3, kubectl.pods()) == [
        "no pod for nas-output-3 (label app.kubernetes.io/component=nas-output-3)"
    ]
    report = run_checks(t, ["reachable"], [s for s in t.servers if s.name == "nas-input-3"])
    assert report.failed == 1
    assert "nas-input-3 is unreachable: no Service for nas-input-3" in report.results[0].message


def test_no_pods_in_the_namespace_is_a_clear_error() -> None:
    kubectl = RecordedKubectl()
    kubectl.docs["pods"]["items"] = []
    with pytest.raises(VerifyError, match=r"no filesim pods .* namespace filesim of context kind"):
        target(kubectl)


def test_restart_deletes_each_pod_and_waits_for_new_ones() -> None:
    kubectl = RecordedKubectl("seed")
    t = target(kubectl, node_ip="192.0.2.7")
    old_names = sorted(p["metadata"]["name"] for p in kubectl.pods())
    from filesim.verify.kube import Kube

    fresh = restart_pods(Kube("kind-filesim", "filesim", kubectl), OUTPUTS, kubectl.pods(), poll=0)
    assert len(kubectl.deleted) == 3 and all(n in old_names for n in kubectl.deleted)
    assert {p["metadata"]["name"] for p in fresh} >= {n + "-new" for n in kubectl.deleted}
    assert t.servers  # the target itself is untouched by a partial restart
