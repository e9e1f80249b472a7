"""The Linux kernel client (QEMU guest via kclient) on a server in a worker process: NFSv3 and
NFSv4.1 mounts of one worker at once, parallel writes, and the changes reaching the tester's
folder and the event log through the topology's process. One guest run for all of it."""

from __future__ import annotations

import hashlib
import os

import pytest

from filesim.testing import NasTopology
from tests.support.kclient import checks, kclient_run

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.integration]

SERVER = "nas-input-1"
WRITERS = 6
SIZE_MIB = 2

SCRIPT = rf"""
set -u
mkdir -p /v4
mount.nfs "$KCLIENT_SERVER_IP:/data" /v4 -o "vers=4.1,proto=tcp,port=$KCLIENT_PORT,retry=0" \
  && echo "CHECK v4_mount ok"
# {WRITERS} writers at once over v3, one file each: many calls in flight to one worker
for i in $(seq 1 {WRITERS}); do
  ( yes "line $i" | head -c $(({SIZE_MIB} << 20)) > /mnt/par-$i.txt ) &
done
wait
sync
echo "CHECK v3_written $(ls /mnt/par-*.txt | wc -l)"
echo "via v4" > /v4/from-v4.txt && sync
# each side reads what the other wrote (close-to-open: fresh opens see the data)
echo "CHECK v4_reads_v3 $(cat /v4/par-1.txt | md5sum | cut -d' ' -f1)"
echo "CHECK v3_reads_v4 $(cat /mnt/from-v4.txt)"
mv /mnt/par-{WRITERS}.txt /mnt/renamed.txt && echo "CHECK renamed ok"
"""


def _md5_of_lines(i: int) -> str:
    line = f"line {i}\n".encode()
    size = SIZE_MIB << 20
    data = (line * (size // len(line) + 1))[:size]
    return hashlib.md5(data).hexdigest()


@pytest.mark.nas_topology(servers=[SERVER], processes="per-server")
def test_kernel_v3_and_v41_on_one_worker_sync_to_the_folder(nas_topology: NasTopology) -> None:
    topo = nas_topology
    assert topo.status().server(SERVER).pid not in (None, os.getpid())  # a worker serves it
    proc = kclient_run(topo.server(SERVER).port, SCRIPT, timeout=180)
    found = checks(proc.stdout)
    detail = f"{proc.stdout}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, detail
    assert found.get("v4_mount") == "ok", detail
    assert found.get("v3_written") == str(WRITERS), detail
    assert found.get("v4_reads_v3") == _md5_of_lines(1), detail
    assert found.get("v3_reads_v4") == "via v4", detail
    assert found.get("renamed") == "ok", detail
    # Through the worker's change relay, the agent and the topology's event log:
    topo.wait_visible(SERVER, "renamed.txt", side="folder", timeout=30)
    topo.flush()
    folder = topo.folder(SERVER)
    for i in range(1, WRITERS):
        got = hashlib.md5((folder / f"par-{i}.txt").read_bytes()).hexdigest()
        assert got == _md5_of_lines(i), f"par-{i}.txt in the folder"
    assert (folder / "from-v4.txt").read_text() == "via v4\n"
    assert not (folder / f"par-{WRITERS}.txt").exists()  # renamed, after flush()
    assert topo.wait_event("nfs.rename", server=SERVER, path=f"par-{WRITERS}.txt").detail == {
        "dest": "renamed.txt"
    }
