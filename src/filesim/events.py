"""Events: what happened to files and servers, as JSON lines and to live subscribers.

Every NFS mutation, sync action, conflict, halt and fault is an `Event`. An `EventBus` keeps the
most recent ones in memory, appends each to a JSON-lines log (rotated by size) and hands it to
subscribers (the HTTP API's follow stream, the sync agents' status). It has no dependencies on the
rest of filesim, so every layer may emit events.
"""

from __future__ import annotations

import json
import json.encoder
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filesim.logs import LOG_MAX_BYTES, rotate_file


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    """What happened: nfs.create, nfs.write, nfs.remove, sync.copy, sync.conflict, fault.add..."""
    server: str = ""
    side: str = ""
    """'nfs', 'folder', 'export' or '' when the event concerns no side."""
    path: str = ""
    size: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def to_json(self) -> str:
        """One line of JSON, valid UTF-8 whatever the names: a path that is not UTF-8 (a
        POSIX name is bytes; Python holds the odd ones as surrogate escapes) is written as
        display text with \\xNN escapes, and its exact bytes in hex as `path_hex`."""
        # Built by hand: dataclasses.asdict deep-copies, and every NFS mutation comes here.
        data: dict[str, Any] = {"kind": self.kind}
        for key in ("server", "side", "path"):
            value = getattr(self, key)
            if value:
                data[key] = value
        if self.size is not None:
            data["size"] = self.size
        if self.detail:
            data["detail"] = self.detail
        data["time"] = self.time
        text = _encode(data)
        if "\\ud" not in text:  # no surrogate escape at all: the common case
            return text
        raw = _raw_bytes(self.path)
        if raw is not None:
            data["path_hex"] = raw.hex()
        return _ENCODER.encode(_valid(data))


_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)
"""One encoder for every event: json.dumps with any option builds a new one per call."""


def _compact_encoder() -> Callable[[dict[str, Any]], str]:
    """`_ENCODER.encode`, without building its C encoder again for every event (`encode` does:
    5.2 against 2.2 us for an NFS change's event). Events hold plain values, never a cycle, so
    the C encoder runs without cycle markers. Where there is no C encoder, `_ENCODER.encode`."""
    make: Any = getattr(json.encoder, "c_make_encoder", None)  # (not in typeshed)
    if make is None:  # pragma: no cover - CPython always has one
        return _ENCODER.encode
    # markers, default, string encoder, indent, separators, sort_keys, skipkeys, allow_nan
    iterencode = make(
        None, str, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
    )

    def encode(data: dict[str, Any]) -> str:
        return "".join(iterencode(data, 0))

    return encode


_encode = _compact_encoder()


def _raw_bytes(text: str) -> bytes | None:
    """The bytes of a name Python decoded with surrogate escapes; None when it is UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return None
    return None


def valid_text(text: str) -> str:
    """`text` as valid UTF-8: bytes that are not (surrogate escapes) as \\xNN."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape" if _raw_bytes(text) else "backslashreplace")
        return raw.decode("utf-8", "backslashreplace")


def _valid(value: Any) -> Any:
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, dict):
        return {valid_text(str(k)): _valid(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_valid(v) for v in value]
    return value


Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out of events to a ring buffer, an optional JSON-lines file and subscribers.

    Thread-safe: sync workers and NFS handlers may emit from executor threads.
    """

    def __init__(
        self, log_path: Path | None = None, keep: int = 10_000, max_log_bytes: int = LOG_MAX_BYTES
    ) -> None:
        self._recent: deque[Event] = deque(maxlen=keep)
        self._subscribers: tuple[Subscriber, ...] = ()
        """Replaced, never changed in place: emit reads it without copying."""
        self._lock = threading.Lock()
        self._log_path = log_path
        self._max_log_bytes = max_log_bytes
        self._log: Any = None
        self._log_bytes = 0
        """The log's size, counted here: asking the file (tell) costs a syscall per event."""
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            self._open_log()

    def emit(self, event: Event) -> None:
        with self._lock:
            self._recent.append(event)
            subscribers = self._subscribers
            if self._log is not None:
                line = (event.to_json() + "\n").encode("utf-8")
                self._write(line)
                self._log_bytes += len(line)
                if self._log_bytes > self._max_log_bytes:
                    self._rotate()
        for subscriber in subscribers:
            subscriber(event)

    def __call__(self, event: Event) -> None:
        self.emit(event)

    def _write(self, line: bytes) -> None:
        """One write(2) per event, straight to the file (no buffer to flush after it)."""
        done = self._log.write(line)
        while done < len(line):  # a short write (a signal, a full disk) goes on, or raises
            done += self._log.write(line[done:])

    def _open_log(self) -> None:
        assert self._log_path is not None
        # Unbuffered: each event reaches the file at once (readers tail it) in one write.
        self._log = open(self._log_path, "ab", buffering=0)  # noqa: SIM115 - closed in close()
        self._log_bytes = self._log.seek(0, os.SEEK_END)

    def _rotate(self) -> None:
        assert self._log_path is not None
        self._log.close()
        rotate_file(self._log_path)
        self._open_log()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call `subscriber` for every later event; returns a function that unsubscribes."""
        with self._lock:
            self._subscribers = (*self._subscribers, subscriber)

        def unsubscribe() -> None:
            with self._lock:
                rest = list(self._subscribers)
                if subscriber in rest:
                    rest.remove(subscriber)
                    self._subscribers = tuple(rest)

        return unsubscribe

    def recent(self, server: str | None = None, limit: int | None = None) -> list[Event]:
        with self._lock:
            events = [e for e in self._recent if server is None or e.server == server]
        return events[-limit:] if limit else events

    def close(self) -> None:
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None


def null_sink(event: Event) -> None:
    """An event sink that drops everything (for components run without a bus)."""
