"""Container probes run as a kubelet runs them: exec in the container, or a TCP connect.

A tcpSocket probe connects where the pod's port is published on the host (127.0.0.1:PORT):
the pod's own address is on podman's bridge, which this tool never talks to directly.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from podrun import podman
from podrun.manifest import Container, Probe
from podrun.podman import PodsError


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str


def run_once(
    container_name: str,
    container: Container,
    probe: Probe,
    published: Mapping[int, int],
) -> Outcome:
    """One probe attempt; `published` maps container port -> host port on 127.0.0.1."""
    if probe.kind == "exec":
        args = [podman.binary(), "exec", container_name, *probe.command]
        try:
            proc = subprocess.run(
                args,
                capture_output=True,
                text=True,
                env=podman.env(),
                timeout=probe.timeout + 5,  # podman exec's own start-up on top
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Outcome(False, f"timed out after {probe.timeout:.0f} s")
        output = (proc.stdout + proc.stderr).strip().splitlines()
        last = output[-1] if output else ""
        return Outcome(proc.returncode == 0, f"exit {proc.returncode} {last}".strip())
    port = container.port_number(probe.port)
    host_port = published.get(port)
    if host_port is None:
        raise PodsError(f"tcpSocket probe on port {port} of {container.name}: port not published")
    try:
        with socket.create_connection(("127.0.0.1", host_port), timeout=probe.timeout):
            return Outcome(True, f"connected to 127.0.0.1:{host_port}")
    except OSError as exc:
        return Outcome(False, f"127.0.0.1:{host_port}: {exc.strerror or exc}")


def wait_until_ready(
    container_name: str,
    container: Container,
    probe: Probe,
    published: Mapping[int, int],
    started: float,
    deadline: float,
    alive: Callable[[], str | None],
) -> Outcome:
    """Probe on the probe's own schedule (initial delay, then every period) until it has
    succeeded successThreshold times in a row. Returns the last outcome when `deadline`
    (time.monotonic()) passes first, or as soon as `alive()` reports the container gone."""
    time.sleep(max(0.0, started + probe.initial_delay - time.monotonic()))
    successes = 0
    outcome = Outcome(False, "not probed yet")
    while True:
        gone = alive()
        if gone is not None:
            return Outcome(False, gone)
        attempt = time.monotonic()
        outcome = run_once(container_name, container, probe, published)
        successes = successes + 1 if outcome.ok else 0
        if successes >= probe.success_threshold:
            return outcome
        next_at = attempt + probe.period
        if next_at > deadline:
            return outcome
        time.sleep(max(0.0, next_at - time.monotonic()))
