"""The base image, built from Debian packages with mmdebstrap (no registry needed).

The mirror is the one apt on this machine uses, read at run time. The root filesystem tarball
is cached by a content hash of everything that decides what goes in it (suite, packages,
variant, dpkg options, sources), so a second run imports the cached tarball (or finds the image
already in podman's storage) instead of downloading ~40 MB of packages again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from podrun import podman
from podrun.podman import PodsError

SUITE = "bookworm"  # Python 3.11, what the project supports
PACKAGES = ("python3", "python3-pip", "ca-certificates")
VARIANT = "minbase"
HOOKS = "/usr/share/mmdebstrap/hooks/merged-usr"
# Documentation and translations are ~45 MB of the image and never read in a container.
DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/info/*",
)
IMAGE_CHANGES = ("ENV PIP_BREAK_SYSTEM_PACKAGES=1", 'CMD ["python3"]')
REPOSITORY = "localhost/filesim-base"


def cache_dir() -> Path:
    explicit = os.environ.get("FILESIM_PODMAN_CACHE")
    if explicit:
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/var/cache/filesim-podman")
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "filesim-podman"


def apt_sources(suite: str = SUITE) -> list[str]:
    """`deb URI SUITE COMPONENT` lines of apt's own sources for `suite` and its -updates and
    -security suites (apt-get indextargets reads both sources.list and deb822 files)."""
    try:
        proc = subprocess.run(
            [
                "apt-get",
                "indextargets",
                "--format",
                "$(REPO_URI)\t$(RELEASE)\t$(COMPONENT)",
                "Created-By: Packages",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PodsError(f"cannot read apt's sources (apt-get indextargets): {exc}") from None
    lines: list[str] = []
    for row in proc.stdout.splitlines():
        parts = row.split("\t")
        if len(parts) != 3:
            continue
        uri, release, component = parts
        if release != suite and not release.startswith(f"{suite}-"):
            continue
        line = f"deb {uri} {release} {component}"
        if line not in lines:
            lines.append(line)
    if not lines:
        raise PodsError(
            f"apt on this machine has no source for Debian {suite}: pass --mirror "
            f"'deb http://deb.debian.org/debian {suite} main' (or your mirror)"
        )
    return sorted(lines)


@dataclass(frozen=True)
class BaseSpec:
    """Everything that decides the content of the base image."""

    suite: str
    sources: tuple[str, ...]
    packages: tuple[str, ...] = PACKAGES
    variant: str = VARIANT
    dpkg_options: tuple[str, ...] = DPKG_OPTIONS
    changes: tuple[str, ...] = IMAGE_CHANGES

    def digest(self) -> str:
        blob = json.dumps(self.__dict__, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    @property
    def image(self) -> str:
        return f"{REPOSITORY}:{self.digest()[:16]}"


@dataclass(frozen=True)
class BaseResult:
    image: str
    how: str
    """"image" (already in podman), "tarball" (imported from the cache) or "built"."""
    seconds: float
    tarball: Path


def spec_for(mirrors: list[str] | None = None, suite: str = SUITE) -> BaseSpec:
    return BaseSpec(suite=suite, sources=tuple(mirrors or apt_sources(suite)))


def ensure_base(spec: BaseSpec, *, refresh: bool = False) -> BaseResult:
    """The base image `spec.image` in podman's storage: reused, imported from the cached
    tarball, or built with mmdebstrap and cached."""
    start = time.monotonic()
    tarball = cache_dir() / f"base-{spec.digest()}.tar"
    if not refresh and podman.image_exists(spec.image):
        return BaseResult(spec.image, "image", time.monotonic() - start, tarball)
    how = "tarball"
    if refresh or not tarball.is_file():
        _mmdebstrap(spec, tarball)
        how = "built"
    _import(spec, tarball)
    return BaseResult(spec.image, how, time.monotonic() - start, tarball)


def _mmdebstrap(spec: BaseSpec, tarball: Path) -> None:
    if shutil.which("mmdebstrap") is None:
        raise PodsError("mmdebstrap not found: apt-get install mmdebstrap")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_suffix(".partial.tar")
    command = [
        "mmdebstrap",
        f"--variant={spec.variant}",
        f"--include={','.join(spec.packages)}",
        *(f"--dpkgopt={o}" for o in spec.dpkg_options),
    ]
    if Path(HOOKS).is_dir():
        command.append(f"--hook-dir={HOOKS}")
    command += [spec.suite, str(partial), *spec.sources]
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1200)
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise PodsError(f"mmdebstrap failed (exit {proc.returncode}):\n{tail}")
    partial.rename(tarball)
    # One base at a time: tarballs of other package lists or mirrors are stale.
    for old in tarball.parent.glob("base-*.tar"):
        if old != tarball:
            old.unlink(missing_ok=True)


def _import(spec: BaseSpec, tarball: Path) -> None:
    args = ["import"]
    for change in spec.changes:
        args += ["--change", change]
    podman.run([*args, str(tarball), spec.image], timeout=600)
