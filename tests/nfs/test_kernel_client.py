"""The Linux kernel's own NFS client against `filesim up` (QEMU guest via kclient)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from filesim.waiting import WaitTimeout, poll_until
from tests.support.kclient import checks, kclient_run
from tests.support.topology import by_name, detached, restart_on_the_same_ports

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.integration]

# One guest run, many checks: booting the kernel under emulation costs seconds.
ROLES_SCRIPT = r"""
set -u
ck() { if eval "$2" >/dev/null 2>&1; then echo "CHECK $1 ok"; else echo "CHECK $1 FAIL"; fi; }
OPTS="vers=3,proto=tcp,mountproto=tcp,nolock,retry=0"
# create / write / read / rename / remove on the input server (the main mount)
echo "hello kernel" > greeting.txt
ck write_read '[ "$(cat greeting.txt)" = "hello kernel" ]'
mkdir -p moved && mv greeting.txt moved/renamed.txt
ck rename '[ -f moved/renamed.txt ] && [ ! -e greeting.txt ]'
rm moved/renamed.txt
ck remove '[ ! -e moved/renamed.txt ]'
# a 64 MiB file, byte for byte (the host compares the digest too)
dd if=/dev/urandom of=big.bin bs=1M count=64 2>/dev/null
sync
echo "CHECK big_md5 $(md5sum big.bin | cut -d' ' -f1)"
echo "CHECK host_md5 $(md5sum from-host.bin | cut -d' ' -f1)"
mkdir -p deep/a/b/c/d/e/f/g/h
ck mkdir_p '[ -d deep/a/b/c/d/e/f/g/h ]'
echo "CHECK listed $(ls many | wc -l)"
ln -s moved link && ck symlink '[ "$(readlink link)" = moved ]'
mkfifo pipe && ck fifo '[ -p pipe ]'
# a subdirectory mount of the same export
mkdir -p /sub && mount.nfs "$KCLIENT_SERVER_IP:/data/sub-1" /sub -o "$OPTS,port=$KCLIENT_PORT,mountport=$KCLIENT_PORT"
ck subdir_mount '[ "$(cat /sub/inside.txt)" = "in sub-1" ]'
# the output server: write there too
mkdir -p /out && mount.nfs "$KCLIENT_SERVER_IP:/data" /out -o "$OPTS,port=$OUT_PORT,mountport=$OUT_PORT"
echo result > /out/result.txt
ck output_write '[ "$(cat /out/result.txt)" = result ]'
# the backup server: read-only
mkdir -p /bak && mount.nfs "$KCLIENT_SERVER_IP:/data" /bak -o "$OPTS,port=$BAK_PORT,mountport=$BAK_PORT"
err=$(sh -c 'echo x > /bak/nope.txt' 2>&1)
case "$err" in *"Read-only file system"*) echo "CHECK backup_erofs ok";; *) echo "CHECK backup_erofs FAIL $err";; esac
ck backup_read '[ "$(cat /bak/backed-up.txt)" = "backup copy" ]'
"""


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _wait_for(path: Path, timeout: float = 30) -> None:
    poll_until(path.exists, timeout, what=f"{path} to appear")


def _store(server: dict[str, object]) -> Path:
    return Path(str(server["store"]))


def test_kernel_client_on_every_role(tmp_path: Path) -> None:
    with detached(tmp_path) as doc:
        servers = by_name(doc)
        inp, out, bak = servers["nas-input-1"], servers["nas-output-1"], servers["nas-backup"]
        store = _store(inp)
        (store / "from-host.bin").write_bytes(os.urandom(5 << 20))
        (store / "many").mkdir()
        for i in range(2000):
            (store / "many" / f"entry-{i:04d}").touch()
        (store / "sub-1").mkdir()
        (store / "sub-1" / "inside.txt").write_text("in sub-1")
        # the backup is fed from its folder (folder -> export): wait for the copy to land
        (Path(str(bak["folder"])) / "backed-up.txt").write_text("backup copy")
        _wait_for(_store(bak) / "backed-up.txt")
        script = f"OUT_PORT={out['port']}\nBAK_PORT={bak['port']}\n" + ROLES_SCRIPT
        proc = kclient_run(int(inp["port"]), script)
        result = checks(proc.stdout)
        assert proc.returncode == 0, proc.stderr[-3000:]
        failed = {k: v for k, v in result.items() if v.startswith("FAIL")}
        assert not failed, (failed, proc.stdout, proc.stderr[-2000:])
        for name in ("write_read", "rename", "remove", "mkdir_p", "symlink", "fifo", "subdir_mount",
                     "output_write", "backup_erofs", "backup_read"):  # fmt: skip
            assert result.get(name) == "ok", name
        assert result["big_md5"] == _md5(store / "big.bin")
        assert result["host_md5"] == _md5(store / "from-host.bin")
        assert result["listed"] == "2000"
        assert (_store(out) / "result.txt").read_text() == "result\n"
        assert not (_store(bak) / "nope.txt").exists()


RESTART_SCRIPT = r"""
set -u
echo "before restart" > kept.txt
mkdir -p dir && echo nested > dir/nested.txt
sync
touch ready-for-restart
i=0; while [ ! -e restarted ] && [ $i -lt 120 ]; do sleep 1; i=$((i+1)); ls > /dev/null; done
echo "CHECK waited $i"
echo "CHECK old_mount_read $(cat kept.txt)"
echo "CHECK old_mount_nested $(cat dir/nested.txt)"
cd /
umount /mnt && mount.nfs "$KCLIENT_SRC" /mnt -o "$KCLIENT_MOUNT_OPTS" && cd /mnt
echo "CHECK remount_read $(cat /mnt/kept.txt)"
"""


def test_handles_survive_a_server_restart(tmp_path: Path) -> None:
    with detached(tmp_path) as doc:
        server = by_name(doc)["nas-input-1"]
        store = _store(server)
        restarted = threading.Event()

        def restart_when_ready() -> None:
            try:
                poll_until((store / "ready-for-restart").exists, 200, interval=0.2)
            except WaitTimeout:
                return
            restart_on_the_same_ports(tmp_path, doc)
            (store / "restarted").touch()
            restarted.set()

        helper = threading.Thread(target=restart_when_ready, daemon=True)
        helper.start()
        proc = kclient_run(int(server["port"]), RESTART_SCRIPT, opts="actimeo=1")
        helper.join(30)
        result = checks(proc.stdout)
        assert restarted.is_set(), (proc.stdout, proc.stderr[-2000:])
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert result["old_mount_read"] == "before restart"
        assert result["old_mount_nested"] == "nested"
        assert result["remount_read"] == "before restart"


SYNC_SCRIPT = r"""
set -u
# folder -> NFS: the host drops a file in the input folder; poll the listing for it
i=0; while ! ls | grep -q '^from-tester.txt$' && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
echo "CHECK polls $i"
echo "CHECK tester_file $(cat from-tester.txt 2>/dev/null)"
# NFS -> folder: write a file through the kernel client on the output server
mkdir -p /out && mount.nfs "$KCLIENT_SERVER_IP:/data" /out -o "vers=3,proto=tcp,mountproto=tcp,nolock,port=$OUT_PORT,mountport=$OUT_PORT"
dd if=/dev/urandom of=/out/report.bin bs=1M count=8 2>/dev/null
echo "CHECK report_md5 $(md5sum /out/report.bin | cut -d' ' -f1)"
"""


def test_files_cross_between_folders_and_the_kernel_client(tmp_path: Path) -> None:
    with detached(tmp_path) as doc:
        servers = by_name(doc)
        inp, out = servers["nas-input-1"], servers["nas-output-2"]

        def drop() -> None:
            time.sleep(8)  # the guest is booted and polling by then (or soon after)
            (Path(str(inp["folder"])) / "from-tester.txt").write_text("dropped by the tester")

        threading.Thread(target=drop, daemon=True).start()
        proc = kclient_run(int(inp["port"]), f"OUT_PORT={out['port']}\n" + SYNC_SCRIPT,
                           opts="actimeo=0")  # fmt: skip
        result = checks(proc.stdout)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert result["tester_file"] == "dropped by the tester", proc.stdout
        report = Path(str(out["folder"])) / "report.bin"
        _wait_for(report)
        poll_until(lambda: _md5(report) == result["report_md5"], 30, interval=0.1,
                   what="the kernel client's file to arrive complete")  # fmt: skip
