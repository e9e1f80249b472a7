"""`filesim ping`, the readiness probe: RPC NULL to NFS v3 and MOUNT v3."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from filesim.nfsclient.ping import PingError, ping
from filesim.oncrpc.const import AcceptStat, AuthStat
from filesim.oncrpc.message import (
    accepted_header,
    auth_error_reply,
    parse_call,
    prog_mismatch_reply,
)
from filesim.oncrpc.programs import MOUNT_PROGRAM, NFS_PROGRAM
from filesim.oncrpc.record import RecordReader, record_mark
from filesim.topology import Layout, parse_topology
from filesim.waiting import poll_until
from tests.support.ports import refusing_port

from .harness import FILESIM, Helm, Running, of_kind, pod_spec, stop

# --- over a socket, against a scripted server ----------------------------------------------


Responder = Callable[[Any], bytes | None]


@pytest.fixture
def fake_server() -> Iterator[Callable[[Responder], int]]:
    """A TCP server answering each call with responder(call); None means stay silent."""
    listeners: list[socket.socket] = []

    def start(responder: Responder) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def serve() -> None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                reader = RecordReader()
                while data := conn.recv(65536):
                    for record in reader.feed(data):
                        reply = responder(parse_call(record))
                        if reply is not None:
                            conn.sendall(record_mark(len(reply)) + reply)

        threading.Thread(target=serve, daemon=True).start()
        return int(listener.getsockname()[1])

    yield start
    for listener in listeners:
        listener.close()


def test_ping_both_programs(fake_server: Callable[[Responder], int]) -> None:
    seen: list[tuple[int, int, int]] = []

    def respond(call: Any) -> bytes:
        seen.append((call.prog, call.vers, call.proc))
        return accepted_header(call.xid)

    result = ping("127.0.0.1", fake_server(respond))
    assert seen == [(NFS_PROGRAM, 3, 0), (MOUNT_PROGRAM, 3, 0)]
    assert set(result.rtt_ms) == {"NFS", "MOUNT"}


def test_ping_fails_without_mount(fake_server: Callable[[Responder], int]) -> None:
    def respond(call: Any) -> bytes:
        if call.prog == MOUNT_PROGRAM:
            return accepted_header(call.xid, AcceptStat.PROG_UNAVAIL)
        return accepted_header(call.xid)

    with pytest.raises(PingError, match="MOUNT: call not accepted"):
        ping("127.0.0.1", fake_server(respond))


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (lambda xid: auth_error_reply(xid, AuthStat.AUTH_BADCRED), "NFS: call denied"),
        (lambda xid: prog_mismatch_reply(xid, 2, 2), "NFS: call not accepted (PROG_MISMATCH)"),
        (lambda xid: accepted_header(xid)[:20], "NFS: reply truncated before accept_stat"),
    ],
)
def test_ping_reports_what_is_wrong_with_a_reply(
    fake_server: Callable[[Responder], int], reply: Callable[[int], bytes], message: str
) -> None:
    with pytest.raises(PingError, match=re.escape(message)):
        ping("127.0.0.1", fake_server(lambda call: reply(call.xid)), timeout=2)


def test_ping_times_out_on_a_silent_server(fake_server: Callable[[Responder], int]) -> None:
    port = fake_server(lambda call: None)
    start = time.monotonic()
    with pytest.raises(PingError, match="NFS: no reply"):
        ping("127.0.0.1", port, timeout=0.5)
    assert time.monotonic() - start < 2


def test_ping_refused() -> None:
    with refusing_port() as port, pytest.raises(PingError, match="cannot connect"):
        ping("127.0.0.1", port, timeout=1)


# --- against real filesim servers -----------------------------------------------------------


def run_filesim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FILESIM, *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.integration
def test_ping_command_against_filesim_up(running: Running) -> None:
    for port in running.ports.values():
        proc = run_filesim("ping", "--host", "127.0.0.1", "--port", str(port))
        assert proc.returncode == 0, proc.stderr
        assert "answers" in proc.stdout
    stop(running.proc)
    with refusing_port() as port:
        proc = run_filesim("ping", "--port", str(port), "--timeout", "1")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: cannot connect")


@pytest.mark.integration
def test_chart_pod_commands_run(helm: Helm, tmp_path: Path) -> None:
    """A server's pod, as processes: the chart's init container, sidecar and nfs-server commands
    with the chart's topology ConfigMap, and its readiness probe. Only the in-pod paths and the
    port are swapped for local ones."""
    objects = helm.template()
    (config_map,) = of_kind(objects, "ConfigMap").values()
    config = tmp_path / "topology.yaml"
    config.write_text(config_map["data"]["topology.yaml"])
    spec = pod_spec(of_kind(objects, "Deployment")["t-nas-output-1"])
    init, sidecar = spec["initContainers"]
    (main,) = spec["containers"]
    chart_port = str(main["ports"][0]["containerPort"])
    data, state = tmp_path / "data", tmp_path / "state"
    swap = {
        "/etc/filesim/topology.yaml": str(config),
        "/simulator-data": str(data),
        "/var/lib/filesim": str(state),
        "0.0.0.0": "127.0.0.1",
        chart_port: "0",  # any free port; the server prints the one it got
    }

    def local(command: list[str]) -> list[str]:
        assert command[0] == "filesim"
        return [swap.get(arg, arg) for arg in command[1:]]

    topology = parse_topology(config.read_text())
    layout = Layout(data, state)
    folder = layout.folder(topology.server("nas-output-1"))
    store = layout.store(topology.server("nas-output-1"))
    folder.mkdir(parents=True)
    (folder / "before-start.txt").write_text("dropped by a tester\n")

    proc = run_filesim(*local(init["command"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (store / "before-start.txt").read_text() == "dropped by a tester\n"

    processes = []
    try:
        for name, container in (("sidecar", sidecar), ("serve", main)):
            log = (tmp_path / f"{name}.log").open("wb")
            command = [*FILESIM, *local(container["command"])]
            processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))

        def served_port() -> str | None:
            for p in processes:
                assert p.poll() is None, (tmp_path / "serve.log").read_text()
            found = re.search(r"mountport=(\d+)", (tmp_path / "serve.log").read_text())
            return found[1] if found else None

        port = poll_until(served_port, 20, what="the server to print its port")
        probe = local([port if arg == chart_port else arg
                       for arg in main["readinessProbe"]["exec"]["command"]])  # fmt: skip
        poll_until(lambda: run_filesim(*probe).returncode == 0, 20, interval=0.3,
                   what="the readiness probe to pass")  # fmt: skip
        # The sidecar keeps syncing while the server runs.
        (folder / "while-running.txt").write_text("later\n")

        def sidecar_copied(path: Path) -> bool:
            assert processes[0].poll() is None, (tmp_path / "sidecar.log").read_text()
            return path.exists()

        poll_until(lambda: sidecar_copied(store / "while-running.txt"), 20, what="the copy")
        # ... both ways: what a client writes into the export store reaches the folder.
        (store / "from-nfs.txt").write_text("output\n")
        poll_until(lambda: sidecar_copied(folder / "from-nfs.txt"), 20, what="the copy back")
    finally:
        for p in processes:
            stop(p)
