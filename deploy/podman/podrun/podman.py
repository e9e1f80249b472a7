"""Running podman with the project's containers.conf; one exception type for every failure."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CONTAINERS_CONF = HERE.parent / "containers.conf"
# Every pod and container this tool starts carries this label, so `down` finds them all.
LABEL = "io.filesim.pods"


class PodsError(Exception):
    """A failure the user can act on; the message says what to do."""


def env() -> dict[str, str]:
    """The environment podman runs in: ours, with CONTAINERS_CONF pointing at the project's
    configuration unless the caller set one."""
    result = dict(os.environ)
    result.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return result


def binary() -> str:
    found = shutil.which("podman")
    if found is None:
        raise PodsError(
            "podman not found: apt-get install podman buildah mmdebstrap runc "
            "(see deploy/podman/README.md)"
        )
    return found


def run(
    args: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 600,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`podman ARGS`; raises PodsError with podman's stderr when it fails and `check`."""
    command = [binary(), *args]
    try:
        proc = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=env(),
            timeout=timeout,
            input=input_text,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PodsError(f"podman {' '.join(args[:3])} did not finish in {timeout:.0f} s") from None
    if check and proc.returncode != 0:
        raise PodsError(
            f"podman {' '.join(args)} failed (exit {proc.returncode}): {proc.stderr.strip()}"
        )
    return proc


def inspect(kind: str, name: str) -> dict[str, Any] | None:
    """`podman KIND inspect NAME` as a dict, or None when there is no such object."""
    proc = run([kind, "inspect", name], check=False)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)
    if isinstance(data, list):
        return data[0] if data else None
    return data if isinstance(data, dict) else None


def image_exists(reference: str) -> bool:
    return run(["image", "exists", reference], check=False).returncode == 0


def labelled(kind: str, label: str) -> list[str]:
    """Names of the pods or containers (kind "pod" or "container") carrying `label`."""
    if kind == "pod":
        args = ["pod", "ps", "--filter", f"label={label}", "--format", "{{.Name}}"]
    else:
        args = ["ps", "-a", "--filter", f"label={label}", "--format", "{{.Names}}"]
    return [line for line in run(args).stdout.split() if line]
