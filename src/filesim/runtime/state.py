"""The runtime file of a running topology: how `status`, `down` and `verify` find it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from filesim.errors import FilesimError
from filesim.topology import Layout


class NotRunningError(FilesimError):
    """No topology is running under the given root."""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_runtime(layout: Layout) -> dict[str, Any] | None:
    """The runtime document of the topology running under `layout`, or None.

    A file left behind by a process that died (kill -9) counts as not running.
    """
    try:
        data = json.loads(layout.runtime_file.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or not pid_alive(int(data.get("pid", 0))):
        return None
    return data


def require_runtime(layout: Layout) -> dict[str, Any]:
    data = read_runtime(layout)
    if data is None:
        raise NotRunningError(
            f"no topology is running under {layout.root} "
            "(start one with `filesim up`, or point --root at the one that runs)"
        )
    return data


def clear_runtime(layout: Layout, pid: int) -> None:
    """Remove the runtime file if it still belongs to `pid`."""
    try:
        data = json.loads(layout.runtime_file.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return
    if data.get("pid") == pid:
        layout.runtime_file.unlink(missing_ok=True)
