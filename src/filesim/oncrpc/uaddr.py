"""Universal addresses (RFC 5665 section 5.2.3): how rpcbind v3/v4 write a transport address.

IPv4 "h1.h2.h3.h4.p1.p2", IPv6 "x:x::x.p1.p2", where p1 and p2 are the port's high and low
bytes in decimal: 127.0.0.1 port 2049 is "127.0.0.1.8.1". Both directions, no I/O.
"""

from __future__ import annotations

import ipaddress

NETID_TCP = "tcp"
NETID_UDP = "udp"
NETID_TCP6 = "tcp6"
NETID_UDP6 = "udp6"


class UaddrError(ValueError):
    """A string that is not a universal address."""


def to_uaddr(host: str, port: int) -> str:
    """The universal address of `host` (an IP address) and `port`."""
    if not 0 <= port <= 0xFFFF:
        raise UaddrError(f"port {port} is out of range")
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    return f"{ip.compressed}.{port >> 8}.{port & 0xFF}"


def from_uaddr(uaddr: str) -> tuple[str, int]:
    """(host, port) of a universal address."""
    head, sep, low = uaddr.rpartition(".")
    host, sep2, high = head.rpartition(".")
    if not sep or not sep2 or not high.isdigit() or not low.isdigit():
        raise UaddrError(f"{uaddr!r} is not a universal address like 127.0.0.1.8.1")
    p1, p2 = int(high), int(low)
    if p1 > 255 or p2 > 255:
        raise UaddrError(f"{uaddr!r}: port bytes above 255")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise UaddrError(f"{uaddr!r}: {host!r} is not an IP address") from None
    return ip.compressed, (p1 << 8) | p2


def netid(host: str, udp: bool = False) -> str:
    """The netid of a transport on `host`: tcp, udp, tcp6 or udp6."""
    six = ipaddress.ip_address(host.split("%", 1)[0]).version == 6
    return (NETID_UDP if udp else NETID_TCP) + ("6" if six else "")
