"""The state of one COMPOUND while it runs, and the registry of the operations.

Each operation is `fn(c: Compound, u: Unpacker) -> bytes | list[Part]`: it reads its
arguments from `u`, acts, and returns its result body (what follows the status); a failure is
raised as `V4Error`. `@operation(Op.X, ...)` registers it with what the loop checks first.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from filesim.nfs.access import Caller
from filesim.nfs.attrs import Attrs
from filesim.nfs.filedata import Part
from filesim.nfs.v4.const import Status
from filesim.nfs.v4.wire import Stateid, V4Error, status_of_v3
from filesim.nfs.vfs import NfsError, status_of
from filesim.oncrpc.message import Credentials
from filesim.oncrpc.xdr import Unpacker

if TYPE_CHECKING:
    from filesim.nfs.export import Export
    from filesim.nfs.v4.clients import Client, Session, Slot
    from filesim.nfs.v4.service import V4Service
    from filesim.nfs.v4.stateids import Owner

OpResult = bytes | list[Part]
OpFn = Callable[["Compound", Unpacker], OpResult]


@dataclass(frozen=True)
class OpSpec:
    fn: OpFn
    minors: frozenset[int]
    mutating: bool
    sessionless: bool
    """4.1: may come without a SEQUENCE before it (EXCHANGE_ID, CREATE_SESSION, ...)."""


OPS: dict[int, OpSpec] = {}
ALL = frozenset({0, 1, 2})
V40 = frozenset({0})
V41 = frozenset({1, 2})
V42 = frozenset({2})


F = TypeVar("F", bound=OpFn)


def operation(
    op: int, minors: frozenset[int] = ALL, mutating: bool = False, sessionless: bool = False
) -> Callable[[F], F]:
    def register(fn: F) -> F:
        OPS[op] = OpSpec(fn, minors, mutating, sessionless)
        return fn

    return register


class Replay(Exception):
    """A 4.1 retry: answer with the cached reply of the slot."""

    def __init__(self, reply: list[bytes]) -> None:
        super().__init__("replay")
        self.reply = reply


class SeqReplay(Exception):
    """A 4.0 seqid replay: answer the operation with the owner's cached result."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__("seqid replay")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Node:
    """The current filehandle resolved: a pseudo directory (path None) or an export node."""

    handle: bytes
    st: Attrs
    path: str | None
    depth: int | None = None

    @property
    def pseudo(self) -> bool:
        return self.path is None

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)


class Compound:
    def __init__(
        self, svc: V4Service, cred: Credentials, caller: Caller, client_addr: str, minor: int
    ) -> None:
        self.svc = svc
        self.export: Export = svc.export
        self.cred = cred
        self.caller = caller
        self.client_addr = client_addr
        self.minor = minor
        self.cfh: bytes | None = None
        self.sfh: bytes | None = None
        self._known: Node | None = None
        """The last filehandle resolved, while no operation since can have changed it."""
        self.cur_sid: Stateid | None = None
        self.saved_sid: Stateid | None = None
        self.session: Session | None = None
        self.slot: Slot | None = None
        self.cachethis = False
        self.seq_owner: tuple[Owner, int] | None = None
        self.nops = 0
        self.request_size = 0
        self.request_crc = 0

    @property
    def client(self) -> Client | None:
        return self.session.client if self.session is not None else None

    # -- filehandles --------------------------------------------------------------------

    def fh(self) -> bytes:
        if self.cfh is None:
            raise V4Error(Status.NOFILEHANDLE)
        return self.cfh

    def set_fh(self, handle: bytes) -> None:
        self.cfh = handle
        self.cur_sid = None

    def set_node(self, node: Node) -> None:
        """Make `node`, just resolved, the current filehandle."""
        self.set_fh(node.handle)
        self._known = node

    def node(self, handle: bytes | None = None) -> Node:
        """The current (or given) filehandle, checked against the filesystem: once per
        COMPOUND while only operations that change nothing run (`forget_nodes`). Most
        COMPOUNDs put a handle and then use it: one stat instead of two or three."""
        handle = self.fh() if handle is None else handle
        known = self._known
        if known is not None and known.handle == handle:
            return known
        known = self._known = self.svc.resolve(handle)
        return known

    def forget_nodes(self) -> None:
        """An operation may have changed the filesystem: resolve handles afresh."""
        self._known = None

    def real(self, pseudo_status: Status = Status.ROFS) -> Node:
        """The current filehandle, which must name a node of the export."""
        node = self.node()
        if node.pseudo:
            raise V4Error(pseudo_status, "not possible in the pseudo-filesystem")
        return node

    def directory(self, pseudo_status: Status = Status.ROFS) -> Node:
        node = self.node()
        if not node.is_dir:
            raise V4Error(Status.SYMLINK if stat.S_ISLNK(node.st.st_mode) else Status.NOTDIR)
        if node.pseudo:
            raise V4Error(pseudo_status, "not possible in the pseudo-filesystem")
        return node

    def stateid(self, sid: Stateid) -> Stateid:
        """`sid`, with the 4.1 "current stateid" replaced by the compound's current one."""
        if self.minor and sid.current:
            if self.cur_sid is None:
                raise V4Error(Status.BAD_STATEID, "no current stateid")
            return self.cur_sid
        return sid


def storage(call: Callable[[], object]) -> None:
    """Run a storage call, turning its errors into NFSv4 statuses."""
    try:
        call()
    except NfsError as exc:
        raise V4Error(status_of_v3(exc.status), str(exc)) from None
    except OSError as exc:
        raise V4Error(status_of_v3(status_of(exc)), str(exc)) from None


_R = TypeVar("_R")


def ruled(call: Callable[[], _R]) -> _R:
    """Apply a permission rule of `nfs.policy`, its refusal turned into the NFSv4 status."""
    try:
        return call()
    except NfsError as exc:
        raise V4Error(status_of_v3(exc.status), str(exc)) from None
