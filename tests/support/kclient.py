"""Running scripts in a real Linux NFS client (../shared/tools/kernel-nfs-client/kclient)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def kclient_path() -> Path:
    """The kclient tool; a missing one skips kernel tests locally and fails them in CI."""
    candidates = [os.environ.get("FILESIM_KCLIENT"),
                  str(REPO.parent / "shared/tools/kernel-nfs-client/kclient")]  # fmt: skip
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    message = "kclient not found (set FILESIM_KCLIENT or keep ../shared beside the repo)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def kclient_run(
    port: int, script: str, *, export: str = "/data", opts: str | None = None,
    timeout: int = 240, files: list[Path] | None = None, vers: str = "3",
    mount: bool = True, prefix: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Mount HOST:export from 127.0.0.1:port in the guest and run `script` in it (sh).

    `mount=False`: the script mounts for itself (kclient --no-mount); `prefix`: the command
    kclient runs under, e.g. `NetNs.argv()` to run it in a network namespace."""
    tool = kclient_path()
    args = [*(prefix or []), "bash", str(tool), "run", "--server", "127.0.0.1",
            "--port", str(port), "--export", export, "--vers", vers,
            "--timeout", str(timeout)]  # fmt: skip
    if not mount:
        args.append("--no-mount")
    if opts:
        args += ["--opts", opts]
    for f in files or []:
        args += ["--file", str(f)]
    args += ["--", "-"]
    return subprocess.run(args, input=script, capture_output=True, text=True, timeout=timeout + 60)


def lockprobe_path() -> Path:
    """bin/lockprobe beside kclient: a static POSIX-lock probe for guests."""
    return kclient_path().parent / "bin" / "lockprobe"


def checks(output: str) -> dict[str, str]:
    """Lines `CHECK name value` printed by a guest script, as a dict."""
    found = {}
    for line in output.splitlines():
        if line.startswith("CHECK "):
            _, name, *value = line.split(" ", 2)
            found[name] = value[0] if value else ""
    return found
