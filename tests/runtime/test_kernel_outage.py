"""An outage fault seen by the Linux kernel client (QEMU guest via kclient): calls and a new
mount time out while it lasts, and the mount recovers once the fault is cleared."""

from __future__ import annotations

import threading
import time

import pytest

from filesim.testing import NasTopology
from tests.support.kclient import checks, kclient_path, kclient_run

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.integration]

SERVER = "nas-output-1"

# One guest run: boot costs seconds. The guest says it is ready with a MKDIR (answered only once
# everything before it is flushed); the host then starts the outage and clears it OUTAGE_S
# later, after the guest's timed write and mount (both 4 s, started 2 s in) have given up.
OUTAGE_S = 14
SCRIPT = r"""
set -u
OPTS="vers=3,proto=tcp,mountproto=tcp,nolock,retry=0,port=$KCLIENT_PORT,mountport=$KCLIENT_PORT"
echo go > outage-start
sync
mkdir ready-for-outage
sleep 2
mkdir -p /m2
( if timeout -s KILL 4 sh -c 'echo x > during-outage.txt'; then
    echo "CHECK write_timed_out FAIL"; else echo "CHECK write_timed_out ok"; fi ) &
( if timeout -s KILL 4 mount.nfs "$KCLIENT_SERVER_IP:/data" /m2 -o "$OPTS"; then
    echo "CHECK mount_timed_out FAIL"; else echo "CHECK mount_timed_out ok"; fi ) &
wait
ok=FAIL
for i in $(seq 1 20); do
  if timeout -s KILL 6 sh -c "echo back > after-$i.txt"; then ok=ok; break; fi
done
echo "CHECK recovered $ok"
if timeout -s KILL 20 mount.nfs "$KCLIENT_SERVER_IP:/data" /m2 -o "$OPTS"; then
  echo "CHECK remount ok"; ls /m2 | grep -q outage-start && echo "CHECK remount_lists ok"
  umount /m2
else echo "CHECK remount FAIL"; fi
"""


@pytest.mark.nas_topology(servers=[SERVER])
def test_outage_times_out_kernel_calls_and_mounts_then_recovers(nas_topology: NasTopology) -> None:
    kclient_path()
    topo = nas_topology
    nfs = topo.runner.server(SERVER).nfs
    log: list[str] = []

    def choreography() -> None:
        topo.wait_event("nfs.mkdir", server=SERVER, path="ready-for-outage", timeout=180)
        topo.add_fault(SERVER, "outage")
        log.append("outage")
        time.sleep(OUTAGE_S)
        log.append(f"swallowed {nfs.swallowed}")
        topo.clear_faults(SERVER)
        log.append("cleared")

    host = threading.Thread(target=choreography, daemon=True)
    host.start()
    result = kclient_run(topo.server(SERVER).port, SCRIPT, timeout=240)
    host.join(60)
    found = checks(result.stdout)
    detail = f"{log}\n{result.stdout}\n{result.stderr[-3000:]}"
    assert log[0] == "outage" and log[-1] == "cleared", detail
    assert nfs.swallowed >= 2, detail  # the write and the mount reached the hung server
    assert found.get("write_timed_out") == "ok", detail
    assert found.get("mount_timed_out") == "ok", detail
    assert found.get("recovered") == "ok", detail
    assert found.get("remount") == "ok" and found.get("remount_lists") == "ok", detail
    assert (topo.server(SERVER).store / "outage-start").exists()
