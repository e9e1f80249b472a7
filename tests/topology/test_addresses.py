"""Standard-port mode: where each server listens, and what macOS needs for it."""

from __future__ import annotations

import pytest

from filesim.topology import PortMode, TopologyError, default_topology, parse_topology
from filesim.topology.addresses import (
    PRIVILEGED_PORTS_HINT,
    macos_alias_commands,
    standard_address,
)


def test_a_topology_gets_one_loopback_address_per_server() -> None:
    topology = default_topology()
    addresses = [standard_address(topology, s) for s in topology.servers]
    assert addresses == [f"127.0.0.{11 + i}" for i in range(7)]


def test_a_lone_server_is_on_127_0_0_1_and_a_host_overrides() -> None:
    alone = parse_topology("servers:\n  - {name: a, role: input, fsid: 1}\n")
    assert standard_address(alone, alone.servers[0]) == "127.0.0.1"
    topology = parse_topology(
        """
        ports: standard
        servers:
          - {name: a, role: input, fsid: 1}
          - {name: b, role: output, fsid: 2, enabled: false}
          - {name: c, role: output, fsid: 3, host: 127.0.0.50}
          - {name: d, role: output, fsid: 4}
        """
    )
    assert topology.ports is PortMode.STANDARD
    # by position in the topology: disabling b does not move d
    assert [standard_address(topology, s) for s in topology.enabled] == [
        "127.0.0.11", "127.0.0.50", "127.0.0.14",
    ]  # fmt: skip


def test_custom_ports_are_the_default() -> None:
    assert default_topology().ports is PortMode.CUSTOM
    with pytest.raises(TopologyError, match=r"ports: Input should be .custom. or .standard."):
        parse_topology("ports: odd\nservers:\n  - {name: a, role: input, fsid: 1}\n")


def test_macos_needs_an_alias_for_every_address_but_127_0_0_1() -> None:
    assert macos_alias_commands(["127.0.0.1", "127.0.0.11", "10.0.0.5", "::1", "x"]) == [
        "sudo ifconfig lo0 alias 127.0.0.11 up"
    ]


def test_the_privileged_port_hint_names_the_three_ways() -> None:
    for way in ("root", "CAP_NET_BIND_SERVICE", "net.ipv4.ip_unprivileged_port_start"):
        assert way in PRIVILEGED_PORTS_HINT
