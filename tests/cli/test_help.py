"""`filesim --help`: the list of commands a new user reads first."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from filesim.cli import app


def test_each_command_is_summed_up_in_one_line() -> None:
    """The list shows each command's short help; a docstring's wrapped first paragraph there
    kept its line breaks (`up` and `down` ran over three ragged lines)."""
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    box = result.output.split("Commands")[1]
    rows = [line.strip("│ ") for line in box.splitlines() if line.startswith("│")]
    names = [m.group(1) for row in rows if (m := re.match(r"(\w+)\s{2,}", row))]
    assert {"up", "down", "status", "sync", "verify"} <= set(names), rows
    assert len(rows) == len(names), f"a summary runs over more than one line: {rows}"
