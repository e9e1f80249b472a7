"""What survives a restart: the boot epoch, the clients that may reclaim, the grace period."""

from __future__ import annotations

from pathlib import Path

from filesim.nfs.v4.recovery import Recovery


def test_grace_only_for_clients_known_before_the_restart(tmp_path: Path) -> None:
    state = tmp_path / "nfs4.json"
    first = Recovery(state, grace_s=15)
    assert not first.in_grace()  # nobody to wait for
    first.confirmed(b"4.1:linux-client")
    second = Recovery(state, grace_s=15)
    assert second.boot > first.boot  # stateids and client ids of the first run are stale
    assert second.in_grace()
    assert second.may_reclaim(b"4.1:linux-client") and not second.may_reclaim(b"4.1:other")
    second.reclaimed(b"4.1:linux-client")
    assert not second.in_grace()  # every known client said RECLAIM_COMPLETE: grace ends early


def test_a_forgotten_client_is_not_waited_for(tmp_path: Path) -> None:
    state = tmp_path / "nfs4.json"
    first = Recovery(state, grace_s=15)
    first.confirmed(b"4.0:gone")
    first.forget(b"4.0:gone")
    assert not Recovery(state, grace_s=15).in_grace()


def test_zero_grace_and_an_unreadable_file(tmp_path: Path) -> None:
    state = tmp_path / "nfs4.json"
    Recovery(state, grace_s=15).confirmed(b"4.1:c")
    assert not Recovery(state, grace_s=0).in_grace()
    state.write_text("not json")
    assert not Recovery(state, grace_s=15).in_grace()
