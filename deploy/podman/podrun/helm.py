"""`helm template` of the chart: the manifest the pods are read from."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from podrun.image import CHART
from podrun.podman import PodsError


def find_helm() -> str:
    """$FILESIM_HELM, then helm on PATH, then /usr/local/bin/helm (where .ci/run puts it)."""
    for candidate in (os.environ.get("FILESIM_HELM"), shutil.which("helm"), "/usr/local/bin/helm"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise PodsError(
        "helm not found: install helm (https://helm.sh) or set FILESIM_HELM; or render the "
        "chart elsewhere and pass the output with --manifest FILE"
    )


def template(
    *,
    release: str = "filesim",
    namespace: str = "default",
    values: Sequence[Path] = (),
    sets: Sequence[str] = (),
    chart: Path = CHART,
) -> str:
    args = [find_helm(), "template", release, str(chart), "--namespace", namespace]
    for path in values:
        args += ["--values", str(path)]
    for item in sets:
        args += ["--set", item]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise PodsError(f"helm template failed: {proc.stderr.strip()}")
    return proc.stdout
