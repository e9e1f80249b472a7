"""The event log: one JSON line per event, rotated by size (the size counted, not asked for)."""

from __future__ import annotations

import json
from pathlib import Path

from filesim.events import Event, EventBus


def test_each_event_is_a_json_line_on_disk_at_once(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    bus = EventBus(log)
    bus.emit(Event("nfs.create", "nas", "nfs", "dir/é.txt"))
    lines = log.read_text(encoding="utf-8").splitlines()  # before close: flushed per event
    assert [json.loads(line)["path"] for line in lines] == ["dir/é.txt"]
    bus.close()


def test_the_log_rotates_past_its_size_counting_what_was_there(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text('{"kind":"old"}\n' * 20)  # 300 bytes from an earlier run
    bus = EventBus(log, max_log_bytes=400)
    line = len(Event("nfs.write", "nas", "nfs", "f", time=1.0).to_json()) + 1
    count = 0
    while not log.with_suffix(".jsonl.1").exists():
        bus.emit(Event("nfs.write", "nas", "nfs", "f", time=1.0))
        count += 1
        assert count < 100, "the log never rotated"
    bus.close()
    assert count == (400 - 300) // line + 1  # rotated by the first event past 400 bytes
    rotated = log.with_suffix(".jsonl.1").read_text().splitlines()
    assert rotated[:20] == ['{"kind":"old"}'] * 20 and len(rotated) == 20 + count
    assert log.read_text() == ""
    bus = EventBus(log, max_log_bytes=400)
    bus.emit(Event("nfs.write", "nas", "nfs", "g", time=1.0))
    bus.close()
    assert json.loads(log.read_text())["path"] == "g"
