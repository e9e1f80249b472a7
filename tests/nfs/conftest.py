"""Every NFS test that builds a server over a directory runs on both file backends, and on
the fd backend with allocated file ids (`table`, what FAT and exFAT roots get).

Kernel-client tests are left to their own parametrization (a QEMU guest run is costly)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from filesim.nfs.storage import Backend
from tests.support.backend import BACKEND, FILEIDS

_USES_A_RIG = ("make_rig", "serving", "dispatcher(", "store(")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("kernel"):
        return
    if not getattr(metafunc.module, "BOTH_BACKENDS", True):
        return
    source = metafunc.module.__dict__.get("__file__", "")
    with open(source) as f:
        text = f.read()
    if any(use in text for use in _USES_A_RIG):
        # Under the Windows surface (tests/support/winsurface) there is no fd backend to test:
        # the one "auto" picks is the point.
        windows = os.environ.get("FILESIM_WINDOWS_SURFACE") == "1"
        variants = ["auto"] if windows else ["fd", "path", "table"]
        if not getattr(metafunc.module, "ID_TABLE", True) and "table" in variants:
            variants.remove("table")
        metafunc.parametrize("nfs_backend", variants, indirect=True)


@pytest.fixture(autouse=True)
def nfs_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    variant: str = getattr(request, "param", "fd")
    backend: Backend = "fd" if variant == "table" else variant  # type: ignore[assignment]
    token = BACKEND.set(backend)
    ids = FILEIDS.set("table" if variant == "table" else "auto")
    try:
        yield variant
    finally:
        BACKEND.reset(token)
        FILEIDS.reset(ids)
