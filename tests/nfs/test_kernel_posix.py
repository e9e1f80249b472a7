"""POSIX permission rules (nfs/policy.py) through the Linux kernel client, in one guest run.

pjdfstest itself is not obtainable in CI (its source is only on GitHub), so this is the CI
proof: tests/nfs/posix_checks.sh exercises each rule as root and as ordinary users in the guest
(`su`), on an export of `filesim up`. The whole suite runs from bench/pjdfstest.sh.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.kclient import checks, kclient_run
from tests.support.topology import by_name, detached

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.integration]

SCRIPT = Path(__file__).with_name("posix_checks.sh")
TOPOLOGY = """\
servers:
  - name: nas-posix
    role: output
    fsid: 1
    storage: direct
"""
RULES = [
    "chown_by_non_owner", "chown_restate_by_non_owner", "chown_by_owner_to_other",
    "chgrp_by_owner_own_group", "chown_by_root", "setuid_cleared_on_write",
    "setuid_cleared_on_chown", "setuid_kept_on_root_write", "sticky_remove_by_other",
    "sticky_rename_by_other", "sticky_remove_by_owner", "sticky_entry_gone", "mknod_block",
    "mknod_char", "mknod_by_user", "mkfifo", "utimes_given_by_other", "utimes_now_by_writer",
    "utimes_now_without_write", "utimes_given_by_root", "setgid_dir_group",
    "setgid_dir_inherited", "rename_dir_needs_write", "done",
]  # fmt: skip


def test_posix_rules_through_the_kernel_client(tmp_path: Path) -> None:
    config = tmp_path / "posix.yaml"
    config.write_text(TOPOLOGY)
    with detached(tmp_path / "data", "--config", str(config)) as doc:
        server = by_name(doc)["nas-posix"]
        proc = kclient_run(int(server["port"]), SCRIPT.read_text(), opts="noac", timeout=180)
    result = checks(proc.stdout)
    assert proc.returncode == 0, (proc.stdout, proc.stderr[-3000:])
    failed = {k: v for k, v in result.items() if v != "ok"}
    assert not failed, (failed, proc.stderr[-2000:])
    assert sorted(result) == sorted(RULES), proc.stdout
