"""Writing test files the way a finished download lands: whole, in one rename.

A file written in place (`Path.write_bytes`) is empty for a moment after its truncation, and a
watcher may report it then: a sync agent copies that empty version once it has settled, then
the real one, and a test counting copies sees one too many (more likely the busier the
machine). Writing the bytes to a scratch file next to the watched tree (same filesystem, not
watched) and renaming it into place leaves nothing in between.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_whole(root: Path, rel: str, data: bytes | str, mtime: float | None = None) -> Path:
    """Put `data` at `root/rel` in one rename (parents created), mode 0o644, optional mtime.
    `root` is the watched tree: the scratch file lives beside it, not in it."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = root.parent / f".scratch-{root.name}"
    scratch.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=scratch)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
