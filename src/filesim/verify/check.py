"""The shape of a check: a name and a function of (session, server)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from filesim.verify.session import Session
from filesim.verify.target import ServerTarget


@dataclass(frozen=True)
class Passed:
    message: str = ""
    latency_s: float | None = None


CheckFn = Callable[[Session, ServerTarget], Passed]


@dataclass(frozen=True)
class Check:
    name: str
    run: CheckFn
