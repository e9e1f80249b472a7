"""The charts' history: rates from running totals, percentiles per interval, bounded memory."""

from __future__ import annotations

from filesim.runtime.history import MAX_LATENCIES, MetricsHistory


def test_rates_and_percentiles_per_interval() -> None:
    history = MetricsHistory(interval_s=5, keep=3)
    history.sample(100.0, {"a": 10, "b": 0})
    for ms in range(1, 101):
        history.record_latency("a", ms / 1000)
    history.sample(105.0, {"a": 60, "b": 0})
    history.sample(110.0, {"a": 60})
    a = history.doc("a").servers["a"]
    assert a.time == [100.0, 105.0, 110.0]
    assert a.nfs_ops == [0.0, 10.0, 0.0]
    assert a.p50_ms[0] is None and a.p50_ms[1] == 50.5 and a.p99_ms[1] == 99.0
    assert a.synced == [0, 100, 0] and a.p50_ms[2] is None
    assert list(history.doc().servers) == ["a", "b"]


def test_the_ring_and_each_interval_are_bounded() -> None:
    history = MetricsHistory(interval_s=1, keep=4)
    for i in range(10):
        history.sample(float(i), {"a": i})
    assert history.doc().servers["a"].time == [6.0, 7.0, 8.0, 9.0]
    for _ in range(MAX_LATENCIES * 3):
        history.record_latency("a", 0.001)
    assert len(history._rings["a"].latencies) == MAX_LATENCIES
    history.sample(10.0, {"a": 10})
    assert history.doc().servers["a"].synced[-1] == MAX_LATENCIES * 3
