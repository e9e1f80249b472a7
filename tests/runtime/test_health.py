"""Readiness: a server that does not answer, and one whose initial sync is still running."""

from __future__ import annotations

import asyncio

from filesim.runtime.health import Probe, readiness
from tests.support.ports import refusing_port


def test_not_ready_names_each_server_and_cause() -> None:
    with refusing_port() as port:
        report = asyncio.run(
            readiness(
                [Probe("a", "127.0.0.1", port, "none"), Probe("b", "0.0.0.0", port, "starting")],
                timeout=1.0,
            )
        )
    assert not report.ready
    assert [r.split(":")[0] for r in report.reasons] == ["a", "b", "b"]
    assert report.reasons[-1] == "b: initial sync not finished"
    assert report.servers["a"].sync == "none" and report.servers["b"].sync == "initial sync running"
    assert "cannot connect" in report.servers["a"].nfs


def test_no_servers_is_not_ready() -> None:
    report = asyncio.run(readiness([]))
    assert not report.ready and report.reasons == [] and report.servers == {}
