"""Every NFS test that builds a server over a directory runs on both file backends.

Kernel-client tests are left to their own parametrization (a QEMU guest run is costly)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from filesim.nfs.storage import Backend
from tests.support.backend import BACKEND

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
        metafunc.parametrize("nfs_backend", ["auto"] if windows else ["fd", "path"], indirect=True)


@pytest.fixture(autouse=True)
def nfs_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    backend: Backend = getattr(request, "param", "fd")
    token = BACKEND.set(backend)
    try:
        yield backend
    finally:
        BACKEND.reset(token)
