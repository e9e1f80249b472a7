"""Printing a verify report: a rich table (check x server), JSON, and JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from filesim.verify.results import CheckResult, Report, Status

_STYLE = {Status.PASS: "green", Status.FAIL: "bold red", Status.SKIP: "dim"}


def format_latency(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _cell(result: CheckResult | None) -> Text:
    if result is None or result.status is Status.SKIP:
        return Text("—", style="dim")
    label = result.status.value.upper()
    latency = format_latency(result.latency_s)
    return Text(f"{label} {latency}".rstrip(), style=_STYLE[result.status])


def table(report: Report, width: int = 200) -> Table:
    """A check x server grid; one row per result instead when the grid would not fit `width`."""
    checks = list(dict.fromkeys(r.check for r in report.results))
    servers = list(dict.fromkeys(r.server for r in report.results if r.server != "-"))
    needed = 20 + sum(max(len(s), 11) + 3 for s in servers)
    if needed > width:
        return _long_table(report)
    by_pair = {(r.check, r.server): r for r in report.results}
    grid = Table()
    grid.add_column("check", style="bold", no_wrap=True)
    for server in servers:
        grid.add_column(server, no_wrap=True)
    for check in checks:
        grid.add_row(check, *(_cell(by_pair.get((check, s))) for s in servers))
    return grid


def _long_table(report: Report) -> Table:
    rows = Table()
    for column in ("check", "server", "result"):
        rows.add_column(column, no_wrap=True)
    for r in report.results:
        if r.status is not Status.SKIP:
            rows.add_row(r.check, r.server, _cell(r))
    return rows


def print_report(report: Report, console: Console, show_skipped: bool = False) -> None:
    console.print(Text(f"filesim verify: {report.target}", style="bold"), soft_wrap=True)
    console.print(table(report, console.width))
    for r in report.results:
        if r.status is Status.FAIL or (show_skipped and r.status is Status.SKIP):
            word = "FAIL" if r.status is Status.FAIL else "n/a "
            console.print(
                Text(f"{word} {r.check} {r.server}: ", style=_STYLE[r.status]) + Text(r.message),
                soft_wrap=True,
            )
    style = "bold green" if report.ok else "bold red"
    console.print(Text(report.summary(), style=style))


def to_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2)


def write_junit(report: Report, path: Path) -> None:
    """One testcase per check x server (classname = check), skipped ones marked skipped."""
    skipped = sum(r.status is Status.SKIP for r in report.results)
    suite = ET.Element(
        "testsuite",
        name="filesim-verify",
        tests=str(len(report.results)),
        failures=str(report.failed),
        skipped=str(skipped),
        time=f"{sum(r.latency_s or 0 for r in report.results):.3f}",
    )
    for r in report.results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"filesim.verify.{r.check}",
            name=r.server,
            time=f"{r.latency_s or 0:.3f}",
        )
        if r.status is Status.FAIL:
            ET.SubElement(case, "failure", message=r.message).text = r.message
        elif r.status is Status.SKIP:
            ET.SubElement(case, "skipped", message=r.message)
        elif r.message:
            ET.SubElement(case, "system-out").text = r.message
    ET.indent(suite)
    path.write_text(ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n")
