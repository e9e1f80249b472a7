"""The event loop servers run on: the same choice in `filesim up` and in worker processes."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from filesim.runtime.loop import loop_factory


def test_no_uvloop_asks_for_the_standard_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FILESIM_NO_UVLOOP", "1")
    assert loop_factory() is None


def test_uvloop_when_installed_else_the_standard_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FILESIM_NO_UVLOOP", raising=False)
    factory = loop_factory()
    if importlib.util.find_spec("uvloop") is None:
        assert factory is None
    else:
        assert factory is not None
        loop = factory()
        try:
            assert type(loop).__module__.startswith("uvloop")
            assert isinstance(loop, asyncio.AbstractEventLoop)
        finally:
            loop.close()
