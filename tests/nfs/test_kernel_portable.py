"""The Linux kernel's NFS client against the portable backend (`export.backend: path`),
against an export root on a case-insensitive filesystem (NTFS, lowntfs-3g ignore_case) and
against one on exFAT (exfat-fuse: file ids from filesim's table, `export.fileids: auto`):
one guest run for all three (a guest costs seconds)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.support.exfat import exfat_volume
from tests.support.kclient import checks, kclient_run
from tests.support.ntfs import ntfs_ignore_case
from tests.support.topology import by_name, detached

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.integration]

SCRIPT = r"""
set -u
ck() { if eval "$2" >/dev/null 2>&1; then echo "CHECK $1 ok"; else echo "CHECK $1 FAIL"; fi; }
OPTS="vers=3,proto=tcp,mountproto=tcp,nolock,retry=0"
echo "hello path backend" > greeting.txt
ck write_read '[ "$(cat greeting.txt)" = "hello path backend" ]'
mkdir -p moved && mv greeting.txt moved/renamed.txt
ck rename '[ -f moved/renamed.txt ] && [ ! -e greeting.txt ]'
rm moved/renamed.txt
ck remove '[ ! -e moved/renamed.txt ]'
dd if=/dev/urandom of=big.bin bs=1M count=32 2>/dev/null
sync
echo "CHECK big_md5 $(md5sum big.bin | cut -d' ' -f1)"
mkdir -p deep/a/b/c/d
ck mkdir_p '[ -d deep/a/b/c/d ]'
ln -s moved link && ck symlink '[ "$(readlink link)" = moved ]'
mkfifo pipe && ck fifo '[ -p pipe ]'
chmod 600 big.bin && ck chmod '[ "$(stat -c %a big.bin)" = 600 ]'
touch -d '2001-02-03 04:05:06' deep/a && ck utime '[ "$(stat -c %Y deep/a)" = 981173106 ]'
# the export on NTFS: the host put Report.txt there, which NTFS lists as report.txt
mkdir -p /ci && mount.nfs "$KCLIENT_SERVER_IP:/data" /ci -o "$OPTS,port=$CI_PORT,mountport=$CI_PORT"
ck ci_listed '[ "$(ls /ci)" = report.txt ]'
ck ci_lookup_variant '! cat /ci/REPORT.TXT'
ck ci_create_variant '! sh -c "echo overwritten > /ci/REPORT.TXT"'
ck ci_kept '[ "$(cat /ci/report.txt)" = "quarterly figures" ]'
mv /ci/report.txt /ci/REPORT.TXT
ck ci_case_rename '[ "$(cat /ci/report.txt)" = "quarterly figures" ]'
# the export on exFAT: file ids are filesim's; a rename keeps one, names never share one
mkdir -p /ex && mount.nfs "$KCLIENT_SERVER_IP:/data" /ex -o "$OPTS,port=$EX_PORT,mountport=$EX_PORT"
mkdir /ex/dir && echo one > /ex/dir/one && echo two > /ex/two
before=$(stat -c %i /ex/dir/one)
mv /ex/dir/one /ex/moved
ck ex_rename_keeps_id '[ "$(stat -c %i /ex/moved)" = "$before" ] && [ "$(cat /ex/moved)" = one ]'
ck ex_ids_distinct '[ "$(ls -i /ex | awk "{print \$1}" | sort -u | wc -l)" = 3 ]'
ck ex_removed_gone 'rm /ex/two && [ ! -e /ex/two ] && [ "$(ls /ex | wc -l)" = 2 ]'
"""


def test_kernel_client_on_the_path_backend_and_a_case_insensitive_root(tmp_path: Path) -> None:
    with ntfs_ignore_case(tmp_path) as ntfs, exfat_volume(tmp_path) as exfat:
        ex_folder = exfat.mountpoint / "ex"
        ex_folder.mkdir()
        ci_folder = ntfs.mountpoint / "ci"
        ci_folder.mkdir()
        (ci_folder / "Report.txt").write_text("quarterly figures")
        config = tmp_path / "topology.yaml"
        config.write_text(
            "servers:\n"
            "  - {name: nas-input-1, role: input, fsid: 1, export: {backend: path}}\n"
            f"  - {{name: nas-ci, role: input, fsid: 2, storage: direct, folder: {ci_folder}}}\n"
            f"  - {{name: nas-ex, role: input, fsid: 3, storage: direct, folder: {ex_folder}}}\n"
        )
        with detached(tmp_path / "root", "--config", str(config)) as doc:
            servers = by_name(doc)
            inp, ci, ex = servers["nas-input-1"], servers["nas-ci"], servers["nas-ex"]
            ports = f"CI_PORT={ci['port']}\nEX_PORT={ex['port']}\n"
            proc = kclient_run(int(inp["port"]), ports + SCRIPT)
        result = checks(proc.stdout)
        assert proc.returncode == 0, proc.stderr[-3000:]
        failed = {k: v for k, v in result.items() if v.startswith("FAIL")}
        assert not failed, (failed, proc.stdout, proc.stderr[-2000:])
        for name in ("write_read", "rename", "remove", "mkdir_p", "symlink", "fifo", "chmod",
                     "utime", "ci_listed", "ci_lookup_variant", "ci_create_variant", "ci_kept",
                     "ci_case_rename", "ex_rename_keeps_id", "ex_ids_distinct",
                     "ex_removed_gone"):  # fmt: skip
            assert result.get(name) == "ok", name
        store = Path(str(inp["store"]))
        assert result["big_md5"] == hashlib.md5((store / "big.bin").read_bytes()).hexdigest()
        assert ntfs.names_on_disk("ci") == ["REPORT.TXT"]
        assert os.path.getsize(ci_folder / "report.txt") == len("quarterly figures")
