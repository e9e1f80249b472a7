"""`processes: per-server`: each server's NFS side in a worker process of its own, the control
plane (sync agents, events, API, metrics, faults, health) in the topology's process. What only
this mode has: the workers' pids, changes and call counts forwarded to the topology, faults
pushed to a worker, a worker that dies, and no worker left behind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from filesim.runtime import api_client
from filesim.runtime import supervise as supervise_module
from filesim.runtime import worker as worker_module
from filesim.runtime.runner import TopologyRunner
from filesim.testing import NasTopology, start_topology
from filesim.topology import Layout, parse_topology
from filesim.topology.model import ProcessMode
from filesim.waiting import poll_until
from tests.runtime.libnfs import Libnfs
from tests.support.api import http, nfs_put, run
from tests.support.fixtures import SERVERS
from tests.support.processes import MARKER, Proc, marked, new_marker, pid_running
from tests.support.topology import FILESIM, filesim, nfs_url

pytestmark = pytest.mark.integration

INPUT, BACKUP = SERVERS
per_server = pytest.mark.parametrize("topo", ["per-server"], indirect=True)
"""The shared two-server topology of tests/support/fixtures.py, with worker processes."""

TWO_SERVERS = (
    "servers:\n  - {name: nas-input-1, role: input, fsid: 1}\n"
    "  - {name: nas-backup, role: backup, fsid: 4}\n"
)


def _workers(topo: NasTopology) -> dict[str, Proc]:
    pids = {s.name: s.pid for s in topo.status().servers}
    assert None not in pids.values(), f"a server without a worker pid: {pids}"
    return {name: Proc.of(pid) for name, pid in pids.items() if pid is not None}


def _requests(text: str, server: str, procedure: str) -> float:
    """filesim_nfs_requests_total of one server and NFS procedure in a /metrics text."""
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "filesim_nfs_requests_total"
        and s.labels.get("server") == server
        and s.labels.get("program") == "nfs"
        and s.labels.get("procedure") == procedure
    )


@per_server
def test_each_server_runs_in_a_worker_of_its_own(topo: NasTopology) -> None:
    doc = topo.status()
    assert doc.pid == os.getpid()  # the control plane: this (the test's) process
    workers = _workers(topo)
    assert len({w.pid for w in workers.values()}) == len(SERVERS)
    for name, worker in workers.items():
        assert worker.pid != doc.pid and worker.running(), name
        assert worker.parent() == doc.pid, f"{name}: worker {worker.pid} is not our child"
    # the same pids in GET /api/servers and in runtime.json (`filesim status --json`)
    served = {s["name"]: s["pid"] for s in http(topo.http_url + "/api/servers")[1]["servers"]}
    assert served == {name: w.pid for name, w in workers.items()}
    on_disk = topo.layout.runtime_file.read_text()
    assert all(f'"pid": {w.pid}' in on_disk for w in workers.values())


@per_server
def test_a_change_over_nfs_reaches_the_folder_and_writes_its_event(
    topo: NasTopology, tmp_path: Path
) -> None:
    since = time.time()
    payload = os.urandom(300_000)
    nfs_put(topo.url(INPUT, "/from-worker.bin"), payload, tmp_path)
    # The worker forwards the change to the agent here, which copies it into the folder.
    topo.wait_visible(INPUT, "from-worker.bin", side="folder", timeout=20)
    topo.flush()
    assert (topo.folder(INPUT) / "from-worker.bin").read_bytes() == payload
    created = topo.wait_event("nfs.create", server=INPUT, path="from-worker.bin", since=since)
    assert created.side == "nfs"
    copied = topo.wait_event("sync.copy", server=INPUT, path="from-worker.bin", since=since)
    assert copied.time >= created.time


@per_server
def test_an_api_fault_is_in_force_for_the_next_call_and_gone_after_clear(
    topo: NasTopology,
) -> None:
    url = topo.http_url + "/api/faults"
    spec = {"server": INPUT, "kind": "error", "error": "NOSPC", "procedures": ["MKDIR"]}
    with Libnfs(topo.server(INPUT).port) as nfs, Libnfs(topo.server(BACKUP).port) as backup:
        assert nfs.mkdir("/before").ok and nfs.rmdir("/before").ok
        status, added = http(url, "POST", spec)
        assert status == 201, added
        # No wait: the worker acknowledged the rule before the API answered.
        assert "NFS3ERR_NOSPC" in nfs.mkdir("/faulted").error
        assert nfs.stat("/").ok  # other procedures untouched
        assert backup.stat("/").ok  # and the other worker too
        assert http(f"{url}/{added['id']}", "DELETE")[0] == 200
        assert nfs.mkdir("/faulted").ok
        assert nfs.rmdir("/faulted").ok


def test_the_cli_waits_for_the_api_longer_than_the_api_for_a_worker() -> None:
    # `filesim fault add` on a stuck worker must show the worker's error, not its own timeout.
    assert worker_module.REQUEST_TIMEOUT < api_client.TIMEOUT


def test_a_stuck_worker_delays_only_its_own_fault_and_the_api_answers_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "REQUEST_TIMEOUT", 3.0)
    spec = {"server": INPUT, "kind": "error", "error": "NOSPC", "procedures": ["MKDIR"]}
    with start_topology(tmp_path, servers=[INPUT], processes="per-server") as topo:
        url, worker = topo.http_url + "/api/faults", _workers(topo)[INPUT]
        answers: list[tuple[int, Any]] = []
        os.kill(worker.pid, signal.SIGSTOP)  # the worker reads no request now
        try:
            adding = threading.Thread(target=lambda: answers.append(http(url, "POST", spec)))
            adding.start()
            # The add awaits the stopped worker; the event loop, and so the API, go on.
            poll_until(lambda: http(url)[1]["faults"], 10, interval=0.05,
                       what="the API to list the fault being added")  # fmt: skip
            assert http(topo.http_url + "/healthz")[0] == 200
            assert adding.is_alive(), "the add returned before the API answered /healthz"
            adding.join(30)
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        status, body = answers[0]
        assert status == 409 and "did not answer 'faults' in 3 s" in body["error"], body
        assert http(url)[1]["faults"] == []  # the fault that could not be applied is gone
        with Libnfs(topo.server(INPUT).port) as nfs:
            assert nfs.mkdir("/after").ok  # and not in force once the worker woke up
            assert http(url, "POST", spec)[0] == 201
            assert "NFS3ERR_NOSPC" in nfs.mkdir("/faulted").error


@per_server
def test_metrics_count_each_call_a_worker_answered_once(topo: NasTopology) -> None:
    metrics = topo.http_url + "/metrics"
    before = http(metrics)[1]
    with Libnfs(topo.server(INPUT).port) as nfs:
        for i in range(5):
            assert nfs.mkdir(f"/counted-{i}").ok
        middle = http(metrics)[1]
        for i in range(5):
            assert nfs.rmdir(f"/counted-{i}").ok
    after, again = http(metrics)[1], http(metrics)[1]
    # Exactly: counts pulled from a worker at each scrape are neither lost nor added twice.
    assert _requests(middle, INPUT, "MKDIR") - _requests(before, INPUT, "MKDIR") == 5
    assert _requests(after, INPUT, "MKDIR") == _requests(middle, INPUT, "MKDIR")
    assert _requests(after, INPUT, "RMDIR") - _requests(middle, INPUT, "RMDIR") == 5
    assert _requests(again, INPUT, "RMDIR") == _requests(after, INPUT, "RMDIR")
    assert _requests(after, BACKUP, "MKDIR") == _requests(before, BACKUP, "MKDIR") == 0


@contextlib.asynccontextmanager
async def _one_worker(tmp_path: Path, history_interval_s: float) -> AsyncIterator[TopologyRunner]:
    """A started runner of one server, `w` (direct storage), in a worker process: no sync
    agent, HTTP API or runtime.json."""
    topology = parse_topology("servers:\n  - {name: w, role: input, fsid: 1, storage: direct}\n")
    runner = TopologyRunner(
        topology, Layout(tmp_path), port=0, run_sync=False, write_runtime=False,
        history_interval_s=history_interval_s, processes=ProcessMode.PER_SERVER,
    )  # fmt: skip
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


def _mkdirs(port: int, count: int, prefix: str = "d") -> None:
    with Libnfs(port) as nfs:
        assert all(nfs.mkdir(f"/{prefix}-{i}").ok for i in range(count))


def test_the_history_samples_the_calls_a_worker_answered(tmp_path: Path) -> None:
    """The dashboard's charts: the history pulls a worker's counts at each sample."""

    def charted(runner: TopologyRunner) -> float:
        """The calls the samples add up to: each rate times its interval."""
        h = runner.history.doc("w").servers["w"]
        return sum(
            r * (t - before)
            for r, t, before in zip(h.nfs_ops[1:], h.time[1:], h.time[:-1], strict=True)
        )

    async def run() -> None:
        async with _one_worker(tmp_path, history_interval_s=0.1) as runner:
            await asyncio.to_thread(_mkdirs, runner.servers[0].nfs.port, 20)
            # 20 MKDIR and the mount's own NFS calls: at least 20 in the chart
            what = "the history to chart the worker's 20 MKDIR calls"
            await asyncio.to_thread(
                lambda: poll_until(lambda: charted(runner) >= 20, 10, what=what)
            )

    asyncio.run(run())


def test_a_killed_worker_takes_only_its_last_second_of_counts_along(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no scrape between the calls and the kill, the counts still reach /metrics: the
    worker sends them unasked (`STATS_EVERY_S`), not only when pulled."""
    monkeypatch.setattr(supervise_module, "RESTART_DELAYS_S", (0.2,))

    async def run() -> None:
        async with _one_worker(tmp_path, history_interval_s=3600) as runner:
            running = runner.servers[0]
            old = running.process
            assert old is not None and old.pid is not None
            await asyncio.to_thread(_mkdirs, old.port, 4)

            def mkdir_calls() -> int:
                return sum(c.count for key, c in old.stats.calls.items() if key[2] == "MKDIR")

            what = "the worker to send its counts unasked"
            await asyncio.to_thread(lambda: poll_until(lambda: mkdir_calls() == 4, 10, what=what))
            os.kill(old.pid, signal.SIGKILL)

            def restarted() -> bool:
                return running.process is not old and running.process.listening  # type: ignore[union-attr]

            await asyncio.to_thread(lambda: poll_until(restarted, 30, what="a restarted worker"))
            assert _requests((await runner.metrics_text()).decode(), "w", "MKDIR") == 4

    asyncio.run(run())


def test_a_killed_worker_is_reported_and_nothing_hangs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Started again only after a minute: the window where it is down is the test's.
    monkeypatch.setattr(supervise_module, "RESTART_DELAYS_S", (60.0,))
    with start_topology(tmp_path, servers=SERVERS, processes="per-server") as topo:
        workers = _workers(topo)
        since = time.time()
        os.kill(workers[BACKUP].pid, signal.SIGKILL)
        event = topo.wait_event("server.exit", server=BACKUP, since=since, timeout=20)
        assert event.detail["code"] == -signal.SIGKILL
        # The event is the barrier: the topology knows; /readyz says so at once.
        status, body = http(topo.http_url + "/readyz")
        assert status == 503 and body["ready"] is False, body
        assert [r.split(":")[0] for r in body["reasons"]] == [BACKUP], body
        assert "exited" in body["servers"][BACKUP]["nfs"], body
        assert body["servers"][INPUT] == {"nfs": "ok", "sync": "ok"}
        # The rest of the control plane answers, and the other worker serves.
        assert http(topo.http_url + "/metrics")[0] == 200
        assert http(topo.http_url + "/api/servers")[0] == 200
        faults = topo.http_url + "/api/faults"
        status, added = http(faults, "POST", {"server": BACKUP, "kind": "latency", "delay_ms": 5})
        assert status == 201, added  # kept for its next worker, not an error and no hang
        assert http(f"{faults}/{added['id']}", "DELETE")[0] == 200
        run("nfs-ls", topo.url(INPUT))
        assert workers[INPUT].running()
    # Stopping ran to its end (runtime.json is removed last but one), not held by the pending
    # restart, and reaped every worker.
    assert not topo.layout.runtime_file.exists()
    assert [n for n, w in workers.items() if not w.reaped()] == []
    assert topo.recent_events("server.restart") == []


def test_a_killed_worker_is_started_again_with_its_faults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervise_module, "RESTART_DELAYS_S", (0.2,))
    with start_topology(tmp_path, servers=[INPUT], processes="per-server") as topo:
        port, old = topo.server(INPUT).port, _workers(topo)[INPUT]
        with Libnfs(port) as nfs:
            assert all(nfs.mkdir(f"/before-{i}").ok for i in range(3))
        scraped = _requests(http(topo.http_url + "/metrics")[1], INPUT, "MKDIR")
        assert scraped == 3
        topo.add_fault(INPUT, "error", error="NOSPC", procedures=["MKDIR"])
        since = time.time()
        os.kill(old.pid, signal.SIGKILL)
        restarted = topo.wait_event("server.restart", server=INPUT, since=since, timeout=30)
        new = _workers(topo)[INPUT]
        assert restarted.detail["pid"] == new.pid != old.pid and new.running()
        assert topo.status().server(INPUT).port == port  # the same port: clients reconnect
        assert http(topo.http_url + "/readyz")[0] == 200
        with Libnfs(port) as nfs:
            assert "NFS3ERR_NOSPC" in nfs.mkdir("/again").error  # the fault is in force there
            topo.clear_faults(INPUT)
            assert nfs.mkdir("/again").ok
        # The counts go on from the killed worker's last scrape: 3 then 2, not 2 alone.
        assert _requests(http(topo.http_url + "/metrics")[1], INPUT, "MKDIR") == 5
        # The new worker's changes reach the agent and the event log like the first one's.
        topo.wait_visible(INPUT, "again", side="folder", timeout=20)
        assert topo.wait_event("nfs.mkdir", server=INPUT, path="again", since=since)
    assert old.reaped() and new.reaped()


def test_changes_a_killed_worker_never_sent_are_found_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker sends its changes every 10 ms: killed in between, the last ones die with it.
    A file in the store that no one reported stands for them. It reaches the folder after the
    kill, not at the next periodic rescan (an hour away here), and before the worker is back."""
    monkeypatch.setattr(supervise_module, "RESTART_DELAYS_S", (60.0,))
    config = (
        "servers:\n  - {name: nas-input-1, role: input, fsid: 1, sync: {rescan_interval_s: 3600}}\n"
    )
    with start_topology(tmp_path, config=config, processes="per-server") as topo:
        store = topo.layout.store(topo.topology.server(INPUT))
        (store / "unreported.txt").write_text("written by the worker, never told")
        topo.flush(rescan=False)  # its reported work is done: the file stays unnoticed
        assert not (topo.folder(INPUT) / "unreported.txt").exists()
        since = time.time()
        os.kill(_workers(topo)[INPUT].pid, signal.SIGKILL)
        topo.wait_event("server.exit", server=INPUT, since=since, timeout=20)
        poll_until(lambda: (topo.folder(INPUT) / "unreported.txt").exists(), 20,
                   what="the unreported file in the folder")  # fmt: skip
        assert topo.recent_events("server.restart") == []


def test_a_worker_started_again_is_built_with_the_faults_in_force_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the topology file's: one of those was cleared and another added meanwhile. The new
    worker holds them from its first connection (the controller puts them in force again
    once it runs, too)."""
    monkeypatch.setattr(supervise_module, "RESTART_DELAYS_S", (0.2,))
    config = (
        "servers:\n  - {name: nas-input-1, role: input, fsid: 1, "
        "faults: [{kind: error, error: NOSPC, procedures: [MKDIR]}]}\n"
    )
    with start_topology(tmp_path, config=config, processes="per-server") as topo:
        assert topo.clear_faults(INPUT) == 1
        added = topo.add_fault(INPUT, "latency", delay_ms=5, procedures=["FSINFO"])
        since, old = time.time(), _workers(topo)[INPUT]
        os.kill(old.pid, signal.SIGKILL)
        topo.wait_event("server.restart", server=INPUT, since=since, timeout=30)
        (running,) = topo.runner.servers
        assert running.process is not None
        (hosted,) = running.process.worker.spec.servers
        assert [f.summary() for f in hosted.server.faults or []] == [added.summary]
        with Libnfs(topo.server(INPUT).port) as nfs:
            assert nfs.mkdir("/after").ok


def test_servers_sharing_a_worker_keep_apart_and_restart_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """per-core: three servers on two cores, nas-input-1 and nas-input-3 in one worker. What
    clients change, faults and call counts stay each server's own; a killed worker takes down
    and brings back its two servers, and only them."""
    monkeypatch.setattr(worker_module, "usable_cores", lambda: 2)
    monkeypatch.setattr(supervise_module, "RESTART_DELAYS_S", (0.2,))
    one, two, three = "nas-input-1", "nas-input-2", "nas-input-3"
    with start_topology(tmp_path, servers=[one, two, three], processes="per-core") as topo:
        workers = _workers(topo)
        shared, alone = workers[one], workers[two]
        assert workers[three].pid == shared.pid != alone.pid != os.getpid()
        topo.add_fault(one, "error", error="NOSPC", procedures=["MKDIR"])
        with Libnfs(topo.server(one).port) as a, Libnfs(topo.server(three).port) as c:
            assert "NFS3ERR_NOSPC" in a.mkdir("/refused").error
            assert all(c.mkdir(f"/in-three-{i}").ok for i in range(2))  # same worker, no fault
        nfs_put(topo.url(one, "/from-one.txt"), b"one", tmp_path)
        # Each change reaches its own server's agent and events, none the other's.
        topo.wait_visible(one, "from-one.txt", side="folder", timeout=20)
        topo.wait_visible(three, "in-three-1", side="folder", timeout=20)
        assert not (topo.root / three / "from-one.txt").exists()
        assert [e.path for e in topo.recent_events("nfs.mkdir", server=three)] == [
            "in-three-0",
            "in-three-1",
        ]
        metrics = http(topo.http_url + "/metrics")[1]
        assert _requests(metrics, three, "MKDIR") == 2 and _requests(metrics, two, "MKDIR") == 0
        assert _requests(metrics, one, "MKDIR") == 1  # the refused one is counted, as an error
        since = time.time()
        os.kill(shared.pid, signal.SIGKILL)
        for name in (one, three):
            topo.wait_event("server.restart", server=name, since=since, timeout=30)
        assert {e.server for e in topo.recent_events("server.exit")} == {one, three}
        again = _workers(topo)
        assert again[one].pid == again[three].pid != shared.pid and again[two].pid == alone.pid
        with Libnfs(topo.server(one).port) as a, Libnfs(topo.server(three).port) as c:
            assert "NFS3ERR_NOSPC" in a.mkdir("/refused").error  # its fault came back with it
            assert c.mkdir("/after").ok
    assert shared.reaped() and again[one].reaped() and alone.reaped()


def test_a_server_stopped_alone_leaves_the_others_of_its_worker_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """per-core on one core: three servers in one worker. Stopping one (as `filesim verify`'s
    tests do) stops its listener only; the worker ends with the last of them, and a worker
    started again after a crash serves only the ones still running."""
    monkeypatch.setattr(worker_module, "usable_cores", lambda: 1)
    monkeypatch.setattr(supervise_module, "RESTART_DELAYS_S", (0.2,))
    topology = parse_topology(
        "servers:\n"
        + "".join(
            f"  - {{name: s{i}, role: input, fsid: {i}, storage: direct}}\n" for i in (1, 2, 3)
        )
    )

    async def run() -> None:
        runner = TopologyRunner(
            topology, Layout(tmp_path), port=0, run_sync=False, write_runtime=False,
            processes=ProcessMode.PER_CORE,
        )  # fmt: skip
        await runner.start()
        try:
            workers = {r.process.worker for r in runner.servers if r.process is not None}
            assert len(workers) == 1
            (worker,) = workers
            await runner.server("s2").nfs.stop()
            ports = {r.name: r.nfs.port for r in runner.servers}
            assert worker.pid is not None and pid_running(worker.pid)
            for name in ("s1", "s3"):
                await asyncio.to_thread(_mkdirs, ports[name], 1)
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", ports["s2"]), timeout=5).close()
            # Its worker killed, the two it served come back; the stopped one stays stopped.
            os.kill(worker.pid, signal.SIGKILL)
            s1, s3 = runner.server("s1"), runner.server("s3")

            def restarted() -> bool:
                return all(r.process is not None and r.process.worker is not worker
                           and r.process.listening for r in (s1, s3))  # fmt: skip

            await asyncio.to_thread(lambda: poll_until(restarted, 30, what="s1 and s3 again"))
            assert s1.process is not None and s3.process is not None
            again = s1.process.worker
            assert s3.process.worker is again and again.names == ["s1", "s3"]
            for name in ("s1", "s3"):
                await asyncio.to_thread(_mkdirs, ports[name], 1, "again")
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", ports["s2"]), timeout=5).close()
        finally:
            await runner.stop()
        assert again.gone and again.exit_code == 0

    asyncio.run(run())


def test_a_restart_that_cannot_bind_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first restart waits [0], later ones [1]: 3 s to take the port, even on a busy machine.
    monkeypatch.setattr(supervise_module, "RESTART_DELAYS_S", (3.0, 0.2))
    with start_topology(tmp_path, servers=[INPUT], processes="per-server") as topo:
        port, old = topo.server(INPUT).port, _workers(topo)[INPUT]
        since = time.time()

        def tried_and_failed() -> bool:
            pid = topo.status().server(INPUT).pid
            return pid is not None and pid != old.pid and not pid_running(pid)

        with socket.socket() as squatter:
            os.kill(old.pid, signal.SIGKILL)
            topo.wait_event("server.exit", server=INPUT, since=since, timeout=20)
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", port))
            squatter.listen()  # the restart 3 s after the exit finds its port taken
            poll_until(tried_and_failed, 20, what="a restart to find its port taken")
            body = http(topo.http_url + "/readyz")[1]
            assert body["ready"] is False and "exited" in body["servers"][INPUT]["nfs"], body
        # The port is free again: a later try must start it.
        topo.wait_event("server.restart", server=INPUT, since=since, timeout=20)
        assert http(topo.http_url + "/readyz")[0] == 200


def test_stopping_the_topology_ends_every_worker(tmp_path: Path) -> None:
    with start_topology(tmp_path, servers=SERVERS, processes="per-server") as topo:
        workers = _workers(topo)
        assert all(w.running() for w in workers.values())
    assert [n for n, w in workers.items() if not w.reaped()] == []
    stops = [e.server for e in topo.recent_events("server.stop")]
    assert sorted(stops) == sorted(SERVERS)
    assert topo.recent_events("server.exit") == []  # a stop is not a worker dying


@dataclass
class Up:
    """A `filesim up --processes per-server` of two servers run as from a terminal."""

    proc: subprocess.Popen[bytes]
    doc: dict[str, Any]
    """Its runtime document (`status --json`)."""
    marker: str
    """In the environment of every process it started."""
    stderr: Path

    @property
    def workers(self) -> dict[str, Proc]:
        return {s["name"]: Proc.of(s["pid"]) for s in self.doc["servers"]}


@contextmanager
def _up_in_a_terminal(tmp_path: Path) -> Iterator[Up]:
    """The topology in a session of its own (a terminal's foreground process group), once
    its runtime document is written; the whole group is killed at exit if still running."""
    config = tmp_path / "two.yaml"
    config.write_text(TWO_SERVERS)
    root, stderr, marker = tmp_path / "root", tmp_path / "stderr.txt", new_marker()
    args = [*FILESIM, "up", "--root", str(root), "--config", str(config), "--base-port", "0",
            "--http-port", "0", "--processes", "per-server"]  # fmt: skip
    with stderr.open("wb") as err:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err,
                                env={**os.environ, MARKER: marker}, start_new_session=True)  # fmt: skip
    try:
        runtime = root / ".filesim" / "runtime.json"
        poll_until(lambda: runtime.exists() or proc.poll() is not None, 60, what="filesim up")
        assert proc.poll() is None, stderr.read_text()
        yield Up(proc, json.loads(runtime.read_text()), marker, stderr)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_down_ends_every_worker(tmp_path: Path) -> None:
    with _up_in_a_terminal(tmp_path) as up:
        workers = up.workers
        assert all(w.parent() == up.proc.pid for w in workers.values())
        # `verify --restart` starts it again from argv: in the same mode
        assert "--processes per-server" in " ".join(up.doc["argv"])
        filesim("down", "--root", up.doc["root"])
        assert up.proc.wait(30) == 0, up.stderr.read_text()
    # `down` returns once the topology has ended: its workers are gone with it.
    assert [n for n, w in workers.items() if w.running()] == []
    poll_until(lambda: not marked(up.marker), 10, what="every process of the topology to end")


def test_ctrl_c_at_the_terminal_stops_the_topology_and_its_workers_cleanly(
    tmp_path: Path,
) -> None:
    """Ctrl-C signals the whole foreground process group, workers included: they leave the
    stop to the topology, and nobody prints a traceback."""
    with _up_in_a_terminal(tmp_path) as up:
        workers = up.workers
        run("nfs-ls", nfs_url(up.doc["servers"][0]))
        os.killpg(up.proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        assert up.proc.wait(60) == 0, up.stderr.read_text()
    err = up.stderr.read_text()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert not (Path(up.doc["root"]) / ".filesim" / "runtime.json").exists()
    assert [n for n, w in workers.items() if w.running()] == []


def test_workers_end_when_their_topology_is_killed(tmp_path: Path) -> None:
    with _up_in_a_terminal(tmp_path) as up:
        workers = list(up.workers.values())
        up.proc.kill()  # SIGKILL to the topology alone: each worker sees its pipe close
        poll_until(lambda: not any(w.running() for w in workers), 20,
                   what="the workers of a killed topology to end")  # fmt: skip
    poll_until(lambda: not marked(up.marker), 10, what="every process of the topology to end")


def test_a_worker_that_cannot_bind_fails_up_with_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = new_marker()
    monkeypatch.setenv(MARKER, marker)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "topo.yaml"
        # The first server's worker starts; the second's cannot bind: the first must end too.
        config.write_text(TWO_SERVERS.replace("fsid: 4}", f"fsid: 4, port: {port}}}"))
        proc = filesim("up", "--root", str(tmp_path), "--config", str(config), "--base-port",
                       "0", "--processes", "per-server", check=False)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"port {port}" in lines[0] and "nas-backup" in lines[0], lines
    assert not (tmp_path / ".filesim" / "runtime.json").exists()
    poll_until(lambda: not marked(marker), 10, what="every process of the failed start to end")
