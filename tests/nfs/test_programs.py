"""The programs a server answers beside NFS, through the dispatcher with real encodings: rpcbind
v2-v4, MOUNT v1, NLM v4 and NSM; the transports each is served on; what Windows' client sends
(NULL probes of NFS v2 and v3, AUTH_SYS uid/gid -2)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from filesim.nfs.nlm.types import LockArgs, NlmLock, Notify, Res, TestArgs, UnlockArgs
from filesim.nfs.services import Origin
from filesim.oncrpc.const import AcceptStat
from filesim.oncrpc.message import encode_call
from filesim.oncrpc.programs import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    MOUNT_PROGRAM,
    NFS_PROGRAM,
    NLM_PROGRAM,
    NSM_PROGRAM,
    PORTMAP_PROGRAM,
    MountProc,
    MountStat,
    NlmProc,
    NlmStat,
    NsmProc,
    PortmapProc,
    RpcbProc,
)
from filesim.oncrpc.xdr import Packer, Unpacker
from tests.support.rig import ROOT, Rig, make_rig, user

PORT = 2049
LOCAL = "127.0.0.11"


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    r = make_rig(tmp_path / "export")
    r.dispatcher.listening(LOCAL, PORT, 111, udp=True)
    return r


def call(
    rig: Rig, prog: int, vers: int, proc: int, args: bytes = b"", *, udp: bool = False,
    rpcbind_only: bool = False, client: str = "10.0.0.5",
) -> tuple[int, Unpacker]:  # fmt: skip
    """(accept stat, the results) of one call, as it came to LOCAL over TCP or UDP."""
    record = encode_call(7, prog, vers, proc, args, ROOT)
    parts = rig.dispatcher.dispatch(record, client, Origin(client, LOCAL, udp), rpcbind_only)
    assert parts is not None
    u = Unpacker(b"".join(parts))
    u.uint32(), u.uint32()
    assert u.uint32() == 0, "denied"
    u.uint32(), u.opaque()
    return u.uint32(), u


def getport(rig: Rig, prog: int, vers: int, protocol: int) -> int:
    p = Packer()
    for value in (prog, vers, protocol, 0):
        p.uint32(value)
    stat, u = call(rig, PORTMAP_PROGRAM, 2, PortmapProc.GETPORT, p.getvalue())
    assert stat == AcceptStat.SUCCESS
    return u.uint32()


def rpcb(prog: int, vers: int, netid: str) -> bytes:
    p = Packer()
    p.uint32(prog)
    p.uint32(vers)
    for text in (netid, "", ""):
        p.string(text)
    return p.getvalue()


def test_portmap_getport_knows_each_program_on_its_transports(rig: Rig) -> None:
    assert getport(rig, NFS_PROGRAM, 3, IPPROTO_TCP) == PORT
    assert getport(rig, NFS_PROGRAM, 4, IPPROTO_TCP) == PORT
    assert getport(rig, NFS_PROGRAM, 3, IPPROTO_UDP) == 0  # NFS is TCP only
    assert getport(rig, MOUNT_PROGRAM, 1, IPPROTO_UDP) == PORT
    assert getport(rig, NLM_PROGRAM, 4, IPPROTO_UDP) == PORT
    assert getport(rig, NLM_PROGRAM, 1, IPPROTO_TCP) == 0  # NLM v1/v3 are NFSv2's
    assert getport(rig, NSM_PROGRAM, 1, IPPROTO_UDP) == PORT
    assert getport(rig, PORTMAP_PROGRAM, 2, IPPROTO_TCP) == 111


def test_rpcbind_v3_and_v4_answer_universal_addresses(rig: Rig) -> None:
    stat, u = call(rig, PORTMAP_PROGRAM, 3, RpcbProc.GETADDR, rpcb(NFS_PROGRAM, 3, "tcp"))
    assert (stat, u.string()) == (AcceptStat.SUCCESS, "127.0.0.11.8.1")
    _, u = call(rig, PORTMAP_PROGRAM, 3, RpcbProc.GETADDR, rpcb(NFS_PROGRAM, 3, "udp"))
    assert u.string() == ""  # not registered
    # v4 GETADDR: another version's address when that one is not registered; GETVERSADDR not
    _, u = call(rig, PORTMAP_PROGRAM, 4, RpcbProc.GETADDR, rpcb(NLM_PROGRAM, 1, "tcp"))
    assert u.string() == "127.0.0.11.8.1"
    _, u = call(rig, PORTMAP_PROGRAM, 4, RpcbProc.GETVERSADDR, rpcb(NLM_PROGRAM, 1, "tcp"))
    assert u.string() == ""
    # an empty netid means the transport the query came on
    _, u = call(rig, PORTMAP_PROGRAM, 4, RpcbProc.GETADDR, rpcb(NSM_PROGRAM, 1, ""), udp=True)
    assert u.string() == "127.0.0.11.8.1"


def test_registration_is_refused(rig: Rig) -> None:
    """Nothing registers with this rpcbind: its programs are fixed."""
    p = Packer()
    for value in (400000, 1, IPPROTO_TCP, 999):
        p.uint32(value)
    stat, u = call(rig, PORTMAP_PROGRAM, 2, PortmapProc.SET, p.getvalue())
    assert (stat, u.bool()) == (AcceptStat.SUCCESS, False)
    assert getport(rig, 400000, 1, IPPROTO_TCP) == 0


def test_each_port_and_transport_serves_what_rpcbind_says(rig: Rig) -> None:
    assert call(rig, NFS_PROGRAM, 3, 0, udp=True)[0] == AcceptStat.PROG_UNAVAIL
    assert call(rig, NFS_PROGRAM, 3, 0, rpcbind_only=True)[0] == AcceptStat.PROG_UNAVAIL
    assert call(rig, NLM_PROGRAM, 4, 0, rpcbind_only=True)[0] == AcceptStat.PROG_UNAVAIL
    assert call(rig, PORTMAP_PROGRAM, 4, 0, rpcbind_only=True)[0] == AcceptStat.SUCCESS
    assert call(rig, NSM_PROGRAM, 1, NsmProc.NULL, udp=True)[0] == AcceptStat.SUCCESS
    assert call(rig, NLM_PROGRAM, 4, 99)[0] == AcceptStat.PROC_UNAVAIL
    stat, u = call(rig, NLM_PROGRAM, 1, 0)
    assert (stat, u.uint32(), u.uint32()) == (AcceptStat.PROG_MISMATCH, 4, 4)
    assert call(rig, NLM_PROGRAM, 4, NlmProc.TEST, b"\x00")[0] == AcceptStat.GARBAGE_ARGS


def test_windows_null_probes_of_nfs_v2_and_v3(rig: Rig) -> None:
    """Windows' client probes NULL on NFS v3 and v2: v3 answers, v2 says which versions are."""
    assert call(rig, NFS_PROGRAM, 3, 0)[0] == AcceptStat.SUCCESS
    stat, u = call(rig, NFS_PROGRAM, 2, 0)
    assert (stat, u.uint32(), u.uint32()) == (AcceptStat.PROG_MISMATCH, 3, 4)


def test_mount_v1_lists_exports_but_hands_out_no_v2_handles(rig: Rig) -> None:
    stat, u = call(rig, MOUNT_PROGRAM, 1, MountProc.EXPORT)
    assert (stat, u.bool(), u.string()) == (AcceptStat.SUCCESS, True, "/data")
    p = Packer()
    p.string("/data")
    stat, u = call(rig, MOUNT_PROGRAM, 1, MountProc.MNT, p.getvalue())
    assert (stat, u.uint32(), u.remaining()) == (AcceptStat.SUCCESS, MountStat.ACCES, 0)
    stat, u = call(rig, MOUNT_PROGRAM, 2, MountProc.NULL)
    assert (stat, u.uint32(), u.uint32()) == (AcceptStat.PROG_MISMATCH, 1, 3)


def test_windows_anonymous_uid_gid_minus_2_act_as_the_anonymous_user(tmp_path: Path) -> None:
    """`mount -o anon` without AnonymousUid/AnonymousGid sends uid and gid -2 (4294967294)."""
    rig = make_rig(tmp_path / "win", anon_uid=1500, anon_gid=1600)
    os.chmod(rig.root, 0o777)
    fh = rig.create(rig.mount(), "from-windows", cred=user(0xFFFFFFFE, 0xFFFFFFFE))
    attrs = rig.getattr(fh)
    assert (attrs.uid, attrs.gid) == (1500, 1600)
    fh = rig.create(rig.mount(), "mapped-uid", cred=user(1234, 0xFFFFFFFE))
    assert (rig.getattr(fh).uid, rig.getattr(fh).gid) == (1234, 1600)


# -- NLM and NSM on the wire -------------------------------------------------------------------


def nlm(rig: Rig, proc: NlmProc, args: bytes, client: str = "10.0.0.5", test: bool = False) -> Res:
    stat, u = call(rig, NLM_PROGRAM, 4, proc, args, client=client)
    assert stat == AcceptStat.SUCCESS
    return Res.decode(u, test=test)


def test_nlm_locks_conflict_across_hosts_and_go_when_a_host_restarts(rig: Rig) -> None:
    fh = rig.create(rig.mount(), "locked")
    mine = NlmLock("alpha", fh, b"oh-a", 11, 0, 100)
    theirs = NlmLock("beta", fh, b"oh-b", 22, 50, 10)
    lock = LockArgs(b"c1", False, True, mine, False, 1).encode()
    assert nlm(rig, NlmProc.LOCK, lock).stat is NlmStat.GRANTED
    res = nlm(rig, NlmProc.TEST, TestArgs(b"t", True, theirs).encode(), "10.0.0.6", test=True)
    assert res.stat is NlmStat.DENIED and res.holder is not None
    assert (res.holder.svid, res.holder.offset, res.holder.length) == (11, 0, 100)
    other = LockArgs(b"c2", False, True, theirs, False, 1).encode()
    assert nlm(rig, NlmProc.LOCK, other, "10.0.0.6").stat is NlmStat.DENIED
    # alpha's status monitor says it restarted: its lock is gone
    stat, _ = call(rig, NSM_PROGRAM, 1, NsmProc.NOTIFY, Notify("alpha", 3).encode(), udp=True)
    assert stat == AcceptStat.SUCCESS
    assert nlm(rig, NlmProc.LOCK, other, "10.0.0.6").stat is NlmStat.GRANTED
    # beta says so through NLM FREE_ALL (no reply body)
    assert call(rig, NLM_PROGRAM, 4, NlmProc.FREE_ALL, Notify("beta", 5).encode())[0] == 0
    assert nlm(rig, NlmProc.LOCK, lock).stat is NlmStat.GRANTED
    assert nlm(rig, NlmProc.UNLOCK, UnlockArgs(b"u", mine).encode()).stat is NlmStat.GRANTED


def test_a_client_the_export_refuses_takes_no_locks(tmp_path: Path) -> None:
    rig = make_rig(tmp_path / "only", networks=[ipaddress.ip_network("10.1.0.0/16")])
    fh = rig.export.handle_for(rig.export.vfs.stat(""), "")
    args = TestArgs(b"t", True, NlmLock("alpha", fh, b"", 1, 0, 0)).encode()
    record = encode_call(8, NLM_PROGRAM, 4, NlmProc.TEST, args, ROOT)
    for client, accepted in (("10.0.0.5", False), ("10.1.2.3", True)):
        parts = rig.dispatcher.dispatch(record, client, Origin(client, LOCAL))
        assert parts is not None
        u = Unpacker(b"".join(parts))
        u.uint32(), u.uint32()
        if accepted:
            assert u.uint32() == 0  # MSG_ACCEPTED
        else:  # MSG_DENIED, AUTH_ERROR, AUTH_TOOWEAK
            assert (u.uint32(), u.uint32(), u.uint32()) == (1, 1, 5)


def test_nlm_with_a_handle_of_nothing_is_stale_fh(rig: Rig) -> None:
    fh = rig.create(rig.mount(), "gone")
    os.unlink(rig.root / "gone")
    for handle in (fh, b"not a handle"):
        args = TestArgs(b"t", True, NlmLock("alpha", handle, b"", 1, 0, 0)).encode()
        assert nlm(rig, NlmProc.TEST, args, test=True).stat is NlmStat.STALE_FH
