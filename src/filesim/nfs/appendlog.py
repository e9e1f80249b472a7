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
from typing import BinaryIO


class AppendLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = 0
        """Lines in the file (what the owner weighs against its table to compact)."""
        self._file: BinaryIO | None = None
        self._pending: list[str] = []
        """Lines appended since the last flush: ours, not a text layer's (a TextIOWrapper's
        write and flush cost 3.3 us per line against 1.9 us for this, per handle
        generation bumped by a REMOVE)."""
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
        """Add `line` (ASCII), kept until `flush` (the file is kept open: one write per flush)."""
        self._pending.append(line)
        self.lines += 1

    def flush(self) -> None:
        """Hand what was appended to the OS in one write (no fsync: a crash of the machine may
        lose the last lines, a crash of filesim none). Nothing appended: no system call."""
        if not self._pending:
            return
        data = ("\n".join(self._pending) + "\n").encode("ascii")
        self._pending.clear()
        if self._file is None:
            # unbuffered: our own list is the buffer; O_APPEND, as the text file was
            self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - closed in close()
        done = self._file.write(data)
        while done < len(data):  # a short write (a signal, a full disk) goes on, or raises
            done += self._file.write(data[done:])

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
        """Flush what is pending, then close the file."""
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None
