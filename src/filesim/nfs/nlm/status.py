"""NSM v1 (the network status monitor, program 100024) as the server answers it.

What matters is NOTIFY: a client's status monitor (sm-notify, at the client's boot) says the
host restarted, so every lock it held is released. STAT tells our state number. MON, UNMON and
UNMON_ALL are for a host's own lock manager only, so a remote caller is refused, as rpc.statd
does; the server monitors its NLM clients itself (`HostRecord`).
"""

from __future__ import annotations

import logging

from filesim.nfs.nlm.types import SM_MAXSTRLEN, Notify
from filesim.nfs.services import Origin, Program, Services
from filesim.oncrpc.programs import NSM_PROGRAM, NSM_VERSION, NsmProc, NsmResult
from filesim.oncrpc.xdr import Packer, Unpacker

log = logging.getLogger(__name__)

NSM = Program(NSM_PROGRAM, "status", (NSM_VERSION,), NsmProc)


def _stat_res(result: NsmResult, state: int) -> bytes:
    p = Packer()
    p.uint32(result)
    p.int32(state)
    return p.getvalue()


def _state(state: int) -> bytes:
    p = Packer()
    p.int32(state)
    return p.getvalue()


@NSM.procedure(NsmProc.NULL)
def null(s: Services, o: Origin, u: Unpacker) -> bytes:
    return b""


@NSM.procedure(NsmProc.STAT)
def stat(s: Services, o: Origin, u: Unpacker) -> bytes:
    u.string(SM_MAXSTRLEN)
    return _stat_res(NsmResult.SUCCESS, s.monitor.state)


@NSM.procedure(NsmProc.MON)
def mon(s: Services, o: Origin, u: Unpacker) -> bytes:
    u.string(SM_MAXSTRLEN)  # mon_name
    u.string(SM_MAXSTRLEN)  # my_name
    u.uint32(), u.uint32(), u.uint32()  # my_prog, my_vers, my_proc
    u.fixed_opaque(16)  # priv
    return _stat_res(NsmResult.FAILURE, s.monitor.state)


@NSM.procedure(NsmProc.UNMON)
def unmon(s: Services, o: Origin, u: Unpacker) -> bytes:
    u.string(SM_MAXSTRLEN)
    u.string(SM_MAXSTRLEN)
    u.uint32(), u.uint32(), u.uint32()
    return _state(s.monitor.state)


@NSM.procedure(NsmProc.UNMON_ALL)
def unmon_all(s: Services, o: Origin, u: Unpacker) -> bytes:
    u.string(SM_MAXSTRLEN)
    u.uint32(), u.uint32(), u.uint32()
    return _state(s.monitor.state)


@NSM.procedure(NsmProc.SIMU_CRASH)
def simu_crash(s: Services, o: Origin, u: Unpacker) -> bytes:
    return b""


@NSM.procedure(NsmProc.NOTIFY)
def notify(s: Services, o: Origin, u: Unpacker) -> bytes:
    """Host `mon_name` restarted: release its locks. It is matched by the name its lock
    manager sent (caller_name), or by address when the notice names one."""
    change = Notify.decode(u)
    names = {change.name}
    names |= {p.name for p in s.monitor.current.values() if p.address == change.name}
    released = sum(s.nlm.host_rebooted(name) for name in sorted(names))
    log.info(
        "NSM: %s (from %s) restarted, state %d: %d file(s) released",
        change.name, o.client, change.state, released,
    )  # fmt: skip
    return b""
