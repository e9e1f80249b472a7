"""Each fault kind, seen through a real client (libnfs) or the sync; the fault model's checks."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest

from filesim.runtime.build import build_nfs_server
from filesim.runtime.faults import FaultError, parse_spec
from filesim.testing import NasTopology, TopologyTimeout, start_topology
from filesim.topology import Layout, parse_topology
from filesim.topology.faults import FaultSpec
from tests.runtime.libnfs import Libnfs
from tests.support.api import nfs_put, run
from tests.support.fixtures import MODES, both_modes

INPUT = "nas-input-1"


@pytest.mark.integration
@pytest.mark.parametrize("code", ["EIO", "NOSPC", "DQUOT", "STALE", "ACCES", "JUKEBOX", "PERM"])
def test_error_reply_is_what_libnfs_sees(topo: NasTopology, code: str) -> None:
    port = topo.server(INPUT).port
    with Libnfs(port) as nfs:
        with topo.error(INPUT, code, procedures=["MKDIR"]):
            failed = nfs.mkdir(f"/dir-{code}")
            assert not failed.ok
            assert f"NFS3ERR_{code.removeprefix('E')}" in failed.error
            assert nfs.stat("/").ok  # other procedures are untouched
        assert nfs.mkdir(f"/dir-{code}").ok  # cleared: back at once
        assert nfs.rmdir(f"/dir-{code}").ok


@pytest.mark.integration
@both_modes
def test_error_for_a_path_glob_only(topo: NasTopology, tmp_path: Path) -> None:
    server = topo.server(INPUT)
    nfs_put(server.url("/report.csv"), b"a,b\n", tmp_path)
    nfs_put(server.url("/report.txt"), b"text\n", tmp_path)
    with topo.error(INPUT, "EIO", procedures=["READ"], paths=["*.csv"]):
        assert run("nfs-cat", server.url("/report.csv"), check=False).returncode != 0
        assert run("nfs-cat", server.url("/report.txt")).stdout == b"text\n"
        with Libnfs(server.port) as nfs:
            assert nfs.stat("/report.csv").ok  # GETATTR is not READ
    assert run("nfs-cat", server.url("/report.csv")).stdout == b"a,b\n"


@pytest.mark.integration
def test_error_probability_zero_never_fires_and_one_always(topo: NasTopology) -> None:
    with Libnfs(topo.server(INPUT).port) as nfs:
        with topo.error(INPUT, "NOSPC", procedures=["MKDIR"], probability=0.0):
            assert nfs.mkdir("/p0").ok
        with topo.error(INPUT, "NOSPC", procedures=["MKDIR"], probability=1.0):
            assert not nfs.mkdir("/p1").ok
        assert nfs.rmdir("/p0").ok


@pytest.mark.integration
@both_modes
def test_latency_adds_at_least_the_delay(topo: NasTopology) -> None:
    with Libnfs(topo.server(INPUT).port) as nfs:
        with topo.latency(INPUT, 400, procedures=["GETATTR", "LOOKUP"]):
            started = time.monotonic()
            assert nfs.stat("/").ok
            slow = time.monotonic() - started
            assert nfs.mkdir("/fast").ok and nfs.rmdir("/fast").ok  # not delayed, not failed
        assert slow >= 0.4
        # a distribution never goes below its minimum either
        with topo.latency(INPUT, 200, procedures=["GETATTR"], jitter_ms=50, distribution="uniform"):
            started = time.monotonic()
            assert nfs.stat("/").ok
            assert time.monotonic() - started >= 0.2


@pytest.mark.integration
@both_modes
def test_a_delayed_large_read_arrives_whole(topo: NasTopology, tmp_path: Path) -> None:
    # held by the fault, the READs are answered later, their data sent from the file then
    server = topo.server(INPUT)
    payload = random.Random(3).randbytes(3 * 1024 * 1024 + 5)
    nfs_put(server.url("/big.bin"), payload, tmp_path)
    with topo.latency(INPUT, 30, procedures=["READ"]):
        assert run("nfs-cat", server.url("/big.bin")).stdout == payload


@pytest.mark.integration
@both_modes
def test_readonly_flip_refuses_writes_until_cleared(topo: NasTopology, tmp_path: Path) -> None:
    server = topo.server(INPUT)
    with Libnfs(server.port) as nfs:
        with topo.readonly(INPUT):
            failed = nfs.mkdir("/ro")
            assert "NFS3ERR_ROFS" in failed.error
            src = tmp_path / "f.txt"
            src.write_text("x")
            assert run("nfs-cp", str(src), server.url("/ro.txt"), check=False).returncode != 0
        assert nfs.mkdir("/ro").ok and nfs.rmdir("/ro").ok
    # the configured read-only export stays read-only after a flip is cleared
    with Libnfs(topo.server("nas-backup").port) as nfs:
        with topo.readonly("nas-backup"):
            pass
        assert "NFS3ERR_ROFS" in nfs.mkdir("/still-ro").error


@pytest.mark.integration
@both_modes
def test_outage_refuse_then_recover(topo: NasTopology) -> None:
    server = topo.server(INPUT)
    with topo.outage(INPUT, mode="refuse"):
        assert run("nfs-ls", server.url(), check=False).returncode != 0
    run("nfs-ls", server.url())


@pytest.mark.integration
@both_modes
def test_outage_blackhole_never_answers_then_recovers(topo: NasTopology) -> None:
    from filesim.nfsclient.client import NfsClient, NfsClientError

    server = topo.server(INPUT)
    with (
        topo.outage(INPUT),
        NfsClient(server.host, server.port, timeout=1.0) as client,
        pytest.raises((NfsClientError, OSError)),
    ):
        client.null()
    with NfsClient(server.host, server.port, timeout=5.0) as client:
        client.null()


@pytest.mark.integration
@both_modes
def test_outage_for_a_duration_clears_itself(topo: NasTopology) -> None:
    added = topo.add_fault(INPUT, "outage", mode="refuse", duration_s=0.5)
    assert added.expires is not None
    event = topo.wait_event("fault.clear", server=INPUT, since=added.added, timeout=10)
    assert event.detail["reason"] == "expired" and event.detail["id"] == added.id
    run("nfs-ls", topo.server(INPUT).url())


@pytest.mark.integration
def test_sync_pause_holds_the_sync_until_cleared(topo: NasTopology) -> None:
    folder = topo.folder(INPUT)
    with topo.sync_paused(INPUT):
        (folder / "paused.txt").write_text("later")
        with pytest.raises(TopologyTimeout, match="paused on nas-input-1"):
            topo.flush(timeout=1.5)
        assert not (topo.server(INPUT).store / "paused.txt").exists()
    topo.wait_visible(INPUT, "paused.txt", side="nfs", timeout=20)


@pytest.mark.integration
def test_sync_slow_delays_each_cycle(topo: NasTopology) -> None:
    topo.flush()
    with topo.sync_slow(INPUT, 1500):
        started = time.monotonic()
        (topo.folder(INPUT) / "slow.txt").write_text("slow")
        topo.wait_visible(INPUT, "slow.txt", side="nfs", timeout=30)
        assert time.monotonic() - started >= 1.5


@pytest.mark.integration
def test_sync_faults_need_a_sync_agent(tmp_path: Path) -> None:
    config = "servers:\n  - {name: d, role: input, fsid: 1, storage: direct}\n"
    with start_topology(tmp_path, config=config, http=False) as topo:
        with pytest.raises(FaultError, match="d runs no sync agent"):
            topo.add_fault("d", "sync-pause")
        with pytest.raises(FaultError, match="no running server named 'x'"):
            topo.add_fault("x", "readonly")


@pytest.mark.integration
@pytest.mark.parametrize("processes", MODES)
def test_static_faults_from_the_topology_file(tmp_path: Path, processes: str) -> None:
    config = """
servers:
  - name: slow-nas
    role: output
    fsid: 1
    faults:
      - {kind: error, error: EIO, procedures: [READ]}
      - {kind: latency, delay_ms: 300, procedures: [FSINFO]}
"""
    with start_topology(tmp_path, config=config, processes=processes) as topo:
        server = topo.server("slow-nas")
        faults = topo.status().servers[0].faults
        assert [(f.summary, f.origin) for f in faults] == [
            ("error EIO on READ", "topology"), ("latency 300 ms on FSINFO", "topology"),
        ]  # fmt: skip
        nfs_put(server.url("/x.bin"), b"data", tmp_path)
        assert run("nfs-cat", server.url("/x.bin"), check=False).returncode != 0
        assert topo.clear_faults("slow-nas") == 2
        assert run("nfs-cat", server.url("/x.bin")).stdout == b"data"


@pytest.mark.integration
async def test_a_server_built_from_the_topology_is_faulted_from_its_first_call(
    tmp_path: Path,
) -> None:
    """No fault controller here: the server alone, as built, already answers with the
    topology's fault (before, it served unfaulted until the runtime put the faults in force,
    just after it began to listen)."""
    topology = parse_topology(
        "servers:\n  - name: full\n    role: input\n    fsid: 1\n"
        "    faults: [{kind: error, error: NOSPC, procedures: [MKDIR]}, {kind: sync-pause}]\n"
    )
    server, layout = topology.servers[0], Layout(tmp_path)
    layout.store(server).mkdir(parents=True)
    nfs = build_nfs_server(server, layout, "127.0.0.1", 0)
    await nfs.start()
    try:

        def client() -> tuple[str, bool]:
            with Libnfs(nfs.port) as c:
                return c.mkdir("/first").error, c.stat("/").ok

        error, stat_ok = await asyncio.to_thread(client)
        assert "NFS3ERR_NOSPC" in error and stat_ok  # MKDIR only, as the fault says
    finally:
        await nfs.stop()
        nfs.close()


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"kind": "error"}, "an error fault needs `error`"),
        ({"kind": "error", "error": "EFOO"}, "unknown NFS error 'EFOO'"),
        ({"kind": "latency"}, "needs delay_ms"),
        (
            {"kind": "latency", "delay_ms": 5, "procedures": ["FETCH"]},
            "unknown NFS procedure 'FETCH'",
        ),
        ({"kind": "readonly", "paths": ["*"]}, "`paths` applies to error faults only"),
        ({"kind": "outage", "mode": "explode"}, "mode"),
        (
            {"kind": "sync-pause", "procedures": ["READ"]},
            "`procedures` applies to latency and error",
        ),
        ({"kind": "error", "error": "EIO", "probability": 2}, "probability"),
        ({"kind": "flood"}, "kind"),
    ],
)
def test_invalid_faults_are_one_line_errors(fault: dict[str, object], message: str) -> None:
    with pytest.raises(FaultError, match=r"^invalid fault: ") as caught:
        parse_spec(fault)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_topology_file_faults_are_validated_with_their_place() -> None:
    from filesim.topology import TopologyError

    text = "servers:\n  - name: a\n    role: input\n    fsid: 1\n    faults: [{kind: error}]\n"
    with pytest.raises(TopologyError, match=r"servers\[0\]\.faults\[0\]"):
        parse_topology(text)


def test_error_names_are_accepted_in_any_spelling() -> None:
    for spelling in ("EIO", "io", "NFS3ERR_IO"):
        assert FaultSpec(kind="error", error=spelling).error == "IO"
    assert FaultSpec(kind="error", error="ejukebox").summary() == "error JUKEBOX"


@pytest.mark.integration
def test_no_fault_is_left_once_faults_are_cleared(topo: NasTopology) -> None:
    """The fault layer is built in once and only its state changes: once cleared, the hot
    path pays one test per call again."""
    nfs = topo.runner.server(INPUT).nfs
    vfs, faults = nfs.export.vfs, nfs.faults
    assert faults is not None
    with (
        topo.error(INPUT, "EIO", paths=["*.x"]),
        topo.latency(INPUT, 1),
        topo.outage(INPUT, mode="refuse"),
        topo.readonly(INPUT),
    ):
        assert faults.holding and faults.refusing and faults.vfs.active
        assert nfs.export.readonly and not nfs.export.config.readonly
    assert not (faults.holding or faults.refusing or faults.vfs.active or nfs.export.readonly)
    assert nfs.export.vfs is vfs and nfs.faults is faults


@pytest.mark.integration
def test_static_sync_faults_are_skipped_where_no_agent_runs(tmp_path: Path) -> None:
    import asyncio

    from filesim.runtime.runner import TopologyRunner
    from filesim.topology import Layout

    topology = parse_topology(
        "servers:\n  - name: a\n    role: input\n    fsid: 1\n"
        "    faults: [{kind: sync-pause}, {kind: readonly}]\n"
    )

    async def serve_like() -> list[str]:  # what `filesim serve` does: NFS only, no sync
        runner = TopologyRunner(topology, Layout(tmp_path), port=0, run_sync=False,
                                write_runtime=False)  # fmt: skip
        await runner.start()
        try:
            return [f.spec.kind.value for f in runner.faults.active()]
        finally:
            await runner.stop()

    assert asyncio.run(serve_like()) == ["readonly"]
