"""The `nas_topology` fixture of filesim.testing, used the way a project's own tests would."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from filesim.testing import NasTopology, TopologyTimeout
from filesim.topology import Direction
from tests.support.fixtures import MODES

pytestmark = pytest.mark.integration

in_both_modes = pytest.mark.parametrize(
    "nas_topology", [{"processes": mode} for mode in MODES], indirect=True, ids=MODES
)
"""The sync through NFS both ways, also with the NFS server in a worker process."""


def nfs(*cmd: str) -> bytes:
    return subprocess.run(cmd, capture_output=True, timeout=60, check=True).stdout


@pytest.mark.nas_topology(servers=["nas-input-1", "nas-output-2"])
def test_servers_expose_folder_url_and_mount_options(nas_topology: NasTopology) -> None:
    assert list(nas_topology.servers) == ["nas-input-1", "nas-output-2"]
    out = nas_topology.server("nas-output-2")
    assert out.folder.is_dir() and out.folder.parent == nas_topology.root
    assert out.url("/a b.txt") == (
        f"nfs://127.0.0.1/data/a b.txt?version=3&nfsport={out.port}&mountport={out.port}"
    )
    assert out.mount_options == (
        f"vers=3,proto=tcp,port={out.port},mountport={out.port},mountproto=tcp,nolock"
    )
    assert out.mount_command("/mnt/x").endswith(f"{out.mount_options} 127.0.0.1:/data /mnt/x")
    assert nas_topology.server("nas-input-1").port != out.port
    with pytest.raises(KeyError, match="running: nas-input-1, nas-output-2"):
        nas_topology.server("nas-backup")


@in_both_modes
@pytest.mark.nas_topology(servers=["nas-input-2"])
def test_wait_visible_folder_to_nfs(nas_topology: NasTopology) -> None:
    payload = os.urandom(100_000)
    (nas_topology.folder("nas-input-2") / "dropped.bin").write_bytes(payload)
    nas_topology.wait_visible("nas-input-2", "dropped.bin", side="nfs")
    assert nfs("nfs-cat", nas_topology.url("nas-input-2", "/dropped.bin")) == payload


@in_both_modes
@pytest.mark.nas_topology(servers=["nas-output-1"])
def test_wait_visible_nfs_to_folder_and_absent(nas_topology: NasTopology, tmp_path: Path) -> None:
    src = tmp_path / "result.json"
    src.write_text('{"ok": true}')
    nfs("nfs-cp", str(src), nas_topology.url("nas-output-1", "/result.json"))
    nas_topology.wait_visible("nas-output-1", "result.json", side="folder")
    target = nas_topology.folder("nas-output-1") / "result.json"
    assert target.read_text() == '{"ok": true}'
    target.unlink()  # the tester consumes the file: it disappears over NFS too
    nas_topology.wait_visible("nas-output-1", "result.json", side="nfs", absent=True)


@pytest.mark.nas_topology(servers=["nas-input-3"])
def test_wait_visible_times_out_with_a_clear_message(nas_topology: NasTopology) -> None:
    started = time.monotonic()
    with pytest.raises(TopologyTimeout, match=r"nas-input-3: never\.txt is not visible on the nfs"):
        nas_topology.wait_visible("nas-input-3", "never.txt", timeout=0.3)
    assert time.monotonic() - started >= 0.3


@pytest.mark.nas_topology(servers=["nas-input-1"])
def test_flush_is_a_sync_barrier(nas_topology: NasTopology) -> None:
    folder = nas_topology.folder("nas-input-1")
    store = nas_topology.server("nas-input-1").store
    names = [f"batch/file-{i}.txt" for i in range(20)]
    (folder / "batch").mkdir()
    for name in names:
        (folder / name).write_text(name)
    nas_topology.flush()
    # No waiting after the barrier: everything written before it is on the export side.
    assert sorted(p.name for p in (store / "batch").iterdir()) == sorted(
        Path(n).name for n in names
    )
    listing = nfs("nfs-ls", nas_topology.url("nas-input-1", "/batch")).decode()
    assert all(Path(n).name in listing for n in names)


@pytest.mark.nas_topology(servers=["nas-input-1"])
def test_fault_helpers_are_context_managers(nas_topology: NasTopology) -> None:
    (nas_topology.folder("nas-input-1") / "f.txt").write_text("x")
    nas_topology.flush()
    url = nas_topology.url("nas-input-1", "/f.txt")
    with nas_topology.error("nas-input-1", "EIO", procedures=["READ"]) as fault:
        assert fault.summary == "error EIO on READ"
        assert subprocess.run(["nfs-cat", url], capture_output=True).returncode != 0
        assert [f.id for f in nas_topology.status().servers[0].faults] == [fault.id]
    assert nas_topology.status().servers[0].faults == []
    assert nfs("nfs-cat", url) == b"x"


@pytest.mark.nas_topology(profile="seed", servers=["nas-input-1", "nas-output-1"])
def test_profile_option(nas_topology: NasTopology) -> None:
    policies = {s.name: s.sync for s in nas_topology.status().servers}
    assert policies["nas-input-1"].direction is Direction.FOLDER_TO_EXPORT
    assert policies["nas-input-1"].continuous is False
    assert policies["nas-output-1"].direction is Direction.EXPORT_TO_FOLDER


@pytest.mark.parametrize(
    "nas_topology",
    [{"config": "servers:\n  - {name: direct-nas, role: input, fsid: 9, storage: direct}\n"}],
    indirect=True,
)
def test_indirect_parametrisation_with_a_yaml_topology(nas_topology: NasTopology) -> None:
    (nas_topology.folder("direct-nas") / "now.txt").write_text("direct")
    nas_topology.flush()  # no agent: returns at once
    nas_topology.wait_visible("direct-nas", "now.txt", side="nfs", timeout=2)
    assert nfs("nfs-cat", nas_topology.url("direct-nas", "/now.txt")) == b"direct"


def test_the_fixture_is_registered_by_the_plugin(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.has_plugin("filesim")
    markers = "\n".join(pytestconfig.getini("markers"))
    assert "nas_topology(" in markers


def test_an_unknown_process_mode_is_a_clear_error(tmp_path: Path) -> None:
    from filesim.testing import start_topology

    with (
        pytest.raises(
            ValueError,
            match=r"processes must be one of 'auto', 'one', 'per-server', 'per-core', not 'two'",
        ),
        start_topology(tmp_path, servers=["nas-input-1"], processes="two"),
    ):
        pass
    assert not (tmp_path / ".filesim" / "runtime.json").exists()  # nothing started
