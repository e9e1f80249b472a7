"""Suite-wide rules.

Under CI (CI=true) a skipped test fails: a skip there means missing coverage (a tool not
installed, a path not found), never a pass. A test that does not apply to one of its
parameters says so with a reason starting with `n/a:` (see `not_applicable`); only those
skips stay skips in CI.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import NoReturn

import pytest

NOT_APPLICABLE = "n/a: "

# Every `filesim up` a test starts serves on asyncio's own loop, as the plain install does, even
# where uvloop is installed (`.[fast]`, which CI installs): tests/runtime/test_fast_loop.py takes
# the variable away to check the uvloop path.
os.environ.setdefault("FILESIM_NO_UVLOOP", "1")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def not_applicable(reason: str) -> NoReturn:
    """Skip a test (or parameter) that does not apply here by design; allowed in CI."""
    pytest.skip(NOT_APPLICABLE + reason)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if not (report.skipped and in_ci()) or hasattr(report, "wasxfail"):
        return report
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if reason.removeprefix("Skipped: ").startswith(NOT_APPLICABLE):
        return report
    report.outcome = "failed"
    report.longrepr = f"unexpected skip under CI=true (missing coverage): {reason}"
    return report
