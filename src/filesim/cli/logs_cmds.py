"""`filesim logs`: the event log of a topology (NFS changes, sync actions, conflicts, faults).

It reads the event log file under the state directory, so it also works after a stop.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from filesim.cli.app import app, console
from filesim.cli.options import DEFAULT_ROOT, RootOpt, StateDirOpt, layout_of
from filesim.errors import FilesimError


def format_event(data: dict[str, Any]) -> str:
    """One event as a log line: time, server, kind, side, path, size, details."""
    stamp = datetime.fromtimestamp(float(data.get("time", 0))).strftime("%Y-%m-%d %H:%M:%S.%f")
    parts = [stamp[:-3], data.get("server") or "-", data.get("kind", "?")]
    if data.get("side"):
        parts.append(f"[{data['side']}]")
    if data.get("path"):
        parts.append(data["path"])
    if data.get("size") is not None:
        parts.append(f"({data['size']} B)")
    detail = data.get("detail")
    if detail:
        if "summary" in detail:
            parts.append(f"{detail.get('id', '')} {detail['summary']}".strip())
            if "reason" in detail:
                parts.append(f"({detail['reason']})")
        else:
            parts.append(" ".join(f"{k}={v}" for k, v in detail.items()))
    return " ".join(str(p) for p in parts)


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []


def _parse(line: str, server: str | None) -> dict[str, Any] | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None  # a line cut by a crash
    if not isinstance(data, dict) or (server and data.get("server") != server):
        return None
    return data


def recent_events(log: Path, server: str | None, count: int) -> list[dict[str, Any]]:
    rotated = log.with_suffix(log.suffix + ".1")
    lines = _read_lines(log)
    if len(lines) < count:
        lines = _read_lines(rotated) + lines
    if count <= 0:
        return []
    events = [e for line in lines if (e := _parse(line, server)) is not None]
    return events[-count:]


def follow_events(
    log: Path, server: str | None, backlog: int, poll: float = 0.2
) -> Iterator[dict[str, Any]]:
    """The last `backlog` events of `log`, then each one appended, across rotations; runs
    until interrupted. One handle serves both, so no event falls between them."""
    handle: IO[str] | None = None
    inode = None
    buffer = ""
    first = True
    while True:
        if handle is None:
            try:
                handle = open(log, encoding="utf-8", errors="replace")  # noqa: SIM115
            except FileNotFoundError:
                first = False
                time.sleep(poll)
                continue
            inode = os.fstat(handle.fileno()).st_ino
            if first:
                first = False
                complete, _, buffer = handle.read().rpartition("\n")
                past = [e for line in complete.splitlines() if (e := _parse(line, server))]
                yield from (past[-backlog:] if backlog > 0 else [])
        chunk = handle.read()
        if chunk:
            buffer += chunk
            *complete_lines, buffer = buffer.split("\n")
            for line in complete_lines:
                if (event := _parse(line, server)) is not None:
                    yield event
            continue
        try:
            rotated = log.stat().st_ino != inode
        except FileNotFoundError:
            rotated = True
        if rotated:
            handle.close()
            handle, buffer = None, ""  # the new file is read from its start
        time.sleep(poll)


@app.command()
def logs(
    root: RootOpt = DEFAULT_ROOT,
    state_dir: StateDirOpt = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events.")] = (
        False
    ),
    server: Annotated[
        str | None, typer.Option("--server", "-s", help="Only this server's events.")
    ] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Recent events to show first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print events as JSON lines.")] = False,
) -> None:
    """Events of the topology under ROOT: NFS changes, sync actions, conflicts, faults."""
    layout = layout_of(root, state_dir)
    log = layout.events_file

    def show(event: dict[str, Any]) -> None:
        if as_json:
            print(json.dumps(event, separators=(",", ":")), flush=True)
        else:
            console.print(format_event(event), highlight=False, markup=False, soft_wrap=True)

    if not follow:
        if not log.exists():
            raise FilesimError(f"no event log at {log} (has a topology run under {layout.root}?)")
        for event in recent_events(log, server, lines):
            show(event)
        return
    try:
        for event in follow_events(log, server, lines):
            show(event)
    except KeyboardInterrupt:
        pass
