"""The filesim image: the project's Dockerfile built by podman on the local base image."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from podrun import podman

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "deploy" / "helm" / "filesim"
# Where Debian's pip (patched to use the system store) reads its CA certificates.
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def chart_image(chart: Path = CHART) -> str:
    """The image the chart's pods run by default: `localhost/<repository>:<appVersion>`."""
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    values = yaml.safe_load((chart / "values.yaml").read_text())
    repository = values["image"]["repository"]
    tag = values["image"].get("tag") or meta["appVersion"]
    return f"localhost/{repository}:{tag}"


def host_ca_bundle() -> Path | None:
    """The host's CA bundle: package downloads go through a TLS-intercepting proxy on some
    machines (CI here), whose CA is only in the host's bundle."""
    for name in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(name)
        if value and Path(value).is_file():
            return Path(value)
    default = Path("/etc/ssl/certs/ca-certificates.crt")
    return default if default.is_file() else None


@dataclass(frozen=True)
class BuiltImage:
    image: str
    seconds: float
    size_bytes: int


def build(base_image: str, tag: str | None = None, context: Path = REPO) -> BuiltImage:
    """`podman build --pull=never` of the Dockerfile with BASE_IMAGE=base_image."""
    tag = tag or chart_image()
    args = ["build", "--pull=never", "--build-arg", f"BASE_IMAGE={base_image}", "--tag", tag]
    bundle = host_ca_bundle()
    if bundle is not None:
        args += ["--volume", f"{bundle}:{IMAGE_CA_BUNDLE}:ro"]
    start = time.monotonic()
    podman.run([*args, str(context)], timeout=1200)
    seconds = time.monotonic() - start
    info = podman.inspect("image", tag) or {}
    return BuiltImage(tag, seconds, int(info.get("Size", 0)))
