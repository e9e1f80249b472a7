"""The fault layer (`FaultyVfs`, `ServerFaults`) through the dispatcher, without a socket."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from filesim.oncrpc.message import encode_call
from filesim.oncrpc.programs import MOUNT_PROGRAM, NFS_PROGRAM, NfsProc, NfsStat
from filesim.topology.faults import FaultSpec
from tests.support.rig import Rig, make_rig, sattr


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    r = make_rig(tmp_path / "export")
    (r.root / "a.csv").write_text("a,b\n")
    (r.root / "a.txt").write_text("text\n")
    return r


@pytest.fixture
def root(rig: Rig) -> bytes:
    return rig.mount("/data")


def _read(rig: Rig, fh: bytes) -> NfsStat:
    p = rig.fh(fh)
    p.uint64(0)
    p.uint32(100)
    reply = rig.nfs(NfsProc.READ, p)
    assert reply.status is not None
    return reply.status


def _mkdir(rig: Rig, root: bytes, name: str) -> NfsStat:
    p = rig.dirop(root, name)
    sattr(p)
    reply = rig.nfs(NfsProc.MKDIR, p)
    assert reply.status is not None
    return reply.status


def test_an_error_for_procedures_fails_those_calls_only(rig: Rig, root: bytes) -> None:
    rig.faults.apply([FaultSpec(kind="error", error="NOSPC", procedures=["MKDIR"])])
    assert _mkdir(rig, root, "d") == NfsStat.NOSPC
    assert _read(rig, rig.lookup(root, "a.txt")) == NfsStat.OK
    rig.faults.apply([])
    assert _mkdir(rig, root, "d") == NfsStat.OK
    assert [c[0] for c in rig.changes] == ["mkdir"]
    vfs = rig.faults.vfs  # cleared: the storage's own operations again, at no cost
    assert vfs.mkdir == vfs.inner.mkdir and vfs.call_scope == vfs.inner.call_scope


def test_an_error_for_paths_fails_calls_that_touch_them(rig: Rig, root: bytes) -> None:
    csv, txt = rig.lookup(root, "a.csv"), rig.lookup(root, "a.txt")
    rig.faults.apply([FaultSpec(kind="error", error="EIO", procedures=["READ"], paths=["*.csv"])])
    assert _read(rig, csv) == NfsStat.IO
    assert _read(rig, txt) == NfsStat.OK
    assert rig.getattr(csv).size == 4  # GETATTR is not READ
    rig.faults.apply([])
    assert _read(rig, csv) == NfsStat.OK


def test_a_probability_is_per_call(rig: Rig, root: bytes) -> None:
    rig.faults.apply([FaultSpec(kind="error", error="IO", paths=["*"], probability=0.5)])
    outcomes = {_mkdir(rig, root, f"d{i}") for i in range(60)}  # both: all but certain
    assert outcomes == {NfsStat.OK, NfsStat.IO}


def test_the_read_only_flip_refuses_changes_and_withholds_modify(rig: Rig, root: bytes) -> None:
    rig.faults.apply([FaultSpec(kind="readonly")])
    assert rig.export.readonly and not rig.export.config.readonly
    assert _mkdir(rig, root, "d") == NfsStat.ROFS
    p = rig.fh(root)
    p.uint32(0x3F)
    u = rig.ok(NfsProc.ACCESS, p)
    assert u.bool()
    u.fixed_opaque(84)  # fattr3
    assert u.uint32() & 0x04 == 0  # no MODIFY
    rig.faults.apply([])
    assert not rig.export.readonly and _mkdir(rig, root, "d") == NfsStat.OK


def test_latency_and_outages_are_for_the_server_to_hold(rig: Rig) -> None:
    faults = rig.faults
    assert not faults.holding and not faults.refusing
    lookup = encode_call(1, NFS_PROGRAM, 3, NfsProc.LOOKUP)
    mnt = encode_call(2, MOUNT_PROGRAM, 3, 1)
    assert not faults.apply([FaultSpec(kind="latency", delay_ms=200, procedures=["LOOKUP"])])
    assert faults.holding and faults.hold(lookup) == pytest.approx(0.2)
    assert faults.hold(mnt) == 0.0 and faults.hold(encode_call(3, NFS_PROGRAM, 3, 1)) == 0.0
    assert faults.apply([FaultSpec(kind="outage", mode="refuse")])  # drop what is open
    assert faults.refusing and not faults.holding
    assert not faults.apply([FaultSpec(kind="outage", mode="blackhole")])
    assert faults.holding and math.isinf(faults.hold(mnt))
    assert faults.apply([])  # the swallowed calls are lost: clients must reconnect
    assert not (faults.holding or faults.refusing or rig.faults.vfs.active)
