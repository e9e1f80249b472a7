"""The NFSv3 procedure registry: each procedure declared once, with all dispatch needs of it.

    @procedure(NfsProc.WRITE, mutating=True, blocking=lambda x: x.config.sync, failure=WCC)
    def write(x: Export, caller: Caller, u: Unpacker) -> Result: ...

A handler takes the export, the caller and an Unpacker positioned at its arguments, and returns
the encoded body that follows NFS3_OK (a list of buffers; a large READ's data stays in its
file, `FileData`, and goes to the socket from there).
Failures are raised as `NfsError`; the dispatcher answers the status and `failure`, the body RFC
1813 allows after it with every optional attribute absent. `mutating` procedures are refused
with NFS3ERR_ROFS on a read-only export; `blocking` ones (may wait for the disk) run in a thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from filesim.nfs.access import Caller
from filesim.nfs.export import Export
from filesim.nfs.filedata import Part
from filesim.oncrpc.programs import NfsProc
from filesim.oncrpc.xdr import Unpacker

Result = list[Part]
Handler = Callable[[Export, Caller, Unpacker], Result]

# Failure bodies (after the status): post_op_attr absent, wcc_data with both attributes absent.
NOTHING = b""
POST_OP = bytes(4)
WCC = bytes(8)


def _never(export: Export) -> bool:
    return False


def _always(export: Export) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Procedure:
    proc: NfsProc
    handler: Handler
    mutating: bool
    """Changes the store: refused with NFS3ERR_ROFS while the export is read-only."""
    blocks: Callable[[Export], bool]
    """Whether, on this export, the call may wait for the disk (fsync) and runs in a thread."""
    failure: bytes
    """The body after a failure status."""


class Registry:
    """The procedures of one program version, by number."""

    def __init__(self) -> None:
        self._procedures: dict[int, Procedure] = {}

    def procedure(
        self, proc: NfsProc, *, mutating: bool = False,
        blocking: bool | Callable[[Export], bool] = False, failure: bytes = POST_OP,
    ) -> Callable[[Handler], Handler]:  # fmt: skip
        """Register the decorated handler as `proc`."""
        blocks = blocking if callable(blocking) else _always if blocking else _never

        def register(handler: Handler) -> Handler:
            if proc in self._procedures:
                raise ValueError(f"NFS procedure {proc.name} is registered twice")
            self._procedures[proc] = Procedure(proc, handler, mutating, blocks, failure)
            return handler

        return register

    def table(self) -> dict[int, Procedure]:
        """Procedure number -> Procedure, for a dict lookup per call."""
        return dict(self._procedures)

    def __iter__(self) -> Iterator[Procedure]:
        return iter(sorted(self._procedures.values(), key=lambda p: p.proc))

    def missing(self) -> list[NfsProc]:
        return [p for p in NfsProc if p not in self._procedures]


NFS3 = Registry()
procedure = NFS3.procedure
