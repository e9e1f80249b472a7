"""The small JSON state files of the NFS services (NFSv4 client records, the NSM list of
monitored hosts): read leniently, written atomically. A failure is logged (rate-limited: they
are saved after each state change, and a full disk must not flood the log), never raised: the
service goes on with what it holds in memory."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from filesim.logs import RateLimited

log = logging.getLogger(__name__)
_limited = RateLimited(log)


def load_state(path: Path | None, what: str) -> dict[str, Any]:
    """The object saved in `path` ({} when there is none, or it cannot be read)."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s file %s: %s", what, path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def save_state(path: Path | None, data: dict[str, Any], what: str) -> None:
    """Replace `path` with `data` at once (a temp file renamed over it)."""
    if path is None:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError as exc:
        _limited.warning(f"save {path}", "cannot save the %s file %s: %s", what, path, exc)
