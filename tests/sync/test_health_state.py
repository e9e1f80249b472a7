"""The health of an agent on its own (health.py): states, transitions and their events, and the
log limiter. The same in a running topology: test_health.py."""

from __future__ import annotations

import pytest

from filesim.events import Event
from filesim.sync.health import FAILING_AFTER, AgentState, Health, LogLimiter


def test_health_goes_failing_and_back_with_an_event_each_way() -> None:
    events: list[Event] = []
    health = Health("nas", events.append)
    health.starting(continuous=True)
    assert health.state is AgentState.STARTING
    health.ready()
    assert health.state is AgentState.RUNNING and health.reason is None
    for _ in range(FAILING_AFTER):
        health.cycle_failed(OSError(5, "Input/output error"))
    assert health.state is AgentState.FAILING and health.since is not None
    assert "3 sync cycles failed in a row" in str(health.reason)
    assert "Input/output error" in str(health.reason)
    health.cycle_done(failing_paths=2)
    assert health.state is AgentState.FAILING and "2 paths keep failing" in str(health.reason)
    health.cycle_done(failing_paths=0)
    assert health.state is AgentState.RUNNING
    assert [e.kind for e in events] == ["sync.failing", "sync.recovered"]
    health.stopped("shut down", crashed=False)
    assert health.state is AgentState.STOPPED and events[-1].kind == "sync.stopped"


def test_an_initial_sync_that_keeps_failing_is_failing_not_starting() -> None:
    health = Health("nas", lambda event: None)
    health.starting(continuous=True)
    for _ in range(FAILING_AFTER):
        health.cycle_failed(RuntimeError("boom"))
    assert health.state is AgentState.FAILING
    health.cycle_done(failing_paths=0)
    assert health.state is AgentState.STARTING, "recovered, but the initial sync is not over"


def test_the_log_limiter_counts_what_it_does_not_log(caplog: pytest.LogCaptureFixture) -> None:
    limiter = LogLimiter(lines=3, window=60.0)
    with caplog.at_level("WARNING", logger="filesim.sync"):
        for i in range(100):
            limiter.warning(f"failure {i}", now=1.0)
        limiter.warning("a minute later", now=61.5)
    assert [r.getMessage()[:9] for r in caplog.records] == ["failure 0", "failure 1",
                                                           "failure 2", "a minute "]  # fmt: skip
    assert "97 similar lines were not logged" in caplog.records[-1].getMessage()
