"""The outcome of one check on one server, and of a whole run."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    """Not applicable to this server (its policy) or not requested; never counted."""


@dataclass(frozen=True)
class CheckResult:
    check: str
    server: str
    status: Status
    message: str = ""
    latency_s: float | None = None
    """The measured time the check is about (sync latency, round trip), when it has one."""

    def to_json(self) -> dict[str, object]:
        latency = None if self.latency_s is None else round(self.latency_s * 1000, 1)
        return {
            "check": self.check,
            "server": self.server,
            "status": self.status.value,
            "latency_ms": latency,
            "message": self.message,
        }


@dataclass
class Report:
    target: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(r.status is Status.PASS for r in self.results)

    @property
    def failed(self) -> int:
        return sum(r.status is Status.FAIL for r in self.results)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0

    def summary(self) -> str:
        skipped = sum(r.status is Status.SKIP for r in self.results)
        tail = f", {skipped} not applicable" if skipped else ""
        return f"{self.passed} passed, {self.failed} failed{tail}"

    def to_json(self) -> dict[str, object]:
        return {
            "target": self.target,
            "passed": self.passed,
            "failed": self.failed,
            "ok": self.ok,
            "results": [r.to_json() for r in self.results],
        }


class CheckFailed(Exception):
    """Raised inside a check: the server fails it, with this message."""

    def __init__(self, message: str, latency_s: float | None = None) -> None:
        super().__init__(message)
        self.latency_s = latency_s


class NotApplicable(Exception):
    """Raised inside a check: the check does not apply to this server; the message says why."""
