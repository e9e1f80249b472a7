"""rpcbind (RFC 1833): PORTMAP v2 and RPCBIND v3 and v4, answering for the programs of one
server. How clients find NFS, MOUNT, NLM and NSM: on port 111 in standard-port mode, and on the
server's own port always.

The registrations are fixed when the server starts (`Registrations.of_server`): everything is
served on the server's one port, TCP, and UDP for all but NFS. SET and UNSET are refused (no
other service registers here); CALLIT/INDIRECT, UADDR2TADDR and TADDR2UADDR are not served
(PROC_UNAVAIL). A v3/v4 address is the universal address of *our* address the call came to,
with the program's port, as the real rpcbind merges a wildcard registration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from filesim.nfs.services import Origin, Program, Services
from filesim.oncrpc.programs import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    MOUNT_PROGRAM,
    MOUNT_VERSIONS,
    NFS_PROGRAM,
    NFS_VERSIONS,
    NLM_PROGRAM,
    NLM_VERSIONS,
    NSM_PROGRAM,
    NSM_VERSION,
    PORTMAP_PROGRAM,
    RPCBIND_VERSIONS,
    RpcbProc,
)
from filesim.oncrpc.uaddr import NETID_TCP, NETID_UDP, UaddrError, netid, to_uaddr
from filesim.oncrpc.xdr import Packer, Unpacker

OWNER = "superuser"
_RPCB_STAT_PROCS = 13
"""RPCBSTAT_HIGHPROC: the per-procedure counters of one rpcb_stat."""
_NC_TPI_CLTS, _NC_TPI_COTS_ORD = 1, 3


@dataclass(frozen=True, slots=True)
class Registration:
    prog: int
    vers: int
    netid: str
    """tcp, udp, tcp6 or udp6."""
    port: int

    @property
    def protocol(self) -> int:
        return IPPROTO_UDP if self.netid.startswith(NETID_UDP) else IPPROTO_TCP


class Registrations:
    """What this rpcbind answers for, in the order DUMP lists it."""

    def __init__(self, entries: list[Registration]) -> None:
        self.entries = entries

    @classmethod
    def of_server(
        cls, host: str, port: int, rpcbind_port: int | None = None, udp: bool = True
    ) -> Registrations:
        """Every program of a server on `host:port` (rpcbind itself on `rpcbind_port` too,
        111 in standard-port mode); UDP where `udp` (NFS itself is TCP only)."""
        tcp = netid(host) if host else NETID_TCP
        udp_id = netid(host, udp=True) if host else NETID_UDP
        netids = [tcp, udp_id] if udp else [tcp]
        entries = []
        for rb_port in dict.fromkeys(p for p in (rpcbind_port, port) if p is not None):
            for vers in sorted(RPCBIND_VERSIONS, reverse=True):
                entries += [Registration(PORTMAP_PROGRAM, vers, n, rb_port) for n in netids]
        for prog, versions, ids in (
            (NFS_PROGRAM, NFS_VERSIONS, [tcp]),
            (MOUNT_PROGRAM, MOUNT_VERSIONS, netids),
            (NLM_PROGRAM, NLM_VERSIONS, netids),
            (NSM_PROGRAM, (NSM_VERSION,), netids),
        ):
            entries += [Registration(prog, v, n, port) for v in versions for n in ids]
        return cls(entries)

    def getport(self, prog: int, vers: int, protocol: int) -> int:
        """PORTMAP GETPORT: the port, 0 when not registered."""
        for entry in self.entries:
            if (entry.prog, entry.vers, entry.protocol) == (prog, vers, protocol):
                return entry.port
        return 0

    def find(self, prog: int, vers: int | None, netid_: str) -> Registration | None:
        """The registration of `prog` on `netid_` (any version when `vers` is None)."""
        for entry in self.entries:
            if entry.prog == prog and entry.netid == netid_ and vers in (None, entry.vers):
                return entry
        return None

    def ports(self) -> set[int]:
        return {e.port for e in self.entries}


RPCBIND = Program(PORTMAP_PROGRAM, "portmap", RPCBIND_VERSIONS, RpcbProc)
V2, V3, V4 = (2,), (3,), (4,)
V34 = (3, 4)


def _rpcb(u: Unpacker) -> tuple[int, int, str]:
    """The program, version and netid of an rpcb argument (its address and owner unused)."""
    prog, vers, netid_ = u.uint32(), u.uint32(), u.string(64)
    u.string(256)
    u.string(256)
    return prog, vers, netid_


def _uaddr(o: Origin, port: int) -> str:
    try:
        return to_uaddr(o.local, port) if o.local else ""
    except (UaddrError, ValueError):
        return ""


def _netid_of(o: Origin, given: str) -> str:
    """The netid a query means: the one it names, else the transport it came on."""
    if given:
        return given
    try:
        return netid(o.local or "0.0.0.0", udp=o.udp)
    except ValueError:
        return NETID_UDP if o.udp else NETID_TCP


def _string(value: str) -> bytes:
    p = Packer()
    p.string(value)
    return p.getvalue()


@RPCBIND.procedure(RpcbProc.NULL)
def null(s: Services, o: Origin, u: Unpacker) -> bytes:
    return b""


@RPCBIND.procedure(RpcbProc.SET)
@RPCBIND.procedure(RpcbProc.UNSET)
def refuse_registration(s: Services, o: Origin, u: Unpacker) -> bytes:
    """Nothing registers with this rpcbind: its programs are fixed."""
    p = Packer()
    p.bool(False)
    return p.getvalue()


@RPCBIND.procedure(RpcbProc.GETADDR, versions=V2)  # PMAPPROC_GETPORT has GETADDR's number
def getport(s: Services, o: Origin, u: Unpacker) -> bytes:
    prog, vers, protocol, _ = u.uint32(), u.uint32(), u.uint32(), u.uint32()
    p = Packer()
    p.uint32(s.rpcbind.getport(prog, vers, protocol))
    return p.getvalue()


@RPCBIND.procedure(RpcbProc.DUMP, versions=V2)
def pmap_dump(s: Services, o: Origin, u: Unpacker) -> bytes:
    p = Packer()
    seen = set()
    for entry in s.rpcbind.entries:
        mapping = (entry.prog, entry.vers, entry.protocol, entry.port)
        if mapping in seen:  # tcp and tcp6 are one PORTMAP mapping
            continue
        seen.add(mapping)
        p.bool(True)
        for value in mapping:
            p.uint32(value)
    p.bool(False)
    return p.getvalue()


@RPCBIND.procedure(RpcbProc.GETADDR, versions=V3)
def getaddr(s: Services, o: Origin, u: Unpacker) -> bytes:
    """v3: the address of that version exactly, "" when it is not registered."""
    prog, vers, netid_ = _rpcb(u)
    return _address(s, o, prog, vers, netid_)


@RPCBIND.procedure(RpcbProc.GETADDR, versions=V4)
def getaddr_any_version(s: Services, o: Origin, u: Unpacker) -> bytes:
    """v4: that version's address, else any registered version's, as rpcbind answers."""
    prog, vers, netid_ = _rpcb(u)
    if s.rpcbind.find(prog, vers, _netid_of(o, netid_)) is None:
        return _address(s, o, prog, None, netid_)
    return _address(s, o, prog, vers, netid_)


@RPCBIND.procedure(RpcbProc.GETVERSADDR, versions=V4)
def getversaddr(s: Services, o: Origin, u: Unpacker) -> bytes:
    prog, vers, netid_ = _rpcb(u)
    return _address(s, o, prog, vers, netid_)


def _address(s: Services, o: Origin, prog: int, vers: int | None, netid_: str) -> bytes:
    found = s.rpcbind.find(prog, vers, _netid_of(o, netid_))
    return _string("" if found is None else _uaddr(o, found.port))


@RPCBIND.procedure(RpcbProc.DUMP, versions=V34)
def dump(s: Services, o: Origin, u: Unpacker) -> bytes:
    p = Packer()
    for entry in s.rpcbind.entries:
        p.bool(True)
        p.uint32(entry.prog)
        p.uint32(entry.vers)
        p.string(entry.netid)
        p.string(_uaddr(o, entry.port))
        p.string(OWNER)
    p.bool(False)
    return p.getvalue()


@RPCBIND.procedure(RpcbProc.GETTIME, versions=V34)
def gettime(s: Services, o: Origin, u: Unpacker) -> bytes:
    p = Packer()
    p.uint32(int(time.time()) & 0xFFFFFFFF)
    return p.getvalue()


@RPCBIND.procedure(RpcbProc.GETADDRLIST, versions=V4)
def getaddrlist(s: Services, o: Origin, u: Unpacker) -> bytes:
    prog, vers, _ = _rpcb(u)
    p = Packer()
    for entry in s.rpcbind.entries:
        if (entry.prog, entry.vers) != (prog, vers):
            continue
        udp = entry.protocol == IPPROTO_UDP
        p.bool(True)
        p.string(_uaddr(o, entry.port))
        p.string(entry.netid)
        p.uint32(_NC_TPI_CLTS if udp else _NC_TPI_COTS_ORD)
        p.string("inet6" if entry.netid.endswith("6") else "inet")
        p.string("udp" if udp else "tcp")
    p.bool(False)
    return p.getvalue()


@RPCBIND.procedure(RpcbProc.GETSTAT, versions=V4)
def getstat(s: Services, o: Origin, u: Unpacker) -> bytes:
    """rpcb_stat_byvers: no statistics are kept, so every counter is 0."""
    p = Packer()
    for _ in RPCBIND_VERSIONS:
        for _ in range(_RPCB_STAT_PROCS + 2):  # info[], setinfo, unsetinfo
            p.int32(0)
        p.bool(False)  # addrinfo
        p.bool(False)  # rmtinfo
    return p.getvalue()
