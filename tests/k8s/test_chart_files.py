"""The chart's generated files (`filesim k8s schema`) are what the topology model makes today."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from filesim.k8s.chart import stale_files

from .harness import CHART, FILESIM


def test_generated_chart_files_are_up_to_date() -> None:
    """values.schema.json and _topology.tpl are what `filesim k8s schema --write` makes of
    the topology model today (run it after changing the model)."""
    assert stale_files(CHART) == []


def test_schema_check_command_names_a_stale_file(tmp_path: Path) -> None:
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy)
    schema = json.loads((copy / "values.schema.json").read_text())
    del schema["definitions"]["SyncPolicy"]["properties"]["settle_ms"]
    (copy / "values.schema.json").write_text(json.dumps(schema))
    proc = subprocess.run([*FILESIM, "k8s", "schema", "--check", str(copy)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 1
    assert "values.schema.json" in proc.stderr and "filesim k8s schema --write" in proc.stderr
    fixed = subprocess.run([*FILESIM, "k8s", "schema", "--write", str(copy)],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert fixed.returncode == 0, fixed.stderr
    assert stale_files(copy) == []
