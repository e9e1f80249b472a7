"""The runtime file of a running topology: how `status`, `down` and `verify` find it."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from filesim.errors import FilesimError
from filesim.runtime.model import RuntimeDoc
from filesim.sync.lock import locked_by_another, try_lock
from filesim.topology import Layout


class NotRunningError(FilesimError):
    """No topology is running under the given root."""


class StartupError(FilesimError):
    """A topology that cannot start (port in use, folder not usable, already running)."""


def running(layout: Layout) -> bool:
    """Whether a topology runs under `layout`: its process holds the runtime lock for as long
    as it lives (the lock goes with the process, kill -9 included). Not `os.kill(pid, 0)`:
    on Windows that sends Ctrl-C, and a pid may be reused."""
    return locked_by_another(layout.runtime_lock)


def hold_liveness(layout: Layout) -> int:
    """Take the runtime lock for this process (an fd to keep open while it runs)."""
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.runtime_lock, os.O_RDWR | os.O_CREAT, 0o644)
    if not try_lock(fd):
        os.close(fd)
        raise FilesimError(
            f"a topology is already running under {layout.root} "
            f"({layout.runtime_lock} is locked); stop it with `filesim down` first"
        )
    return fd


def write_runtime(path: Path, doc: RuntimeDoc) -> None:
    """Write `doc` to `path` atomically (a reader never sees half a document)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(doc.to_json(), encoding="utf-8")
    os.replace(tmp, path)


def load_runtime(path: Path) -> RuntimeDoc | None:
    """The document in `path`, or None when there is none (or only a cut or foreign one)."""
    try:
        return RuntimeDoc.model_validate_json(path.read_bytes())
    except (FileNotFoundError, ValidationError):
        return None


def read_runtime(layout: Layout) -> RuntimeDoc | None:
    """The runtime document of the topology running under `layout`, or None.

    A file left behind by a process that died (kill -9) counts as not running.
    """
    doc = load_runtime(layout.runtime_file)
    if doc is None or not running(layout):
        return None
    return doc


def require_runtime(layout: Layout) -> RuntimeDoc:
    doc = read_runtime(layout)
    if doc is None:
        raise NotRunningError(
            f"no topology is running under {layout.root} "
            "(start one with `filesim up`, or point --root at the one that runs)"
        )
    return doc


def ensure_not_running(layout: Layout) -> None:
    """Refuse to start a second topology on the same root."""
    running = read_runtime(layout)
    if running is not None:
        raise StartupError(
            f"a topology is already running under {layout.root} (pid {running.pid}); "
            "stop it with `filesim down` first"
        )


def clear_runtime(layout: Layout, pid: int) -> None:
    """Remove the runtime file if it still belongs to `pid`."""
    doc = load_runtime(layout.runtime_file)
    if doc is not None and doc.pid == pid:
        layout.runtime_file.unlink(missing_ok=True)
