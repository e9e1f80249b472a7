"""Operating a running topology: `filesim logs`, `filesim fault add|list|clear`, `status --watch`.

`logs` reads the event log file under the state directory (so it also works after a stop);
`fault` and the live status talk to the HTTP API of the topology, found through the runtime
file under --root.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from filesim.cli.app import app, console
from filesim.cli.options import RootOpt, StateDirOpt, layout_of
from filesim.errors import FilesimError
from filesim.runtime.state import require_runtime
from filesim.topology import Layout
from filesim.topology.faults import FaultKind

DEFAULT_ROOT = Path("simulator-data")


class ApiError(FilesimError):
    """The HTTP API of the running topology refused a request or cannot be reached."""


# -- the HTTP API of a running topology -------------------------------------------------------


def api_url(layout: Layout) -> str:
    runtime = require_runtime(layout)
    http = runtime.get("http")
    if not http:
        raise ApiError(
            f"the topology under {layout.root} runs without its HTTP API "
            "(start it with `filesim up`, which serves it)"
        )
    return str(http["url"])


def api_call(layout: Layout, method: str, path: str, body: Any = None) -> Any:
    """Call the API of the topology under `layout`; the decoded JSON answer."""
    return request_json(api_url(layout), method, path, body)


def request_json(base: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc).get("error") or exc.reason
        except (ValueError, AttributeError):
            message = exc.reason
        raise ApiError(str(message)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiError(f"cannot reach the filesim HTTP API at {base}: {reason}") from None


def fetch_text(base: str, path: str) -> str:
    try:
        with urllib.request.urlopen(base + path, timeout=10) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiError(f"cannot reach the filesim HTTP API at {base}: {reason}") from None


# -- filesim logs -----------------------------------------------------------------------------


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
    handle: Any = None
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


# -- filesim fault ----------------------------------------------------------------------------

fault_app = typer.Typer(
    help="Inject faults into a running topology (latency, errors, read-only, outage, sync).",
    no_args_is_help=True,
)
app.add_typer(fault_app, name="fault")


def _csv(values: list[str] | None) -> list[str]:
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


@fault_app.command("add")
def fault_add(
    server: Annotated[str, typer.Argument(help="The server, as named in the topology.")],
    kind: Annotated[FaultKind, typer.Argument(help="What goes wrong.", case_sensitive=False)],
    procedure: Annotated[
        list[str] | None,
        typer.Option("--procedure", "-p", help="NFS procedure(s), e.g. READ,WRITE (default all)."),
    ] = None,
    path: Annotated[
        list[str] | None,
        typer.Option("--path", help="error: export-relative path glob(s), e.g. 'in/*.csv'."),
    ] = None,
    error: Annotated[
        str | None, typer.Option("--error", "-e", help="error: EIO, NOSPC, DQUOT, STALE, ...")
    ] = None,
    probability: Annotated[
        float, typer.Option("--probability", min=0.0, max=1.0, help="error: chance per call.")
    ] = 1.0,
    delay_ms: Annotated[float, typer.Option("--delay-ms", help="latency/sync-slow delay.")] = 0.0,
    jitter_ms: Annotated[float, typer.Option("--jitter-ms", help="latency spread.")] = 0.0,
    distribution: Annotated[
        str, typer.Option("--distribution", help="fixed, uniform, normal or exponential.")
    ] = "fixed",
    mode: Annotated[
        str, typer.Option("--mode", help="outage: blackhole (never answer) or refuse.")
    ] = "blackhole",
    duration: Annotated[
        float | None, typer.Option("--duration", help="Clear by itself after this many seconds.")
    ] = None,
    root: RootOpt = DEFAULT_ROOT,
    state_dir: StateDirOpt = None,
) -> None:
    """Add a fault to SERVER; it takes effect at once, until `filesim fault clear`."""
    spec: dict[str, Any] = {"server": server, "kind": kind.value}
    options = {
        "procedures": _csv(procedure), "paths": _csv(path), "error": error,
        "probability": probability if probability != 1.0 else None,
        "delay_ms": delay_ms or None, "jitter_ms": jitter_ms or None,
        "distribution": distribution if distribution != "fixed" else None,
        "mode": mode if kind is FaultKind.OUTAGE else None, "duration_s": duration,
    }  # fmt: skip
    spec |= {k: v for k, v in options.items() if v not in (None, [])}
    fault = api_call(layout_of(root, state_dir), "POST", "/api/faults", spec)
    console.print(f"added {fault['id']} on {fault['server']}: {fault['summary']}", highlight=False)


@fault_app.command("list")
def fault_list(
    server: Annotated[str | None, typer.Option("--server", "-s", help="Only this server.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
    root: RootOpt = DEFAULT_ROOT,
    state_dir: StateDirOpt = None,
) -> None:
    """The faults in force on the running topology."""
    query = f"?server={server}" if server else ""
    faults = api_call(layout_of(root, state_dir), "GET", "/api/faults" + query)["faults"]
    if as_json:
        console.print_json(json.dumps(faults))
        return
    if not faults:
        console.print("no faults")
        return
    table = Table(title="faults", title_justify="left")
    for column in ("id", "server", "fault", "origin", "clears"):
        table.add_column(column)
    for f in faults:
        clears = f"in {max(0.0, f['expires'] - time.time()):.0f} s" if f.get("expires") else ""
        table.add_row(f["id"], f["server"], f["summary"], f["origin"], clears)
    console.print(table)


@fault_app.command("clear")
def fault_clear(
    server: Annotated[
        str | None, typer.Argument(help="Clear this server's faults (default: every server).")
    ] = None,
    fault_id: Annotated[str | None, typer.Option("--id", help="Clear only this fault.")] = None,
    root: RootOpt = DEFAULT_ROOT,
    state_dir: StateDirOpt = None,
) -> None:
    """Clear faults; normal behaviour is back at once."""
    query = "&".join(f"{k}={v}" for k, v in (("server", server), ("id", fault_id)) if v)
    gone = api_call(layout_of(root, state_dir), "DELETE", "/api/faults?" + query)["cleared"]
    console.print(f"cleared {len(gone)} fault{'s' if len(gone) != 1 else ''}", highlight=False)


# -- filesim status --watch -------------------------------------------------------------------


@dataclass
class _Totals:
    """Counter sums per server, from one scrape of /metrics."""

    at: float
    requests: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    latency_sum: dict[str, float] = field(default_factory=dict)
    latency_count: dict[str, float] = field(default_factory=dict)


def totals_of(metrics_text: str, at: float) -> _Totals:
    from prometheus_client.parser import text_string_to_metric_families

    totals = _Totals(at)
    wanted = {
        "filesim_nfs_requests_total": totals.requests,
        "filesim_nfs_errors_total": totals.errors,
        "filesim_nfs_request_duration_seconds_sum": totals.latency_sum,
        "filesim_nfs_request_duration_seconds_count": totals.latency_count,
    }
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            target = wanted.get(sample.name)
            if target is not None:
                server = sample.labels.get("server", "")
                target[server] = target.get(server, 0.0) + sample.value
    return totals


def watch_table(doc: dict[str, Any], now: _Totals, before: _Totals | None) -> Table:
    """The live status table: one row per server."""
    table = Table(title=f"filesim (pid {doc.get('pid')})", title_justify="left")
    for column in ("server", "address", "req/s", "err/s", "NFS ms", "sync", "pending",
                   "sync p50/p99 ms", "conflicts", "faults"):  # fmt: skip
        table.add_column(column, overflow="fold")
    span = (now.at - before.at) if before is not None else 0.0
    for s in doc.get("servers", []):
        name = s["name"]

        def rate(values: str, name: str = name) -> float | None:
            if before is None or span <= 0:
                return None
            new: dict[str, float] = getattr(now, values)
            old: dict[str, float] = getattr(before, values)
            return max(0.0, new.get(name, 0.0) - old.get(name, 0.0)) / span

        req, err = rate("requests"), rate("errors")
        calls = rate("latency_count")
        mean = None
        if calls and before is not None:
            spent = now.latency_sum.get(name, 0.0) - before.latency_sum.get(name, 0.0)
            mean = spent / (calls * span) * 1000
        st = s.get("sync_status")
        if st is None:
            sync, pending, lat, conflicts = ("direct" if s.get("storage") == "direct" else "off",
                                             "", "", "")  # fmt: skip
        else:
            sync = "HALTED" if st.get("halted") else str(st.get("direction", ""))
            pending, conflicts = str(st.get("pending", 0)), str(st.get("conflicts", 0))
            lat = f"{_num(st.get('p50_ms'))}/{_num(st.get('p99_ms'))}"
        faults = ", ".join(f["summary"] for f in s.get("faults", [])) or ""
        table.add_row(
            name, f"{s['host']}:{s['port']}", _num(req, 1), _num(err, 1), _num(mean, 2),
            sync, pending, lat, conflicts, Text(faults, style="bold red") if faults else "",
        )  # fmt: skip
    return table


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def watch_status(layout: Layout, interval: float = 1.0, rounds: int | None = None) -> None:
    """A live table of the topology under `layout` until Ctrl-C (or `rounds` refreshes)."""
    base = api_url(layout)
    before: _Totals | None = None
    done = 0
    try:
        with Live(console=console, auto_refresh=False, transient=False) as live:
            while rounds is None or done < rounds:
                try:
                    doc = request_json(base, "GET", "/api/servers")
                    now = totals_of(fetch_text(base, "/metrics"), time.monotonic())
                except ApiError:
                    live.update(Text(f"the topology under {layout.root} has stopped"))
                    live.refresh()
                    return
                footer = Text(f"HTTP API {base} · Ctrl-C to quit", style="dim")
                live.update(Group(watch_table(doc, now, before), footer))
                live.refresh()
                before = now
                done += 1
                if rounds is None or done < rounds:
                    time.sleep(interval)
    except KeyboardInterrupt:
        pass
