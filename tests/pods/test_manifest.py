"""How the pod runner reads the chart (no podman needed): the Deployment as rendered by helm
becomes podman options that keep its security context, limits and volumes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from podrun import helm, kubelet, manifest, volumes
from podrun.podman import PodsError

from .conftest import in_ci


@pytest.fixture(scope="module")
def chart_pods() -> list[manifest.Pod]:
    try:
        text = helm.template(release="m", namespace="sim")
    except PodsError as exc:
        if in_ci():
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    return manifest.load(text)


def test_every_enabled_server_is_a_pod_with_its_node_port(chart_pods: list[manifest.Pod]) -> None:
    assert [p.server for p in chart_pods] == [
        "nas-input-1", "nas-input-2", "nas-input-3", "nas-backup",
        "nas-output-1", "nas-output-2", "nas-output-3",
    ]  # fmt: skip
    assert [p.node_ports for p in chart_pods] == [((32150 + i, 2049),) for i in range(7)]
    backup = manifest.select(chart_pods, ["nas-backup"])[0]
    assert [(c.name, c.sidecar) for c in backup.init_containers] == [
        ("sync-windows-data", False),
        ("sync-to-windows", True),
    ]
    (server,) = backup.containers
    assert server.readiness is not None and server.readiness.command[:2] == ("filesim", "ping")


def test_podman_options_keep_the_security_context_and_limits(
    chart_pods: list[manifest.Pod], tmp_path: Path
) -> None:
    pod = chart_pods[0]
    paths = {v.name: tmp_path / v.name for v in pod.volumes}
    args = kubelet.run_args(pod, pod.containers[0], paths, "label")
    joined = " ".join(args)
    assert "--user 1000:1000" in joined
    assert "--group-add 1000" in joined  # fsGroup
    assert "--read-only --read-only-tmpfs=false" in joined
    assert "--cap-drop=all" in args
    assert "--security-opt no-new-privileges" in joined
    assert f"--memory {512 * 2**20} --memory-swap {512 * 2**20}" in joined
    assert f"type=bind,src={tmp_path / 'topology'},dst=/etc/filesim,ro=true" in args
    image_at = args.index("filesim:0.1.0")
    assert args[image_at - 2] == "--entrypoint"
    assert args[image_at - 1].startswith('["filesim", "serve", "nas-input-1"')


def test_each_pod_gets_its_own_empty_dirs_writable_by_the_fs_group(
    chart_pods: list[manifest.Pod], tmp_path: Path
) -> None:
    first, second = chart_pods[0], chart_pods[1]
    host = {"/mnt/simulator-data": tmp_path / "folders"}
    a = volumes.prepare(first, tmp_path / "state", host)
    b = volumes.prepare(second, tmp_path / "state", host)
    assert a["state"] != b["state"] and a["tmp"] != b["tmp"]
    assert a["simulator-data"] == b["simulator-data"] == tmp_path / "folders"
    mode = a["state"].stat()
    if os.geteuid() == 0:
        assert (stat.S_IMODE(mode.st_mode), mode.st_gid) == (0o2777, 1000)
    else:
        assert stat.S_IMODE(mode.st_mode) & 0o777 == 0o777
    assert "servers:" in (a["topology"] / "topology.yaml").read_text()
    volumes.remove(tmp_path / "state", first.name)
    assert not a["state"].exists() and b["state"].exists()
