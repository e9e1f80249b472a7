"""Everything here runs `filesim up` end to end: marked `integration` (the folder's tests move to
the folders that mirror src/ as they are reworked)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)
