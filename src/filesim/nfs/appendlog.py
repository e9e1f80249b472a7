"""`AppendLog`: a table kept in the state directory as one text line per change.

Appending a line costs one write, not a rewrite of the table; now and then the owner rewrites
the file whole from what it holds (atomically: a new file renamed over the old). A crash
mid-append leaves a torn last line, which the owner's parser skips. Used by the handle
generations and the file-id table (`filesim.nfs.generations`, `filesim.nfs.fileidtable`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO


class AppendLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = 0
        """Lines in the file (what the owner weighs against its table to compact)."""
        self._file: TextIO | None = None
        path.parent.mkdir(parents=True, exist_ok=True)

    def read(self) -> list[str]:
        """The lines written so far (none when there is no file yet)."""
        try:
            text = self.path.read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            return []
        lines = text.splitlines()
        self.lines = len(lines)
        return lines

    def append(self, line: str) -> None:
        """Add `line`, buffered until `flush` (the file is kept open: one write per flush)."""
        if self._file is None:
            self._file = open(self.path, "a", encoding="ascii")  # noqa: SIM115
        self._file.write(line + "\n")
        self.lines += 1

    def flush(self) -> None:
        """Hand what was appended to the OS (no fsync: a crash of the machine may lose the
        last lines, a crash of filesim none)."""
        if self._file is not None:
            self._file.flush()

    def rewrite(self, lines: Iterable[str]) -> None:
        """Replace the file with `lines`, atomically."""
        self.close()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        count = 0
        try:
            with open(tmp, "w", encoding="ascii") as f:
                for line in lines:
                    f.write(line + "\n")
                    count += 1
            os.replace(tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self.lines = count

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
