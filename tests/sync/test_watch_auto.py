"""`watcher: auto`: a host share or network folder (9p, drvfs, CIFS, NFS, FUSE) delivers no
OS events for changes made on the other side, so it is polled; a local folder gets events.
The agent's status says which watcher runs."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from filesim.sync.watch import (
    EventWatcher,
    choose,
    make_watcher,
    polled_filesystem,
)
from filesim.topology.filesystems import filesystem_type
from filesim.waiting import poll_until

from .conftest import Rig, make_server, running, stop

# /proc/self/mountinfo of a minikube pod: its folder a 9p `minikube mount`, stacked mounts,
# an escaped space, a FUSE and an NFS mount.
MOUNTINFO = """\
22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/l
23 22 0:22 / /proc rw,nosuid - proc proc rw
30 22 0:40 / /simulator-data rw,relatime - 9p 192.168.1.10 rw,dfltuid=1000,dfltgid=1000
31 22 8:1 /var/lib/kubelet/x /var/lib/filesim rw,relatime - ext4 /dev/sda1 rw
32 22 0:41 / /mnt/my\\040share rw - cifs //host/share rw
33 22 0:42 / /mnt/sshfs rw - fuse.sshfs me@host: rw
34 22 0:43 / /mnt/nfs rw - nfs4 10.0.0.1:/data rw
35 34 0:44 / /mnt/nfs rw - tmpfs tmpfs rw
"""


def test_the_filesystem_is_the_innermost_mount() -> None:
    assert filesystem_type(Path("/simulator-data/nas-input-1"), MOUNTINFO) == "9p"
    assert filesystem_type(Path("/simulator-data"), MOUNTINFO) == "9p"
    assert filesystem_type(Path("/simulator-database"), MOUNTINFO) == "overlay"
    assert filesystem_type(Path("/var/lib/filesim/exports"), MOUNTINFO) == "ext4"
    assert filesystem_type(Path("/mnt/my share/in"), MOUNTINFO) == "cifs"
    assert filesystem_type(Path("/mnt/nfs/x"), MOUNTINFO) == "tmpfs"  # mounted over the NFS


def test_host_shares_and_network_folders_are_polled() -> None:
    polled = {
        p: polled_filesystem(Path(p), MOUNTINFO)
        for p in ("/simulator-data/a", "/mnt/my share", "/mnt/sshfs/x", "/var/lib/filesim", "/")
    }
    assert polled == {
        "/simulator-data/a": "9p",
        "/mnt/my share": "cifs",
        "/mnt/sshfs/x": "fuse.sshfs",
        "/var/lib/filesim": None,
        "/": None,
    }


def test_a_local_folder_gets_os_events(tmp_path: Path) -> None:
    assert choose(tmp_path, "auto") == ("events", "local folder")
    assert choose(tmp_path, "polling") == ("polling", "watcher: polling")
    watcher = make_watcher(tmp_path, "auto", 1.0, lambda path, kind: None)
    try:
        assert isinstance(watcher, EventWatcher)
    finally:
        watcher.stop()


async def test_status_says_which_watcher_runs(rig: Rig) -> None:
    agent = rig.agent(make_server(settle_ms=0, watcher="polling", poll_interval_s=0.2))
    assert agent.status().watcher is None
    task = await running(agent)
    try:
        assert agent.status().watcher == "polling (watcher: polling)"
    finally:
        await stop(task)
    local = rig.agent(make_server(name="nas-local", settle_ms=0))
    task = await running(local)
    try:
        assert local.status().watcher == "events (local folder)"
    finally:
        await stop(task)


def test_os_events_report_every_change_and_no_read(tmp_path: Path) -> None:
    """The watcher asks the OS only for the events it uses (reads are not asked for: the
    initial sync reads every file); every kind of change must still arrive, each as the kind
    the schedule needs. The marker written last is the barrier: events arrive in order."""
    (tmp_path / "r.txt").write_text("read only")
    (tmp_path / "m.txt").write_text("mode")
    (tmp_path / "old.txt").write_text("moved")
    (tmp_path / "gone.txt").write_text("deleted")
    seen: list[tuple[str | None, str]] = []
    lock = threading.Lock()

    def on_change(path: str | None, kind: str) -> None:
        with lock:
            seen.append((path, kind))

    watcher = EventWatcher(tmp_path)
    watcher.start(on_change)
    try:
        for _ in range(20):
            assert (tmp_path / "r.txt").read_text() == "read only"
        (tmp_path / "new.txt").write_text("created")
        os.chmod(tmp_path / "m.txt", 0o600)
        os.rename(tmp_path / "old.txt", tmp_path / "new-name.txt")
        os.unlink(tmp_path / "gone.txt")
        (tmp_path / "d").mkdir()
        (tmp_path / "zz-marker").write_text("last")
        poll_until(lambda: ("zz-marker", "close") in seen, 10, what="the marker's close")
    finally:
        watcher.stop()
    with lock:
        got = set(seen)
    assert not [p for p, _ in got if p == "r.txt"], "a read was reported as a change"
    for expected in [
        ("new.txt", "write"), ("new.txt", "close"), ("m.txt", "attrib"), ("old.txt", ""),
        ("new-name.txt", ""), ("gone.txt", ""), ("d", ""),
    ]:  # fmt: skip
        assert expected in got, f"{expected} missing from {sorted(got, key=str)}"
