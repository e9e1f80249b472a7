"""POSIX permission rules (nfs/policy.py) through the Linux kernel client, in one guest run.

pjdfstest itself is not obtainable in CI (its source is only on GitHub), so this is the CI
proof: tests/nfs/posix_checks.sh exercises each rule as root and as ordinary users in the guest
(`su`), on an export of `filesim up`. The whole suite runs from bench/pjdfstest.sh.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import filesim
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
    "setgid_dir_inherited", "rename_dir_needs_write", "kept", "done",
]  # fmt: skip


def test_posix_rules_through_the_kernel_client(tmp_path: Path) -> None:
    """filesim running as root: owners, modes and devices are native."""
    config = tmp_path / "posix.yaml"
    config.write_text(TOPOLOGY)
    with detached(tmp_path / "data", "--config", str(config)) as doc:
        port = int(by_name(doc)["nas-posix"]["port"])
        _check_rules(kclient_run(port, SCRIPT.read_text(), opts="noac", timeout=180))
        kept = Path(by_name(doc)["nas-posix"]["store"]) / "kept"
        assert stat.S_ISCHR((kept / "dev").lstat().st_mode)  # native
        assert (kept / "owned").stat().st_uid == 1234


def test_posix_rules_with_an_unprivileged_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """filesim running as uid 65534: owners, special modes and devices emulated
    (nfs/ownership.py), the same rules hold for the same guest script."""
    work = Path(tempfile.mkdtemp(prefix="filesim-posix-"))
    try:
        # this source, where uid 65534 can read it (a checkout may sit in root's home)
        shutil.copytree(Path(filesim.__file__).parent, work / "src" / "filesim")
        monkeypatch.setenv("FILESIM_NOBODY_PATH", str(work / "src"))
        (work / "posix.yaml").write_text(TOPOLOGY)
        os.chown(work, NOBODY, NOBODY)
        os.chmod(work, 0o755)
        python = _user_python()
        root = work / "data"
        _as_nobody(python, "up", "--detach", "--root", str(root), "--config",
                   str(work / "posix.yaml"), "--base-port", "0", "--http-port", "0")  # fmt: skip
        try:
            doc = json.loads(_as_nobody(python, "status", "--json", "--root", str(root)))
            port = int(by_name(doc)["nas-posix"]["port"])
            _check_rules(kclient_run(port, SCRIPT.read_text(), opts="noac", timeout=180))
            kept = Path(by_name(doc)["nas-posix"]["store"]) / "kept"
            dev = (kept / "dev").lstat()
            assert stat.S_ISREG(dev.st_mode) and dev.st_size == 0  # a placeholder
            assert (kept / "owned").stat().st_uid == NOBODY  # the owner is emulated
        finally:
            _as_nobody(python, "down", "--root", str(root), check=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)


NOBODY = 65534


def _as_nobody(python: str, *args: str, check: bool = True) -> str:
    command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
               "--inh-caps=-all", python, "-m", "filesim", *args]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, env=_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"filesim {args[0]} as uid {NOBODY}: {proc.stderr}{proc.stdout}")
    return proc.stdout


def _user_python() -> str:
    """A python that uid 65534 can run, with filesim's dependencies (FILESIM_USER_PYTHON,
    else this one): a pyenv under /root (mode 0700) is out of its reach."""
    python = os.environ.get("FILESIM_USER_PYTHON", sys.executable)
    probe = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", python, "-c",
         "import filesim.cli"], capture_output=True, text=True, timeout=60, env=_env(),
    )  # fmt: skip
    if probe.returncode != 0:
        message = f"uid {NOBODY} cannot run {python} with filesim (set FILESIM_USER_PYTHON)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: {probe.stderr.strip()[-300:]}")
        pytest.skip(message)
    return python


def _env() -> dict[str, str]:
    path = os.environ["FILESIM_NOBODY_PATH"]
    return {**os.environ, "HOME": "/tmp", "COLUMNS": "200", "PYTHONPATH": path}


def _check_rules(proc: subprocess.CompletedProcess[str]) -> None:
    result = checks(proc.stdout)
    assert proc.returncode == 0, (proc.stdout, proc.stderr[-3000:])
    failed = {k: v for k, v in result.items() if v != "ok"}
    assert not failed, (failed, proc.stderr[-2000:])
    assert sorted(result) == sorted(RULES), proc.stdout
