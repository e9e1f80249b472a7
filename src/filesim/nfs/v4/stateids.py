"""Open and lock state: owners (with their 4.0 seqid replay), open and lock stateids.

A stateid's `other` is the server's boot epoch (4 bytes) and a counter (8 bytes), so a stateid
of an earlier run is recognised as stale. Share reservations and byte ranges themselves live in
the server's `LockTable`; this module holds who owns them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from filesim.nfs.locks import FileKey
from filesim.nfs.v4.const import Status
from filesim.nfs.v4.wire import Stateid, V4Error

if TYPE_CHECKING:
    from filesim.nfs.v4.clients import Client

_OTHER = struct.Struct(">4sQ")


@dataclass(eq=False)
class Owner:
    """An open-owner or a lock-owner of one client."""

    client: Client
    name: bytes
    is_lock: bool
    seqid: int | None = None
    """The last seqid used (4.0); None before the first operation."""
    confirmed: bool = False
    last: tuple[int, int, bytes] | None = None
    """(operation, status, result body) of the last seqid operation, for a replay."""
    states: set[bytes] = field(default_factory=set)

    @property
    def key(self) -> tuple[str, int, bytes]:
        return ("v4", self.client.clientid, self.name)


@dataclass(eq=False)
class OpenState:
    other: bytes
    owner: Owner
    file: FileKey
    handle: bytes
    seqid: int = 1
    access: int = 0
    deny: int = 0
    access_seen: set[int] = field(default_factory=set)
    deny_seen: set[int] = field(default_factory=set)
    locks: dict[bytes, LockState] = field(default_factory=dict)
    """Lock states under this open, by lock-owner name."""
    wrote: bool = False
    revoked: bool = False

    def stateid(self) -> Stateid:
        return Stateid(self.seqid, self.other)


@dataclass(eq=False)
class LockState:
    other: bytes
    owner: Owner
    open: OpenState
    file: FileKey
    seqid: int = 1
    revoked: bool = False

    def stateid(self) -> Stateid:
        return Stateid(self.seqid, self.other)


State = OpenState | LockState


class StateTable:
    """Every open and lock stateid of the server, by `other`."""

    def __init__(self, boot: int) -> None:
        self.boot = struct.pack(">I", boot & 0xFFFFFFFF)
        self._next = 1
        self.states: dict[bytes, State] = {}
        self.expired: dict[bytes, None] = {}
        """Stateids of clients whose lease expired, by `other`: their use gets EXPIRED."""
        self.closed: dict[bytes, Owner] = {}
        """Stateids closed lately, by `other`: a retransmitted 4.0 CLOSE finds its owner."""

    def new_other(self) -> bytes:
        other = _OTHER.pack(self.boot, self._next)
        self._next += 1
        return other

    def find(self, stateid: Stateid, minor: int) -> State:
        """The state `stateid` names; STALE/BAD/OLD_STATEID as RFC 7530 9.1.4 says."""
        return self.check_age(self.lookup(stateid, minor), stateid, minor)

    def lookup(self, stateid: Stateid, minor: int) -> State:
        """The state `stateid` names, whatever its seqid (a 4.0 replay carries an old one)."""
        state = self.states.get(stateid.other)
        if state is None:
            if stateid.other in self.expired:
                raise V4Error(Status.EXPIRED, "the client's lease expired")
            if not minor and not stateid.special and stateid.other[:4] != self.boot:
                raise V4Error(Status.STALE_STATEID)  # of an earlier run of this server
            raise V4Error(Status.BAD_STATEID, "unknown stateid")
        if state.revoked:
            raise V4Error(Status.ADMIN_REVOKED if minor else Status.EXPIRED)
        return state

    @staticmethod
    def check_age(state: State, stateid: Stateid, minor: int) -> State:
        if minor and stateid.seqid == 0:
            return state
        if stateid.seqid > state.seqid:
            raise V4Error(Status.BAD_STATEID, "stateid from the future")
        if stateid.seqid < state.seqid:
            raise V4Error(Status.OLD_STATEID)
        return state

    def add(self, state: State) -> None:
        self.states[state.other] = state
        state.owner.states.add(state.other)

    def remove(self, state: State) -> None:
        self.states.pop(state.other, None)
        state.owner.states.discard(state.other)
        if isinstance(state, OpenState):
            self.closed[state.other] = state.owner
            while len(self.closed) > 4096:
                del self.closed[next(iter(self.closed))]


def check_seqid(owner: Owner, seqid: int, op: int, minor: int) -> bool:
    """Whether a 4.0 seqid operation is new (True) or a replay of the last one (False)."""
    if minor or owner.seqid is None:
        return True
    if seqid == (owner.seqid + 1) & 0xFFFFFFFF:
        return True
    if seqid == owner.seqid and owner.last is not None and owner.last[0] == op:
        return False
    raise V4Error(Status.BAD_SEQID, f"seqid {seqid} after {owner.seqid}")


# Errors after which a 4.0 owner's seqid does not advance (RFC 7530 9.1.7).
SEQID_KEEPING = frozenset(
    {
        Status.STALE_CLIENTID, Status.STALE_STATEID, Status.BAD_STATEID, Status.BAD_SEQID,
        Status.BADXDR, Status.RESOURCE, Status.NOFILEHANDLE, Status.MOVED,
    }
)  # fmt: skip
